"""Scoring: each choice's log-likelihood given its context, batched, exact and shareable.

score(choice) = Σ log p(continuation token | context, earlier continuation tokens).

Attention modes:
  causal         the usual causal model.
  prefix         context bidirectional, continuation causal: exactly what a bidirectional prefill
                 of the context followed by causal decoding computes (the ablation).
  bidirectional  one pass over context + continuation with no mask, as the ministral3 ablation's
                 eval code ran: each continuation token sees the tokens after it, so the score is
                 LEAKY. Kept to reproduce those figures and labelled leaky in every output.

Fast and exact: for causal and prefix, each context is run once (prefill, in the chosen mode, with
its KV cache kept) and all its choices are scored together by continuing from that cache
(`KVCache.rows` repeats a context's cache once per choice); examples are batched with left-padded
contexts and right-padded continuations. Padding never changes a real token's result, so batched
scores equal unbatched ones. Requests are grouped by context tokens, so choices with their own
contexts (lm-eval's winogrande) simply form groups of one. bidirectional cannot reuse a cache
(the context sees the choice) and runs one full sequence per choice, batched the same way.

Token boundary (as lm-evaluation-harness `_encode_pair`): whitespace ending the context moves to
the front of the continuation; the context is tokenized alone, and the continuation's tokens are
those of `context + continuation` after the first len(context tokens). Every choice then shares
the very same context tokens (so their cache can be shared); where BPE merges across the boundary,
the scored sequence is context tokens + the tail of the joint tokenization, as in the harness.
Only leading special tokens (e.g. BOS) are added; an empty context gets BOS (or EOS) alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from interp.engine import Engine
from interp.engine.masks import LEAKY_MODES, check_mode, default_prefix_len
from interp.errors import InterpError
from interp.util.distributed import map_sharded
from interp.util.padding import pad
from interp.util.progress import progress_bar

LEAK_WARNING = (
    "LEAKY: attention=bidirectional lets every continuation token see the tokens after it (what the "
    "ministral3 ablation's eval code computed); these scores are not a valid zero-shot accuracy"
)
LOGIT_CHUNK = 1 << 24  # elements of fp32 log-softmax held at once


# ------------------------------------------------------------------------------------- tokens
Request = tuple[str, str]  # (context, continuation): one of lm-eval's loglikelihood requests


@dataclass
class Encoded:
    """One context's tokens and the continuations scored after it (they share its KV cache)."""

    context: list[int]
    choices: list[list[int]]


