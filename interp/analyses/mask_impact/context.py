"""One baseline forward and everything the mask-impact methods read from it.

Both methods (fast and reference) recompute a layer from its *unmodified* input, so they share
this: the baseline resid_pre (and q/k/v, which the fast method reuses instead of recomputing),
the rotary tables, and the attention visibility of the chosen mode, per sliding window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.engine import Engine, visibility
from interp.engine.masks import prefix_lengths


@dataclass
class StepContext:
    """The baseline of one generation step: a sequence of T tokens analysed at f = T − 1."""

    engine: Engine
    ids: torch.Tensor  # [1,T]
    attention: str  # "causal" | "prefix"
    prefix_len: int | None
    positions: torch.Tensor  # [1,T]
    resid_pre: dict[int, torch.Tensor]  # layer → [1,T,D]
    q: dict[int, torch.Tensor]  # layer → [1,T,H,dh] (after qk-norm, RoPE, query scaling)
    k: dict[int, torch.Tensor]  # layer → [1,T,KH,dh]
    v: dict[int, torch.Tensor]  # layer → [1,T,KH,dh]
    cos: torch.Tensor  # [1,T,dh]
    sin: torch.Tensor  # [1,T,dh]
    query_scale: torch.Tensor | None  # [1,T]
    visible: dict[int | None, torch.Tensor]  # window → [1,T,T] bool (mode mask, before knockouts)
    last_logits: torch.Tensor  # [V] baseline next-token logits at f

    @property
    def length(self) -> int:
        return self.ids.shape[1]

    @property
    def final(self) -> int:
        return self.length - 1

    def layer_visibility(self, layer: int) -> torch.Tensor:
        """[1,T,T] bool: the mode's mask at `layer` (its sliding window, if any)."""
        return self.visible[self.engine.windows[layer]]

    def final_row_visibility(self, layer: int) -> torch.Tensor:
        """[T] bool: which keys the final position sees at `layer`."""
        return self.layer_visibility(layer)[0, self.final]


@torch.no_grad()
def baseline_context(
    engine: Engine, ids: torch.Tensor, layers: list[int], *, attention: str, prefix_len: int | None,
    attn_impl: str = "auto",
) -> StepContext:
    """Run the unmodified forward once and keep what the methods need.

    attn_impl="explicit" makes the baseline logits come from the same attention code as knocked-out
    forwards (used with --downstream, where they are compared); otherwise SDPA is the faster choice.
    """
    capture = [(name, layer) for layer in layers for name in ("resid_pre", "q", "k", "v")]
    run = engine.run(ids, attention=attention, prefix_len=prefix_len, capture=capture, logits="last", attn_impl=attn_impl)
    positions, valid = run.positions, run.attention_mask
    prefix = prefix_lengths(attention, prefix_len, 1, ids.device)
    visible = {w: visibility(positions, valid, positions, valid, prefix, w) for w in set(engine.windows)}
    x0 = run.cache["resid_pre", layers[0]]
    cos, sin, query_scale = engine.position_embeddings(x0, positions)
    return StepContext(
        engine=engine,
        ids=run.input_ids,
        attention=attention,
        prefix_len=prefix_len,
        positions=positions,
        resid_pre={layer: run.cache["resid_pre", layer] for layer in layers},
        q={layer: run.cache["q", layer] for layer in layers},
        k={layer: run.cache["k", layer] for layer in layers},
        v={layer: run.cache["v", layer] for layer in layers},
        cos=cos,
        sin=sin,
        query_scale=query_scale,
        visible=visible,
        last_logits=run.logits[0, -1],
    )


@dataclass
class Readouts:
    """What one layer writes at the final position, for J knockouts (J = 1 for the baseline)."""

    full: torch.Tensor  # [J,D]  resid_post − resid_pre
    attn: torch.Tensor  # [J,D]  attn_out
    heads: torch.Tensor  # [J,H,dh] z per head, or [J,H,D] each head's contribution after o_proj

    def select(self, rows: slice) -> "Readouts":
        return Readouts(full=self.full[rows], attn=self.attn[rows], heads=self.heads[rows])


def layer_forward(
    engine: Engine, layer: int, x: torch.Tensor, ctx: StepContext, allowed: torch.Tensor, *, sdpa: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The engine's own layer on this step's rotary tables: x [J,T,D], allowed [J|1, 1|H, T, T].

    Returns (resid_post [J,T,D], attn_out [J,T,D], z [J,T,H,dh]). The explicit path (default)
    gives an emptied query row zero output; sdpa=True is faster for masks that leave every row a key.
    """
    out = engine.layer_forward(
        layer, x, ctx.cos, ctx.sin, ctx.query_scale, allowed, impl="sdpa" if sdpa else "explicit"
    )
    return out.resid_post, out.attn_out, out.z
