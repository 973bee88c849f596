"""Label leakage: prove from the mask that training cannot see its targets, and probe for it.

A labelled position t is trained to predict token t+1. The objective is leak-free iff no such
position can attend to key t+1 or any later key (docs/semantics.md). The guard
builds the very masks the engine's training forward uses (the engine's one builder,
`masks.build_masks`, every layer's) for the collated batches and checks every labelled query; it does not reason about
mode names.
causal and prefix (prefix = prompt length) pass; bidirectional fails, and training under it is
refused unless explicitly allowed.

The probe is the empirical side, what the original Ministral 3 ablation did by hand: the response loss on the same weights
and examples under causal and under each mode. A leak-free mode only changes how prompt tokens
see each other; it cannot make unseen tokens much easier to predict. A mode that lets a position
see its target can drive the loss towards zero once the weights have learned to copy it (the
Ministral 3 3B run: 0.07 bidirectional vs 1.02 causal, a ratio of 0.07). LEAK_RATIO = 0.5 sits between: a
mode whose loss is below half the causal loss is flagged as implausibly low.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import pandas as pd
import torch

from interp.data.instructions import IGNORE_INDEX, InstructionCollator
from interp.engine import Engine
from interp.engine import masks
from interp.engine.masks import MODES, check_mode
from interp.errors import InterpError

logger = logging.getLogger(__name__)

LEAK_RATIO = 0.5  # flag a mode whose response loss is below LEAK_RATIO × the causal loss
GUARD_BATCH = 64


@dataclass
class LeakageVerdict:
    """What the guard proved for one attention mode over a set of tokenized examples."""

    mode: str
    leak_free: bool
    examples_checked: int
    labelled_positions: int
    leaky_positions: int  # labelled queries that can see their target or a later token
    leaky_examples: int
    first_leak: dict | None  # {"example", "query", "key"}: a witness, in example/column indices

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.leak_free:
            return (f"{self.mode}: leak-free ({self.labelled_positions} labelled positions in "
                    f"{self.examples_checked} examples checked)")
        w = self.first_leak
        return (f"{self.mode} leaks labels: {self.leaky_positions} of {self.labelled_positions} labelled positions "
                f"({self.leaky_examples} of {self.examples_checked} examples) can attend to the token they predict "
                f"or a later one, e.g. example {w['example']}: position {w['query']} sees key {w['key']}")


def check_label_leakage(
    examples: Sequence[dict],
    mode: str,
    *,
    pad_token_id: int = 0,
    bidirectional_layers: Sequence[int] | None = None,
    n_layers: int | None = None,
) -> LeakageVerdict:
    """Build the engine's training masks for `examples` under `mode` and look for leaks.

    Examples are collated exactly as for training (right-padded, per-row prefix_len = prompt
    length) in length-sorted chunks. Every layer's mask is checked (with `bidirectional_layers`
    the mode applies in those layers of the `n_layers`, the rest are causal). Sliding windows are
    left out: a window only removes keys, so a mask that is leak-free without one is leak-free with any.
    """
    check_mode(mode)
    collate = InstructionCollator(pad_token_id)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    labelled = leaky = leaky_examples = 0
    first_leak = None
    for start in range(0, len(order), GUARD_BATCH):
        chunk = order[start : start + GUARD_BATCH]
        batch = collate([examples[i] for i in chunk])
        leaks, n_labelled = _leaks(batch, mode, bidirectional_layers, n_layers)  # [B,T,T] bool, labelled queries
        labelled += n_labelled
        leaky_rows = leaks.flatten(1).any(-1)  # [B]
        leaky += int(leaks.any(-1).sum())
        leaky_examples += int(leaky_rows.sum())
        if first_leak is None and bool(leaky_rows.any()):
            row, query, key = (int(v) for v in leaks.nonzero()[0])
            first_leak = {"example": chunk[row], "query": query, "key": key}
    return LeakageVerdict(mode, leaky == 0, len(examples), labelled, leaky, leaky_examples, first_leak)


def _leaks(
    batch: dict, mode: str, bidirectional_layers: Sequence[int] | None = None, n_layers: int | None = None
) -> tuple[torch.Tensor, int]:
    """[B,T,T] bool: labelled query t may attend to key k > t (k is a real token) in some layer."""
    ids, mask = batch["input_ids"], batch["attention_mask"].bool()
    b, t = ids.shape
    positions = masks.real_positions(mask)  # [B,T]
    if n_layers is None:
        n_layers = max(bidirectional_layers, default=0) + 1 if bidirectional_layers is not None else 1
    per_layer = masks.build_masks(mode, batch["prefix_len"], positions, mask, [None] * n_layers,
                                  bidirectional_layers=bidirectional_layers)  # the forward's, [B,1,Tq,Tk] each
    allowed = torch.zeros(b, t, t, dtype=torch.bool, device=ids.device)
    for layer_mask in {id(m): m for m in per_layer}.values():  # each distinct layer mask once
        allowed |= layer_mask[:, 0]
    labelled = torch.zeros(b, t, dtype=torch.bool)
    labelled[:, :-1] = batch["labels"][:, 1:] != IGNORE_INDEX  # query t is trained on token t+1
    future = positions[:, None, :] > positions[:, :, None]  # [B,Tq,Tk]: the key comes after the query
    return allowed & future & labelled[:, :, None], int(labelled.sum())


def guard_label_leakage(
    examples: Sequence[dict],
    mode: str,
    *,
    allow_label_leakage: bool = False,
    pad_token_id: int = 0,
    bidirectional_layers: Sequence[int] | None = None,
    n_layers: int | None = None,
) -> dict:
    """Refuse a leaky training mask (one-line InterpError) unless allowed; then warn loudly.

    Returns the verdict as a dict for summary.json, with "allowed" and any "warning".
    """
    verdict = check_label_leakage(examples, mode, pad_token_id=pad_token_id,
                                  bidirectional_layers=bidirectional_layers, n_layers=n_layers)
    record = verdict.to_dict() | {"allowed": bool(allow_label_leakage) if not verdict.leak_free else None}
    if verdict.leak_free:
        logger.info(verdict.describe())
        return record
    if not allow_label_leakage:
        raise InterpError(f"{verdict.describe()}; refusing to train (use prefix for a bidirectional prompt, "
                          f"or pass --allow-label-leakage to train on a leaky objective anyway)")
    warning = f"LABEL LEAKAGE ALLOWED: {verdict.describe()}. The training loss is not a measure of learning."
    logger.warning(warning)
    warnings.warn(warning, stacklevel=2)
    record["warning"] = warning
    return record


def probe_leakage(
    engine: Engine,
    examples: Sequence[dict],
    modes: Sequence[str] = MODES,
    *,
    batch_size: int = 8,
) -> pd.DataFrame:
    """Response loss on the same weights and examples under causal and each mode.

    Columns: mode, loss, ratio (loss / causal loss), mask_leak_free (the guard's proof),
    flagged (ratio < LEAK_RATIO: implausibly far below causal).
    """
    from interp.analyses.ablation.finetune.training_model import mean_response_loss
    from interp.data.instructions import pad_token_id

    if not examples:
        raise InterpError("no examples to probe")
    modes = ["causal"] + [m for m in dict.fromkeys(modes) if m != "causal"]
    pad = pad_token_id(engine.tokenizer)
    rows = []
    for mode in modes:
        loss = mean_response_loss(engine, list(examples), mode, batch_size=batch_size)
        rows.append({"mode": mode, "loss": loss,
                     "mask_leak_free": check_label_leakage(examples, mode, pad_token_id=pad).leak_free})
    table = pd.DataFrame(rows)
    table["ratio"] = table["loss"] / table.loc[0, "loss"]
    table["flagged"] = table["ratio"] < LEAK_RATIO
    return table[["mode", "loss", "ratio", "mask_leak_free", "flagged"]]


def run_leakage_probe(
    model: str | Engine,
    data: str,
    *,
    limit: int | None = 64,
    split: str = "eval",
    max_seq_len: int = 512,
    batch_size: int = 8,
    modes: Sequence[str] = MODES,
    seed: int = 0,
) -> pd.DataFrame:
    """`probe_leakage` on up to `limit` examples of `data`'s eval (held-out) or train split."""
    import interp
    from interp.data.instructions import check_truncation, load_instructions, tokenize_rows

    if split not in ("eval", "train"):
        raise InterpError(f"split must be eval or train, not {split!r}")
    if limit is not None and limit < 1:
        raise InterpError(f"limit must be at least 1, not {limit}")
    rows = load_instructions(data, eval_limit=limit if split == "eval" else 0, seed=seed)
    chosen = rows.eval if split == "eval" else rows.train
    if not chosen:
        raise InterpError(f"{data!r} has no {split} rows to probe" + ("; try --split train" if split == "eval" else ""))
    engine = model if isinstance(model, Engine) else interp.load(model)
    chosen = chosen[:limit] if limit else chosen
    examples, dropped = tokenize_rows(chosen, engine.tokenizer, max_seq_len)
    check_truncation(len(chosen), dropped, f"{split} rows of {data!r}", max_seq_len, must_keep_some=True)
    table = probe_leakage(engine, examples, modes, batch_size=batch_size)
    table.attrs["examples"] = len(examples)
    return table
