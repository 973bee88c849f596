"""Multiple-choice eval throughput: this evaluator vs the seed's method, on a 4-choice task.

The seed's method: one full forward over context + choice for every choice, unbatched.
This evaluator: each context prefilled once, its choices decoded together from the KV cache,
examples batched. Both score the same tokens in the same attention mode; the bench checks that
the scores agree and prints items/s for each and the ratio.

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
from interp.analyses.evaluate import Encoded, encode_items, score_encoded, token_logprobs
from interp.data.random_models import build_random_model
from interp.util.logs import quiet_transformers


def seed_method(engine, encoded: list[Encoded], attention: str) -> list[list[float]]:
    """One forward per (item, choice) over the whole sequence, as the seed's eval did."""
    out = []
    with torch.no_grad():
        for item in encoded:
            scores = []
            for choice in item.choices:
                ids = torch.tensor([item.context + choice])
                logits = engine.run(ids, attention=attention, prefix_len=len(item.context)).logits
                predictors = logits[:, len(item.context) - 1:-1]  # [1,Tk,V]
                scores.append(token_logprobs(predictors, torch.tensor([choice])).sum().item())
            out.append(scores)
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


def load_items(n: int, engine) -> tuple[list[Encoded], str]:
    try:
        from interp.data.tasks import load_task

        items = load_task("toy_hellaswag", limit=n).items
        label = "toy_hellaswag"
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
    encoded, items_label = load_items(args.items, engine)
    n_choices = sum(len(e.choices) for e in encoded) / len(encoded)

    score_encoded(engine, encoded[:4], attention=args.attention, batch_size=args.batch_size)  # warm-up
    start = time.perf_counter()
    ours = score_encoded(engine, encoded, attention=args.attention, batch_size=args.batch_size)
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    theirs = seed_method(engine, encoded, args.attention)
    seed_time = time.perf_counter() - start
    diff = max(abs(a - b) for s, t in zip(ours, theirs) for a, b in zip(s.logprobs, t))

    print(f"model: {model}; items: {len(encoded)} from {items_label}, {n_choices:.1f} choices each; "
          f"attention {args.attention}; {torch.get_num_threads()} threads")
    print(f"seed's method (one full forward per choice, unbatched): {len(encoded) / seed_time:8.1f} items/s")
    print(f"this evaluator (context once, choices from its KV cache, batch {args.batch_size}): "
          f"{len(encoded) / ours_time:8.1f} items/s")
    print(f"throughput ratio (this / seed's): {seed_time / ours_time:.2f}x   max |Δ log-prob| = {diff:.2e}")


if __name__ == "__main__":
    main()
