"""Training-step cost of the engine's prefix-LM forward vs the transformers model's own causal step.

Same model, same batch (prompt tokens labelled -100, response tokens labelled), one full step:
forward, response-only loss, backward, AdamW step. The engine side is exactly what `finetune`
runs (EngineTrainingModel under attention="prefix" with per-row prompt lengths); the reference is
`model(input_ids, labels=...)` with its built-in causal mask and loss. Prints the median step
times and their ratio (target ≤ 1.2).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

import interp
from timing import median_time
from interp.analyses.ablation.finetune.training_model import EngineTrainingModel
from interp.data.random_models import build_random_model
from interp.util.logs import quiet_transformers




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_transformers()

    with tempfile.TemporaryDirectory() as tmp:
        path = build_random_model("qwen3", tmp, layers=args.layers, hidden=args.hidden, heads=8, kv_heads=4,
                                  max_positions=4096)
        engine = interp.load(path)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 320, (args.batch, args.tokens), generator=g)
    prefix = torch.randint(args.tokens // 4, 3 * args.tokens // 4, (args.batch,), generator=g)  # prompt lengths
    labels = ids.clone()
    labels[torch.arange(args.tokens)[None] < prefix[:, None]] = -100
    mask = torch.ones_like(ids)

    model = engine.model.train()
    wrapper = EngineTrainingModel(engine, "prefix").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def hf_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()

    def engine_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        wrapper(input_ids=ids, attention_mask=mask, labels=labels, prefix_len=prefix)["loss"].backward()
        optimizer.step()

    # Interleave the two so drift in machine load hits both alike.
    hf_times, engine_times = [], []
    for _ in range(3):
        hf_times.append(median_time(hf_step, args.repeats, warmup=2))
        engine_times.append(median_time(engine_step, args.repeats, warmup=2))
    hf, ours = statistics.median(hf_times), statistics.median(engine_times)
    print(f"model: qwen3, {args.layers} layers, d_model {args.hidden}, batch {args.batch} × {args.tokens} tokens, "
          f"{torch.get_num_threads()} threads, median of 3 × {args.repeats} steps (forward+backward+AdamW)")
    print(f"transformers causal step : {hf * 1e3:8.2f} ms")
    print(f"engine prefix-LM step    : {ours * 1e3:8.2f} ms   ratio engine/HF = {ours / hf:.3f}")


if __name__ == "__main__":
    main()
