"""Zero-shot multiple-choice evaluation: the run over tasks, with resumable per-task files.

The jobs live in their own modules: `scoring` (token boundaries, batched exact scoring),
`metrics` (acc, acc_norm, acc_token_norm, acc_cc, stderr, macro), `eval_files` (the result files
and resume, through the result contract), `eval_table` (the printed table). This module runs them:
each task is encoded, scored and summarised; with an output directory each task is written as it
finishes, and `resume` reads finished tasks back (refusing other settings, rerunning a task whose
items changed).

Contexts longer than the model: a context that does not fit with its continuation loses tokens
from the left (as lm-evaluation-harness does). Such items are counted in the task's metrics
(`truncated`), warned about, and examples.csv shows the context as scored ("…" + the kept tail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from interp.analyses.ablation.eval_files import EXAMPLE_COLUMNS, EvalResult, finished_task, items_hash, write_task
from interp.analyses.ablation.eval_table import fmt
from interp.analyses.ablation.metrics import MACRO_METRICS, argmax, choice_chars, macro, normalized, task_metrics
from interp.analyses.ablation.scoring import LEAK_WARNING, LEAKY_MODES, encode_items_with_cuts, mode_label, score_requests
from interp.data.benchmarks import DEFAULT_FORMAT, check_format
from interp.data.tasks import Task, load_task, task_key
from interp.engine import Engine
from interp.engine.masks import check_layers, check_mode
from interp.errors import InterpError

TRUNCATION_MARK = "…"


# ------------------------------------------------------------------------------------- tasks
@dataclass
class TaskResult:
    """A task's metrics (TASK_METRICS, in metrics.json) and its per-example table (EXAMPLE_COLUMNS)."""

    name: str
    source: str
    metrics: dict
    examples: "object"  # pandas DataFrame


def evaluate_task(
    engine: Engine,
    task: Task,
    *,
    attention: str = "causal",
    batch_size: int = 16,
    show_progress: bool = True,
    bidirectional_layers: Sequence[int] | None = None,
) -> TaskResult:
    """Score a loaded task; items whose tokens cannot be scored (too long) count as skipped, items
    whose context was cut from the left to fit count as truncated (and show the scored context)."""
    import pandas as pd

    check_mode(attention)
    encoded, cuts = encode_items_with_cuts(engine.tokenizer, task.items, engine.max_positions)
    keep = [i for i, e in enumerate(encoded) if e is not None]
    label = f"{task.name} ({mode_label(attention, bidirectional_layers)}{', LEAKY' if attention in LEAKY_MODES else ''})"
    scores = iter(score_requests(engine, [pair for i in keep for pair in encoded[i]], attention=attention,
                                 batch_size=batch_size, progress=label if show_progress else None,
                                 bidirectional_layers=bidirectional_layers))
    rows = []
    for i in keep:
        item = task.items[i]
        s = [next(scores) for _ in item["choices"]]
        logprobs, n_tokens, n_chars = [x.logprob for x in s], [x.n_tokens for x in s], choice_chars(item)
        rows.append({
            "task": task.name, "index": i, "label": item["label"], "pred": argmax(logprobs),
            "pred_norm": argmax(normalized(logprobs, n_chars)),
            "pred_token_norm": argmax(normalized(logprobs, n_tokens)),
            "context": _scored_context(engine.tokenizer, item, encoded[i]) if cuts[i] else _context_text(item),
            "choices": json.dumps(item["choices"]), "logprobs": json.dumps(logprobs),
            "n_tokens": json.dumps(n_tokens), "n_chars": json.dumps(n_chars), "leaky": attention in LEAKY_MODES,
        })
    examples = pd.DataFrame(rows, columns=list(EXAMPLE_COLUMNS))
    chances = [1 / len(task.items[i]["choices"]) for i in keep]
    metrics = task_metrics(examples, chances, task.skipped + len(encoded) - len(rows), task.metrics,
                           truncated=sum(1 for i in keep if cuts[i]))
    return TaskResult(task.name, task.source, metrics, examples)


def _context_text(item: dict) -> str:
    return item["context"] if isinstance(item["context"], str) else json.dumps(item["context"])


def _scored_context(tokenizer, item: dict, pairs: list) -> str:
    """What was scored of a cut context: "…" + the kept tokens (per choice, as JSON, where contexts differ)."""
    texts = [TRUNCATION_MARK + tokenizer.decode(ctx, skip_special_tokens=True) for ctx, _ in pairs]
    return texts[0] if isinstance(item["context"], str) else json.dumps(texts)


