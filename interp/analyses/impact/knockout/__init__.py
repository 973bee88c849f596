"""Attention knockout as in Geva et al. (2023), "Dissecting Recall of Factual Associations".

For each prompt with a subject, each layer l and each source of tokens, the edges from the final
position to the source are blocked (their attention logits set to −inf, every head) at the
`window` layers centred on l, and we measure how the probability of the model's own top-1 next
token changes: rel_change_pct = 100 · (p_masked − p) / p, plus KL(base ‖ masked).

Sources (disjoint; positions before the last unless said):
- subject: every token overlapping the subject's first occurrence in the prompt,
- non_subject: every other position before the last (special tokens such as BOS included),
- last: the final position itself.

Only the final position's edges change, so in causal mode nothing else changes either: every
variant is a single-token step per layer over the baseline's keys and values, batched over
(layer, source). Under attention="prefix" the prompt is a bidirectional prefix whose queries also
see the final position, so its change reaches them from the next layer on and the variants are
recomputed over the whole sequence — exact either way (see mask_impact.carry).

Rows whose subject is missing, not a string, not in the prompt, or has no token before the last,
and prompts longer than the model allows, are skipped and counted. docs/semantics.md has every definition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import pandas as pd
import torch

from interp.analyses.interventions.carry import Variants, batch_size, carried_logits, window_layers
from interp.analyses.interventions.context import MODES, baseline_context
from interp.analyses.interventions.distances import kl_from_baseline
from interp.engine import Engine
from interp.engine.masks import check_layers, default_prefix_len
from interp.util.distributed import map_sharded
from interp.errors import InterpError
from interp.results import result_metadata

SOURCES: tuple[str, ...] = ("subject", "non_subject", "last")
COLUMNS: tuple[str, ...] = (
    "prompt_index", "layer", "source", "window", "top1_token", "top1_prob", "top1_prob_masked", "rel_change_pct", "kl",
)
ATTRS_KEY = "knockout"  # df.attrs[ATTRS_KEY]: settings, skipped count, per-prompt tokens and sources


def check_options(*, attention: str = "causal", window: int = 1) -> None:
    """Refuse bad settings before anything is loaded (the CLI calls this before the checkpoint)."""
    if attention not in MODES:
        raise InterpError(f"unknown attention mode for knockout {attention!r}; choose one of {', '.join(MODES)}")
    window_layers(0, window, 1)


@dataclass
class FactPrompt:
    """One usable prompt: its tokens and the positions of each source."""

    prompt: str
    subject: str
    token_ids: list[int]
    sources: dict[str, list[int]]


def fact_prompt(engine: Engine, row: object) -> FactPrompt | None:
    """A {"prompt", "subject"} row → FactPrompt, or None if the row cannot be used (skipped)."""
    parsed = _parse_row(engine, row)
    return parsed if isinstance(parsed, FactPrompt) else None


def _parse_row(engine: Engine, row: object) -> FactPrompt | str:
    """A {"prompt", "subject"} row → FactPrompt, or why it is skipped (for the one-line error)."""
    if not isinstance(row, Mapping):
        return "not a JSON object"
    prompt, subject = row.get("prompt"), row.get("subject")
    if not isinstance(prompt, str) or not prompt.strip():
        return "without a prompt"
    if not isinstance(subject, str) or not subject.strip():
        return "without a subject"
    begin = prompt.find(subject)
    if begin < 0:
        return "with a subject not in the prompt"
    end = begin + len(subject)
    try:
        enc = engine.tokenizer(prompt, return_offsets_mapping=True)
    except NotImplementedError:
        raise InterpError("knockout needs a fast tokenizer (character offsets locate the subject)") from None
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    if engine.max_positions is not None and len(ids) > engine.max_positions:
        return f"longer than the model allows ({engine.max_positions} tokens)"
    last = len(ids) - 1
    subject_pos = [i for i, (s, e) in enumerate(offsets[:last]) if e > s and s < end and e > begin]
    if not subject_pos:  # the subject is only the last token (or empty after tokenization)
        return "whose subject has no token before the last"
    taken = set(subject_pos)
    sources = {"subject": subject_pos, "non_subject": [i for i in range(last) if i not in taken], "last": [last]}
    return FactPrompt(prompt, subject, ids, sources)


@torch.no_grad()
def knockout(
    engine: Engine,
    prompts: Iterable[Mapping],
    *,
    window: int = 1,
    attention: str = "causal",
    bidirectional_layers: Iterable[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Block final → source edges at the `window` layers around each layer, for every prompt.

    prompts: rows {"prompt": text, "subject": substring of the prompt}; bad rows are skipped and
        counted (df.attrs["knockout"]["skipped"]).
    attention: "causal", or "prefix" (the prompt attends bidirectionally, as after a bidirectional
        prefill).
    bidirectional_layers: the layers where `attention` applies (None: all); the others stay causal.
    progress: called with 1 after each prompt analysed.

    Returns one row per (prompt, layer, source) with the columns in COLUMNS; a source with no
    token in a prompt (e.g. no non-subject token) has no rows for it.
    """
    check_options(attention=attention, window=window)
    if bidirectional_layers is not None:
        bidirectional_layers = sorted(check_layers(bidirectional_layers, engine.n_layers))
    usable, why = [], Counter()
    for row in prompts:
        parsed = _parse_row(engine, row)
        if isinstance(parsed, FactPrompt):
            usable.append(parsed)
        else:
            why[parsed] += 1
    skipped = sum(why.values())
    if not usable:
        reasons = "; ".join(f"{n} {reason}" for reason, n in why.most_common()) or "no rows"
        raise InterpError(f"no usable prompts ({skipped} skipped): {reasons}")
    def analyse(mine: list[tuple[int, FactPrompt]]) -> list[list[dict]]:
        frames = []
        for index, fact in mine:
            frames.append(_prompt_rows(engine, index, fact, int(window), attention, bidirectional_layers))
            if progress is not None:
                progress(1)
        return frames

    # Under torchrun / accelerate launch each rank analyses every world_size-th prompt; all ranks get all rows.
    frames = map_sharded(analyse, list(enumerate(usable)))
    df = pd.DataFrame([row for frame in frames for row in frame], columns=list(COLUMNS))
    df.attrs[ATTRS_KEY] = {
        "attention": attention,
        "window": int(window),
        "bidirectional_layers": None if bidirectional_layers is None else sorted(set(bidirectional_layers)),
        "n_prompts": len(usable),
        "skipped": skipped,
        "sources": list(SOURCES),
        "prompts": [
            {"prompt_index": i, "prompt": p.prompt, "subject": p.subject,
             "tokens": [engine.tokenizer.decode([t]) for t in p.token_ids], "token_ids": p.token_ids,
             "sources": p.sources}
            for i, p in enumerate(usable)
        ],
    }
    return df


