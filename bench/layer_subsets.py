"""engine.run with attention in a subset of layers / transformers forward: same model and prompt.

A layer subset should cost no more than prefix attention in every layer: its causal layers keep
SDPA's is_causal fast path, its prefix layers share one mask tensor. All ratios are against the
Hugging Face causal forward measured in the same run (median of repeats).
"""

from __future__ import annotations

import argparse
import tempfile

import torch

import interp
from timing import median_time
from interp.data.random_models import build_random_model
from interp.util.logs import quiet_transformers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    quiet_transformers()

    with tempfile.TemporaryDirectory() as tmp:
        path = build_random_model("qwen3", tmp, layers=args.layers, hidden=args.hidden, heads=8, kv_heads=4,
                                  max_positions=4096)
        engine = interp.load(path)
    ids = torch.randint(4, 320, (1, args.tokens), generator=torch.Generator().manual_seed(0))
    p = args.tokens // 2
    upper = list(range(args.layers // 2, args.layers))
    runs = {
        "causal (SDPA is_causal)": lambda: engine.run(ids),
        "prefix, every layer": lambda: engine.run(ids, attention="prefix", prefix_len=p),
        f"prefix, layers {upper[0]}-{upper[-1]} only": lambda: engine.run(ids, attention="prefix", prefix_len=p,
                                                                          bidirectional_layers=upper),
    }
    with torch.inference_mode():
        hf = median_time(lambda: engine.model(input_ids=ids), args.repeats)
        times = {name: median_time(fn, args.repeats) for name, fn in runs.items()}
    print(f"model: qwen3, {args.layers} layers, d_model {args.hidden}, prompt {args.tokens} tokens (prefix {p}), "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'transformers forward (causal)':<32}: {hf * 1e3:8.2f} ms")
    for name, seconds in times.items():
        print(f"{'engine ' + name:<32}: {seconds * 1e3:8.2f} ms   ratio engine/HF = {seconds / hf:.3f}")


if __name__ == "__main__":
    main()
