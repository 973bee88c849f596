"""Layer × token heatmaps of mask-impact results, alone or compared across checkpoints.

One heatmap: rows are layers, columns token positions labelled with the token strings, colour
the chosen distance of one variant at one generation step. Position 0 usually dominates (the
attention sink); `exclude_first` keeps it out of the colour scale so the rest stays readable
(its cells are still drawn, saturated).

Comparison: the same prompt on several checkpoints, side by side on one shared colour scale, and
below each the difference to the first file. Files whose tokens (or layers) differ are refused:
a cell-by-cell difference between different prompts would be meaningless.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from interp.analyses.impact.mask_impact.io import read_result, step_tokens
from interp.errors import InterpError
from interp.util.io import save_figure

HEATMAP_METRICS = {"l2": "l2_distance", "cosine": "cosine_distance", "kl": "kl"}
ANNOTATE_UP_TO = 160  # cells; larger grids get colour only


@dataclass
class Grid:
    """One variant/metric/step of a result as a layers × positions matrix."""

    label: str
    values: pd.DataFrame  # index: layer, columns: token_position
    tokens: list[str]

    def color_range(self, exclude_first: bool) -> tuple[float, float]:
        cells = self.values.iloc[:, 1:] if exclude_first and self.values.shape[1] > 1 else self.values
        return float(np.nanmin(cells.to_numpy())), float(np.nanmax(cells.to_numpy()))


def grid(df: pd.DataFrame, *, variant: str = "Full", metric: str = "l2", step: int = 0, label: str = "") -> Grid:
    """Select one variant/metric/step and pivot it to layers × positions, with clear errors."""
    if metric not in HEATMAP_METRICS:
        raise InterpError(f"unknown metric {metric!r}; choose one of {', '.join(HEATMAP_METRICS)}")
    column = HEATMAP_METRICS[metric]
    steps = sorted(int(s) for s in df["generation_step"].unique())
    if step not in steps:
        raise InterpError(f"{label or 'result'} has no generation step {step} (steps: {', '.join(map(str, steps))})")
    rows = df[(df["generation_step"] == step) & (df["variant"] == variant)]
    if rows.empty:
        variants = list(dict.fromkeys(df["variant"]))
        raise InterpError(f"{label or 'result'} has no variant {variant!r}; it has {_shorten(variants)}")
    if column not in rows or rows[column].isna().all():
        raise InterpError(f"metric {metric!r} is only defined for variant Logits (run with --downstream)")
    values = rows.pivot(index="layer", columns="token_position", values=column).sort_index().sort_index(axis=1)
    return Grid(label, values, step_tokens(df, step))


def heatmap_figure(g: Grid, *, metric: str = "l2", variant: str = "Full", step: int = 0, exclude_first: bool = False):
    """A seaborn heatmap of one grid."""
    fig, (ax,) = _figure(1, 1, g)
    vmin, vmax = g.color_range(exclude_first)
    _draw(ax, g, vmin, vmax, f"{metric} distance")
    note = " · position 0 outside the colour scale" if exclude_first else ""
    ax.set_title(_escape(f"{g.label} · {variant} · {metric} · step {step}{note}"), loc="left")
    return fig


def comparison_figure(grids: list[Grid], *, metric: str = "l2", variant: str = "Full", step: int = 0,
                      exclude_first: bool = False):
    """Side-by-side heatmaps on one colour scale; below, each one minus the first."""
    check_comparable(grids)
    fig, axes = _figure(2, len(grids), grids[0])
    ranges = [g.color_range(exclude_first) for g in grids]
    vmin, vmax = min(r[0] for r in ranges), max(r[1] for r in ranges)
    for ax, g in zip(axes[: len(grids)], grids):
        _draw(ax, g, vmin, vmax, f"{metric} distance")
        ax.set_title(_escape(g.label), loc="left")
    diffs = [g.values - grids[0].values for g in grids[1:]]
    cells = [d.iloc[:, 1:] if exclude_first and d.shape[1] > 1 else d for d in diffs]
    bound = max(float(np.nanmax(np.abs(c.to_numpy()))) for c in cells) or 1.0
    axes[len(grids)].axis("off")
    axes[len(grids)].text(0.5, 0.5, "difference to the first →", ha="center", va="center", transform=axes[len(grids)].transAxes)
    for ax, g, d in zip(axes[len(grids) + 1:], grids[1:], diffs):
        _draw(ax, Grid(g.label, d, g.tokens), -bound, bound, f"Δ {metric}", cmap="vlag")
        ax.set_title(_escape(f"{g.label} − {grids[0].label}"), loc="left")
    note = " · position 0 outside the colour scale" if exclude_first else ""
    fig.suptitle(_escape(f"{variant} · {metric} · step {step}{note}"), x=0.01, ha="left")
    return fig


def check_comparable(grids: list[Grid]) -> None:
    """Refuse results of different prompts (tokens) or layer sets."""
    first = grids[0]
    for other in grids[1:]:
        if other.tokens != first.tokens:
            where = next((i for i, (a, b) in enumerate(zip(first.tokens, other.tokens)) if a != b), None)
            detail = (f"position {where}: {other.tokens[where]!r} vs {first.tokens[where]!r}" if where is not None
                      else f"{len(other.tokens)} tokens vs {len(first.tokens)}")
            raise InterpError(f"cannot compare {other.label} with {first.label}: their tokens differ ({detail})")
        if list(other.values.index) != list(first.values.index):
            raise InterpError(f"cannot compare {other.label} with {first.label}: they cover different layers")


def write_heatmap(path: str | os.PathLike, out: str | os.PathLike | None = None, *, variant: str = "Full",
                  metric: str = "l2", step: int = 0, exclude_first: bool = False) -> Path:
    """Read a result file and write its heatmap PNG (default: beside it)."""
    df, meta = read_result(path)
    g = grid(df, variant=variant, metric=metric, step=step, label=result_label(path, meta))
    out = Path(out) if out else Path(path).with_name(f"{Path(path).stem}_{variant.lower()}_{metric}_step{step}.png")
    return save_figure(heatmap_figure(g, metric=metric, variant=variant, step=step, exclude_first=exclude_first),
                       out, dpi=120, bbox_inches="tight")


def write_comparison(paths: list[str | os.PathLike], out: str | os.PathLike | None = None, *, variant: str = "Full",
                     metric: str = "l2", step: int = 0, exclude_first: bool = False,
                     labels: list[str] | None = None) -> Path:
    """Read two or more result files of the same prompt and write the comparison PNG."""
    if len(paths) < 2:
        raise InterpError("compare needs at least two result files")
    grids = []
    for i, path in enumerate(paths):
        df, meta = read_result(path)
        label = labels[i] if labels else result_label(path, meta)
        grids.append(grid(df, variant=variant, metric=metric, step=step, label=label))
    _disambiguate(grids, paths)
    first = Path(paths[0])
    out = Path(out) if out else first.with_name(f"{first.stem}_compare_{variant.lower()}_{metric}_step{step}.png")
    fig = comparison_figure(grids, metric=metric, variant=variant, step=step, exclude_first=exclude_first)
    return save_figure(fig, out, dpi=120, bbox_inches="tight")


def result_label(path: str | os.PathLike, meta: dict | None) -> str:
    """The model's short name from the sidecar (as the user gave it, else its last path part), else the file name."""
    meta = meta or {}
    if meta.get("model_label"):
        return str(meta["model_label"])
    return Path(str(meta["model"])).name if meta.get("model") else Path(path).stem


