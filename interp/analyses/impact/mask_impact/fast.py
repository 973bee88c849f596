"""The exact fast method: all knockouts of one layer as variants of a single query row.

What layer l writes at the final position f depends only on query row f, given the layer's
keys and values — and those come from the unmodified resid_pre[l], so a knockout at layer l
leaves them untouched. Removing key j therefore only changes which keys row f's softmax runs
over. The scores of row f are computed once; each knockout is the same row with one key
masked; o_proj and the MLP then run on J one-token inputs. Nothing is approximated: the
softmax is redone over the remaining keys (fp32, as the engine does), not renormalised.

`knockout_logits` does --downstream: each key removed at the window of layers around l, carried
to the logits over only the positions it can change (see carry.py).
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange

from interp.analyses.interventions.carry import Variants, carried_logits
from interp.analyses.interventions.context import Readouts, StepContext


def keep_mask(length: int, removed: torch.Tensor) -> torch.Tensor:
    """[J,T] bool: every key except removed[i] in row i (removed = −1 keeps them all)."""
    return torch.arange(length, device=removed.device)[None] != removed[:, None]


@torch.no_grad()
def fast_readouts(ctx: StepContext, layer: int, removed: torch.Tensor, head_space: str) -> Readouts:
    """Layer `layer` at f with key removed[i] knocked out, for every i at once (−1: none)."""
    engine, f = ctx.engine, ctx.final
    attn = engine.layers[layer].self_attn
    group = engine.n_heads // engine.n_kv_heads
    q = rearrange(ctx.q[layer][0, f], "(kh g) d -> kh g d", g=group)  # [KH,g,dh]: query heads by kv head
    k, v = ctx.k[layer][0], ctx.v[layer][0]  # [T,KH,dh]
    scores = einsum(q, k, "kh g d, t kh d -> kh g t") * attn.scaling  # [KH,g,T], as explicit_attention

    allowed = ctx.final_row_visibility(layer)[None] & keep_mask(ctx.length, removed)  # [J,T]
    allowed = allowed[:, None, None, :]  # [J,1,1,T]
    logits32 = scores.float()[None].masked_fill(~allowed, torch.finfo(torch.float32).min)  # [J,KH,g,T]
    pattern = (logits32.softmax(-1) * allowed).to(q.dtype)  # an emptied row is all zeros
    z = rearrange(einsum(pattern, v, "j kh g t, t kh d -> j kh g d"), "j kh g d -> j (kh g) d")  # [J,H,dh]

    block = engine.layers[layer]
    attn_out = attn.o_proj(rearrange(z, "j h d -> j (h d)"))  # [J,D]
    resid_pre = ctx.resid_pre[layer][0, f]  # [D]
    resid_mid = resid_pre + attn_out
    resid_post = resid_mid + block.mlp(block.post_attention_layernorm(resid_mid))
    heads = z if head_space == "z" else engine.head_contributions(layer, z[:, None])[:, 0]  # [J,H,dh|D]
    return Readouts(full=resid_post - resid_pre, attn=attn_out, heads=heads)


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
