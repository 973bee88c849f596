"""The one place where supported architectures differ.

Every supported model is a Llama-style decoder: RMSNorm → attention (q/k/v projections, RoPE,
GQA, softmax, o_proj) → residual → RMSNorm → gated MLP → residual. What varies is small and is
declared here as data, so the forward in `engine.py` reads top to bottom with no if-chains on
model names:

- q/k/v/o biases (Qwen2, Llama's attention_bias) need nothing: the checkpoint's own Linear
  modules carry them.
- `qk_norm`: Qwen3 applies an RMSNorm over head_dim to q and k before RoPE.
- `query_scaling`: Ministral3 multiplies queries by 1 + β·log(1 + ⌊pos / original_max⌋) after
  RoPE (llama_4_scaling_beta) so long positions keep sharp attention.
- `window_source`: where the sliding window comes from (all layers, per-layer `layer_types`, none).
- `multimodal`: Mistral3ForConditionalGeneration keeps the text decoder under
  `model.model.language_model` and its config under `config.text_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from interp.errors import InterpError

WindowSource = Literal["none", "all_layers", "layer_types"]


def _ministral3_query_scale(config, positions: torch.Tensor) -> torch.Tensor | None:
    """[B,T] positions → [B,T] multiplier, as Ministral3Attention computes it."""
    rope = getattr(config, "rope_parameters", None) or {}
    beta = rope.get("llama_4_scaling_beta")
    original_max = rope.get("original_max_position_embeddings")
    if beta is None or original_max is None:
        return None
    return 1 + beta * torch.log(1 + torch.floor(positions / original_max))


@dataclass(frozen=True)
class ArchSpec:
    """How one architecture deviates from the shared Llama-style base."""

    model_type: str
    qk_norm: bool = False
    window_source: WindowSource = "none"
    query_scaling: Callable[[object, torch.Tensor], torch.Tensor | None] | None = None
    multimodal: bool = False

    def text_config(self, config):
        return config.text_config if self.multimodal else config

    def decoder(self, model: nn.Module) -> nn.Module:
        """The module holding embed_tokens, layers, norm and rotary_emb."""
        return model.model.language_model if self.multimodal else model.model

    def sliding_window(self, text_config, layer: int) -> int | None:
        window = getattr(text_config, "sliding_window", None)
        if self.window_source == "none" or window is None:
            return None
        if self.window_source == "layer_types":
            types = getattr(text_config, "layer_types", None) or []
            return window if layer < len(types) and types[layer] == "sliding_attention" else None
        return window


_LLAMA = ArchSpec("llama")
_MISTRAL = ArchSpec("mistral", window_source="all_layers")
_QWEN2 = ArchSpec("qwen2", window_source="layer_types")
_QWEN3 = ArchSpec("qwen3", qk_norm=True, window_source="layer_types")
_MINISTRAL3 = ArchSpec("ministral3", window_source="all_layers", query_scaling=_ministral3_query_scale)

SUPPORTED: dict[str, ArchSpec] = {
    "llama": _LLAMA,
    "mistral": _MISTRAL,
    "qwen2": _QWEN2,
    "qwen3": _QWEN3,
    "ministral3": _MINISTRAL3,
}

# Multimodal wrappers used text-only: the text decoder's own spec, reached through the wrapper.
_WRAPPERS = {"mistral3"}


def spec_for(config) -> ArchSpec:
    """The spec for a loaded config, or a clear error naming what is supported."""
    model_type = getattr(config, "model_type", None)
    if model_type in _WRAPPERS:
        text_type = getattr(config.text_config, "model_type", None)
        if text_type not in SUPPORTED:
            raise InterpError(f"unsupported text model {text_type!r} inside {model_type!r}; {supported_names()}")
        base = SUPPORTED[text_type]
        return ArchSpec(
            model_type=f"{model_type}/{text_type}",
            qk_norm=base.qk_norm,
            window_source=base.window_source,
            query_scaling=base.query_scaling,
            multimodal=True,
        )
    if model_type not in SUPPORTED:
        raise InterpError(f"unsupported architecture {model_type!r}; {supported_names()}")
    return SUPPORTED[model_type]


def supported_names() -> str:
    return "supported: " + ", ".join(sorted(SUPPORTED)) + " and mistral3 (Mistral3ForConditionalGeneration, text-only)"
