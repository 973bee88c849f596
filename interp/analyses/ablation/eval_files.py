"""An eval's files, through the result contract: OUT/metrics.json + OUT/examples.csv, and per task
OUT/tasks/<task>.csv + .json, written as each task finishes so `--resume` can skip it.

Each pair is one unit (`interp.results`): the JSON records the table's row count and SHA-256, so a
table cut mid-way or written by another run is refused with a one-line error naming the file.
A task's JSON also records the settings it ran under and a hash of its items: resuming under other
settings is refused, and a task whose items changed is run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from interp.errors import InterpError
from interp.results import TableResult, number

EXAMPLE_COLUMNS = ("task", "index", "label", "pred", "pred_norm", "pred_token_norm", "context", "choices", "logprobs",
                   "n_tokens", "n_chars", "leaky")


class ExamplesTable(TableResult):
    """A per-example table (EXAMPLE_COLUMNS) with its metadata: tasks/<task>.csv + .json."""

    kind = "eval examples"
    columns = EXAMPLE_COLUMNS
    integer = ("index", "label", "pred", "pred_norm", "pred_token_norm")
    strings = ("task", "context", "choices", "logprobs", "n_tokens", "n_chars")


class EvalResult(ExamplesTable):
    """A whole eval: OUT/examples.csv with OUT/metrics.json (evaluate's return value)."""

    kind = "eval"
    table_name = "examples.csv"
    meta_name = "metrics.json"


def items_hash(items: list) -> str:
    """A task's items, hashed: resuming notices a task file that changed."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def task_file(out_dir: str | os.PathLike, name: str, suffix: str = ".csv") -> Path:
    return Path(out_dir) / "tasks" / f"{name}{suffix}"


def write_task(out_dir, name: str, metrics: dict, source: str, examples: pd.DataFrame, settings: dict,
               items_sha256: str) -> None:
    """tasks/<name>.csv and .json as one unit."""
    meta = {"metrics": metrics, "source": source, **settings, "items_sha256": items_sha256}
    ExamplesTable(examples, meta).write(task_file(out_dir, name))


def finished_task(out_dir, name: str, settings: dict, items_sha256: str | None):
    """(metrics, source, examples) of a task finished in out_dir under the same settings and items, else None.

    Other settings: a one-line refusal. Other items (the task file changed): None, so it runs again.
    Damaged files: a one-line error naming the file.
    """
    table = task_file(out_dir, name)
    if not (table.exists() and task_file(out_dir, name, ".json").exists()):
        return None
    result = ExamplesTable.read(table)
    meta = result.meta
    differs = {k: (meta.get(k), v) for k, v in settings.items() if meta.get(k) != v}
    if differs:
        what = ", ".join(f"{k} {old!r} there vs {new!r} now" for k, (old, new) in differs.items())
        raise InterpError(f"cannot resume {name} in {out_dir}: it was run with other settings ({what})")
    if items_sha256 is not None and meta.get("items_sha256") != items_sha256:
        return None
    check_task_metrics(meta.get("metrics"), result.meta_path(table), "metrics")
    return meta["metrics"], meta.get("source", ""), result.df


def check_task_metrics(m, path: Path, where: str) -> None:
    """One task's metrics: a dict whose counts and scores are numbers (None where not reported)."""
    if not isinstance(m, dict):
        raise InterpError(f"{path} is damaged: {where} is {type(m).__name__}, not an object")
    for key in ("n", "chance", "acc"):
        if key not in m:
            raise InterpError(f"{path} is damaged: {where} lacks {key!r}")
    for key, value in m.items():
        number(value, path, f"{where}.{key}")


def check_eval_metrics(m, path: Path, where: str = "metrics") -> None:
    """An eval's metrics.json content: its tasks' metrics and its macros are numbers."""
    if not isinstance(m, dict) or not isinstance(m.get("tasks"), dict) or not m["tasks"]:
        raise InterpError(f"{path} is damaged: {where} has no tasks")
    for task, tm in m["tasks"].items():
        check_task_metrics(tm, path, f"{where}.tasks.{task}")
    for key in ("macro_acc", "macro_acc_norm"):
        if key not in m:
            raise InterpError(f"{path} is damaged: {where} lacks {key!r}")
        number(m[key], path, f"{where}.{key}")


def read_eval(out_dir: str | os.PathLike) -> EvalResult:
    """OUT/metrics.json and OUT/examples.csv, checked."""
    result = EvalResult.read(out_dir)
    check_eval_metrics(result.meta, result.meta_path(result.path))
    return result

