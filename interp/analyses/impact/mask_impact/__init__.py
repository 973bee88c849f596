"""mask-impact: which prompt tokens matter to the final position, at which layer and head.

For every layer l and position j, layer l alone is recomputed from its unmodified input with
the attention logits to key j set to −inf (every head, every query), and what the layer writes
at the final position f is compared with the baseline (docs/semantics.md has every definition):

- Full = resid_post − resid_pre (attention + MLP), Attn = attn_out,
- Head_h = z of head h before o_proj (head_space="z"), or its contribution after o_proj
  (head_space="residual"),
- with --downstream, Logits: key j knocked out at the `window` layers centred on l, for every
  query (knockout_queries="all") or the final query only ("final", Geva et al. 2023), carried
  through all later layers and compared on the final next-token logits (plus kl and
  top1_prob_delta, see mask_impact.metrics).

The result is a long table, one row per (generation_step, layer, token_position, variant), in
that order, variants ordered Full, Attn, Head_0..Head_{H−1}, Logits. Distances are defined
everywhere (no NaN); kl and top1_prob_delta are NaN except on Logits rows.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from interp.analyses.interventions.carry import ELEMENT_BUDGET, QUERIES, batch_size, check_queries, window_layers
from interp.analyses.interventions.context import MODES, Readouts, StepContext, baseline_context
from interp.analyses.impact.mask_impact.fast import downstream_start, fast_readouts, knockout_logits
from interp.analyses.interventions.layer_sets import parse_layer_choice
from interp.analyses.interventions.distances import cosine_distance, kl_from_baseline, l2_distance, top1_prob_delta
from interp.analyses.impact.mask_impact.reference import reference_logits, reference_readouts
from interp.engine import Engine
from interp.engine.masks import default_prefix_len
from interp.errors import InterpError
from interp.results import result_metadata

COLUMNS: tuple[str, ...] = (
    "generation_step", "layer", "token_position", "token_masked", "variant", "l2_distance", "cosine_distance",
)
DOWNSTREAM_COLUMNS: tuple[str, ...] = ("kl", "top1_prob_delta")
METHODS: tuple[str, ...] = ("fast", "reference")
HEAD_SPACES: tuple[str, ...] = ("z", "residual")
ATTRS_KEY = "mask_impact"  # df.attrs[ATTRS_KEY]: tokens, top next tokens, settings (for the sidecar)


def variant_names(n_heads: int, downstream: bool = False) -> list[str]:
    """Full, Attn, Head_0..Head_{H−1}[, Logits] — the order rows appear in."""
    return ["Full", "Attn", *(f"Head_{h}" for h in range(n_heads))] + (["Logits"] if downstream else [])


def parse_layers(layers: str | Iterable[int] | None, n_layers: int, option: str = "--layers") -> list[int]:
    """None → all layers; "0,3,5" / "2-4" / [0, 3] → sorted unique layers, each checked in range
    (the one layer-set parser, interventions.layer_sets). `option` names the setting in errors."""
    return parse_layer_choice(layers, n_layers, option)


def check_options(
    *, attention: str = "causal", method: str = "fast", head_space: str = "z", num_tokens: int = 1,
    knockout_queries: str = "all", window: int = 1,
) -> None:
    """Refuse bad settings before anything is loaded (the CLI calls this before the checkpoint)."""
    _check_choice(attention, MODES, "attention mode for mask-impact")
    _check_choice(method, METHODS, "method")
    _check_choice(head_space, HEAD_SPACES, "head space")
    check_queries(knockout_queries)
    window_layers(0, window, 1)
    if int(num_tokens) < 1:
        raise InterpError(f"--num-tokens must be at least 1, not {num_tokens}")


def _check_choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise InterpError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")


@torch.no_grad()
def mask_impact(
    engine: Engine,
    prompt: str | Sequence[int] | torch.Tensor,
    *,
    attention: str = "causal",
    num_tokens: int = 1,
    layers: str | Iterable[int] | None = None,
    method: str = "fast",
    head_space: str = "z",
    downstream: bool = False,
    knockout_queries: str = "all",
    window: int = 1,
    bidirectional_layers: Iterable[int] | None = None,
    chunk_size: int | None = None,
    eos_token_id: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Knock each token out of attention at each layer and measure the change at the final position.

    prompt: text (tokenized as the tokenizer does, special tokens included) or one row of token ids.
    attention: "causal", or "prefix" (the prompt attends bidirectionally; generated tokens causally).
    num_tokens: analysis steps; after each one the greedy next token is appended (stops early at
        EOS: an EOS token is never appended).
    method: "fast" (all knockouts of a layer as one batched query row) or "reference" (recompute
        the layer over the whole sequence once per key); they agree to float rounding.
    downstream: also carry each knockout to the logits (Logits rows). knockout_queries="all"
        removes key j for every query (every later position can change); "final" only the final
        query's edge to j (Geva et al.; single-token steps over the baseline's keys and values).
        window=K applies it at the K layers centred on l. Single-layer rows are unaffected by both.
    bidirectional_layers: the layers where `attention` applies (None: all); the others stay causal.
    chunk_size: knockouts computed together (bounds memory); by default sized to ~16M elements.
    progress: called with 1 after each (step, layer).

    Returns the long table described in the module docstring; `df.attrs["mask_impact"]` holds the
    tokens and the baseline's top next tokens for `mask_impact_metadata`.
    """
    check_options(attention=attention, method=method, head_space=head_space, num_tokens=num_tokens,
                  knockout_queries=knockout_queries, window=window)
    if chunk_size is not None and chunk_size < 1:
        raise InterpError(f"chunk_size must be at least 1, not {chunk_size}")
    chosen = parse_layers(layers, engine.n_layers)
    ids, mask = engine.tokenize(prompt)
    if ids.shape[0] != 1:
        raise InterpError("mask-impact analyses one prompt at a time")
    if not bool(mask.all()):
        ids = ids[mask][None]
    engine.check_length(ids.shape[1] + num_tokens - 1)
    prompt_len = ids.shape[1]
    prefix_len = default_prefix_len(attention, prompt_len)
    eos = _eos_ids(engine, eos_token_id)

    frames, steps, stopped_at_eos = [], [], False
    for step in range(int(num_tokens)):
        carry = range(window_layers(chosen[0], window, engine.n_layers)[0], engine.n_layers) if downstream else ()
        baseline = dict(attention=attention, prefix_len=prefix_len, attn_impl="explicit" if downstream else "auto",
                        carry_layers=carry, bidirectional_layers=bidirectional_layers, carry_queries=knockout_queries,
                        full_rows=method == "reference")
        carried = (knockout_queries, int(window)) if downstream else None
        frame, ctx = _step_frame(engine, ids, step, chosen, method, head_space, carried, chunk_size, progress, baseline)
        frames.append(frame)
        next_id = int(ctx.last_logits.argmax())
        steps.append({"generation_step": step, "n_tokens": ctx.length, "next_token": _token_record(engine, next_id),
                      "top_next_tokens": _top_tokens(engine, ctx.last_logits)})
        if step + 1 == num_tokens:
            break
        if next_id in eos:
            stopped_at_eos = True
            break
        ids = torch.cat([ids, ids.new_tensor([[next_id]])], dim=1)

    df = pd.concat(frames, ignore_index=True)
    df.attrs[ATTRS_KEY] = {
        "prompt": prompt if isinstance(prompt, str) else engine.tokenizer.decode(ids[0, :prompt_len].tolist()),
        "mode": attention,
        "prefix_len": prefix_len,
        "bidirectional_layers": ctx.bidirectional_layers,
        "method": method,
        "head_space": head_space,
        "downstream": downstream,
        "knockout_queries": knockout_queries if downstream else None,
        "window": int(window) if downstream else None,
        "layers": chosen,
        "num_tokens": int(num_tokens),
        "steps_run": len(steps),
        "stopped_at_eos": stopped_at_eos,
        "prompt_tokens": prompt_len,
        "tokens": [_token_record(engine, i) | {"position": p} for p, i in enumerate(ids[0].tolist())],
        "generated_text": engine.tokenizer.decode(ids[0, prompt_len:].tolist()),
        "top_next_tokens": steps[0]["top_next_tokens"],
        "steps": steps,
    }
    return df


