"""Zero-shot multiple-choice evaluation: log-likelihood of each choice given the context.

score(choice) = Σ log p(continuation token | context, earlier continuation tokens). acc picks the
choice with the highest sum, acc_norm the highest per-token mean (the seed's length_normalize);
macro = unweighted mean over tasks (DESIGN.md, "Measurement semantics").

Attention modes:
  causal         the usual causal model.
  prefix         context bidirectional, continuation causal: exactly what a bidirectional prefill
                 of the context followed by causal decoding computes (the ablation).
  bidirectional  one pass over context + continuation with no mask, as the seed's eval code ran:
                 each continuation token sees the tokens after it, so the score is LEAKY. Kept to
                 reproduce the seed's figures and labelled leaky in every output.

Fast and exact: for causal and prefix, each context is run once (prefill, in the chosen mode, with
its KV cache kept) and all its choices are scored together by continuing from that cache
(`KVCache.rows` repeats a context's cache once per choice); examples are batched with left-padded
contexts and right-padded continuations. Padding never changes a real token's result, so batched
scores equal unbatched ones. bidirectional cannot reuse a cache (the context sees the choice) and
runs one full sequence per choice, batched the same way.

Token boundary (as lm-evaluation-harness `_encode_pair`): whitespace ending the context moves to
the front of the continuation; the context is tokenized alone, and the continuation's tokens are
those of `context + continuation` after the first len(context tokens). Every choice then shares
the very same context tokens (so their cache can be shared); where BPE merges across the boundary,
the scored sequence is context tokens + the tail of the joint tokenization, as in the harness.
Only leading special tokens (e.g. BOS) are added; an empty context gets BOS (or EOS) alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from interp.data.tasks import Task, load_task, task_key
from interp.engine import Engine
from interp.errors import InterpError
from interp.util.distributed import map_sharded
from interp.util.io import write_json, write_table
from interp.util.progress import progress_bar

MODES: tuple[str, ...] = ("causal", "prefix", "bidirectional")
LEAKY_MODES = frozenset({"bidirectional"})
LEAK_WARNING = (
    "LEAKY: attention=bidirectional lets every continuation token see the tokens after it (what the "
    "seed's eval code computed); these scores are not a valid zero-shot accuracy"
)
EXAMPLE_COLUMNS = ("task", "index", "label", "pred", "pred_norm", "logprobs", "n_tokens", "leaky")
TASK_METRICS = ("n", "skipped", "acc", "acc_norm", "chance")
LOGIT_CHUNK = 1 << 24  # elements of fp32 log-softmax held at once


# ------------------------------------------------------------------------------------- tokens
@dataclass
class Encoded:
    """One item's tokens: the shared context and each choice's continuation."""

    context: list[int]
    choices: list[list[int]]


def leading_special_tokens(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (e.g. [BOS]); trailing ones are dropped."""
    with_special = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start:start + len(plain)] == plain:
            return list(with_special[:start])
    return []


def encode_items(tokenizer, items: Sequence[dict], max_length: int | None = None) -> list[Encoded | None]:
    """Tokenize items at the harness's boundary (module docstring); None where nothing can be scored.

    Contexts that would not fit `max_length` with their longest choice lose tokens from the left.
    """
    lead = leading_special_tokens(tokenizer)
    fallback = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    contexts, wholes, shape = [], [], []
    for item in items:
        context = item["context"].rstrip()
        moved = item["context"][len(context):]
        contexts.append(context)
        wholes.extend(context + moved + choice for choice in item["choices"])
        shape.append(len(item["choices"]))
    context_ids = tokenizer(contexts, add_special_tokens=False)["input_ids"] if contexts else []
    whole_ids = tokenizer(wholes, add_special_tokens=False)["input_ids"] if wholes else []
    out: list[Encoded | None] = []
    offset = 0
    for ctx, k in zip(context_ids, shape):
        conts = [whole[len(ctx):] for whole in whole_ids[offset:offset + k]]
        offset += k
        ctx = lead + ctx
        if not ctx and fallback is not None:
            ctx = [fallback]
        longest = max(len(c) for c in conts)
        if not ctx or min(len(c) for c in conts) == 0 or (max_length is not None and longest >= max_length):
            out.append(None)
            continue
        if max_length is not None and len(ctx) + longest > max_length:
            ctx = ctx[len(ctx) + longest - max_length:]
        out.append(Encoded(ctx, conts))
    return out


