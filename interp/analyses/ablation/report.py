"""The recovery report: how much zero-shot accuracy the ablation cost and finetuning won back.

From the newest finished run of each stage under RUNS:
  S1 = stage 1 (causal), S2 = stage 2 (prefix), S4 = stage 4's prefix eval of the 3b checkpoint
  (the model finetuned under the prefix mask); the 3a checkpoint's prefix eval is shown beside it,
  and both checkpoints' causal evals too.
  retention = S2/S1, recovery = S4/S1, gain = S4 − S2, Δ = S2 − S1.
Every figure is shown raw and chance-corrected, cc(x) = (x − chance)/(1 − chance) per task, the
macro of cc being the mean of the tasks' cc (a run at chance scores 0, so a ratio of cc values says
how much of the above-chance accuracy survived). The published ablation's figures are shown as a
reference row, corrected with the five benchmarks' mean chance (0.35).
The ablation's success criteria, on the raw macro: S4 ≥ 0.8 × S1 and S4 ≥ S2 + 0.05. The report also
groups the tasks by kind (fact recall, in-context, word order) and states the toy replication's
targets beside the published row (report_groups).
Written atomically as RUNS/report.md, RUNS/report.csv (the long table) and RUNS/report.png.
With a stage 2 layer sweep (`--sweep-layers G`), also RUNS/sweep.csv and RUNS/sweep.png: accuracy
with prefix attention in each layer group alone, against S1 and S2 (all layers) — where the damage happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from interp.analyses.ablation.metrics import chance_corrected, metric_or_acc
from interp.analyses.ablation.report_groups import groups_markdown, targets_markdown
from interp.analyses.ablation.stage_metrics import StageMetrics
from interp.analyses.ablation.stages import latest_run
from interp.errors import InterpError
from interp.util.io import save_figure, write_table, write_text

METRICS = ("acc", "acc_norm")
MACRO = "macro"
# condition → column label, in display order
CONDITIONS = {
    "S1": "S1 causal",
    "S2": "S2 prefix",
    "S4": "S4 3b prefix",
    "S4_3a": "S4 3a prefix",
    "3b_causal": "3b causal",
    "3a_causal": "3a causal",
}
SCALES = ("raw", "chance-corrected")
# The published ablation (Ministral-3-3B-Instruct, five benchmarks, 500 items each): macro acc and
# the five benchmarks' mean chance accuracy (hellaswag, arc 0.25; piqa, winogrande 0.5).
REFERENCE = {"label": "Ministral-3-3B-Instruct, published ablation", "chance": 0.35,
             "S1": 0.695, "S2": 0.356, "S4": 0.409}
RECOVERY_FLOOR = 0.8  # S4 ≥ 0.8 × S1
GAIN_FLOOR = 0.05  # S4 ≥ S2 + 0.05


@dataclass
class StageResults:
    """Each condition's metrics.json content (evaluate's shape) and the run it came from."""

    metrics: dict[str, dict]
    runs: dict[str, Path]


def collect(runs_dir: str | Path) -> StageResults:
    metrics: dict[str, dict] = {}
    runs: dict[str, Path] = {}
    wanted = [("1", "S1", "causal", None), ("2", "S2", "prefix", None), ("4", "S4", "prefix", "3b"),
              ("4", "3b_causal", "causal", "3b"), ("4", "S4_3a", "prefix", "3a"), ("4", "3a_causal", "causal", "3a")]
    records: dict[str, StageMetrics] = {}
    for stage, key, mode, checkpoint in wanted:
        run = latest_run(runs_dir, stage)
        if run is None:
            continue
        record = records.setdefault(stage, StageMetrics.read(run))
        found = record.find(mode, checkpoint)
        if found is not None:
            metrics[key], runs[key] = found.metrics, run
    if not metrics:
        raise InterpError(f"no finished stage runs under {runs_dir}: run `interp stage run 1` first")
    return StageResults(metrics, runs)


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def _value(m: dict, task: str, metric: str, corrected: bool) -> float:
    """A condition's figure for one task (or the macro), raw or chance-corrected; NaN if absent."""
    nan = float("nan")
    if task == MACRO:
        if not corrected:
            return m.get(f"macro_{metric}", nan)
        values = [_value(m, t, metric, True) for t in m["tasks"]]
        values = [v for v in values if not math.isnan(v)]
        return sum(values) / len(values) if values else nan
    tm = m["tasks"].get(task)
    if tm is None:
        return nan
    value = metric_or_acc(tm, metric)  # lm-eval's winogrande: acc only, which stands in (as in the macro)
    if value is None:
        return nan
    value = chance_corrected(value, tm["chance"]) if corrected else value
    return nan if value is None else value


