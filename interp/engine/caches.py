"""Containers the forward fills: captured activations and the key/value cache."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interp.errors import InterpError

# TransformerLens names, in the order a layer produces them.
LAYER_ACTIVATIONS: tuple[str, ...] = (
    "resid_pre",  # [B,T,D] input of the layer
    "q",  # [B,T,H,dh] after qk-norm, RoPE and any query scaling
    "k",  # [B,T,KH,dh] after qk-norm and RoPE (the new tokens only)
    "v",  # [B,T,KH,dh]
    "scores",  # [B,H,Tq,Tk] scaled logits, -inf where masked or knocked out
    "pattern",  # [B,H,Tq,Tk] softmax (fp32 internally); 0 where masked
    "z",  # [B,T,H,dh] per-head output before o_proj
    "head_out",  # [B,T,H,D] per-head contribution after o_proj (sums to attn_out − o_proj bias)
    "attn_out",  # [B,T,D]
    "resid_mid",  # [B,T,D]
    "mlp_out",  # [B,T,D]
    "resid_post",  # [B,T,D]
)
MODEL_ACTIVATIONS: tuple[str, ...] = ("ln_final", "logits")
ALL_ACTIVATIONS = LAYER_ACTIVATIONS + MODEL_ACTIVATIONS
EXPLICIT_ONLY = frozenset({"scores", "pattern"})  # need the explicit attention path
QUERY_AXIS = {"scores": 2, "pattern": 2}  # the position axis of a capture (1 for the others)
Wanted = dict  # name → {layer (None for model-level): rows to keep (a slice of positions) or None for all}


def parse_capture(capture, n_layers: int) -> Wanted:
    """"all", a name, or items name / (name, layer) / (name, layer, rows) → what `run` keeps.

    rows (a slice over the positions of the input) keeps only those positions, copied out so the
    rest is freed: e.g. ("q", l, slice(-1, None)) keeps the final query only.
    """
    if isinstance(capture, str):
        capture = list(ALL_ACTIVATIONS) if capture == "all" else [capture]
    wanted: Wanted = {}
    for item in capture:
        name, layer, rows = (item, None, None) if isinstance(item, str) else (tuple(item) + (None,))[:3]
        if name not in ALL_ACTIVATIONS:
            raise InterpError(f"unknown activation {name!r}; known: {', '.join(ALL_ACTIVATIONS)}")
        if layer is not None and not 0 <= layer < n_layers:
            raise InterpError(f"layer {layer} out of range (model has {n_layers} layers)")
        if rows is not None and not isinstance(rows, slice):
            raise InterpError(f"capture rows must be a slice of positions, not {rows!r}")
        layers = range(n_layers) if (layer is None and name in LAYER_ACTIVATIONS) else [layer]
        for one in layers:
            wanted.setdefault(name, {})[one] = rows
    return wanted


def select_rows(name: str, value: torch.Tensor, rows: slice | None) -> torch.Tensor:
    """The kept positions of a capture, as their own tensor (a view would keep the whole alive)."""
    if rows is None:
        return value
    axis = QUERY_AXIS.get(name, 1)
    return value[(slice(None),) * axis + (rows,)].clone()


class ActivationCache(dict):
    """Captured activations keyed by (name, layer); model-level ones by (name, None).

    `cache["z", 3]`, `cache["logits"]`, `cache.stack("resid_post")` → [L, ...].
    """

    def __getitem__(self, key):
        if isinstance(key, str):
            key = (key, None)
        try:
            return super().__getitem__(key)
        except KeyError:
            name, layer = key
            raise KeyError(f"{name!r} at layer {layer} was not captured; pass capture=[{name!r}]") from None

    def __contains__(self, key) -> bool:
        return super().__contains__((key, None) if isinstance(key, str) else key)

    def stack(self, name: str) -> torch.Tensor:
        layers = sorted(layer for (n, layer) in self.keys() if n == name and layer is not None)
        if not layers:
            raise KeyError(f"{name!r} was not captured")
        return torch.stack([self[name, layer] for layer in layers])


@dataclass
class KVCache:
    """Keys/values of every layer for the tokens seen so far, with their positions.

    keys[l], values[l]: [B,KH,T,dh] (keys after RoPE). `key_pos` and `key_valid` ([B,T]) say where
    each cached token sits and whether it is a real token, so later queries see exactly the keys a
    one-pass forward would have shown them.
    """

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    key_pos: torch.Tensor | None = None
    key_valid: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.key_pos is None else self.key_pos.shape[1]

    @property
    def real_lengths(self) -> torch.Tensor:
        """[B] real tokens per row: the position the next token takes."""
        return self.key_valid.sum(-1)

    def rows(self, index: torch.Tensor) -> "KVCache":
        """A cache over the given rows (with repeats): e.g. one context per answer choice."""
        return KVCache(
            keys=[k.index_select(0, index.to(k.device)) for k in self.keys],  # each layer's own device
            values=[v.index_select(0, index.to(v.device)) for v in self.values],
            key_pos=self.key_pos.index_select(0, index),
            key_valid=self.key_valid.index_select(0, index),
        )
