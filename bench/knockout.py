"""Knockout speed, two ratios measured in one run on a random Qwen3 (8 layers by default):

1. one prompt's Geva-style knockout (every layer × 3 sources, window 3) against one plain forward
   (target ≤ 4): the variants are single-token steps over the baseline's keys and values;
2. mask-impact --downstream --knockout-queries final, fast against its full-recompute reference
   (one engine forward per key and layer; target ≥ 10× faster), checking on the way that both
   give the same numbers.
"""

from __future__ import annotations

import time

import random

import torch

from timing import median_time, print_rows, qwen3_bench_args, random_qwen3
from interp.analyses.impact.knockout import knockout
from interp.analyses.impact.mask_impact import mask_impact


def main() -> None:
    args = qwen3_bench_args(__doc__, tokens=64, window=3)
    engine = random_qwen3(args)
    # The random models' tokenizer is byte-level: BOS + one token per ASCII character.
    rng = random.Random(0)
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz   ") for _ in range(args.tokens - 1))
    subject = text[len(text) // 3: len(text) // 3 + 6]
    prompts = [{"prompt": text, "subject": subject}]

    with torch.inference_mode():
        n_tokens = len(engine.tokenize(text)[0][0])
        forward = median_time(lambda: engine.run(text, logits="last"), args.repeats * 3)
        geva = median_time(lambda: knockout(engine, prompts, window=args.window), args.repeats)
        ko_rows = len(knockout(engine, prompts, window=args.window))

        final = dict(downstream=True, knockout_queries="final", window=args.window)
        fast = median_time(lambda: mask_impact(engine, text, **final), max(1, args.repeats // 2))
        start = time.perf_counter()
        reference = mask_impact(engine, text, method="reference", **final)
        reference_time = time.perf_counter() - start
        fast_df = mask_impact(engine, text, **final)
    cols = ["l2_distance", "cosine_distance", "kl", "top1_prob_delta"]
    max_diff = float((fast_df[cols] - reference[cols]).abs().max().max())

    print(f"model: qwen3, {args.layers} layers, d_model {args.hidden}, {args.heads} heads ({args.kv_heads} kv), "
          f"{torch.get_num_threads()} thread(s); prompt {n_tokens} tokens")
    rows = [
        ("plain forward (engine.run)", f"{forward * 1e3:9.1f} ms   (median of {args.repeats * 3})"),
        (f"knockout, 3 sources, window {args.window}", f"{geva * 1e3:9.1f} ms   ({ko_rows} variants, median of {args.repeats})"),
        ("knockout / plain forward", f"{geva / forward:9.2f}    (target <= 4)"),
        ("mask-impact downstream final, fast", f"{fast * 1e3:9.1f} ms"),
        ("... its full-recompute reference", f"{reference_time * 1e3:9.1f} ms   (one run)"),
        ("reference / fast", f"{reference_time / fast:9.1f}x   (target >= 10)"),
        ("max |fast - reference|", f"{max_diff:9.2e}"),
    ]
    print_rows(rows)


if __name__ == "__main__":
    main()