def check_unique_keys(tasks: Sequence[str | Task]) -> list[str]:
    """Each task's result key; two tasks under one key (a/mut.jsonl, b/mut.jsonl) are refused."""
    keys = [spec.name if isinstance(spec, Task) else task_key(spec) for spec in tasks]
    seen: dict[str, str] = {}
    for spec, key in zip(tasks, keys):
        given = spec.source if isinstance(spec, Task) else spec
        if key in seen:
            raise InterpError(f"tasks {seen[key]} and {given} would both be reported as {key!r}: rename one "
                              "(results are keyed by task name, a file's stem)")
        seen[key] = given
    return keys


def load_tasks(
    names: Sequence[str], *, limit: int | None = 500, data_dir: str | Path | None = None, format: str = DEFAULT_FORMAT
) -> list[Task]:
    """Load tasks up front (before a big model is loaded) and refuse any without a valid item, or two
    under one name."""
    check_unique_keys(names)
    out = []
    for name in names:
        task = load_task(name, limit=limit, data_dir=data_dir, format=format)
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
    format: str = DEFAULT_FORMAT,
    out_dir: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    show_progress: bool = True,
    bidirectional_layers: Sequence[int] | None = None,
) -> dict:
    """Evaluate `tasks` (names, or Tasks from `load_tasks`) and return metrics.json's content.

    `format` picks the benchmarks' prompt format: "lm-eval" (lm-evaluation-harness's task
    definitions) or "seed" (the ministral3 ablation format); toy tasks and JSONL files have their own.
    With `out_dir`, each task's results are written as soon as it finishes
    (out_dir/tasks/<task>.json and .csv); with `resume`, tasks already finished there under the
    same model, mode, limit and format, with the same items, are read back instead of run again. At the end out_dir gets
    metrics.json and examples.csv (atomically). bidirectional_layers: the layers where `attention`
    applies (None: all), the others causal; recorded in metrics.json.
    """
    import pandas as pd

    check_mode(attention)
    check_format(format)
    if not tasks:
        raise InterpError("no tasks given")
    names = check_unique_keys(tasks)
    log = log or (lambda message: None)
    layers = sorted(check_layers(bidirectional_layers, engine.n_layers)) if bidirectional_layers is not None else None
    settings = {"model": engine.name, "attention": attention, "limit": limit, "format": format}
    if layers is not None:
        settings["bidirectional_layers"] = layers
    shown = mode_label(attention, layers)
    if attention in LEAKY_MODES:
        log(LEAK_WARNING)
    per_task, sources, tables = {}, {}, []
    for spec, name in zip(tasks, names):
        task = spec if isinstance(spec, Task) else load_tasks([spec], limit=limit, data_dir=data_dir, format=format)[0]
        digest = items_hash(task.items)
        done = finished_task(out_dir, name, settings, digest) if (out_dir is not None and resume) else None
        if done is not None:
            metrics, source, examples = done
            log(f"{name} ({shown}): already finished in {out_dir}, skipped (--resume)")
        else:
            if out_dir is not None and resume and (Path(out_dir) / "tasks" / f"{name}.json").exists():
                log(f"{name} ({shown}): its items changed since the run in {out_dir}: running it again")
            log(f"{name} ({shown}): {len(task.items)} items ({task.skipped} skipped) from {task.source}")
            result = evaluate_task(engine, task, attention=attention, batch_size=batch_size, show_progress=show_progress,
                                   bidirectional_layers=layers)
            metrics, source, examples = result.metrics, result.source, result.examples
            if metrics.get("truncated"):
                log(f"WARNING: {name}: {metrics['truncated']} item(s) longer than the model's {engine.max_positions} "
                    "positions: their contexts were cut from the left (examples.csv shows what was scored)")
            if out_dir is not None:
                write_task(out_dir, name, metrics, source, examples, settings, digest)
        log(f"{name} ({shown}): n={metrics['n']} " + " ".join(
            f"{k}={fmt(metrics[k])}" for k in ("acc", "acc_norm", "acc_cc", "chance")))
        per_task[name], sources[name] = metrics, source
        tables.append(examples)
    out = {
        "model": engine.name,
        "attention": attention,
        **({"bidirectional_layers": layers} if layers is not None else {}),  # the mode's layers, when not all
        "leaky": attention in LEAKY_MODES,
        **({"warning": LEAK_WARNING} if attention in LEAKY_MODES else {}),
        "limit": limit,
        "format": format,
        "tasks": per_task,
        **{f"macro_{metric}": macro(per_task, metric) for metric in MACRO_METRICS},
        "truncated": sum(int(m.get("truncated") or 0) for m in per_task.values()),
        "sources": sources,
    }
    if out_dir is not None:
        EvalResult(pd.concat(tables, ignore_index=True), out).write(out_dir)
    return out
