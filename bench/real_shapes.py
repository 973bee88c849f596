"""Real shapes: issue 24's table at the layer shapes of Qwen3-0.6B and Ministral-3-3B, fp32 and bf16.

Random models with the checkpoints' configs (depth, width, heads, head_dim, MLP, RoPE/YaRN); only the
vocabulary is small (the byte-level test tokenizer). Every time is a multiple of one plain forward of
the transformers model (`model(ids)`, no grad), taken in the same process right before, so a shared
machine's load cancels out as far as it can. Per model and dtype it prints:

  engine/HF    engine.run / model(ids) time, and max |logit difference|
  sweep        mask_impact(...) over all layers / forward          (floor: 1 + o_proj's and the MLP's share)
  downstream   mask_impact(..., downstream=True, knockout_queries="final") / forward   (floor: (L+1)/2)
  knockout     knockout(..., window=9) on one prompt, 3 sources / forward
  memory       at --memory-tokens (512): a no-grad forward's transient peak above the weights, the
               sweep's peak, and their ratio (goal <= 2)

--profile adds where the downstream sweep's time goes: per swept layer l (its variants run layers
l..L-1) and per torch op. Memory on CPU is the process's resident set sampled every 2 ms minus what it
was just before the call (the bench re-executes itself with MALLOC_MMAP_THRESHOLD_ fixed so freed
blocks go back to the system); on CUDA, torch.cuda.max_memory_allocated.

    python bench/real_shapes.py [--models qwen3-0.6b,ministral-3-3b] [--dtypes fp32,bf16] [--tokens 127]
                                [--memory-tokens 512] [--layers N] [--quick] [--profile] [--threads 2]

On a machine shared with other jobs, `--threads 1 --clock cpu` times by the CPU time the bench
itself used, so other jobs' load does not enter the ratios (wall-clock ratios swing by 2x there).

--quick keeps 8 layers of each model (same layer shape; the downstream floor is then (8+1)/2 = 4.5)
and finishes in a few minutes on 2 cores. Ministral-3-3B at full depth needs ~14 GB in fp32; with
less memory available the bench keeps its first 4 layers and says so.
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
# Full depth needs this much available memory on CPU (Ministral-3-3B: 11.3 GB of fp32 weights plus a
# sweep's working memory); with less, the bench keeps the first SHALLOW layers.
MIN_FREE_GB = {"qwen3-0.6b": 4, "ministral-3-3b": 15}  # fp32; bf16 needs half
SHALLOW = 4
GB = 1 << 30
CLOCK = [time.perf_counter]  # --clock cpu: time.process_time, the CPU time this process used


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
            start = CLOCK[0]()
            result = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(CLOCK[0]() - start)
        peak = extra[0] if i == 0 else peak
        result = None if i < repeats - 1 else result
    times.sort()
    return times[len(times) // 2], peak, result


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def build_engine(name: str, device: torch.device, layers: int | None = None, dtype: torch.dtype = torch.float32):
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
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa").eval()
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


def sweep_floor(engine, tokens: int) -> float:
    """1 + the share of a forward's FLOPs in o_proj and the MLP (what each knockout variant reruns)."""
    c = engine.config
    d, dh, h, kh = engine.d_model, engine.d_head, engine.n_heads, engine.n_kv_heads
    qkv, o, mlp = d * (h + 2 * kh) * dh, h * dh * d, 3 * d * c.intermediate_size
    attention = 2 * h * dh * (tokens + 1) / 2  # scores and values over the keys a query sees, on average
    return 1 + (o + mlp) / (qkv + o + mlp + attention)


