"""Attention masks: which key each query may see, as booleans (True = visible).

One rule covers all three modes. With real-token positions qp (query) and kp (key) and a
per-row prefix length p:

    visible  ⇔  key is a real token  and  kp ≤ max(qp, p − 1)  [and |qp − kp| < window]

causal is p = 0, bidirectional is p = ∞, prefix is the user's p: queries inside the prefix see
the whole prefix, later queries see the prefix and everything up to themselves — exactly what a
bidirectional prefill of p tokens followed by causal decoding computes.

Padding query rows see only themselves, so no row is ever empty unless a knockout empties it.

Layer subsets: `bidirectional_layers` names the layers where the mode applies; every other
layer is causal (p = 0). Each layer's mask is still this one rule, with that layer's p.

`build_masks` is the one builder: the engine's forward, the knockout context and the label-leakage
guard all call it, so what is checked and analysed is the very mask the forward runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import torch

from interp.engine.layers import parse_layers
from interp.errors import InterpError

AttentionMode = Literal["causal", "bidirectional", "prefix"]
_INF_PREFIX = 2**62


@dataclass(frozen=True)
class Mode:
    """One attention mode: what it means and whether training under it is leak-free (no labelled
    position can attend to the token it predicts or anything after it)."""

    name: str
    meaning: str
    prefix: str  # the rule's per-row prefix length p for this mode
    leak_free: bool


# The one table of attention modes.
ATTENTION_MODES: dict[str, Mode] = {
    "causal": Mode("causal", "query t sees keys ≤ t (and the sliding window, where set)", "0", True),
    "prefix": Mode("prefix", "queries < p see keys < p; later queries see keys < p and keys ≤ t: a bidirectional "
                   "prefill of p tokens, then causal decoding (prefix-LM)", "prefix_len (default: the prompt)", True),
    "bidirectional": Mode("bidirectional", "every real token sees every real token (a continuation sees its own "
                          "future: leaky)", "∞", False),
}
MODES: tuple[str, ...] = tuple(ATTENTION_MODES)  # causal, prefix, bidirectional
LEAKY_MODES: frozenset[str] = frozenset(name for name, mode in ATTENTION_MODES.items() if not mode.leak_free)


def check_mode(mode: str) -> str:
    """`mode` if it is one of MODES, else a one-line InterpError listing them."""
    if mode not in MODES:
        raise InterpError(f"unknown attention mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def default_prefix_len(attention: str, context_len):
    """The prefix_len a caller means when it gives none: under "prefix" the prompt (context) is the
    prefix, so `context_len` (an int or one per row); every other mode takes no prefix (None)."""
    return context_len if check_mode(attention) == "prefix" else None


def prefix_lengths(
    mode: str, prefix_len: int | Sequence[int] | torch.Tensor | None, batch: int, device
) -> torch.Tensor:
    """Per-row prefix length [B] that turns `mode` into the single visibility rule above."""
    check_mode(mode)
    if mode == "causal":
        return torch.zeros(batch, dtype=torch.long, device=device)
    if mode == "bidirectional":
        return torch.full((batch,), _INF_PREFIX, dtype=torch.long, device=device)
    if prefix_len is None:
        raise InterpError("attention='prefix' needs prefix_len (an int or one per row)")
    p = torch.as_tensor(prefix_len, dtype=torch.long, device=device)
    if p.ndim == 0:
        p = p.expand(batch)
    if p.shape != (batch,):
        raise InterpError(f"prefix_len has {p.numel()} values for a batch of {batch}")
    if (p < 0).any():
        raise InterpError("prefix_len must be ≥ 0")
    return p.clone()


def check_layers(layers: Iterable[int] | None, n_layers: int) -> frozenset[int]:
    """The layers `bidirectional_layers` names (None → every layer), each checked in range (the one
    layer-set parser, numbers only: a Python caller passes numbers, the CLI parses "20-27")."""
    if layers is None:
        return frozenset(range(n_layers))
    return frozenset(parse_layers(layers, n_layers, option="bidirectional_layers", what="bidirectional layer",
                                  text=False, empty_ok=True))


def layer_prefix_lengths(
    mode: str,
    prefix_len: int | Sequence[int] | torch.Tensor | None,
    batch: int,
    device,
    n_layers: int,
    bidirectional_layers: Iterable[int] | None = None,
) -> list[torch.Tensor]:
    """Per layer, the prefix length [B] of the rule: the mode's in `bidirectional_layers`
    (all layers when None), 0 (causal) in the others. Layers that share a value share the tensor."""
    under_mode = check_layers(bidirectional_layers, n_layers)
    prefix = prefix_lengths(mode, prefix_len, batch, device)
    causal = prefix if mode == "causal" else prefix_lengths("causal", None, batch, device)
    return [prefix if layer in under_mode else causal for layer in range(n_layers)]


def visibility(
    query_pos: torch.Tensor,  # [B,Tq] real-token positions
    query_valid: torch.Tensor,  # [B,Tq] bool
    key_pos: torch.Tensor,  # [B,Tk]
    key_valid: torch.Tensor,  # [B,Tk] bool
    prefix: torch.Tensor,  # [B]
    window: int | None = None,
) -> torch.Tensor:
    """[B,Tq,Tk] bool: which keys each query sees (before knockouts)."""
    qp = query_pos[:, :, None]
    kp = key_pos[:, None, :]
    limit = torch.maximum(qp, (prefix - 1)[:, None, None])
    visible = key_valid[:, None, :] & (kp <= limit)
    if window is not None:
        visible &= (qp - kp).abs() < window
    # Padding queries attend to themselves only: their output is never read, and no row is empty.
    t_q, t_k = query_pos.shape[1], key_pos.shape[1]
    self_key = torch.arange(t_q, device=query_pos.device)[:, None] + (t_k - t_q) == torch.arange(
        t_k, device=query_pos.device
    )
    pad_rows = ~query_valid[:, :, None] & self_key[None]
    return torch.where(~query_valid[:, :, None], pad_rows, visible)


def real_positions(valid: torch.Tensor, start: int | torch.Tensor = 0) -> torch.Tensor:
    """[B,T] bool real-token flags → [B,T] positions counting real tokens only, from `start`
    (the real tokens already cached; padding takes its neighbour's position and is never seen)."""
    return start + (valid.long().cumsum(-1) - 1).clamp(min=0)


def build_masks(
    attention: str,
    prefix_len: int | Sequence[int] | torch.Tensor | None,
    positions: torch.Tensor,  # [B,Tq] real-token positions of the queries
    valid: torch.Tensor,  # [B,Tq] bool
    windows: Sequence[int | None],  # per layer: its sliding window (None: none)
    *,
    bidirectional_layers: Iterable[int] | None = None,
    key_pos: torch.Tensor | None = None,  # [B,Tk] (default: the queries themselves)
    key_valid: torch.Tensor | None = None,  # [B,Tk]
    implicit_causal: bool = False,
) -> list[torch.Tensor | None]:
    """Every layer's visibility [B,1,Tq,Tk] bool (True = visible), before knockouts.

    Layers with the same rule share one tensor. implicit_causal (one unpadded sequence, no cache):
    a causal layer whose window removes nothing gets None instead, for SDPA's is_causal.
    """
    batch, t_q = positions.shape
    key_pos = positions if key_pos is None else key_pos
    key_valid = valid if key_valid is None else key_valid
    prefixes = layer_prefix_lengths(attention, prefix_len, batch, positions.device, len(windows), bidirectional_layers)
    causal = {id(p): not bool(p.any()) for p in {id(p): p for p in prefixes}.values()}  # one check per tensor
    built: dict = {}  # (window, prefix tensor id) → mask, one per distinct rule
    masks: list[torch.Tensor | None] = []
    for window, prefix in zip(windows, prefixes):
        if implicit_causal and causal[id(prefix)] and (window is None or window >= t_q):
            masks.append(None)  # causal layer, nothing the window removes
            continue
        key = (window, id(prefix))
        if key not in built:
            built[key] = visibility(positions, valid, key_pos, key_valid, prefix, window)[:, None]  # [B,1,Tq,Tk]
        masks.append(built[key])
    return masks


@dataclass(frozen=True)
class Knockout:
    """Remove keys from attention: their logits become -inf.

    `keys` are column indices into the key sequence (the input tokens, after any cached past);
    `layers`, `heads`, `queries` default to all. A query row left with no key gives zero
    attention output, never NaN.
    """

    keys: Sequence[int]
    layers: Sequence[int] | None = None
    heads: Sequence[int] | None = None
    queries: Sequence[int] | None = None

    def applies_to(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers


def knockout_mask(
    knockouts: Iterable[Knockout], layer: int, n_heads: int, t_q: int, t_k: int, device
) -> torch.Tensor | None:
    """[H,Tq,Tk] bool of removed (head, query, key) triples at `layer`, or None if nothing."""
    removed = None
    for ko in knockouts:
        if not ko.applies_to(layer):
            continue
        if removed is None:
            removed = torch.zeros(n_heads, t_q, t_k, dtype=torch.bool, device=device)
        heads = _index(ko.heads, n_heads, "head")
        queries = _index(ko.queries, t_q, "query position")
        keys = _index(ko.keys, t_k, "key position")
        removed[heads[:, None, None], queries[None, :, None], keys[None, None, :]] = True
    return removed


def _index(values: Sequence[int] | None, size: int, what: str) -> torch.Tensor:
    if values is None:
        return torch.arange(size)
    idx = torch.as_tensor(list(values), dtype=torch.long)
    if idx.numel() and (idx.min() < -size or idx.max() >= size):
        raise InterpError(f"knockout {what} out of range: {values} (size {size})")
    return idx % size


def validate_knockouts(knockouts: Iterable[Knockout], n_layers: int) -> list[Knockout]:
    out = list(knockouts)
    for ko in out:
        for layer in ko.layers or ():
            if not 0 <= layer < n_layers:
                raise InterpError(f"knockout layer {layer} out of range (model has {n_layers} layers)")
    return out
