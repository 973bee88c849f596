"""Multiple-choice eval throughput: this evaluator vs one forward per choice, on a 4-choice task.

Reference: one full forward over context + choice for every choice, unbatched (what the ministral3
ablation's eval did). This evaluator: requests grouped by context, each context prefilled once and
its choices decoded together from the KV cache, contexts batched — the path `interp eval` and the
lm-eval `interp` model share. Both score the same tokens in the same attention mode; the bench
checks that the scores agree and prints items/s for each and the ratio. `--task` takes any task
(`--data-dir`/`--format` for the real benchmarks, e.g. winogrande's per-choice contexts).

Model and items: the bundled toy model on toy_hellaswag when the model exists; otherwise the toy
model's architecture and tokenizer with random weights (same compute), on toy_hellaswag's items
(or synthetic items if those are missing).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import torch

import interp
from interp.analyses.ablation.scoring import encode_items, score_requests, token_logprobs
from interp.data.random_models import build_random_model
from interp.util.logs import quiet_transformers


def one_forward_per_choice(engine, pairs: list[tuple[list[int], list[int]]], attention: str) -> list[float]:
    """One forward per (context, choice) over the whole sequence, unbatched."""
    out = []
    with torch.no_grad():
        for context, choice in pairs:
            ids = torch.tensor([context + choice])
            logits = engine.run(ids, attention=attention, prefix_len=len(context)).logits
            predictors = logits[:, len(context) - 1:-1]  # [1,Tk,V]
            out.append(token_logprobs(predictors, torch.tensor([choice])).sum().item())
    return out


def untrained_toy_shaped_model(tmp: str):
    """Before the toy model is trained: its architecture and tokenizer (trained on the toy corpus,
    so token counts are the real ones) with random weights — the same compute per item."""
    try:
        from transformers import AutoModelForCausalLM

        from interp.data.toy import corpus_path
        from interp.data.toy.corpus import DOC_SEPARATOR
        from interp.data.toy.tokenizer import save_tokenizer, train_tokenizer
        from interp.data.toy.train import ToyModelConfig

        docs = corpus_path().read_text(encoding="utf-8").split(DOC_SEPARATOR)
        tokenizer = train_tokenizer(docs)
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(ToyModelConfig().to_qwen3(tokenizer)).save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp)
        return interp.load(tmp), "untrained toy-shaped qwen3 (toy architecture + toy tokenizer; toy model not built yet)"
    except (ImportError, AttributeError, OSError):
        path = build_random_model("qwen3", tmp, layers=4, hidden=256, heads=8, kv_heads=2, max_positions=512)
        return interp.load(path), "random qwen3 (4 layers, d_model 256, byte-level tokenizer)"


def load_items(n: int, engine, task: str, data_dir: str | None, format: str) -> tuple[list[list], str]:
    try:
        from interp.data.tasks import load_task

        items = load_task(task, limit=n, data_dir=data_dir, format=format).items
        label = task
    except Exception:
        rng = random.Random(0)
        words = ["the", "man", "walked", "to", "a", "red", "house", "and", "then", "slowly", "opened", "door"]
        sentence = lambda k: " ".join(rng.choice(words) for _ in range(k))  # noqa: E731
        items = [{"context": sentence(12).capitalize(), "choices": [" " + sentence(6) + "." for _ in range(4)], "label": 0}
                 for _ in range(n)]
        label = "synthetic 4-choice items"
    encoded = [e for e in encode_items(engine.tokenizer, items, engine.max_positions) if e is not None]
    return encoded, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--attention", default="prefix", choices=["causal", "prefix"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--task", default="toy_hellaswag")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--format", default="lm-eval", choices=["lm-eval", "seed"])
    args = parser.parse_args()
    quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)

    from interp.data.toy import BUNDLED_MODEL_DIR

    with tempfile.TemporaryDirectory() as tmp:
        if (BUNDLED_MODEL_DIR / "config.json").exists():
            engine, model = interp.load("toy"), "bundled toy model"
        else:
            engine, model = untrained_toy_shaped_model(tmp)
    encoded, items_label = load_items(args.items, engine, args.task, args.data_dir, args.format)
    pairs = [pair for item in encoded for pair in item]
    n_contexts = len({tuple(c) for c, _ in pairs})

    score_requests(engine, pairs[:8], attention=args.attention, batch_size=args.batch_size)  # warm-up
    start = time.perf_counter()
    ours = score_requests(engine, pairs, attention=args.attention, batch_size=args.batch_size)
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    theirs = one_forward_per_choice(engine, pairs, args.attention)
    reference_time = time.perf_counter() - start
    diff = max(abs(s.logprob - t) for s, t in zip(ours, theirs))

    print(f"model: {model}; items: {len(encoded)} from {items_label} ({args.format} format), "
          f"{len(pairs) / len(encoded):.1f} choices and {n_contexts / len(encoded):.1f} contexts each; "
          f"attention {args.attention}; {torch.get_num_threads()} threads")
    print(f"one full forward per choice, unbatched: {len(encoded) / reference_time:8.1f} items/s")
    print(f"this evaluator (each context once, choices from its KV cache, batch {args.batch_size}): "
          f"{len(encoded) / ours_time:8.1f} items/s")
    print(f"throughput ratio (this / one forward per choice): {reference_time / ours_time:.2f}x   "
          f"max |Δ log-prob| = {diff:.2e}")


if __name__ == "__main__":
    main()