def bench_model(name: str, dtype: str, args, device: torch.device) -> dict:
    from interp.analyses.impact.knockout import knockout
    from interp.analyses.impact.mask_impact import mask_impact

    engine = build_engine(name, device, args.layers, DTYPES[dtype])
    weights = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    text, subject = prompt_text(args.tokens)
    ids, _ = engine.tokenize(text)
    assert ids.shape[1] == args.tokens, ids.shape
    full = CONFIGS[name][1]["num_hidden_layers"]
    label = name if engine.n_layers == full else f"{name} {engine.n_layers}/{full}L"
    row = {"model": label, "dtype": dtype, "layers": engine.n_layers, "weights": weights,
           "sweep_floor": sweep_floor(engine, args.tokens), "downstream_floor": (engine.n_layers + 1) / 2}
    with torch.inference_mode():
        hf = lambda: engine.model(ids).logits  # noqa: E731  the unit of every ratio
        row["fwd_s"], _, theirs = timed(hf, device, args.repeats, 1)
        engine_s, _, ours = timed(lambda: engine.run(ids).logits, device, args.repeats, 1)
        row["engine_hf"] = engine_s / row["fwd_s"]
        row["max_diff"] = float((ours.float() - theirs.float()).abs().max())
        del ours, theirs
        row["sweep"] = timed(lambda: mask_impact(engine, ids[0].tolist()), device, 1, 0)[0] / row["fwd_s"]
        layer_times: list[float] = []
        tick = _layer_clock(layer_times)
        down_s = timed(lambda: mask_impact(engine, ids[0].tolist(), downstream=True, knockout_queries="final",
                                           progress=tick), device, 1, 0)[0]
        row["downstream"] = down_s / row["fwd_s"]
        row["downstream_by_layer"] = [t / row["fwd_s"] for t in layer_times]
        row["knockout"] = timed(lambda: knockout(engine, [{"prompt": text, "subject": subject}], window=9),
                                device, 1, 0)[0] / row["fwd_s"]
        fwd_again = timed(hf, device, args.repeats, 0)[0]
        row["fwd_drift"] = fwd_again / row["fwd_s"]  # how much the machine's load moved during the row
        if args.profile:
            row["profile"] = _op_profile(lambda: mask_impact(engine, ids[0].tolist(), downstream=True,
                                                             knockout_queries="final"), row["fwd_s"])
        if args.memory_tokens:
            long_text, _ = prompt_text(args.memory_tokens)
            long_ids, _ = engine.tokenize(long_text)
            timed(lambda: engine.model(long_ids).logits, device, 1, 0)  # warm the allocator
            row["fwd_peak"] = timed(lambda: engine.model(long_ids).logits, device, 1, 0)[1]
            row["sweep_peak"] = timed(lambda: mask_impact(engine, long_ids[0].tolist()), device, 1, 0)[1]
    if args.memory_tokens:
        with torch.enable_grad():  # every layer's activations, as a forward keeps them for backward
            kept_ids = long_ids.clone()  # a normal tensor: inference tensors cannot enter autograd
            row["kept_peak"] = timed(lambda: engine.run(kept_ids).logits.sum(), device, 1, 0)[1]
    del engine
    return row


def _layer_clock(times: list[float]) -> Callable[[int], None]:
    """A mask_impact progress callback that records the seconds each swept layer took."""
    last = [CLOCK[0]()]

    def tick(_: int = 1) -> None:
        now = CLOCK[0]()
        times.append(now - last[0])
        last[0] = now

    return tick