def mask_impact_metadata(engine: Engine, df: pd.DataFrame, **extra) -> dict:
    """The sidecar: model, prompt, tokens, mode, dtype, method, baseline top-5 next tokens, provenance."""
    return result_metadata(engine, df, ATTRS_KEY, **extra)


# --------------------------------------------------------------------------- one step


def _step_frame(
    engine: Engine, ids: torch.Tensor, step: int, layers: list[int], method: str, head_space: str,
    downstream: tuple[str, int] | None, chunk_size: int | None, progress: Callable[[int], None] | None,
    baseline: dict,
) -> tuple[pd.DataFrame, StepContext]:
    """All rows of one generation step, in (layer, position, variant) order, and its baseline.

    Each layer's single-layer readouts are taken while the baseline forward runs (the forward
    then holds one layer's keys and values, not every layer's). downstream: (knockout_queries,
    window) to add the Logits rows, carried from each layer after the forward, or None.
    """
    n = ids.shape[1]
    names = variant_names(engine.n_heads, downstream is not None)
    l2 = np.zeros((len(layers), n, len(names)))  # [L,N,V]; keys the final row cannot see stay 0
    cos = np.zeros_like(l2)
    kl = np.full((len(layers), n), np.nan)
    top1 = np.full((len(layers), n), np.nan)
    index = {layer: i for i, layer in enumerate(layers)}

    def readout(ctx: StepContext, layer: int) -> None:
        _layer_readouts(ctx, layer, method, head_space, chunk_size, l2[index[layer]], cos[index[layer]])
        if downstream is None and progress is not None:
            progress(1)

    ctx = baseline_context(engine, ids, layers, on_layer=readout, **baseline)
    for i, layer in enumerate(layers if downstream is not None else ()):
        queries, window = downstream
        first, last = window_layers(layer, window, engine.n_layers)
        logits_of = knockout_logits if method == "fast" else reference_logits
        keys = _downstream_keys(ctx, first, last, queries, method)
        unseen = np.setdiff1d(np.arange(n), keys.cpu().numpy())
        kl[i, unseen] = top1[i, unseen] = 0.0  # knocking out an edge that does not exist changes nothing
        for chunk in _downstream_chunks(ctx, keys, queries, chunk_size):
            masked = logits_of(ctx, first, last, chunk, queries)  # [J,V]
            rows = chunk.cpu().numpy()
            l2[i, rows, -1] = l2_distance(ctx.last_logits, masked).cpu().numpy()
            cos[i, rows, -1] = cosine_distance(ctx.last_logits, masked).cpu().numpy()
            kl[i, rows] = kl_from_baseline(ctx.last_logits, masked).cpu().numpy()
            top1[i, rows] = top1_prob_delta(ctx.last_logits, masked).cpu().numpy()
        if progress is not None:
            progress(1)
    return _long_table(ctx, step, layers, names, l2, cos, kl if downstream is not None else None, top1), ctx


