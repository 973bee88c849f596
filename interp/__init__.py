"""interp: which tokens matter where, and what causal masking buys — on one manual-forward engine."""

from __future__ import annotations

import os

import torch

from interp.engine import Engine, Knockout, RunResult
from interp.errors import InterpError

__version__ = "0.1.0"

DEFAULT_MODEL = "toy"


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """'toy' (or None) → the bundled checkpoint's directory; anything else unchanged."""
    name = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    if name == "toy":
        try:
            from interp.data.toy import BUNDLED_MODEL_DIR
        except ImportError:
            raise InterpError("the bundled toy model is not part of this installation") from None
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
) -> Engine:
    """Load a hub id, a `save_pretrained` directory, or "toy" (the bundled model) as an Engine.

    device_map="auto" spreads a model too big for one device over all of them (accelerate).
    """
    from interp.engine import load_engine

    return load_engine(resolve_model(name_or_path), dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                       device_map=device_map)


__all__ = ["DEFAULT_MODEL", "Engine", "InterpError", "Knockout", "RunResult", "__version__", "load", "resolve_model"]