def _pad(rows: Sequence[Sequence[int]], side: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of ids → ids [N,T] (pad 0) and mask [N,T] bool, padded on `side`."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        cols = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, cols] = torch.as_tensor(row, dtype=torch.long)
        mask[i, cols] = True
    return ids.to(device), mask.to(device)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) in fp32: logits [N,T,V], targets [N,T] → [N,T], a few rows at a time."""
    rows_per_chunk = max(1, LOGIT_CHUNK // max(1, logits.shape[1] * logits.shape[2]))
    out = []
    for start in range(0, logits.shape[0], rows_per_chunk):
        chunk = logits[start:start + rows_per_chunk].float().log_softmax(-1)
        out.append(chunk.gather(-1, targets[start:start + rows_per_chunk, :, None])[..., 0])
    return torch.cat(out)


# ------------------------------------------------------------------------------------- scoring
def _score_from_context_cache(engine: Engine, batch: Sequence[Encoded], attention: str):
    """Prefill each context once (causal or prefix), then decode all its choices from the cache."""
    ctx_ids, ctx_mask = _pad([e.context for e in batch], "left", engine.device)  # [B,Tc]
    ctx_len = ctx_mask.sum(-1)
    prefill = engine.run(
        ctx_ids, attention_mask=ctx_mask, attention=attention,
        prefix_len=ctx_len if attention == "prefix" else None, use_cache=True, logits="last",
    )
    owner = torch.tensor([b for b, e in enumerate(batch) for _ in e.choices], device=engine.device)  # [N]
    cont_ids, cont_mask = _pad([c for e in batch for c in e.choices], "right", engine.device)  # [N,Tk]
    # The context's last logits predict each choice's first token; decoding predicts the rest.
    logp = token_logprobs(prefill.logits[owner], cont_ids[:, :1])  # [N,1]
    if cont_ids.shape[1] > 1:
        decode = engine.run(
            cont_ids[:, :-1], attention_mask=cont_mask[:, :-1], past=prefill.past.rows(owner), logits="all"
        )
        logp = torch.cat([logp, token_logprobs(decode.logits, cont_ids[:, 1:])], 1)  # [N,Tk]
    logp = logp.masked_fill(~cont_mask, 0.0)
    return logp.sum(-1), cont_mask.sum(-1)


def _score_full_sequences(engine: Engine, batch: Sequence[Encoded], attention: str):
    """One forward per choice over context + continuation (the only way for bidirectional)."""
    rows = [e.context + c for e in batch for c in e.choices]
    ctx_len = torch.tensor([len(e.context) for e in batch for _ in e.choices], device=engine.device)  # [N]
    cont_len = torch.tensor([len(c) for e in batch for c in e.choices], device=engine.device)
    ids, mask = _pad(rows, "right", engine.device)  # [N,T]
    # Only the positions that predict continuation tokens need logits: keep the last layer's output
    # and apply the final norm and lm_head to those (a [N,T,V] tensor would dwarf the model at 131k vocab).
    top = engine.n_layers - 1
    out = engine.run(ids, attention_mask=mask, attention=attention,
                     prefix_len=ctx_len if attention == "prefix" else None, capture=[("resid_post", top)], logits="none")
    steps = torch.arange(int(cont_len.max()), device=engine.device)  # [Tk]
    last = ids.shape[1] - 1
    predictor = (ctx_len[:, None] - 1 + steps).clamp(max=last)  # [N,Tk] position predicting each token
    target = ids.gather(1, (ctx_len[:, None] + steps).clamp(max=last))  # [N,Tk]
    hidden = out.cache["resid_post", top]  # [N,T,D]
    hidden = hidden.gather(1, predictor[..., None].expand(-1, -1, hidden.shape[-1]))  # [N,Tk,D]
    logits = engine.lm_head(engine.decoder.norm(hidden))  # [N,Tk,V]
    valid = steps < cont_len[:, None]
    logp = token_logprobs(logits, target).masked_fill(~valid, 0.0)
    return logp.sum(-1), cont_len


@dataclass
class ItemScores:
    """Summed log-probability and token count of every choice of one item."""

    logprobs: list[float]
    n_tokens: list[int]


@torch.no_grad()
def score_encoded(
    engine: Engine,
    encoded: Sequence[Encoded],
    *,
    attention: str = "causal",
    batch_size: int = 16,
    advance: Callable[[int], None] | None = None,
) -> list[ItemScores]:
    """Score every choice of every item; `batch_size` items (contexts) per forward.

    Items are run longest first so a batch pads little; results come back in input order.
    Under torchrun / accelerate launch each rank runs every world_size-th batch (the very batches
    one process would run, so the scores are bit-identical) and every rank gets all results.
    """
    check_mode(attention)
    if batch_size < 1:
        raise InterpError(f"batch size must be ≥ 1, not {batch_size}")
    scorer = _score_full_sequences if attention == "bidirectional" else _score_from_context_cache
    order = sorted(range(len(encoded)), key=lambda i: -(len(encoded[i].context) + max(map(len, encoded[i].choices))))
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

    def run_batches(mine: list[list[int]]) -> list[tuple[list[float], list[int]]]:
        out = []
        for idx in mine:
            sums, counts = scorer(engine, [encoded[i] for i in idx], attention)
            out.append((sums.tolist(), counts.tolist()))
            if advance is not None:
                advance(len(idx))
        return out

    results: list[ItemScores | None] = [None] * len(encoded)
    for idx, (sums, counts) in zip(batches, map_sharded(run_batches, batches)):
        batch = [encoded[i] for i in idx]
        offset = 0
        for i, e in zip(idx, batch):
            k = len(e.choices)
            results[i] = ItemScores(sums[offset:offset + k], [int(c) for c in counts[offset:offset + k]])
            offset += k
    return results  # type: ignore[return-value]


def check_mode(attention: str) -> None:
    if attention not in MODES:
        raise InterpError(f"unknown attention mode {attention!r}; choose one of {', '.join(MODES)}")


# ------------------------------------------------------------------------------------- tasks
@dataclass
class TaskResult:
    """A task's metrics and its per-example table (EXAMPLE_COLUMNS)."""

    name: str
    n: int
    skipped: int
    acc: float
    acc_norm: float
    chance: float
    source: str
    examples: "object"  # pandas DataFrame

    def metrics(self) -> dict:
        return {"n": self.n, "skipped": self.skipped, "acc": self.acc, "acc_norm": self.acc_norm, "chance": self.chance}


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))  # first of equal maxima


