"""The report's view by kind of task, and the replication targets, stated in one place.

Tasks fall into two kinds, which the prefill-mask ablation should affect differently:
  fact recall   memorised knowledge (toy_arc, toy_piqa, toy_hellaswag, toy_winogrande; the real
                benchmarks): needs no word order from the context, so a bidirectional prefill
                should cost little;
  in-context    the answer is in the context (toy_binding, toy_order, toy_copy, toy_tracking);
  word order    the in-context tasks whose answer needs left-to-right order (toy_order, toy_copy):
                where the causal mask is the model's only source of order, so where the effect lives.
Each group's figure is the mean over its tasks, raw and chance-corrected
(cc = (acc − chance)/(1 − chance) per task).

The targets the toy replication is built to meet (chance-corrected, acc):
  word order:  S1 ≥ 0.6; S2/S1 ≤ 0.7; S4 3b − S4 3a (both under prefix) ≥ +0.10;
  all toy tasks: S1 ≥ 0.5;
  the macro targets kept from the first toy model: S1 ≥ 0.6, S2/S1 ≤ 0.6, S4/S1 ≥ 0.8, and
  S4 − S3a ≥ +0.10 on the raw macro acc.
The published Ministral-3-3B row stands beside them in the report.
"""

from __future__ import annotations

import math

import pandas as pd

GROUPS: dict[str, tuple[str, ...]] = {
    "fact recall": ("toy_arc", "toy_piqa", "toy_hellaswag", "toy_winogrande",
                    "arc_easy", "arc_challenge", "piqa", "hellaswag", "winogrande"),
    "in-context": ("toy_binding", "toy_order", "toy_copy", "toy_tracking"),
    "word order": ("toy_order", "toy_copy"),
}
SHOWN = {"S1": "S1 causal", "S2": "S2 prefix", "S4": "S4 3b prefix", "S4_3a": "S4 3a prefix"}
# (name, group (None: the macro over all tasks; "toy": every toy task), scale, quantity, comparison, bound)
TARGETS: tuple[tuple[str, str | None, str, str, str, float], ...] = (
    ("word order: S1cc ≥ 0.6", "word order", "cc", "S1", ">=", 0.6),
    ("word order: S2cc / S1cc ≤ 0.7", "word order", "cc", "S2/S1", "<=", 0.7),
    ("word order: S4cc 3b − 3a (prefix) ≥ +0.10", "word order", "cc", "S4-S4_3a", ">=", 0.10),
    ("all toy tasks: macro S1cc ≥ 0.5", "toy", "cc", "S1", ">=", 0.5),
    ("macro: S1cc ≥ 0.6", None, "cc", "S1", ">=", 0.6),
    ("macro: S2cc / S1cc ≤ 0.6", None, "cc", "S2/S1", "<=", 0.6),
    ("macro: S4cc / S1cc ≥ 0.8", None, "cc", "S4/S1", ">=", 0.8),
    ("macro: S4 − S3a ≥ +0.10 (raw acc)", None, "raw", "S4-S4_3a", ">=", 0.10),
)


def group_tasks(tasks: list[str], group: str | None) -> list[str]:
    """The tasks of `group` that were run (None: all; "toy": the toy tasks)."""
    if group is None:
        return list(tasks)
    if group == "toy":
        return [t for t in tasks if t.startswith("toy_")]
    return [t for t in tasks if t in GROUPS[group]]


def group_means(table: pd.DataFrame, tasks: list[str]) -> dict[str, float]:
    """Mean over `tasks` of each shown condition in a recovery table (rows: tasks)."""
    rows = table.set_index("task").loc[tasks] if tasks else None
    return {key: float(rows[column].mean()) if rows is not None else float("nan") for key, column in SHOWN.items()}


def _quantity(means: dict[str, float], quantity: str) -> float:
    if "/" in quantity:
        a, b = quantity.split("/")
        return means[a] / means[b] if means[b] and not math.isnan(means[b]) else float("nan")
    if "-" in quantity:
        a, b = quantity.split("-")
        return means[a] - means[b]
    return means[quantity]


def evaluate_targets(raw: pd.DataFrame, corrected: pd.DataFrame) -> list[dict]:
    """Every target: measured value, bound, and met / not met / n/a (tasks or conditions not run)."""
    tasks = [t for t in raw["task"] if t != "macro"]
    out = []
    for name, group, scale, quantity, comparison, bound in TARGETS:
        chosen = group_tasks(tasks, group)
        value = _quantity(group_means(corrected if scale == "cc" else raw, chosen), quantity)
        if not chosen or math.isnan(value):
            result = "n/a"
        else:
            result = "met" if (value >= bound - 1e-9 if comparison == ">=" else value <= bound + 1e-9) else "not met"
        out.append({"target": name, "tasks": ", ".join(chosen), "value": value, "bound": bound, "result": result})
    return out


def groups_markdown(raw: pd.DataFrame, corrected: pd.DataFrame, fmt) -> str:
    """A table per kind of task: each condition's mean, raw and chance-corrected, and the cc retention."""
    tasks = [t for t in raw["task"] if t != "macro"]
    lines = ["| kind | tasks | " + " | ".join(SHOWN.values()) + " | " + " | ".join(f"{c} cc" for c in SHOWN.values())
             + " | retention cc S2/S1 |", "|---|---|" + "---:|" * (2 * len(SHOWN) + 1)]
    for group in (*GROUPS, "toy"):
        chosen = group_tasks(tasks, group)
        if not chosen:
            continue
        r, c = group_means(raw, chosen), group_means(corrected, chosen)
        label = "all toy tasks" if group == "toy" else group
        lines.append(f"| {label} | {', '.join(chosen)} | " + " | ".join(fmt(r[k]) for k in SHOWN) + " | "
                     + " | ".join(fmt(c[k]) for k in SHOWN) + f" | {fmt(_quantity(c, 'S2/S1'), ratio=True)} |")
    return "\n".join(lines)


def targets_markdown(raw: pd.DataFrame, corrected: pd.DataFrame, fmt) -> str:
    lines = ["| target | tasks | measured | bound | result |", "|---|---|---:|---:|---|"]
    for t in evaluate_targets(raw, corrected):
        shown = t["result"] if t["result"] != "not met" else "**not met**"
        lines.append(f"| {t['target']} | {t['tasks'] or '—'} | {fmt(t['value'])} | {t['bound']:.2f} | {shown} |")
    return "\n".join(lines)
