"""interp: which tokens matter where, and what causal masking buys — on one manual-forward engine.

`import interp` stays light: torch and the engine load when first used (`interp.load`,
`interp.Engine`, `from interp import Knockout`), the viewer's pages when `interp.view` is called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from interp.errors import InterpError
from interp.view import view  # a plain function; binding it here keeps `interp.view` the function, not the package

if TYPE_CHECKING:
    import torch

    from interp.engine import Engine, Knockout, RunResult

__version__ = "0.1.0"

DEFAULT_MODEL = "toy"


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """'toy' (or None) → the bundled checkpoint's directory; anything else unchanged."""
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    if name == "toy":
        from interp.data.toy import BUNDLED_MODEL_DIR

        if not (BUNDLED_MODEL_DIR / "config.json").exists():
            raise InterpError(f"the bundled toy model is missing from {BUNDLED_MODEL_DIR}; rebuild it with `interp toy train --out {BUNDLED_MODEL_DIR}`")
        return str(BUNDLED_MODEL_DIR)
    return name


def load(
    name_or_path: str | os.PathLike | None = DEFAULT_MODEL,
    *,
    dtype: str | torch.dtype | None = "float32",
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
    device_map: str | dict | None = None,
    keep_quantized: bool = False,
) -> Engine:
    """Load a hub id, a `save_pretrained` directory, or "toy" (the bundled model) as an Engine.

    `engine.name` is the model as given ("toy", a hub id, the path typed), never this machine's
    install path: results and reports record it. device_map="auto" spreads a model too big for one
    device over all of them (accelerate). A quantized checkpoint (Mistral's FP8 repositories) loads
    dequantized to `dtype`; keep_quantized=True keeps its FP8 modules (inference only, FP8 GPUs).
    """
    from interp.engine import load_engine

    engine = load_engine(resolve_model(name_or_path), dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                         device_map=device_map, keep_quantized=keep_quantized)
    engine.name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    return engine


def _register_with_lm_eval() -> None:
    """Make "interp" an lm-eval model name (`lm_eval.simple_evaluate(model="interp", ...)`) when lm-eval
    is installed, without taking lm-eval's own models away.

    lm-eval 0.4.13 has no plugin entry point, and its `get_model` only fills the registry with its
    own models (`hf`, `vllm`, ...) when the registry is empty: registering "interp" first would hide
    them all. So lm-eval's own lazy table goes in first (`lm_eval.models` registers import paths only,
    no model code), then "interp", also as an import path: interp.analyses.ablation.harness loads
    when lm-eval first asks for the model."""
    from importlib.util import find_spec

    if find_spec("lm_eval") is None:
        return
    try:
        import lm_eval.models  # noqa: F401  lm-eval's own names, as lazy placeholders
        from lm_eval.api.registry import model_registry
    except ImportError:  # an lm-eval without the 0.4 registry
        return
    if "interp" not in model_registry:
        model_registry.register("interp", target="interp.analyses.ablation.harness:InterpLM")


_register_with_lm_eval()

_FROM_ENGINE = ("Engine", "Knockout", "RunResult")


def __getattr__(name: str):
    """The engine's classes on first use (PEP 562), so `import interp` does not import torch."""
    if name in _FROM_ENGINE:
        import interp.engine

        value = getattr(interp.engine, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interp' has no attribute {name!r}")


__all__ = ["DEFAULT_MODEL", "Engine", "InterpError", "Knockout", "RunResult", "__version__", "load", "resolve_model", "view"]