def evaluate_task(
    engine: Engine, task: Task, *, attention: str = "causal", batch_size: int = 16, show_progress: bool = True
) -> TaskResult:
    """Score a loaded task; items whose tokens cannot be scored (too long) count as skipped."""
    import pandas as pd

    check_mode(attention)
    encoded = encode_items(engine.tokenizer, task.items, engine.max_positions)
    keep = [i for i, e in enumerate(encoded) if e is not None]
    label = f"{task.name} ({attention}{', LEAKY' if attention in LEAKY_MODES else ''})"
    with progress_bar(label, len(keep), disable=not show_progress) as advance:
        scores = score_encoded(engine, [encoded[i] for i in keep], attention=attention,
                               batch_size=batch_size, advance=advance)
    rows = []
    for i, s in zip(keep, scores):
        means = [lp / n for lp, n in zip(s.logprobs, s.n_tokens)]
        rows.append({
            "task": task.name, "index": i, "label": task.items[i]["label"],
            "pred": _argmax(s.logprobs), "pred_norm": _argmax(means),
            "logprobs": json.dumps(s.logprobs), "n_tokens": json.dumps(s.n_tokens),
            "leaky": attention in LEAKY_MODES,
        })
    examples = pd.DataFrame(rows, columns=list(EXAMPLE_COLUMNS))
    n = len(rows)
    nan = float("nan")
    return TaskResult(
        name=task.name, n=n, skipped=task.skipped + len(encoded) - n,
        acc=float((examples.pred == examples.label).mean()) if n else nan,
        acc_norm=float((examples.pred_norm == examples.label).mean()) if n else nan,
        chance=sum(1 / len(task.items[i]["choices"]) for i in keep) / n if n else nan,
        source=task.source, examples=examples,
    )


def load_tasks(names: Sequence[str], *, limit: int | None = 500, data_dir: str | Path | None = None) -> list[Task]:
    """Load tasks up front (before a big model is loaded) and refuse any without a valid item."""
    out = []
    for name in names:
        task = load_task(name, limit=limit, data_dir=data_dir)
        if not task.items:
            raise InterpError(f"{task.name}: no valid items in {task.source} ({task.skipped} rows skipped for missing "
                              "or malformed fields)")
        out.append(task)
    return out


