"""One baseline forward and everything mask-impact and knockout read from it.

Every method recomputes from *unmodified* inputs, so they share this: the baseline resid_pre
and q/k/v per layer (the fast methods reuse them instead of recomputing, and knockouts carried
to the logits attend to the baseline keys/values of the positions they cannot change), the
rotary tables, and the attention visibility of the chosen mode, per sliding window and, with
`bidirectional_layers`, per kind of layer (the mode's layers, the causal rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

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
    resid_pre: dict[int, torch.Tensor]  # layer → [1,n,D]: the last n positions (those a method reads)
    q: dict[int, torch.Tensor]  # layer → [1,n,H,dh] (after qk-norm, RoPE, query scaling); readout layers only
    k: dict[int, torch.Tensor]  # layer → [1,T,KH,dh]
    v: dict[int, torch.Tensor]  # layer → [1,T,KH,dh]
    cos: torch.Tensor  # [1,T,dh]
    sin: torch.Tensor  # [1,T,dh]
    query_scale: torch.Tensor | None  # [1,T]
    visible: list[torch.Tensor]  # per layer [1,T,T] bool, before knockouts (the engine's own masks, shared by equal rules)
    last_logits: torch.Tensor | None  # [V] baseline next-token logits at f (once the forward is done)
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

    def resid_pre_from(self, layer: int, start: int) -> torch.Tensor:
        """[1,T−start,D]: the input of `layer` at positions ≥ start (kept from there or earlier)."""
        first = self.length - self.resid_pre[layer].shape[1]  # the kept rows are the last ones
        if start < first:
            raise ValueError(f"resid_pre of layer {layer} was kept from position {first}, not {start}")
        return self.resid_pre[layer][:, start - first:]

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
    carry_queries: str = "all", full_rows: bool = False, on_layer: Callable[[StepContext, int], None] | None = None,
) -> StepContext:
    """Run the unmodified forward once and keep what the methods need, and no more.

    layers: where single-layer readouts are taken: q and resid_pre at the final position only
    (every position with full_rows, for the reference method), k and v at every position.
    carry_layers: where knockouts are carried to the logits: k and v at every position, resid_pre
    from the first position a knockout of `carry_queries` ("all" or "final") can change on.
    on_layer(ctx, layer): called for each readout layer as soon as its baseline exists; then
    that layer's activations are dropped unless it is a carry layer, so a sweep holds one layer's
    keys and values at a time instead of every layer's.
    attn_impl="explicit" makes the baseline logits come from the same attention code as knocked-out
    forwards (used when logits are compared); otherwise SDPA is the faster choice.
    bidirectional_layers: the layers where `attention` applies (None: all), the others causal.
    """
    readout, carried = set(layers), set(carry_layers)
    subset = None if bidirectional_layers is None else sorted(check_layers(bidirectional_layers, engine.n_layers))
    ids = ids.to(engine.device)
    valid = torch.ones_like(ids, dtype=torch.bool)
    positions = masks.real_positions(valid)  # [1,T]
    visible = [m[:, 0] for m in masks.build_masks(attention, prefix_len, positions, valid, engine.windows,
                                                  bidirectional_layers=subset)]  # per layer [1,T,T]
    cos, sin, query_scale = engine.position_embeddings(engine.decoder.embed_tokens(ids[:, :1]), positions)
    ctx = StepContext(engine=engine, ids=ids, attention=attention, prefix_len=prefix_len, positions=positions,
                      resid_pre={}, q={}, k={}, v={}, cos=cos, sin=sin, query_scale=query_scale, visible=visible,
                      last_logits=None, bidirectional_layers=subset)
    final = slice(ctx.final, None)  # [1,1,...]: what only the final row needs
    carry_rows = slice(ctx.suffix_start(ctx.final if carry_queries == "final" else 0), None)
    capture = []
    for layer in sorted(readout | carried):
        rows = None if full_rows else (carry_rows if layer in carried else final)
        capture += [("k", layer), ("v", layer), ("resid_pre", layer, rows)]
        if layer in readout:
            capture.append(("q", layer, None if full_rows else final))

    def keep(layer: int, cache) -> None:
        for name, store in (("resid_pre", ctx.resid_pre), ("q", ctx.q), ("k", ctx.k), ("v", ctx.v)):
            if (name, layer) in cache:
                store[layer] = cache[name, layer]
        if on_layer is not None and layer in readout:
            on_layer(ctx, layer)
            if layer not in carried:
                for store in (ctx.resid_pre, ctx.q, ctx.k, ctx.v):
                    store.pop(layer, None)

    run = engine.run(ids, attention=attention, prefix_len=prefix_len, capture=capture, logits="last", attn_impl=attn_impl,
                     bidirectional_layers=subset, on_layer=keep)
    ctx.last_logits = run.logits[0, -1]
    return ctx


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
