"""knockout results: DIR/knockout.csv, DIR/summary.json and DIR/knockout.png, written as one unit.

Written and read through the result contract (`interp.results`): summary.json records the table's
row count and SHA-256, so a table cut mid-way or written by another run is refused.
The figure is Geva et al.'s: the mean rel_change_pct per layer over the prompts, one line per
source, with a 95% bootstrap confidence band (seaborn, fixed seed, so it redraws identically).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from interp.analyses.impact.knockout import COLUMNS, SOURCES
from interp.results import TableResult
from interp.util.io import save_figure

COLOURS = {"subject": "#1f77b4", "non_subject": "#2ca02c", "last": "#d62728"}


@dataclass
class KnockoutResult(TableResult):
    """DIR/knockout.csv (or .parquet) with DIR/summary.json; writing also draws DIR/knockout.png."""

    title: str = ""

    kind = "knockout"
    columns = COLUMNS
    integer = ("prompt_index", "layer", "window")
    numeric = ("top1_prob", "top1_prob_masked", "rel_change_pct", "kl")
    strings = ("top1_token", "source")
    table_name = "knockout.csv"
    meta_name = "summary.json"

    def extra_files(self, out: Path) -> dict[str, Path]:
        return {"figure": write_figure(self.df, out / "knockout.png", title=self.title)}


def write_knockout(df: pd.DataFrame, summary: dict, out_dir: str | os.PathLike, title: str = "") -> dict[str, Path]:
    """Write the table, the summary and the figure as one unit; returns their paths by name."""
    paths = KnockoutResult(df, summary, title=title).write(out_dir)
    return {"table": paths["table"], "summary": paths["meta"], "figure": paths["figure"]}


def write_figure(df: pd.DataFrame, path: str | os.PathLike, title: str = "") -> Path:
    """Mean % change of the top-1 probability per layer, a line per source, 95% CI band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    present = [s for s in SOURCES if s in set(df["source"])]
    sns.lineplot(data=df, x="layer", y="rel_change_pct", hue="source", hue_order=present, palette=COLOURS,
                 errorbar=("ci", 95), seed=0, marker="o", ax=ax)
    ax.axhline(0, color="grey", linewidth=0.8, zorder=0)
    layers = sorted(set(df["layer"]))
    ax.set_xticks(layers if len(layers) <= 16 else layers[:: max(1, len(layers) // 16)])
    ax.set_xlabel("layer (centre of the knocked-out window)")
    ax.set_ylabel("% change in p(top-1 token)")
    window = int(df["window"].iloc[0]) if len(df) else 1
    n = df["prompt_index"].nunique()
    ax.set_title(title or f"attention knockout: final → source, window {window}, {n} prompts", fontsize=10)
    ax.legend(title="blocked edges from", fontsize=9, title_fontsize=9)
    fig.tight_layout()
    try:
        return save_figure(fig, path, dpi=150)
    finally:
        plt.close(fig)