def leading_special_tokens(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (e.g. [BOS]); trailing ones are dropped."""
    with_special = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start:start + len(plain)] == plain:
            return list(with_special[:start])
    return []


def prefix_token(tokenizer) -> int | None:
    """What an empty context becomes: BOS, else EOS (lm-eval's prefix_token_id)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_requests(
    tokenizer, requests: Sequence[Request], max_length: int | None = None
) -> list[tuple[list[int], list[int]] | None]:
    """(context ids, continuation ids) per request at the harness's boundary (module docstring).

    None where nothing can be scored (an empty continuation, or one that alone fills
    `max_length`); a context that would not fit with its continuation loses tokens from the left.
    """
    return [pair for pair, _ in encode_requests_with_cuts(tokenizer, requests, max_length)]


def encode_requests_with_cuts(
    tokenizer, requests: Sequence[Request], max_length: int | None = None
) -> list[tuple[tuple[list[int], list[int]] | None, int]]:
    """`encode_requests`, each with how many context tokens were cut from the left to fit `max_length`."""
    lead = leading_special_tokens(tokenizer)
    fallback = prefix_token(tokenizer)
    contexts, wholes = [], []
    for context, continuation in requests:
        stripped = context.rstrip()
        contexts.append(stripped)
        wholes.append(stripped + context[len(stripped):] + continuation)
    context_ids = tokenizer(contexts, add_special_tokens=False)["input_ids"] if contexts else []
    whole_ids = tokenizer(wholes, add_special_tokens=False)["input_ids"] if wholes else []
    out: list[tuple[tuple[list[int], list[int]] | None, int]] = []
    for ctx, whole in zip(context_ids, whole_ids):
        cont = whole[len(ctx):]
        ctx = lead + ctx
        if not ctx and fallback is not None:
            ctx = [fallback]
        if not ctx or not cont or (max_length is not None and len(cont) >= max_length):
            out.append((None, 0))
            continue
        cut = max(0, len(ctx) + len(cont) - max_length) if max_length is not None else 0
        out.append(((ctx[cut:], cont), cut))
    return out


def item_requests(item: dict) -> list[Request]:
    """An item's (context, continuation) pairs: its context (or its per-choice contexts) and each choice."""
    contexts = item["context"] if isinstance(item["context"], list) else [item["context"]] * len(item["choices"])
    return list(zip(contexts, item["choices"]))


def encode_items(
    tokenizer, items: Sequence[dict], max_length: int | None = None
) -> list[list[tuple[list[int], list[int]]] | None]:
    """Each item's encoded requests, or None when any of its choices cannot be scored."""
    return encode_items_with_cuts(tokenizer, items, max_length)[0]


def encode_items_with_cuts(
    tokenizer, items: Sequence[dict], max_length: int | None = None
) -> tuple[list[list[tuple[list[int], list[int]]] | None], list[int]]:
    """`encode_items`, and per item the most context tokens cut from the left of any of its choices."""
    shape = [len(item["choices"]) for item in items]
    flat = encode_requests_with_cuts(tokenizer, [r for item in items for r in item_requests(item)], max_length)
    out, cuts, offset = [], [], 0
    for k in shape:
        pairs = flat[offset:offset + k]
        offset += k
        out.append(None if any(p is None for p, _ in pairs) else [p for p, _ in pairs])
        cuts.append(max(c for _, c in pairs))
    return out, cuts


def group_by_context(pairs: Sequence[tuple[list[int], list[int]]]) -> tuple[list[Encoded], list[tuple[int, int]]]:
    """Requests with the same context tokens become one Encoded (one prefill); → groups and, per
    request, (group, choice) where its score will be."""
    groups: list[Encoded] = []
    index: dict[tuple[int, ...], int] = {}
    where = []
    for ctx, cont in pairs:
        g = index.setdefault(tuple(ctx), len(groups))
        if g == len(groups):
            groups.append(Encoded(list(ctx), []))
        where.append((g, len(groups[g].choices)))
        groups[g].choices.append(list(cont))
    return groups, where


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) in fp32: logits [N,T,V], targets [N,T] → [N,T], a few rows at a time."""
    rows_per_chunk = max(1, LOGIT_CHUNK // max(1, logits.shape[1] * logits.shape[2]))
    out = []
    for start in range(0, logits.shape[0], rows_per_chunk):
        chunk = logits[start:start + rows_per_chunk].float().log_softmax(-1)
        out.append(chunk.gather(-1, targets[start:start + rows_per_chunk, :, None])[..., 0])
    return torch.cat(out)


# ------------------------------------------------------------------------------------- scoring
def _score_from_context_cache(engine: Engine, batch: Sequence[Encoded], attention: str, layers=None):
    """Prefill each context once (causal or prefix, in `layers`), then decode all its choices from the cache."""
    ctx_ids, ctx_mask = pad([e.context for e in batch], "left", device=engine.device)  # [B,Tc]
    ctx_len = ctx_mask.sum(-1)
    prefill = engine.run(
        ctx_ids, attention_mask=ctx_mask, attention=attention,
        prefix_len=default_prefix_len(attention, ctx_len), use_cache=True, logits="last",
        bidirectional_layers=layers,
    )
    owner = torch.tensor([b for b, e in enumerate(batch) for _ in e.choices], device=engine.device)  # [N]
    cont_ids, cont_mask = pad([c for e in batch for c in e.choices], "right", device=engine.device)  # [N,Tk]
    # The context's last logits predict each choice's first token; decoding predicts the rest.
    first = prefill.logits[owner]  # [N,1,V]
    logp, greedy = token_logprobs(first, cont_ids[:, :1]), first.argmax(-1) == cont_ids[:, :1]  # [N,1]
    if cont_ids.shape[1] > 1:
        decode = engine.run(
            cont_ids[:, :-1], attention_mask=cont_mask[:, :-1], past=prefill.past.rows(owner), logits="all"
        )
        logp = torch.cat([logp, token_logprobs(decode.logits, cont_ids[:, 1:])], 1)  # [N,Tk]
        greedy = torch.cat([greedy, decode.logits.argmax(-1) == cont_ids[:, 1:]], 1)
    logp = logp.masked_fill(~cont_mask, 0.0)
    return logp.sum(-1), cont_mask.sum(-1), (greedy | ~cont_mask).all(-1)


def _score_full_sequences(engine: Engine, batch: Sequence[Encoded], attention: str, layers=None):
    """One forward per choice over context + continuation (the only way for bidirectional)."""
    rows = [e.context + c for e in batch for c in e.choices]
    ctx_len = torch.tensor([len(e.context) for e in batch for _ in e.choices], device=engine.device)  # [N]
    cont_len = torch.tensor([len(c) for e in batch for c in e.choices], device=engine.device)
    ids, mask = pad(rows, "right", device=engine.device)  # [N,T]
    # Only the positions that predict continuation tokens need logits: keep the last layer's output
    # and apply the final norm and lm_head to those (a [N,T,V] tensor would dwarf the model at 131k vocab).
    top = engine.n_layers - 1
    out = engine.run(ids, attention_mask=mask, attention=attention,
                     prefix_len=default_prefix_len(attention, ctx_len), capture=[("resid_post", top)], logits="none",
                     bidirectional_layers=layers)
    steps = torch.arange(int(cont_len.max()), device=engine.device)  # [Tk]
    last = ids.shape[1] - 1
    predictor = (ctx_len[:, None] - 1 + steps).clamp(max=last)  # [N,Tk] position predicting each token
    target = ids.gather(1, (ctx_len[:, None] + steps).clamp(max=last))  # [N,Tk]
    hidden = out.cache["resid_post", top]  # [N,T,D]
    hidden = hidden.gather(1, predictor[..., None].expand(-1, -1, hidden.shape[-1]))  # [N,Tk,D]
    logits = engine.unembed(hidden)  # [N,Tk,V]
    valid = steps < cont_len[:, None]
    logp = token_logprobs(logits, target).masked_fill(~valid, 0.0)
    return logp.sum(-1), cont_len, ((logits.argmax(-1) == target) | ~valid).all(-1)


@dataclass
class ItemScores:
    """Per continuation of one Encoded: summed log-probability, token count, and whether greedy
    decoding would produce it (lm-eval's is_greedy)."""

    logprobs: list[float]
    n_tokens: list[int]
    greedy: list[bool]


@torch.no_grad()
def score_encoded(
    engine: Engine,
    encoded: Sequence[Encoded],
    *,
    attention: str = "causal",
    batch_size: int = 16,
    advance: Callable[[int], None] | None = None,
    bidirectional_layers: Sequence[int] | None = None,
) -> list[ItemScores]:
    """Score every choice of every item; `batch_size` items (contexts) per forward.

    bidirectional_layers: the layers where `attention` applies (None: all); the others are causal.

    Items are run longest first so a batch pads little; results come back in input order.
    Under torchrun / accelerate launch each rank runs every world_size-th batch (the very batches
    one process would run, so the scores are bit-identical) and every rank gets all results.
    """
    check_mode(attention)
    if batch_size < 1:
        raise InterpError(f"batch size must be ≥ 1, not {batch_size}")
    scorer = _score_full_sequences if attention == "bidirectional" else _score_from_context_cache
    order = sorted(range(len(encoded)), key=lambda i: -(len(encoded[i].context) + max(map(len, encoded[i].choices))))
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

    def run_batches(mine: list[list[int]]) -> list[tuple[list[float], list[int], list[bool]]]:
        out = []
        for idx in mine:
            scores = scorer(engine, [encoded[i] for i in idx], attention, bidirectional_layers)
            out.append(tuple(t.tolist() for t in scores))
            if advance is not None:
                advance(len(idx))
        return out

    results: list[ItemScores | None] = [None] * len(encoded)
    for idx, (sums, counts, greedy) in zip(batches, map_sharded(run_batches, batches)):
        batch = [encoded[i] for i in idx]
        offset = 0
        for i, e in zip(idx, batch):
            k = len(e.choices)
            results[i] = ItemScores(sums[offset:offset + k], [int(c) for c in counts[offset:offset + k]],
                                    [bool(g) for g in greedy[offset:offset + k]])
            offset += k
    return results  # type: ignore[return-value]


def mode_label(attention: str, bidirectional_layers: Sequence[int] | None = None) -> str:
    """"prefix", or "prefix in layers 20-27" when the mode applies to a subset of layers."""
    if bidirectional_layers is None or attention == "causal":
        return attention
    from interp.analyses.interventions.layer_sets import layer_label

    return f"{attention} in layers {layer_label(bidirectional_layers)}"


@dataclass
class RequestScore:
    """One (context, continuation) request's log-likelihood, token count and is_greedy."""

    logprob: float
    n_tokens: int
    greedy: bool


def score_requests(
    engine: Engine,
    pairs: Sequence[tuple[list[int], list[int]]],
    *,
    attention: str = "causal",
    batch_size: int = 16,
    progress: str | None = None,
    bidirectional_layers: Sequence[int] | None = None,
) -> list[RequestScore]:
    """Score encoded requests; those sharing a context are prefilled once (`group_by_context`).

    `progress` names a progress bar over contexts (None: no bar).
    """
    groups, where = group_by_context(pairs)
    with progress_bar(progress or "", len(groups), disable=progress is None) as advance:
        scores = score_encoded(engine, groups, attention=attention, batch_size=batch_size, advance=advance,
                               bidirectional_layers=bidirectional_layers)
    return [RequestScore(scores[g].logprobs[j], scores[g].n_tokens[j], scores[g].greedy[j]) for g, j in where]
