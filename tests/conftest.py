"""Shared fixtures: tiny random checkpoints of every supported architecture, saved and reloaded."""

from __future__ import annotations

import pytest
import torch
import interp
from interp.data.random_models import build_random_model
from interp.util.logs import quiet_transformers

quiet_transformers()
torch.set_num_threads(1)

# (arch, overrides): GQA ratio 1 and > 1, sliding windows shorter than the test sequences.
VARIANTS = {
    "llama": dict(arch="llama"),
    "llama_mha": dict(arch="llama", heads=4, kv_heads=4),
    "mistral_window": dict(arch="mistral", sliding_window=5),
    "qwen2_window": dict(arch="qwen2", sliding_window=5, kv_heads=4),
    "qwen3": dict(arch="qwen3"),
    "qwen3_gqa4": dict(arch="qwen3", heads=8, kv_heads=2, hidden=64),
    "ministral3": dict(arch="ministral3"),
    "mistral3": dict(arch="mistral3"),
}


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    cache = {}

    def get(variant: str):
        if variant not in cache:
            spec = dict(VARIANTS[variant])
            arch = spec.pop("arch")
            cache[variant] = build_random_model(arch, tmp_path_factory.mktemp(variant), **spec)
        return cache[variant]

    return get


@pytest.fixture(scope="session")
def fp8_replica(tmp_path_factory):
    """A tiny FP8 Ministral 3 checkpoint laid out like mistralai/Ministral-3-3B-Instruct-2512."""
    from interp.data.fp8_replica import build_fp8_replica

    return build_fp8_replica(tmp_path_factory.mktemp("fp8_replica"))


@pytest.fixture(scope="session")
def engines(model_dirs):
    cache = {}

    def get(variant: str):
        if variant not in cache:
            cache[variant] = interp.load(model_dirs(variant))
        return cache[variant]

    return get


def random_ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, 320, (batch, length), generator=g)
