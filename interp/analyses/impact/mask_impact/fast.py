"""The exact fast method: all knockouts of one layer as variants of a single query row.

What layer l writes at the final position f depends only on query row f, given the layer's
keys and values — and those come from the unmodified resid_pre[l], so a knockout at layer l
leaves them untouched. Removing key j therefore only changes which keys row f's softmax runs
over. The engine's attention step computes the scores of row f once and softmaxes them under
each of the J masks; the engine's post-attention block (o_proj, MLP) then runs on J one-token inputs. Nothing is approximated: the
softmax is redone over the remaining keys (fp32, as the engine does), not renormalised.

`knockout_logits` does --downstream: each key removed at the window of layers around l, carried
to the logits over only the positions it can change (see carry.py).
"""

from __future__ import annotations

import torch
from einops import rearrange

from interp.analyses.interventions.carry import Variants, carried_logits
from interp.analyses.interventions.context import Readouts, StepContext


def keep_mask(length: int, removed: torch.Tensor) -> torch.Tensor:
    """[J,T] bool: every key except removed[i] in row i (removed = −1 keeps them all)."""
    return torch.arange(length, device=removed.device)[None] != removed[:, None]


@torch.no_grad()
def fast_readouts(ctx: StepContext, layer: int, removed: torch.Tensor, head_space: str) -> Readouts:
    """Layer `layer` at f with key removed[i] knocked out, for every i at once (−1: none)."""
    engine = ctx.engine
    q = rearrange(ctx.final_q(layer), "b t h d -> b h t d")  # [1,H,1,dh]: the final query row
    k = rearrange(ctx.k[layer], "b t h d -> b h t d")  # [1,KH,T,dh]
    v = rearrange(ctx.v[layer], "b t h d -> b h t d")
    allowed = ctx.final_row_visibility(layer)[None] & keep_mask(ctx.length, removed)  # [J,T]
    # The engine's attention step: row f's scores once, softmaxed under each of the J masks.
    z = engine.attend(layer, q, k, v, allowed[:, None, None, :])  # [J,H,1,dh]; an emptied row is zero
    resid_pre = ctx.final_resid_pre(layer)  # [1,1,D]
    out = engine.finish_layer(layer, resid_pre, rearrange(z, "j h t d -> j t h d"))  # o_proj + MLP on J rows
    heads = out.z[:, 0] if head_space == "z" else engine.head_contributions(layer, out.z)[:, 0]  # [J,H,dh|D]
    return Readouts(full=(out.resid_post - resid_pre)[:, 0], attn=out.attn_out[:, 0], heads=heads)


@torch.no_grad()
def knockout_logits(ctx: StepContext, first: int, last: int, removed: torch.Tensor, queries: str) -> torch.Tensor:
    """[J,V] next-token logits at f with key removed[i] knocked out at layers first..last, for every
    query or the final one only (`queries`); recomputes only the positions that can change."""
    keys = ~keep_mask(ctx.length, removed)  # [J,T]: one removed key per row
    variants = Variants(first=removed.new_full((len(removed),), first), last=removed.new_full((len(removed),), last),
                        keys=keys, queries=queries)
    return carried_logits(ctx, variants, downstream_start(ctx, removed, queries))


def downstream_start(ctx: StepContext, removed: torch.Tensor, queries: str) -> int:
    """The first position knocking out `removed` can change: from it on, positions are recomputed."""
    return ctx.suffix_start(ctx.final if queries == "final" else int(removed.min()))
