"""Knockouts carried to the next-token logits, recomputing only the positions they can change.

A variant removes a set of keys at a window of layers first..last, either for every query
(queries="all", mask-impact's intervention) or for the final query only (queries="final",
Geva et al. 2023). Below `first` nothing changes, so each variant starts from the baseline's
resid_pre at its first layer. A position can only change if it sees, directly or through earlier
layers, a removed key or a changed position; if no query before s sees any key at or after s
(`StepContext.suffix_start`), positions < s keep their baseline state in every layer, and the
recompute runs over positions ≥ s only, attending to the baseline keys/values of positions < s.

- queries="final" in causal mode: s = f, so each variant is a single-token step per layer over
  the baseline's keys/values, batched over variants.
- queries="all" of key j in causal mode: s = j, positions ≥ j.
- inside a bidirectional prefix every query sees the prefix, so s = 0: the whole sequence.

Every layer is the engine's own (`Engine.layer_forward`): exact, not an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from interp.analyses.interventions.context import StepContext
from interp.errors import InterpError

QUERIES: tuple[str, ...] = ("all", "final")
ELEMENT_BUDGET = 2**24  # largest intermediate per batch of variants (elements)


def window_layers(layer: int, window: int, n_layers: int) -> tuple[int, int]:
    """The K = window layers centred on `layer`: max(0, l − (K−1)//2) … min(L−1, l + K//2)."""
    if int(window) < 1:
        raise InterpError(f"window must be at least 1 layer, not {window}")
    return max(0, layer - (window - 1) // 2), min(n_layers - 1, layer + window // 2)


def check_queries(queries: str) -> None:
    if queries not in QUERIES:
        raise InterpError(f"unknown knockout queries {queries!r}; choose all or final")


@dataclass
class Variants:
    """J knockouts: variant i removes keys[i] at layers first[i]..last[i]."""

    first: torch.Tensor  # [J] long
    last: torch.Tensor  # [J] long
    keys: torch.Tensor  # [J,T] bool: the keys removed
    queries: str  # "all" | "final"

    def __len__(self) -> int:
        return self.keys.shape[0]


def batch_size(ctx: StepContext, start: int) -> int:
    """Variants per batch when positions ≥ start are recomputed: bounded by the [J,H,n,T] scores."""
    e, n = ctx.engine, ctx.length - start
    # scores [H,n,T] and the layer's activations per variant; the baseline's keys/values are shared, not copied
    per_variant = n * (e.n_heads * ctx.length + 4 * e.d_model + 3 * _mlp_width(e))
    return max(1, ELEMENT_BUDGET // per_variant)


def _mlp_width(engine) -> int:
    return getattr(engine.config, "intermediate_size", None) or 4 * engine.d_model


@torch.no_grad()
def carried_logits(ctx: StepContext, variants: Variants, start: int) -> torch.Tensor:
    """[J,V] next-token logits at the final position, recomputing positions ≥ start.

    `start` must not exceed `ctx.suffix_start` of the earliest position a variant changes
    (the earliest removed key for queries="all", the final position for "final").
    """
    engine, t, f = ctx.engine, ctx.length, ctx.final
    order = torch.argsort(variants.first, stable=True)  # variants join the batch at their first layer
    first, last, keys = variants.first[order], variants.last[order], variants.keys[order]
    rows = torch.arange(start, t, device=keys.device)  # the recomputed positions
    final_row = (rows == f)[:, None]  # [n,1]
    x = None  # [J_active, n, D]
    for layer in range(int(first[0]), engine.n_layers):
        joining = int((first == layer).sum())
        if joining:
            fresh = ctx.resid_pre_from(layer, start).expand(joining, -1, -1)  # baseline input of this layer
            x = fresh if x is None else torch.cat([x, fresh])
        active = x.shape[0]
        allowed = ctx.layer_visibility(layer)[:, None, start:]  # [1,1,n,T]
        inside = (first[:active] <= layer) & (layer <= last[:active])  # [J_a]
        if bool(inside.any()):
            removed = inside[:, None, None] & keys[:active, None, :]  # [J_a,1,T]
            if variants.queries == "final":
                removed = removed & final_row[None]  # [J_a,n,T]: the final query's edges only
            allowed = allowed & ~removed[:, None]  # [J_a,1,n,T]
        past = None
        if start:
            past = (rearrange(ctx.k[layer][:, :start], "b t h d -> b h t d"),
                    rearrange(ctx.v[layer][:, :start], "b t h d -> b h t d"))
        # A knockout may empty a query row: the explicit path gives it zero output; elsewhere SDPA.
        x = engine.layer_forward(
            layer, x, ctx.cos[:, start:], ctx.sin[:, start:],
            None if ctx.query_scale is None else ctx.query_scale[:, start:], allowed,
            impl="explicit" if bool(inside.any()) else "sdpa", past_kv=past,
        ).resid_post
    logits = engine.unembed(x[:, -1])  # [J,V]
    return logits[torch.argsort(order)]
