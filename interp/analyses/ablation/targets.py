"""The toy replication's targets, chance-corrected: does the bundled model show the phenomenon?

Reads the long table `interp stage report` writes (report.csv: one row per task and metric, one
column per condition, with each task's chance) and scores every condition chance-corrected per
task, cc = (acc − chance) / (1 − chance), then averaged over tasks. The targets the bundled model
is built to meet (each one a question, not a pass mark the tasks were shaped for):

  S1cc ≥ 0.6            the model can do the tasks causally;
  S2cc / S1cc ≤ 0.6     a bidirectional (prefix) prefill costs it most of that;
  S4cc / S1cc ≥ 0.8     finetuning under the prefix mask (3b) wins it back;
  S4 − S3a ≥ +0.10      and that is the mask, not the finetuning: the causally finetuned control (3a),
                        evaluated under the same prefix mask, stays well below (raw macro accuracy).

The published Ministral-3-3B ablation (macro 0.695 → 0.356 → 0.409 over hellaswag, piqa, arc_easy,
arc_challenge and winogrande) is shown beside it, chance-corrected with those tasks' chance levels
(0.25, 0.5, 0.25, 0.25, 0.5) applied to the macro, the closest its per-run figures allow.

`python -m interp.analyses.ablation.targets DIR` writes DIR/targets.md from DIR/report.csv (`make replicate`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from interp.analyses.ablation.metrics import chance_corrected
from interp.analyses.ablation.report import CONDITIONS as REPORT_COLUMNS
from interp.analyses.ablation.report import REFERENCE
from interp.util.io import write_text

# The report's columns for the four conditions the targets compare (S3a: the 3a checkpoint, prefix eval).
CONDITIONS = {key: REPORT_COLUMNS[column] for key, column in (("S1", "S1"), ("S2", "S2"), ("S4", "S4"), ("S3a", "S4_3a"))}
PUBLISHED = {key: REFERENCE[key] for key in ("S1", "S2", "S4")}  # Ministral-3-3B macro acc
PUBLISHED_CHANCE = REFERENCE["chance"]  # the five benchmarks' mean chance
MIN_CC_FOR_RATIO = 0.1  # a per-task ratio over an S1 at chance is noise


def summarize(report_csv: str | Path, metric: str = "acc") -> dict:
    """Per-task cc for each condition, their macro, the raw macro, and the four target checks."""
    table = pd.read_csv(report_csv)
    if "scale" in table:  # the report's long table has raw and chance-corrected rows: start from raw
        table = table[table["scale"] == "raw"]
    rows = table[(table["metric"] == metric) & (table["task"] != "macro")]
    per_task = {row["task"]: {key: chance_corrected(row[col], row["chance"]) for key, col in CONDITIONS.items()}
                for _, row in rows.iterrows()}
    cc = {key: sum(t[key] for t in per_task.values()) / len(per_task) for key in CONDITIONS}
    raw = {key: float(rows[col].mean()) for key, col in CONDITIONS.items()}
    targets = [
        ("S1cc ≥ 0.6", cc["S1"], 0.6, cc["S1"] >= 0.6),
        ("S2cc / S1cc ≤ 0.6", cc["S2"] / cc["S1"], 0.6, cc["S2"] / cc["S1"] <= 0.6),
        ("S4cc / S1cc ≥ 0.8", cc["S4"] / cc["S1"], 0.8, cc["S4"] / cc["S1"] >= 0.8),
        ("S4 − S3a ≥ +0.10 (macro acc)", raw["S4"] - raw["S3a"], 0.10, raw["S4"] - raw["S3a"] >= 0.10),
    ]
    return {"per_task": per_task, "cc": cc, "raw": raw, "targets": targets,
            "chance": {row["task"]: row["chance"] for _, row in rows.iterrows()}}


def published_cc() -> dict[str, float]:
    return {key: chance_corrected(acc, PUBLISHED_CHANCE) for key, acc in PUBLISHED.items()}


def render(summary: dict) -> str:
    cols = list(CONDITIONS)
    lines = ["# Toy replication: chance-corrected targets", "",
             "cc = (acc − chance) / (1 − chance) per task, then averaged; S3a = the causally finetuned 3a "
             "checkpoint under prefix eval. From report.csv (acc).", "",
             "| task | chance | " + " | ".join(f"{c} cc" for c in cols) + " | S2cc/S1cc |",
             "|---|---:|" + "---:|" * (len(cols) + 1)]
    for task, values in summary["per_task"].items():
        ratio = f"{values['S2'] / values['S1']:.2f}" if values["S1"] >= MIN_CC_FOR_RATIO else "— (S1 at chance)"
        lines.append(f"| {task} | {summary['chance'][task]:.2f} | "
                     + " | ".join(f"{values[c]:.3f}" for c in cols) + f" | {ratio} |")
    cc, raw = summary["cc"], summary["raw"]
    lines.append("| **macro cc** | | " + " | ".join(f"**{cc[c]:.3f}**" for c in cols)
                 + f" | **{cc['S2'] / cc['S1']:.2f}** |")
    lines.append("| macro acc | | " + " | ".join(f"{raw[c]:.3f}" for c in cols) + " | |")
    pub = published_cc()
    lines.append(f"| Ministral-3-3B macro acc (published) | {PUBLISHED_CHANCE:.2f} | {PUBLISHED['S1']:.3f} | "
                 f"{PUBLISHED['S2']:.3f} | {PUBLISHED['S4']:.3f} | — | |")
    lines.append(f"| Ministral-3-3B macro cc | | {pub['S1']:.3f} | {pub['S2']:.3f} | {pub['S4']:.3f} | — | "
                 f"{pub['S2'] / pub['S1']:.2f} |")
    lines += ["", "| target | measured | bound | result |", "|---|---:|---:|---|"]
    for name, value, bound, ok in summary["targets"]:
        lines.append(f"| {name} | {value:.3f} | {bound:.2f} | {'met' if ok else '**not met**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    out = Path(argv[0] if argv else "docs/replication")
    write_text(out / "targets.md", render(summarize(out / "report.csv")))
    print((out / "targets.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main(sys.argv[1:])
