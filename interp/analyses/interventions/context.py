"""One baseline forward and everything mask-impact and knockout read from it.

Every method recomputes from *unmodified* inputs, so they share this: the baseline resid_pre
and q/k/v per layer (the fast methods reuse them instead of recomputing, and knockouts carried
to the logits attend to the baseline keys/values of the positions they cannot change), the
rotary tables, and the attention visibility of the chosen mode, per sliding window and, with
`bidirectional_layers`, per kind of layer (the mode's layers, the causal rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from interp.engine import Engine
from interp.engine import masks
from interp.engine.masks import check_layers


MODES: tuple[str, ...] = ("causal", "prefix")  # the modes a prompt is analysed under (as a prefill)


@dataclass
class StepContext:
    """The baseline of one generation step: a sequence of T tokens analysed at f = T − 1."""

    engine: Engine
    ids: torch.Tensor  # [1,T]
    attention: str  # "causal" | "prefix"
    prefix_len: int | None
    positions: torch.Tensor  # [1,T]
    resid_pre: dict[int, torch.Tensor]  # layer → [1,T,D]
    q: dict[int, torch.Tensor]  # layer → [1,T,H,dh] (after qk-norm, RoPE, query scaling); readout layers only
    k: dict[int, torch.Tensor]  # layer → [1,T,KH,dh]
    v: dict[int, torch.Tensor]  # layer → [1,T,KH,dh]
    cos: torch.Tensor  # [1,T,dh]
    sin: torch.Tensor  # [1,T,dh]
    query_scale: torch.Tensor | None  # [1,T]
    visible: list[torch.Tensor]  # per layer [1,T,T] bool, before knockouts (the engine's own masks, shared by equal rules)
    last_logits: torch.Tensor  # [V] baseline next-token logits at f
    bidirectional_layers: list[int] | None = None  # where `attention` applies (None: every layer); the rest causal

    @property
    def length(self) -> int:
        return self.ids.shape[1]

    @property
    def final(self) -> int:
        return self.length - 1

    def layer_visibility(self, layer: int) -> torch.Tensor:
        """[1,T,T] bool: the mode's mask at `layer` (its sliding window, if any; causal outside
        `bidirectional_layers`)."""
        return self.visible[layer]

    def final_q(self, layer: int) -> torch.Tensor:
        """[1,1,H,dh]: the final position's query at `layer`."""
        return self.q[layer][:, -1:]

    def final_resid_pre(self, layer: int) -> torch.Tensor:
        """[1,1,D]: the final position's input of `layer`."""
        return self.resid_pre[layer][:, -1:]

    def final_row_visibility(self, layer: int) -> torch.Tensor:
        """[T] bool: which keys the final position sees at `layer`."""
        return self.layer_visibility(layer)[0, self.final]

    def suffix_start(self, position: int) -> int:
        """The earliest position s ≤ `position` such that no query before s sees a key at or after s
        in any layer. A change at `position` or later then leaves every position before s alone, so
        only positions ≥ s need recomputing: s = position in causal mode, 0 inside a bidirectional
        prefix (whose queries see the whole prefix)."""
        t = self.length
        closed = torch.ones(t, dtype=torch.bool, device=self.ids.device)  # closed[s]: nothing before s sees ≥ s
        for visible in {id(v): v for v in self.visible}.values():  # each distinct mask once
            last_key = (visible[0] * torch.arange(1, t + 1, device=visible.device)).amax(-1) - 1  # [T] per query
            reach = torch.cat([last_key.new_full((1,), -1), last_key.cummax(0).values[:-1]])  # [T] max over q < s
            closed &= reach < torch.arange(t, device=visible.device)
        return int(closed[: position + 1].nonzero().max())


@torch.no_grad()
def baseline_context(
    engine: Engine, ids: torch.Tensor, layers: Iterable[int], *, attention: str, prefix_len: int | None,
    attn_impl: str = "auto", carry_layers: Iterable[int] = (), bidirectional_layers: Iterable[int] | None = None,
) -> StepContext:
    """Run the unmodified forward once and keep what the methods need.

    layers: where single-layer readouts are taken (resid_pre, q, k, v kept); carry_layers: where
    knockouts are carried through to the logits (resid_pre, k, v kept).
    attn_impl="explicit" makes the baseline logits come from the same attention code as knocked-out
    forwards (used when logits are compared); otherwise SDPA is the faster choice.
    bidirectional_layers: the layers where `attention` applies (None: all), the others causal.
    """
    layers, carried = list(layers), sorted(set(carry_layers))
    capture = [(name, layer) for layer in layers for name in ("resid_pre", "q", "k", "v")]
    capture += [(name, layer) for layer in carried for name in ("resid_pre", "k", "v")]
    kept = sorted(set(layers) | set(carried))
    subset = None if bidirectional_layers is None else sorted(check_layers(bidirectional_layers, engine.n_layers))
    run = engine.run(ids, attention=attention, prefix_len=prefix_len, capture=capture, logits="last", attn_impl=attn_impl,
                     bidirectional_layers=subset)
    positions, valid = run.positions, run.attention_mask
    visible = [m[:, 0] for m in masks.build_masks(attention, prefix_len, positions, valid, engine.windows,
                                                  bidirectional_layers=subset)]  # per layer [1,T,T]
    x0 = run.cache["resid_pre", kept[0]]
    cos, sin, query_scale = engine.position_embeddings(x0, positions)
    return StepContext(
        engine=engine,
        ids=run.input_ids,
        attention=attention,
        prefix_len=prefix_len,
        positions=positions,
        resid_pre={layer: run.cache["resid_pre", layer] for layer in kept},
        q={layer: run.cache["q", layer] for layer in layers},
        k={layer: run.cache["k", layer] for layer in kept},
        v={layer: run.cache["v", layer] for layer in kept},
        cos=cos,
        sin=sin,
        query_scale=query_scale,
        visible=visible,
        last_logits=run.logits[0, -1],
        bidirectional_layers=subset,
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