def _prompt_rows(engine: Engine, index: int, fact: FactPrompt, window: int, attention: str,
                 bidirectional_layers: Iterable[int] | None = None) -> list[dict]:
    ids = torch.tensor([fact.token_ids], device=engine.device)
    t = ids.shape[1]
    ctx = baseline_context(engine, ids, [], attention=attention, prefix_len=default_prefix_len(attention, t),
                           attn_impl="explicit", carry_layers=range(engine.n_layers), carry_queries="final",
                           bidirectional_layers=bidirectional_layers)
    cells = [(layer, source) for layer in range(engine.n_layers) for source in SOURCES if fact.sources[source]]
    windows = [window_layers(layer, window, engine.n_layers) for layer, _ in cells]
    keys = torch.zeros(len(cells), t, dtype=torch.bool, device=ids.device)  # [J,T]: the source's positions
    for j, (_, source) in enumerate(cells):
        keys[j, fact.sources[source]] = True
    start = ctx.suffix_start(ctx.final)
    size = batch_size(ctx, start)
    masked = torch.cat([
        carried_logits(ctx, Variants(first=torch.tensor([w[0] for w in windows[i:i + size]], device=ids.device),
                                     last=torch.tensor([w[1] for w in windows[i:i + size]], device=ids.device),
                                     keys=keys[i:i + size], queries="final"), start)
        for i in range(0, len(cells), size)
    ])  # [J,V]
    top = int(ctx.last_logits.argmax())
    p = float(ctx.last_logits.double().softmax(-1)[top])
    p_masked = masked.double().softmax(-1)[:, top].tolist()
    kl = kl_from_baseline(ctx.last_logits, masked).tolist()
    token = engine.tokenizer.decode([top])
    return [
        {"prompt_index": index, "layer": layer, "source": source, "window": window, "top1_token": token,
         "top1_prob": p, "top1_prob_masked": pm, "rel_change_pct": 100.0 * (pm - p) / p, "kl": d}
        for (layer, source), pm, d in zip(cells, p_masked, kl)
    ]


def knockout_summary(engine: Engine, df: pd.DataFrame, **extra) -> dict:
    """summary.json: model, settings, counts, provenance, then the prompts with tokens and sources."""
    return result_metadata(engine, df, ATTRS_KEY, last=("prompts",), **extra)