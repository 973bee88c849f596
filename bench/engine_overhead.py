"""engine.run time / transformers forward time: same model, same 256-token prompt.

Prints the ratio for the SDPA path (no capture, no knockout) and for the explicit path
(hand-written scores and fp32 softmax, as used with knockouts and pattern captures), and for
prefix attention in every layer and in the upper half only (`bidirectional_layers`: its causal
layers take SDPA's is_causal path, its prefix layers share one mask tensor).
Both are measured against the Hugging Face forward in the same run (median of repeats).
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
    with torch.inference_mode():
        hf = median_time(lambda: engine.model(input_ids=ids), args.repeats)
        sdpa = median_time(lambda: engine.run(ids), args.repeats)
        explicit = median_time(lambda: engine.run(ids, attn_impl="explicit"), args.repeats)
        p, upper = args.tokens // 2, list(range(args.layers // 2, args.layers))
        prefix = median_time(lambda: engine.run(ids, attention="prefix", prefix_len=p), args.repeats)
        subset = median_time(lambda: engine.run(ids, attention="prefix", prefix_len=p, bidirectional_layers=upper),
                             args.repeats)
    print(f"model: qwen3, {args.layers} layers, d_model {args.hidden}, prompt {args.tokens} tokens, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"transformers forward : {hf * 1e3:8.2f} ms")
    print(f"engine (SDPA path)   : {sdpa * 1e3:8.2f} ms   ratio engine/HF = {sdpa / hf:.3f}")
    print(f"engine (explicit)    : {explicit * 1e3:8.2f} ms   ratio engine/HF = {explicit / hf:.3f}")
    print(f"engine prefix {p}, all: {prefix * 1e3:8.2f} ms   ratio engine/HF = {prefix / hf:.3f}")
    print(f"engine prefix, {upper[0]}-{upper[-1]}  : {subset * 1e3:8.2f} ms   ratio engine/HF = {subset / hf:.3f}"
          f"   subset/all = {subset / prefix:.3f}")


if __name__ == "__main__":
    main()
