"""The engine: load a checkpoint and run it layer by layer with masks, knockouts and captures.

Imports nothing from analyses, data or cli.
"""

from interp.engine.arch import SUPPORTED, ArchSpec, spec_for
from interp.engine.caches import ALL_ACTIVATIONS, LAYER_ACTIVATIONS, ActivationCache, KVCache
from interp.engine.attention import apply_rope
from interp.engine.engine import Engine, LayerOutput, RunResult
from interp.engine.generation import Generation
from interp.engine.loading import load_engine, parse_dtype
from interp.engine.masks import ATTENTION_MODES, MODES, Knockout, build_masks, visibility

__all__ = [
    "ALL_ACTIVATIONS", "ATTENTION_MODES", "LAYER_ACTIVATIONS", "MODES", "SUPPORTED", "ActivationCache", "ArchSpec", "Engine",
    "Generation", "KVCache", "Knockout", "LayerOutput", "RunResult", "apply_rope", "load_engine", "parse_dtype", "spec_for",
    "build_masks", "visibility",
]