def _layer_readouts(
    ctx: StepContext, layer: int, method: str, head_space: str, chunk_size: int | None, l2: np.ndarray, cos: np.ndarray
) -> None:
    """One layer's Full/Attn/Head distances for every key, into l2 and cos [N,V] of that layer."""
    readouts = fast_readouts if method == "fast" else reference_readouts
    base, keys = None, _knockout_keys(ctx, layer, method)
    for chunk in keys.split(chunk_size or _chunk_for_row(ctx, head_space)):
        if base is None:  # the unmodified row rides along with the first batch of knockouts
            out = readouts(ctx, layer, torch.cat([_keys([-1], ctx), chunk]), head_space)
            base, masked = out.select(slice(0, 1)), out.select(slice(1, None))
        else:
            masked = readouts(ctx, layer, chunk, head_space)
        d_l2, d_cos = _readout_distances(base, masked)  # [J,2+H]
        rows = chunk.cpu().numpy()
        l2[rows, : d_l2.shape[1]] = d_l2.cpu().numpy()
        cos[rows, : d_cos.shape[1]] = d_cos.cpu().numpy()


def _keys(values: Iterable[int], ctx: StepContext) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.long, device=ctx.ids.device)


def _knockout_keys(ctx: StepContext, layer: int, method: str) -> torch.Tensor:
    """Keys to knock out. The fast method skips keys the final row cannot see (their distance is
    exactly 0 by definition: removing an invisible key changes nothing); the reference tries all."""
    if method == "fast":
        return ctx.final_row_visibility(layer).nonzero()[:, 0]
    return _keys(range(ctx.length), ctx)


