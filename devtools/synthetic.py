"""A mask-impact-shaped table of random values, to size and time the viewer at real-model shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.analyses.impact.mask_impact import variant_names


def synthetic_result(n_layers: int = 28, n_tokens: int = 512, n_heads: int = 16, seed: int = 0) -> pd.DataFrame:
    """One generation step, every layer × position × variant (Full, Attn, Head_h), l2 and cosine."""
    rng = np.random.default_rng(seed)
    variants = variant_names(n_heads)
    layer, position, variant = (a.ravel() for a in np.meshgrid(
        np.arange(n_layers), np.arange(n_tokens), np.arange(len(variants)), indexing="ij"))  # [L,N,V] order
    return pd.DataFrame({
        "generation_step": 0, "layer": layer, "token_position": position, "token_masked": pd.Categorical.from_codes(position, [f" tok{p}" for p in range(n_tokens)]),
        "variant": pd.Categorical.from_codes(variant, variants),
        "l2_distance": rng.gamma(2.0, 1.0, layer.size), "cosine_distance": rng.beta(1.0, 20.0, layer.size),
    })