def evaluate(
    engine: Engine,
    tasks: Sequence[str | Task],
    *,
    attention: str = "causal",
    limit: int | None = 500,
    batch_size: int = 16,
    data_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    show_progress: bool = True,
) -> dict:
    """Evaluate `tasks` (names, or Tasks from `load_tasks`) and return metrics.json's content.

    With `out_dir`, each task's results are written as soon as it finishes
    (out_dir/tasks/<task>.json and .csv); with `resume`, tasks already finished there under the
    same model, mode and limit are read back instead of run again. At the end out_dir gets
    metrics.json and examples.csv (atomically).
    """
    import pandas as pd

    check_mode(attention)
    if not tasks:
        raise InterpError("no tasks given")
    log = log or (lambda message: None)
    settings = {"model": engine.name, "attention": attention, "limit": limit}
    if attention in LEAKY_MODES:
        log(LEAK_WARNING)
    per_task, sources, tables = {}, {}, []
    for spec in tasks:
        name = spec.name if isinstance(spec, Task) else task_key(spec)
        done = _finished_task(out_dir, name, settings) if (out_dir is not None and resume) else None
        if done is not None:
            metrics, source, examples = done
            log(f"{name} ({attention}): already finished in {out_dir}, skipped (--resume)")
        else:
            task = spec if isinstance(spec, Task) else load_tasks([spec], limit=limit, data_dir=data_dir)[0]
            log(f"{name} ({attention}): {len(task.items)} items ({task.skipped} skipped) from {task.source}")
            result = evaluate_task(engine, task, attention=attention, batch_size=batch_size, show_progress=show_progress)
            metrics, source, examples = result.metrics(), result.source, result.examples
            if out_dir is not None:
                _write_task(out_dir, name, metrics, source, examples, settings)
        log(f"{name} ({attention}): n={metrics['n']} acc={metrics['acc']:.4f} acc_norm={metrics['acc_norm']:.4f} "
            f"chance={metrics['chance']:.4f}")
        per_task[name], sources[name] = metrics, source
        tables.append(examples)
    out = {
        "model": engine.name,
        "attention": attention,
        "leaky": attention in LEAKY_MODES,
        **({"warning": LEAK_WARNING} if attention in LEAKY_MODES else {}),
        "limit": limit,
        "tasks": per_task,
        "macro_acc": _mean(m["acc"] for m in per_task.values()),
        "macro_acc_norm": _mean(m["acc_norm"] for m in per_task.values()),
        "sources": sources,
    }
    if out_dir is not None:
        write_table(pd.concat(tables, ignore_index=True), Path(out_dir) / "examples.csv")
        write_json(Path(out_dir) / "metrics.json", out)
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _task_file(out_dir: str | Path, name: str, suffix: str) -> Path:
    return Path(out_dir) / "tasks" / f"{name}{suffix}"


def _write_task(out_dir, name: str, metrics: dict, source: str, examples, settings: dict) -> None:
    write_table(examples, _task_file(out_dir, name, ".csv"))
    write_json(_task_file(out_dir, name, ".json"), {"metrics": metrics, "source": source, **settings})


def _finished_task(out_dir, name: str, settings: dict):
    """(metrics, source, examples) of a task finished in out_dir under the same settings, else None."""
    import pandas as pd

    meta_path, table_path = _task_file(out_dir, name, ".json"), _task_file(out_dir, name, ".csv")
    if not (meta_path.exists() and table_path.exists()):
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    differs = {k: (meta.get(k), v) for k, v in settings.items() if meta.get(k) != v}
    if differs:
        what = ", ".join(f"{k} {old!r} there vs {new!r} now" for k, (old, new) in differs.items())
        raise InterpError(f"cannot resume {name} in {out_dir}: it was run with other settings ({what})")
    return meta["metrics"], meta.get("source", ""), pd.read_csv(table_path)


def format_metrics(metrics: dict) -> str:
    """metrics.json as a small text table (with the leak warning first when leaky)."""
    lines = [f"WARNING: {LEAK_WARNING}"] if metrics.get("leaky") else []
    mode = metrics["attention"] + (" (LEAKY)" if metrics.get("leaky") else "")
    lines.append(f"model: {metrics.get('model', '?')}   attention: {mode}")
    lines.append(f"{'task':<18}{'n':>6}{'skipped':>9}{'acc':>9}{'acc_norm':>10}{'chance':>9}")
    for name, m in metrics["tasks"].items():
        lines.append(f"{name:<18}{m['n']:>6}{m['skipped']:>9}{m['acc']:>9.4f}{m['acc_norm']:>10.4f}{m['chance']:>9.4f}")
    lines.append(f"{'macro':<18}{'':>6}{'':>9}{metrics['macro_acc']:>9.4f}{metrics['macro_acc_norm']:>10.4f}")
    return "\n".join(lines)