def recovery_table(results: StageResults, metric: str = "acc", corrected: bool = False) -> pd.DataFrame:
    """Rows: tasks then macro. Columns: chance, each condition, Δ, retention, gain, recovery.

    corrected: every figure chance-corrected first (cc per task, macro = mean of the tasks' cc).
    """
    tasks: list[str] = []
    for m in results.metrics.values():
        tasks += [t for t in m["tasks"] if t not in tasks]
    nan = float("nan")
    rows = []
    for task in [*tasks, MACRO]:
        row: dict = {"task": task}
        chances = [m["tasks"][task]["chance"] for m in results.metrics.values() if task in m["tasks"]]
        row["chance"] = chances[0] if chances else _mean_chance(results, tasks)
        for key, label in CONDITIONS.items():
            m = results.metrics.get(key)
            row[label] = nan if m is None else _value(m, task, metric, corrected)
        s1, s2, s4, s4a = (row[CONDITIONS[k]] for k in ("S1", "S2", "S4", "S4_3a"))
        row.update({
            "Δ S2−S1": s2 - s1, "retention S2/S1": _ratio(s2, s1),
            "gain S4−S2": s4 - s2, "recovery S4/S1": _ratio(s4, s1), "recovery 3a S4/S1": _ratio(s4a, s1),
        })
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_chance(results: StageResults, tasks: list[str]) -> float:
    first = next(iter(results.metrics.values()))
    values = [first["tasks"][t]["chance"] for t in tasks if t in first["tasks"]]
    return sum(values) / len(values) if values else float("nan")


def success_criteria(table: pd.DataFrame) -> list[dict]:
    """The ablation's two success criteria on the macro, for the 3b checkpoint (and 3a beside it)."""
    macro = table.set_index("task").loc[MACRO]
    s1, s2 = macro[CONDITIONS["S1"]], macro[CONDITIONS["S2"]]
    out = []
    for checkpoint, key in (("3b", "S4"), ("3a", "S4_3a")):
        s4 = macro[CONDITIONS[key]]
        for criterion, needed in ((f"S4 ≥ {RECOVERY_FLOOR} × S1", RECOVERY_FLOOR * s1), (f"S4 ≥ S2 + {GAIN_FLOOR}", s2 + GAIN_FLOOR)):
            known = not (math.isnan(s4) or math.isnan(needed))
            out.append({"checkpoint": checkpoint, "criterion": criterion, "value": s4, "needed": needed,
                        "result": ("PASS" if s4 >= needed - 1e-9 else "FAIL") if known else "n/a"})
    return out


@dataclass
class ReportFiles:
    markdown: Path
    table: Path
    figure: Path
    sweep_table: Path | None = None  # with a stage 2 layer sweep
    sweep_figure: Path | None = None


def build_report(runs_dir: str | Path, out_dir: str | Path | None = None) -> ReportFiles:
    """Collect the latest runs and write report.md, report.csv and report.png (atomically)."""
    runs_dir = Path(runs_dir)
    out = Path(out_dir) if out_dir is not None else runs_dir
    results = collect(runs_dir)
    tables = {metric: recovery_table(results, metric) for metric in METRICS}
    corrected = {metric: recovery_table(results, metric, corrected=True) for metric in METRICS}
    long = pd.concat([t.assign(metric=m, scale=scale) for scale, group in zip(SCALES, (tables, corrected))
                      for m, t in group.items()], ignore_index=True)
    files = ReportFiles(out / "report.md", out / "report.csv", out / "report.png")
    write_table(long, files.table)
    save_figure(_figure(tables), files.figure, dpi=120, bbox_inches="tight")
    markdown = _markdown(results, tables, files.figure.name, corrected)
    sweep_run = latest_run(runs_dir, "2", sweep=True)
    if sweep_run is not None:
        sweep = sweep_table(StageMetrics.read(sweep_run))
        files.sweep_table, files.sweep_figure = out / "sweep.csv", out / "sweep.png"
        write_table(sweep, files.sweep_table)
        save_figure(_sweep_figure(sweep, tables["acc"]), files.sweep_figure, dpi=120, bbox_inches="tight")
        markdown += _sweep_markdown(sweep, sweep_run, tables["acc"], files.sweep_figure.name)
    write_text(files.markdown, markdown)
    return files


# ------------------------------------------------------------------------------------- the layer sweep
def sweep_table(sweep: StageMetrics) -> pd.DataFrame:
    """A layer sweep's record → one row per (group, task), macro last in each group.

    Columns: group (0..G−1), layers ("4-6"), task, acc, acc_norm, chance.
    """
    rows = []
    for index, group in enumerate(sweep.evals):
        m, label = group.metrics, group.layers
        chances = []
        for task, tm in m["tasks"].items():
            rows.append({"group": index, "layers": label, "task": task, **{k: metric_or_acc(tm, k) for k in METRICS},
                         "chance": tm["chance"]})
            chances.append(tm["chance"])
        rows.append({"group": index, "layers": label, "task": MACRO, **{k: m[f"macro_{k}"] for k in METRICS},
                     "chance": sum(chances) / len(chances) if chances else float("nan")})
    return pd.DataFrame(rows)


