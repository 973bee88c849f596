"""The exact fast method: all knockouts of one layer as variants of a single query row.

What layer l writes at the final position f depends only on query row f, given the layer's
keys and values — and those come from the unmodified resid_pre[l], so a knockout at layer l
leaves them untouched. Removing key j therefore only changes which keys row f's softmax runs
over. The scores of row f are computed once; each knockout is the same row with one key
masked; o_proj and the MLP then run on J one-token inputs. Nothing is approximated: the
softmax is redone over the remaining keys (fp32, as the engine does), not renormalised.

`knockout_logits` does the same for --downstream: J copies of the sequence, each with its own
key removed at layer l only, carried through the later layers (which then see different inputs,
so whole sequences are needed there).
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange

from interp.analyses.mask_impact.context import Readouts, StepContext, layer_forward


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
def knockout_logits(ctx: StepContext, layer: int, removed: torch.Tensor) -> torch.Tensor:
    """[J,V] next-token logits at f with key removed[i] knocked out at `layer` only (−1: none)."""
    engine = ctx.engine
    x = ctx.resid_pre[layer].expand(len(removed), -1, -1)  # [J,T,D]: J copies of the unmodified input
    knocked = ctx.layer_visibility(layer)[:, None] & keep_mask(ctx.length, removed)[:, None, None, :]  # [J,1,T,T]
    x, _, _ = layer_forward(engine, layer, x, ctx, knocked)
    for later in range(layer + 1, engine.n_layers):
        # No knockout here, so no row is empty: SDPA is exact and faster. Mask [1,1,T,T].
        x, _, _ = layer_forward(engine, later, x, ctx, ctx.layer_visibility(later)[:, None], sdpa=True)
    return engine.lm_head(engine.decoder.norm(x[:, ctx.final]))