# --------------------------------------------------------------------------- drawing


def _figure(n_rows: int, n_cols: int, g: Grid):
    from matplotlib.figure import Figure

    n_layers, n_pos = g.values.shape
    width = min(max(5.0, 0.3 * n_pos + 2.5), 30.0)
    height = min(max(2.5, 0.28 * n_layers + 1.8), 20.0)
    fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    return fig, list(axes)


def _draw(ax, g: Grid, vmin: float, vmax: float, bar_label: str, cmap: str = "rocket_r") -> None:
    import seaborn as sns

    annotate = g.values.size <= ANNOTATE_UP_TO  # small grids read better with the numbers in the cells
    sns.heatmap(g.values, ax=ax, vmin=vmin, vmax=vmax, cmap=cmap, cbar_kws={"label": bar_label},
                linewidths=0.3, linecolor="white", square=False, annot=annotate, fmt=".2g",
                annot_kws={"fontsize": 7})
    ax.set_xticks(np.arange(len(g.tokens)) + 0.5)
    ax.set_xticklabels([_escape(_visible(t)) for t in g.tokens], rotation=90, fontsize=8)
    ax.set_yticks(np.arange(len(g.values.index)) + 0.5)
    ax.set_yticklabels([str(layer) for layer in g.values.index], rotation=0, fontsize=8)
    ax.set_xlabel("masked token")
    ax.set_ylabel("layer")


def _visible(token: str) -> str:
    """Whitespace a reader can see: a leading space as ␣, newlines and tabs escaped."""
    token = token.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return "␣" + token[1:] if token.startswith(" ") else (token or "∅")


def _escape(text: str) -> str:
    """Keep matplotlib from reading $…$ in token strings as math."""
    return text.replace("$", r"\$")


def _shorten(items: list[str], limit: int = 6) -> str:
    return ", ".join(items[:limit]) + (f", … ({len(items)} in all)" if len(items) > limit else "")


def _disambiguate(grids: list[Grid], paths: list) -> None:
    """Two files from same-named checkpoints get their file names as labels instead."""
    labels = [g.label for g in grids]
    if len(set(labels)) < len(labels):
        for g, path in zip(grids, paths):
            g.label = Path(path).stem
