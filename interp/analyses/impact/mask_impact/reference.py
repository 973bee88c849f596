"""The straightforward method, kept as the yardstick the fast one is tested against.

Per knocked-out key: recompute layer l over the whole sequence from its unmodified input, with
the key's attention logits set to −inf for every head and query (the engine's Knockout mask),
and read the final position. For --downstream: one full engine forward per key with
`Knockout(keys=[j], layers=window, queries=all or [f])`. Slow by design — one layer (or one forward) per key.
"""

from __future__ import annotations

import torch

from interp.analyses.interventions.context import Readouts, StepContext, layer_forward
from interp.engine import Knockout
from interp.engine.masks import knockout_mask


@torch.no_grad()
def reference_readouts(ctx: StepContext, layer: int, removed: torch.Tensor, head_space: str) -> Readouts:
    """Layer `layer` at f, recomputed once per entry of `removed` (−1: no knockout)."""
    engine, f, t = ctx.engine, ctx.final, ctx.length
    full, attn, heads = [], [], []
    for key in removed.tolist():
        allowed = ctx.layer_visibility(layer)[:, None]  # [1,1,T,T]
        if key >= 0:
            gone = knockout_mask([Knockout(keys=[key])], layer, engine.n_heads, t, t, ctx.ids.device)  # [H,T,T]
            allowed = allowed & ~gone[None]
        x = ctx.resid_pre_from(layer, 0)  # [1,T,D]
        resid_post, attn_out, z = layer_forward(engine, layer, x, ctx, allowed)
        full.append(resid_post[0, f] - x[0, f])
        attn.append(attn_out[0, f])
        heads.append(z[0, f] if head_space == "z" else engine.head_contributions(layer, z)[0, f])
    return Readouts(full=torch.stack(full), attn=torch.stack(attn), heads=torch.stack(heads))


@torch.no_grad()
def reference_logits(ctx: StepContext, first: int, last: int, removed: torch.Tensor, queries: str) -> torch.Tensor:
    """[J,V] next-token logits with each key knocked out at layers first..last (every query, or the
    final one): one full engine forward per key."""
    rows = []
    for key in removed.tolist():
        knockout = Knockout(keys=[key], layers=list(range(first, last + 1)),
                            queries=[ctx.final] if queries == "final" else None) if key >= 0 else None
        run = ctx.engine.run(
            ctx.ids, attention=ctx.attention, prefix_len=ctx.prefix_len, knockout=knockout,
            logits="last", attn_impl="explicit", bidirectional_layers=ctx.bidirectional_layers,
        )
        rows.append(run.logits[0, -1])
    return torch.stack(rows)