def _op_profile(fn: Callable[[], object], fwd_s: float, top: int = 10) -> list[tuple[str, float, float]]:
    """(op, self time in forwards, share of the total) for the `top` ops of one call, by the profiler's
    self time (wall time inside the op: on a shared machine only the shares mean something)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [(e.key, e.self_cpu_time_total / 1e6 / fwd_s, e.self_cpu_time_total / total) for e in events[:top]]


def print_table(rows: list[dict], args, device: torch.device) -> None:
    print(f"\ndevice {device}, {args.tokens}-token prompt (memory at {args.memory_tokens}), "
          f"{torch.get_num_threads()} thread(s), {args.clock} clock; random weights, real layer shapes, small vocabulary")
    print(f"{'model':<24}{'dtype':<6}{'fwd':>7}{'engine/HF':>10}{'max|dlogit|':>12}{'sweep':>7}{'(floor)':>8}"
          f"{'downstream':>11}{'(floor)':>8}{'knockout':>9}{'drift':>6}{'fwd peak':>9}{'sweep peak':>11}{'ratio':>6}{'fwd kept':>9}")
    mb = lambda b: f"{b / (1 << 20):.0f}M"  # noqa: E731
    for r in rows:
        memory = (f"{mb(r['fwd_peak']):>9}{mb(r['sweep_peak']):>11}{r['sweep_peak'] / max(r['fwd_peak'], 1):>6.2f}"
                  f"{mb(r['kept_peak']):>9}" if "fwd_peak" in r else "")
        print(f"{r['model']:<24}{r['dtype']:<6}{r['fwd_s']:>6.2f}s{r['engine_hf']:>10.2f}{r['max_diff']:>12.1e}"
              f"{r['sweep']:>7.2f}{r['sweep_floor']:>8.2f}{r['downstream']:>11.2f}{r['downstream_floor']:>8.1f}"
              f"{r['knockout']:>9.2f}{r['fwd_drift']:>6.2f}{memory}")
    print("All times in plain forwards of the transformers model (fwd). sweep = mask_impact over all layers;\n"
          "downstream = the same with downstream=True, knockout_queries='final'; knockout = window 9, 3 sources.\n"
          "drift = the forward re-timed after the row / before (far from 1: the machine's load moved).\n"
          "fwd peak = a no-grad forward's transient memory above the weights; sweep peak = the sweep's; ratio goal <= 2;\n"
          "fwd kept = one forward's activations of every layer (a forward with grad keeps them for backward).")
    for r in rows:
        by_layer = " ".join(f"{t:.2f}" for t in r["downstream_by_layer"])
        print(f"downstream by swept layer ({r['model']}, {r['dtype']}; fwd each, layer 0 first; layer 0 includes the "
              f"baseline forward and every layer's single-layer readouts): {by_layer}")
        for op, _, share in r.get("profile", []):  # the profiler's op times are wall time: shares only
            print(f"  {op:<40}{100 * share:>6.1f}% of the downstream sweep's op time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="qwen3-0.6b,ministral-3-3b")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--tokens", type=int, default=127)
    parser.add_argument("--memory-tokens", type=int, default=512, help="Prompt length of the memory check (0: skip).")
    parser.add_argument("--repeats", type=int, default=3, help="Forwards per timing of the unit (median).")
    parser.add_argument("--layers", type=int, default=None,
                        help="Keep the first N layers (same layer shape). Default: all.")
    parser.add_argument("--quick", action="store_true", help="Keep 8 layers of each model.")
    parser.add_argument("--profile", action="store_true", help="Where the downstream sweep's time goes, by op.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: process CPU time, for a machine shared with other jobs (use with --threads 1).")
    args = parser.parse_args()
    if args.quick and not args.layers:
        args.layers = 8
    reexec_with_fixed_mmap_threshold()
    torch.set_num_threads(args.threads)
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    from interp.util.logs import quiet_transformers

    quiet_transformers()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in CONFIGS:
            sys.exit(f"unknown model {name!r}; choose from {', '.join(CONFIGS)}")
        for dtype in [d.strip() for d in args.dtypes.split(",") if d.strip()]:
            if dtype not in DTYPES:
                sys.exit(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
            run = args
            need = MIN_FREE_GB[name] / (2 if dtype == "bf16" else 1)
            if device.type == "cpu" and not args.layers and available_gb() < need:
                print(f"{name} {dtype}: {available_gb():.1f} GB available < {need:.0f} GB for all layers: "
                      f"keeping the first {SHALLOW} (same layer shape)")
                run = argparse.Namespace(**vars(args) | {"layers": SHALLOW})
            start = time.perf_counter()
            rows.append(bench_model(name, dtype, run, device))
            print(f"{name} {dtype}: done in {time.perf_counter() - start:.0f} s: {rows[-1]}", flush=True)
    print_table(rows, args, device)


if __name__ == "__main__":
    main()