def _references(stage_table: pd.DataFrame) -> dict[str, float]:
    """Macro acc of S1 (causal) and S2 (prefix in every layer), where they were run."""
    macro = stage_table.set_index("task").loc[MACRO]
    out = {"S1 causal": macro[CONDITIONS["S1"]], "S2 prefix, all layers": macro[CONDITIONS["S2"]]}
    return {label: value for label, value in out.items() if not math.isnan(value)}


def _sweep_figure(sweep: pd.DataFrame, stage_table: pd.DataFrame):
    """Accuracy per layer group (prefix attention there only): a line per task, the macro in black,
    S1 / S2 macros and chance as horizontal references."""
    import seaborn as sns
    from matplotlib.figure import Figure

    order = list(dict.fromkeys(sweep["layers"]))
    fig = Figure(figsize=(max(6.0, 0.9 * len(order) + 3.5), 4.4))
    ax = fig.subplots()
    tasks = sweep[sweep.task != MACRO]
    if not tasks.empty:
        sns.lineplot(data=tasks, x="layers", y="acc", hue="task", marker="o", ax=ax, palette="deep", alpha=0.7,
                     sort=False)
    macro = sweep[sweep.task == MACRO]
    ax.plot(macro["layers"], macro["acc"], color="black", marker="o", linewidth=2.5, label="macro")
    for (label, value), (color, style) in zip(_references(stage_table).items(), (("dimgray", "-."), ("firebrick", ":"))):
        ax.axhline(value, color=color, linestyle=style, linewidth=1.8, label=f"{label} (macro)")
    ax.axhline(float(macro["chance"].mean()), color="black", linestyle="--", linewidth=0.8, label="chance (macro)")
    ax.set_xticks(range(len(order)), order)
    ax.set_ylim(0, 1)
    ax.set_xlabel("layers with prefix attention (the others causal)")
    ax.set_ylabel("zero-shot acc")
    ax.set_title("stage 2 by layer group: where does the damage happen?")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _sweep_markdown(sweep: pd.DataFrame, run: Path, stage_table: pd.DataFrame, figure_name: str) -> str:
    wide = sweep.pivot(index=["group", "layers"], columns="task", values="acc").reset_index()
    tasks = [t for t in dict.fromkeys(sweep["task"]) if t != MACRO] + [MACRO]
    header = "| layers | " + " | ".join(tasks) + " |"
    lines = ["", "## Ablation by layer (acc)", "",
             f"Stage 2 with prefix attention in one group of layers, causal in the others ({run}).", "",
             header, "|---|" + "---:|" * len(tasks)]
    for _, row in wide.sort_values("group").iterrows():
        lines.append(f"| {row['layers']} | " + " | ".join(_fmt(row[t]) for t in tasks) + " |")
    refs = _references(stage_table)
    if refs:
        lines += ["", "Macro for reference: " + ", ".join(f"{k} {_fmt(v)}" for k, v in refs.items()) + "."]
    lines += ["", f"![accuracy per layer group]({figure_name})", ""]
    return "\n".join(lines)


def reference_row() -> dict:
    """The published ablation's macro figures and ratios, raw and chance-corrected."""
    ref, chance = REFERENCE, REFERENCE["chance"]
    row = {"reference": ref["label"], "chance": chance}
    for scale in SCALES:
        s1, s2, s4 = (ref[k] if scale == "raw" else chance_corrected(ref[k], chance) for k in ("S1", "S2", "S4"))
        suffix = "" if scale == "raw" else " cc"
        row.update({f"S1{suffix}": s1, f"S2{suffix}": s2, f"S4{suffix}": s4,
                    f"retention{suffix}": _ratio(s2, s1), f"recovery{suffix}": _ratio(s4, s1)})
    return row


# ------------------------------------------------------------------------------------- rendering
def _fmt(value, ratio: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.3f}×" if ratio else f"{value:.4f}"