def _readout_distances(base: Readouts, masked: Readouts) -> tuple[torch.Tensor, torch.Tensor]:
    """→ l2 and cosine [J, 2+H] over Full, Attn, Head_0..H−1."""
    l2 = torch.cat([l2_distance(base.full, masked.full)[:, None], l2_distance(base.attn, masked.attn)[:, None],
                    l2_distance(base.heads, masked.heads)], dim=1)
    cos = torch.cat([cosine_distance(base.full, masked.full)[:, None],
                     cosine_distance(base.attn, masked.attn)[:, None], cosine_distance(base.heads, masked.heads)], dim=1)
    return l2, cos


def _chunk_for_row(ctx: StepContext, head_space: str) -> int:
    """Knockouts per batch for the one-row method: its largest [J, …] intermediate (a few are
    alive at once) stays within half the MLP activation [T, d_mlp] a forward itself holds, so the
    sweep's peak memory stays near a forward's."""
    e = ctx.engine
    per_knockout = max(e.n_heads * ctx.length, 4 * e.d_model, e.n_heads * e.d_model if head_space == "residual" else 0)
    mlp = getattr(e.config, "intermediate_size", None) or 4 * e.d_model
    return max(1, min(ELEMENT_BUDGET, ctx.length * mlp // 2) // per_knockout)


def _downstream_keys(ctx: StepContext, first: int, last: int, queries: str, method: str) -> torch.Tensor:
    """Keys to carry to the logits. With queries="final" the fast method skips keys the final row
    sees in none of the window's layers (nothing is removed, so nothing changes); else all keys."""
    if method == "fast" and queries == "final":
        seen = torch.stack([ctx.final_row_visibility(layer) for layer in range(first, last + 1)]).any(0)
        return seen.nonzero()[:, 0]
    return _keys(range(ctx.length), ctx)


def _downstream_chunks(ctx: StepContext, keys: torch.Tensor, queries: str, chunk_size: int | None):
    """Batches of ascending keys, each sized for the positions it recomputes (fewer, later keys → more)."""
    i = 0
    while i < len(keys):
        size = chunk_size or batch_size(ctx, downstream_start(ctx, keys[i:i + 1], queries))
        yield keys[i:i + size]
        i += size


def _long_table(
    ctx: StepContext, step: int, layers: list[int], names: list[str], l2: np.ndarray, cos: np.ndarray,
    kl: np.ndarray | None, top1: np.ndarray,
) -> pd.DataFrame:
    """[L,N,V] arrays → long rows in (layer, position, variant) order."""
    n_layers, n, n_var = l2.shape
    tokens = np.array([_decode(ctx.engine, i) for i in ctx.ids[0].tolist()], dtype=object)
    position = np.tile(np.repeat(np.arange(n), n_var), n_layers)
    frame = pd.DataFrame({
        "generation_step": np.full(l2.size, step),
        "layer": np.repeat(np.asarray(layers), n * n_var),
        "token_position": position,
        "token_masked": tokens[position],
        "variant": np.tile(np.asarray(names, dtype=object), n_layers * n),
        "l2_distance": l2.reshape(-1),
        "cosine_distance": cos.reshape(-1),
    })
    if kl is not None:
        on_logits = np.zeros((n_layers, n, n_var), dtype=bool)
        on_logits[..., -1] = True
        frame["kl"] = np.where(on_logits, kl[..., None], np.nan).reshape(-1)
        frame["top1_prob_delta"] = np.where(on_logits, top1[..., None], np.nan).reshape(-1)
    return frame


# --------------------------------------------------------------------------- tokens


def _decode(engine: Engine, token_id: int) -> str:
    return engine.tokenizer.decode([token_id])


def _token_record(engine: Engine, token_id: int) -> dict:
    """A token as users read it (decoded) and as the vocabulary spells it (raw)."""
    raw = engine.tokenizer.convert_ids_to_tokens(token_id)
    return {"id": token_id, "token": _decode(engine, token_id), "raw": raw}


def _top_tokens(engine: Engine, logits: torch.Tensor, k: int = 5) -> list[dict]:
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.numel()))
    return [{"token": _decode(engine, i), "id": i, "prob": p} for p, i in zip(top.values.tolist(), top.indices.tolist())]


def _eos_ids(engine: Engine, eos_token_id: int | None) -> set[int]:
    if eos_token_id is not None:
        return {int(eos_token_id)}
    found = {engine.tokenizer.eos_token_id}
    generation_eos = getattr(getattr(engine.model, "generation_config", None), "eos_token_id", None)
    found.update(generation_eos if isinstance(generation_eos, (list, tuple)) else [generation_eos])
    return {int(i) for i in found if i is not None}
