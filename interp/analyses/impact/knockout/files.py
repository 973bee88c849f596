"""knockout results: DIR/knockout.csv, DIR/summary.json and DIR/knockout.png, written atomically.

The figure is Geva et al.'s: the mean rel_change_pct per layer over the prompts, one line per
source, with a 95% bootstrap confidence band (seaborn, fixed seed, so it redraws identically).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from interp.analyses.impact.knockout import SOURCES
from interp.util.io import save_figure, write_json, write_table

COLOURS = {"subject": "#1f77b4", "non_subject": "#2ca02c", "last": "#d62728"}


def write_knockout(df: pd.DataFrame, summary: dict, out_dir: str | os.PathLike, title: str = "") -> dict[str, Path]:
    """Write the table, the summary and the figure; returns their paths by name."""
    out = Path(out_dir)
    paths = {
        "table": write_table(df, out / "knockout.csv", "csv"),
        "summary": write_json(out / "summary.json", summary),
        "figure": write_figure(df, out / "knockout.png", title=title),
    }
    return paths


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