def _markdown_table(df: pd.DataFrame) -> str:
    header = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "|".join("---" if c == "task" else "---:" for c in df.columns) + "|"
    lines = [header, rule]
    for row in df.itertuples(index=False):
        cells = []
        for col, value in zip(df.columns, row):
            if col == "task":
                cells.append(f"**{value}**" if value == MACRO else str(value))
            else:
                cells.append(_fmt(value, ratio=col.startswith(("retention", "recovery"))))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(results: StageResults, tables: dict[str, pd.DataFrame], figure_name: str,
              corrected: dict[str, pd.DataFrame] | None = None) -> str:
    lines = ["# Prefill-mask ablation: recovery report", "",
             "S1 = stage 1 (causal eval), S2 = stage 2 (prefix eval: context bidirectional, answer causal), "
             "S4 = stage 4 prefix eval of the 3b checkpoint (finetuned under the prefix mask); "
             "retention = S2/S1, recovery = S4/S1, gain = S4 − S2.", "", "## Runs", "",
             "| condition | run | model | attention | limit |", "|---|---|---|---|---:|"]
    for key, label in CONDITIONS.items():
        if key in results.metrics:
            m = results.metrics[key]
            lines.append(f"| {label} | {results.runs[key]} | {m.get('model', '?')} | {m.get('attention', '?')} | "
                         f"{m.get('limit', '?')} |")
    task_sets = {key: tuple(m["tasks"]) for key, m in results.metrics.items()}
    if len(set(task_sets.values())) > 1:
        lines += ["", "**Warning:** the runs did not evaluate the same tasks; macros are over different task sets."]
    missing = [label for key, label in CONDITIONS.items() if key not in results.metrics]
    if missing:
        lines += ["", "Not run yet: " + ", ".join(missing) + "."]
    for metric, table in tables.items():
        lines += ["", f"## {metric}", "", _markdown_table(table), "", "Success criteria (the published ablation's, on the macro):", "",
                  "| checkpoint | criterion | S4 | needed | result |", "|---|---|---:|---:|---|"]
        for c in success_criteria(table):
            lines.append(f"| {c['checkpoint']} | {c['criterion']} | {_fmt(c['value'])} | {_fmt(c['needed'])} | "
                         f"**{c['result']}** |")
        stand_ins = sorted({t for m in results.metrics.values() for t, tm in m["tasks"].items()
                            if tm.get(metric) is None and tm.get("acc") is not None})
        if stand_ins:
            lines += ["", f"{', '.join(stand_ins)}: no {metric} (lm-eval reports acc only), so acc stands in."]
        if corrected is not None:
            lines += ["", f"### {metric}, chance-corrected: (x − chance)/(1 − chance)", "",
                      _markdown_table(corrected[metric])]
    if corrected is not None:
        lines += ["", "## By kind of task (acc)", "",
                  "Fact recall needs no word order from the context; in-context tasks find the answer in it; the "
                  "word-order tasks need left-to-right order, which the causal mask provides. Each figure is the mean "
                  "over the group's tasks.", "", groups_markdown(tables["acc"], corrected["acc"], _fmt),
                  "", "## Replication targets (acc)", "",
                  "What the toy replication is built to show, chance-corrected (cc) unless marked raw; S4 3a = the "
                  "causally finetuned control under the same prefix eval.", "",
                  targets_markdown(tables["acc"], corrected["acc"], _fmt)]
    lines += ["", "## Reference: the published ablation (macro acc)", "", _reference_markdown()]
    lines += ["", f"![accuracy by stage]({figure_name})", ""]
    return "\n".join(lines)


def _reference_markdown() -> str:
    row = reference_row()
    lines = ["| figures | chance | S1 causal | S2 prefix | S4 3b prefix | retention S2/S1 | recovery S4/S1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for scale, suffix in (("raw", ""), ("chance-corrected", " cc")):
        lines.append(f"| {row['reference']} ({scale}) | {_fmt(row['chance'])} | " + " | ".join(
            _fmt(row[k + suffix], ratio=k in ("retention", "recovery")) for k in ("S1", "S2", "S4", "retention", "recovery"))
            + " |")
    return "\n".join(lines)


def _figure(tables: dict[str, pd.DataFrame]):
    """Grouped bars: one panel per metric, tasks (and macro) on x, one bar per condition run."""
    import seaborn as sns
    from matplotlib.figure import Figure

    shown = [CONDITIONS[k] for k in ("S1", "S2", "S4", "S4_3a")]
    fig = Figure(figsize=(5 + 1.6 * len(next(iter(tables.values()))), 4.2 * len(tables)))
    axes = fig.subplots(len(tables), 1, squeeze=False)[:, 0]
    for ax, (metric, table) in zip(axes, tables.items()):
        long = table.melt(id_vars=["task"], value_vars=shown, var_name="condition", value_name=metric).dropna()
        if long.empty:
            ax.set_axis_off()
            continue
        sns.barplot(data=long, x="task", y=metric, hue="condition", order=list(table.task), ax=ax, palette="deep")
        centers = pd.RangeIndex(len(table))
        ax.hlines(table["chance"], centers - 0.45, centers + 0.45, colors="black", linestyles="--", label="chance",
                  zorder=3)
        ax.set_ylim(0, 1)
        ax.set_xlabel("")
        ax.set_title(f"zero-shot {metric} by stage")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig
