"""Multiple-choice tasks in one schema: `{"context": str, "choices": [str, ...], "label": int}`.

`context` may instead be a list with one context per choice (lm-eval's winogrande: each option
fills the blank, and every choice scores the same continuation). An optional `delimiter` names the
text that joins each choice to its context (lm-eval's target delimiter, " "); acc_norm's
character count leaves it out (without one, a choice's leading whitespace is left out).

A task name is one of the five real benchmarks (hellaswag, piqa, arc_easy, arc_challenge,
winogrande), one of the bundled toy tasks (fact tasks toy_arc, toy_piqa, toy_hellaswag, toy_winogrande;
in-context tasks toy_binding, toy_order, toy_copy, toy_tracking), or a path to a JSONL file of items in the schema above. The scored continuation is `choices[i]`
appended to `context`.

Where the real benchmarks come from:
  * with `data_dir`: local files in the datasets' own schemas, laid out as
        DATA_DIR/<task>/<split>.jsonl   (or .parquet)
    e.g. DATA_DIR/hellaswag/validation.jsonl, DATA_DIR/arc_easy/test.jsonl
    (default splits: validation for hellaswag, piqa, winogrande; test for the ARC sets, as
    lm-evaluation-harness uses them);
  * without: `datasets.load_dataset` from the Hugging Face hub (or its local cache). When the hub
    cannot be reached, the cache is tried in offline mode — no network retries — and otherwise
    the error says to pass --data-dir.

Rows with a missing or malformed field (or a line that is not JSON) are skipped and counted in
`Task.skipped`, never fatal. `limit` keeps the first `limit` valid items; `skipped` counts the bad
rows met on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from interp.data.benchmarks import ALL_METRICS, BENCHMARKS, DEFAULT_FORMAT, Benchmark, Item, check_format
from interp.data.jsonl import read_jsonl
from interp.errors import InterpError, one_line
from interp.util.hub import hub_offline_now, load_hub_dataset

LOCAL_SUFFIXES = (".jsonl", ".parquet")


@dataclass
class Task:
    """A loaded task: valid items, how many rows were skipped, and where they came from."""

    name: str
    items: list[Item]
    skipped: int
    source: str
    metrics: tuple[str, ...] = ALL_METRICS  # what it reports (lm-eval's winogrande: acc only)

    @property
    def chance(self) -> float:
        """Expected accuracy of a uniform guess: mean of 1/len(choices) over items."""
        return sum(1 / len(it["choices"]) for it in self.items) / len(self.items) if self.items else float("nan")


def known_tasks() -> list[str]:
    from interp.data.toy import TOY_TASKS

    return [*BENCHMARKS, *TOY_TASKS]


def load_task(
    name: str,
    *,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    split: str | None = None,
    format: str = DEFAULT_FORMAT,
) -> Task:
    """Load a benchmark, a toy task or a JSONL file of items (see the module docstring)."""
    from interp.data.toy import TOY_TASKS, load_toy_task

    if limit is not None and limit < 1:
        raise InterpError(f"limit must be ≥ 1, not {limit}")
    check_format(format)
    if name in TOY_TASKS:
        items, skipped = collect(load_toy_task(name, split or "eval"), validate_item, limit)
        return Task(name, items, skipped, f"toy:{name}")
    if name in BENCHMARKS:
        bench = BENCHMARKS[name]
        split = split or bench.split
        rows, source = benchmark_rows(bench, split, data_dir)
        items, skipped = collect(rows, lambda row: bench.to_item(row, format), limit)
        return Task(name, items, skipped, source, bench.metrics(format))
    if name.endswith(".jsonl") or Path(name).is_file():
        path = Path(name)
        if not path.is_file():
            raise InterpError(f"no such task file: {name}")
        items, skipped = collect(read_jsonl(path), validate_item, limit)
        return Task(path.stem, items, skipped, str(path))
    raise InterpError(f"unknown task {name!r}; choose from {', '.join(known_tasks())}, or give a .jsonl file")


def task_key(name: str) -> str:
    """The name a task's results go under: the name itself, or a JSONL file's stem."""
    from interp.data.toy import TOY_TASKS

    if name in BENCHMARKS or name in TOY_TASKS:
        return name
    return Path(name).stem if (name.endswith(".jsonl") or Path(name).is_file()) else name


def validate_item(row: Any) -> Item | None:
    """A row already in the common schema, checked: str context (or one per choice), ≥ 2 non-empty str
    choices, label in range, optional str delimiter."""
    if not isinstance(row, dict):
        return None
    context, choices, label = row.get("context"), row.get("choices"), row.get("label")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        return None
    per_choice = isinstance(context, list) and len(context) == len(choices) and all(isinstance(c, str) for c in context)
    if not (isinstance(context, str) or per_choice):
        return None
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
        return None
    item = {"context": list(context) if per_choice else context, "choices": list(choices), "label": label}
    if isinstance(row.get("delimiter"), str):
        item["delimiter"] = row["delimiter"]
    return item


def collect(rows: Iterable[Any], convert: Callable[[dict], Item | None], limit: int | None) -> tuple[list[Item], int]:
    """Convert rows until `limit` valid items; → (items, rows skipped on the way)."""
    items: list[Item] = []
    skipped = 0
    for row in rows:
        if limit is not None and len(items) >= limit:
            break
        item = convert(row) if isinstance(row, dict) else None
        if item is None:
            skipped += 1
        else:
            items.append(item)
    return items, skipped


# ------------------------------------------------------------------------------------- benchmarks
def local_path(data_dir: str | Path, task: str, split: str) -> Path:
    """DATA_DIR/<task>/<split>.jsonl or .parquet, whichever exists (InterpError if neither)."""
    base = Path(data_dir).expanduser() / task
    for suffix in LOCAL_SUFFIXES:
        if (base / f"{split}{suffix}").is_file():
            return base / f"{split}{suffix}"
    raise InterpError(f"no local data for {task}: expected {base / (split + '.jsonl')} (or .parquet)")


def benchmark_rows(bench: Benchmark, split: str, data_dir: str | Path | None) -> tuple[Iterable[Any], str]:
    """Raw rows of a benchmark split and a description of where they came from."""
    if data_dir is not None:
        path = local_path(data_dir, bench.name, split)
        if path.suffix == ".parquet":
            import pandas as pd

            return pd.read_parquet(path).to_dict("records"), str(path)
        return read_jsonl(path), str(path)
    return _hub_dataset(bench, split), f"hub:{bench.hub_path}" + (f"/{bench.hub_config}" if bench.hub_config else "") + f"[{split}]"


def _hub_dataset(bench: Benchmark, split: str):
    """`datasets.load_dataset` from the hub, or from its cache without retrying when offline."""
    where = f"{bench.hub_path}" + (f" ({bench.hub_config})" if bench.hub_config else "")
    offline = hub_offline_now()
    try:
        return load_hub_dataset(bench.hub_path, bench.hub_config, offline=offline, split=split)
    except Exception as exc:  # connection, missing repo/split, gated: all mean "no data from the hub"
        if offline:
            raise InterpError(
                f"cannot load {bench.name}: the Hugging Face hub is unreachable and {where} is not cached; "
                f"pass --data-dir DIR with DIR/{bench.name}/{split}.jsonl"
            ) from None
        text = one_line(exc, 200)
        raise InterpError(f"cannot load {bench.name} from the hub ({where}): {text}; or pass --data-dir") from None
