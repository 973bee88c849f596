"""Real shapes: random models with the configs of Qwen3-0.6B and Ministral-3-3B, 512-token prompts.

The layer shapes (depth, width, heads, head_dim, MLP, RoPE/YaRN settings) are the checkpoints';
only the vocabulary is small (the byte-level test tokenizer), so the embedding and lm_head stay
tiny. The weights are random (no hub here) and the model is built in memory, not saved.

For each model it prints, on whatever device is present (CUDA if available, else CPU):
  engine / HF forward time (and max |logit difference|), mask-impact sweep / forward,
  knockout / forward (where interp.analyses.impact.knockout is built), and peak memory against weight
  memory, with the check: peak of a sweep <= weights + 3 x one forward's activations (every
  layer's, as a forward with grad keeps them; the transient no-grad peak is printed too).

Memory on CPU is the process's resident set sampled every 2 ms, minus what it was just before the
call (the process re-executes itself with MALLOC_MMAP_THRESHOLD_ fixed so freed blocks go back to
the system); on CUDA, torch.cuda.max_memory_allocated. Ministral-3-3B at full depth needs ~16 GB
in fp32 (measured peak RSS 15.9 GB); with less than 17 GB available (see `free -g`) the bench keeps
its first 4 layers and says so. About 6 minutes on 2 CPU cores.

    python bench/real_shapes.py [--models qwen3-0.6b,ministral-3-3b] [--tokens 512] [--layers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

# Qwen/Qwen3-0.6B and mistralai/Ministral-3-3B-Instruct-2512 (its text model), vocabulary aside.
CONFIGS = {
    "qwen3-0.6b": ("qwen3", dict(
        hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}, tie_word_embeddings=True,
    )),
    "ministral-3-3b": ("ministral3", dict(
        hidden_size=3072, intermediate_size=9216, num_hidden_layers=26, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, max_position_embeddings=262144, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "yarn", "rope_theta": 1_000_000.0, "factor": 16.0,
                         "original_max_position_embeddings": 16384, "beta_fast": 32.0, "beta_slow": 1.0,
                         "mscale": 1.0, "mscale_all_dim": 1.0, "llama_4_scaling_beta": 0.1},
        tie_word_embeddings=True,
    )),
}
# Full depth needs this much available memory on CPU (Ministral-3-3B: 11.3 GB of fp32 weights plus one
# forward's activations kept for backward); with less, the bench keeps the first SHALLOW layers.
MIN_FREE_GB = {"qwen3-0.6b": 4, "ministral-3-3b": 17}
SHALLOW = 4
GB = 1 << 30


def reexec_with_fixed_mmap_threshold() -> None:
    """glibc keeps freed heap blocks: fix the mmap threshold so large tensors return to the system."""
    if sys.platform.startswith("linux") and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(1 << 16)
        os.execv(sys.executable, [sys.executable, *sys.argv])


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def available_gb() -> float:
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["MemAvailable"].split()[0]) / (1 << 20)


@contextmanager
def peak_extra(device: torch.device) -> Iterator[list[int]]:
    """Yields [bytes]: the peak memory above the level at entry, filled in on exit."""
    out = [0]
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        yield out
        torch.cuda.synchronize()
        out[0] = torch.cuda.max_memory_allocated() - base
        return
    base, peak, stop = rss(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out[0] = max(peak[0], rss()) - base


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> tuple[float, int, object]:
    """(median seconds, peak extra bytes of the first timed call, last result)."""
    for _ in range(warmup):
        fn()
    times, peak, result = [], 0, None
    for i in range(repeats):
        with peak_extra(device) as extra:
            start = time.perf_counter()
            result = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        peak = extra[0] if i == 0 else peak
        result = None if i < repeats - 1 else result
    times.sort()
    return times[len(times) // 2], peak, result


def build_engine(name: str, device: torch.device, layers: int | None = None):
    from transformers import AutoConfig, AutoModelForCausalLM

    from interp.data.random_models import VOCAB_SIZE, make_tokenizer
    from interp.engine import Engine
    from interp.engine.arch import spec_for

    arch, fields = CONFIGS[name]
    if layers:
        fields = fields | {"num_hidden_layers": min(layers, fields["num_hidden_layers"])}
    config = AutoConfig.for_model(arch, vocab_size=VOCAB_SIZE, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                                  **fields)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa").eval()
    with torch.no_grad():
        for param_name, param in model.named_parameters():  # norms away from 1: logits far from uniform
            if "norm" in param_name:
                param.normal_(1.0, 0.2)
    return Engine(model, make_tokenizer(), spec_for(model.config), name=f"random {name}")


def prompt_text(tokens: int) -> tuple[str, str]:
    """A prompt of exactly `tokens` tokens (BOS + bytes) and a subject inside it."""
    words = "The Eiffel Tower is in Paris and the river that runs through the city is the Seine. "
    text = (words * (tokens // len(words) + 1))[: tokens - 2] + "."  # one byte per token, after BOS
    return text, "Eiffel Tower"


def bench_model(name: str, args, device: torch.device) -> dict:
    from interp.analyses.impact.mask_impact import mask_impact

    engine = build_engine(name, device, args.layers)
    weights = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    text, subject = prompt_text(args.tokens)
    ids, _ = engine.tokenize(text)
    assert ids.shape[1] == args.tokens, ids.shape
    big = weights > 4 * GB  # one untimed warm-up call would cost minutes on a CPU
    repeats, warmup = (1, 0) if big else (args.repeats, 1)
    full = CONFIGS[name][1]["num_hidden_layers"]
    row = {"model": name if engine.n_layers == full else f"{name} {engine.n_layers}/{full}L", "params": sum(p.numel() for p in engine.model.parameters()), "weights": weights}
    with torch.enable_grad():  # every layer's activations, as a forward keeps them for backward
        _, row["kept_peak"], _ = timed(lambda: engine.run(ids).logits.sum(), device, 1, 0)
    with torch.inference_mode():
        row["forward_s"], row["forward_peak"], ours = timed(lambda: engine.run(ids).logits, device, repeats, warmup)
        row["hf_s"], _, theirs = timed(lambda: engine.model(ids).logits, device, repeats, warmup)
        row["max_diff"] = float((ours - theirs).abs().max())
        del ours, theirs
        row["sweep_s"], row["sweep_peak"], _ = timed(lambda: mask_impact(engine, ids[0].tolist()), device, 1, 0)
        try:
            from interp.analyses.impact.knockout import knockout
        except ImportError:
            row["knockout"] = "interp.analyses.impact.knockout is not in this build"
        else:
            row["knockout_s"], row["knockout_peak"], _ = timed(
                lambda: knockout(engine, [{"prompt": text, "subject": subject}]), device, 1, 0)
    del engine
    return row


def print_table(rows: list[dict], args, device: torch.device) -> None:
    print(f"device {device}, fp32, {args.tokens}-token prompt, {torch.get_num_threads()} thread(s); "
          "random weights, real layer shapes, small vocabulary")
    head = (f"{'model':<20}{'params':>8}{'weights':>9}{'forward':>9}{'engine/HF':>10}{'max|dlogit|':>12}"
            f"{'sweep/fwd':>10}{'knockout/fwd':>13}{'fwd peak':>9}{'fwd kept':>9}{'sweep':>8}{'sweep/peak':>11}"
            f"{'sweep/kept':>11}  check")
    print(head)
    for r in rows:
        peak, kept, sweep = r["forward_peak"], r["kept_peak"], r["sweep_peak"]
        knock = f"{r['knockout_s'] / r['forward_s']:.2f}" if "knockout_s" in r else "n/a"
        mb = lambda b: f"{b / (1 << 20):.0f}M"  # noqa: E731
        print(f"{r['model']:<20}{r['params'] / 1e6:>7.0f}M{r['weights'] / GB:>8.2f}G{r['forward_s']:>8.2f}s"
              f"{r['forward_s'] / r['hf_s']:>10.2f}{r['max_diff']:>12.1e}{r['sweep_s'] / r['forward_s']:>10.2f}"
              f"{knock:>13}{mb(peak):>9}{mb(kept):>9}{mb(sweep):>8}{sweep / peak:>11.2f}{sweep / kept:>11.2f}"
              f"  {'ok' if sweep <= 3 * kept else 'OVER'}")
    for r in rows:
        if "knockout" in r:
            print(f"knockout ({r['model']}): skipped, {r['knockout']}")
    print("forward = engine.run, no grad (all logits; the vocabulary is small); engine/HF = engine.run vs model(ids).\n"
          "Memory above the weights: fwd peak = transient peak of a no-grad forward (about one layer's worth);\n"
          "fwd kept = one forward's activations of every layer (a forward with grad keeps them for backward);\n"
          "sweep = peak of a mask-impact sweep. check: sweep <= 3 x fwd kept.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="qwen3-0.6b,ministral-3-3b")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--layers", type=int, default=None,
                        help="Keep the first N layers (same layer shape). Default: all.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    reexec_with_fixed_mmap_threshold()
    torch.set_num_threads(args.threads)
    from interp.util.logs import quiet_transformers

    quiet_transformers()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in CONFIGS:
            sys.exit(f"unknown model {name!r}; choose from {', '.join(CONFIGS)}")
        run = args
        if device.type == "cpu" and not args.layers and available_gb() < MIN_FREE_GB[name]:
            print(f"{name}: {available_gb():.1f} GB available < {MIN_FREE_GB[name]} GB for all layers: "
                  f"keeping the first {SHALLOW} (same layer shape)")
            run = argparse.Namespace(**vars(args) | {"layers": SHALLOW})
        start = time.perf_counter()
        rows.append(bench_model(name, run, device))
        print(f"{name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    print_table(rows, args, device)


if __name__ == "__main__":
    main()
