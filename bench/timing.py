"""What every bench shares: a median wall-clock timer."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median seconds of `repeats` calls after `warmup` untimed ones (first calls pay for allocation)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def qwen3_bench_args(description: str, tokens: int, **extra: int):
    """The shared options of the analysis benches (a random Qwen3's shape, prompt length, repeats,
    threads; `extra` adds int options), parsed, with torch's thread count set."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=description)
    defaults = dict(layers=8, hidden=256, heads=8, kv_heads=4, tokens=tokens, repeats=5, threads=1, **extra)
    for name, default in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def random_qwen3(args):
    """An Engine on a random Qwen3 of the benched shape, built in a temporary directory."""
    import tempfile

    import interp
    from interp.data.random_models import build_random_model
    from interp.util.logs import quiet_transformers

    quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_random_model("qwen3", tmp, layers=args.layers, hidden=args.hidden, heads=args.heads,
                                  kv_heads=args.kv_heads, max_positions=4096)
        return interp.load(path)


def print_rows(rows: list[tuple[str, str]]) -> None:
    """A bench's results as aligned `label: value` lines."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}: {value}")
