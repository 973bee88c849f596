"""mask-impact speed: the fast method against the reference, and against one plain forward.

Prints reference time / fast time (target ≥ 30×) and fast-sweep time / one plain forward
(target ≤ 3) on a random Qwen3 (8 layers by default) and a 128-token prompt, and checks on the
way that both methods give the same numbers.
"""

from __future__ import annotations

import time

import torch

from timing import median_time, print_rows, qwen3_bench_args, random_qwen3
from interp.analyses.impact.mask_impact import mask_impact


def main() -> None:
    args = qwen3_bench_args(__doc__, tokens=128)
    engine = random_qwen3(args)
    ids = torch.randint(4, 320, (args.tokens,), generator=torch.Generator().manual_seed(0)).tolist()

    with torch.inference_mode():
        forward = median_time(lambda: engine.run([ids], logits="last"), args.repeats * 3)
        fast = median_time(lambda: mask_impact(engine, ids), args.repeats)
        start = time.perf_counter()
        reference = mask_impact(engine, ids, method="reference")
        reference_time = time.perf_counter() - start
        fast_df = mask_impact(engine, ids)
    cols = ["l2_distance", "cosine_distance"]
    max_diff = float((fast_df[cols] - reference[cols]).abs().max().max())

    print(f"model: qwen3, {args.layers} layers, d_model {args.hidden}, {args.heads} heads ({args.kv_heads} kv), "
          f"prompt {args.tokens} tokens, {torch.get_num_threads()} thread(s); {len(fast_df)} rows")
    rows = [
        ("plain forward (engine.run)", f"{forward * 1e3:9.1f} ms   (median of {args.repeats * 3})"),
        ("mask-impact --method fast", f"{fast * 1e3:9.1f} ms   (median of {args.repeats})"),
        ("mask-impact --method reference", f"{reference_time * 1e3:9.1f} ms   (one run)"),
        ("reference / fast", f"{reference_time / fast:9.1f}x   (target >= 30)"),
        ("fast sweep / plain forward", f"{fast / forward:9.2f}    (target <= 3)"),
        ("max |fast - reference|", f"{max_diff:9.2e}"),
    ]
    print_rows(rows)


if __name__ == "__main__":
    main()
