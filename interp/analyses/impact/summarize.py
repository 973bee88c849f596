"""Readable summaries of a mask-impact table: which tokens, layers and heads matter most.

Three tables for one generation step (plus a fourth with --downstream):
- tokens per layer: the `top` most impactful positions at each layer (Full variant),
- layers: how much each layer's update depends on single tokens (mean and max over positions),
- heads: the (layer, head) pairs most sensitive to one token,
- downstream: the knockouts that move the next-token distribution most (largest KL).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from interp.errors import InterpError

METRICS = {"l2": "l2_distance", "cosine": "cosine_distance"}


@dataclass
class Summary:
    step: int
    metric: str
    tokens_per_layer: pd.DataFrame  # layer, rank, token_position, token_masked, <metric>
    layers: pd.DataFrame  # layer, mean, max, top_position, top_token
    heads: pd.DataFrame  # layer, head, <metric>, token_position, token_masked
    downstream: pd.DataFrame | None  # layer, token_position, token_masked, kl, top1_prob_delta


def metric_column(metric: str) -> str:
    try:
        return METRICS[metric]
    except KeyError:
        raise InterpError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}") from None


def summarize(
    df: pd.DataFrame, *, step: int = 0, metric: str = "l2", top: int = 3, exclude_first: bool = False
) -> Summary:
    """Tables of the most impactful tokens per layer, layers and heads (and logits, if present)."""
    column = metric_column(metric)
    steps = sorted(df["generation_step"].unique())
    if step not in steps:
        raise InterpError(f"generation step {step} not in this result (steps: {', '.join(map(str, steps))})")
    rows = df[df["generation_step"] == step]
    if exclude_first:
        rows = rows[rows["token_position"] > 0]
    keep = ["layer", "token_position", "token_masked", column]

    full = rows[rows["variant"] == "Full"]
    ranked = full.sort_values(["layer", column], ascending=[True, False], kind="stable")
    per_layer = ranked.groupby("layer").head(top)[keep].copy()
    per_layer.insert(1, "rank", per_layer.groupby("layer").cumcount() + 1)

    best = full.loc[full.groupby("layer")[column].idxmax()]
    layers = full.groupby("layer")[column].agg(["mean", "max"]).reset_index()
    layers["top_position"] = best["token_position"].to_numpy()
    layers["top_token"] = best["token_masked"].to_numpy()

    head_rows = rows[rows["variant"].str.startswith("Head_")]
    head_best = head_rows.loc[head_rows.groupby(["layer", "variant"])[column].idxmax()]
    heads = head_best.assign(head=head_best["variant"].str.removeprefix("Head_").astype(int))
    heads = heads.sort_values(column, ascending=False, kind="stable").head(max(top * 3, 5))
    heads = heads[["layer", "head", column, "token_position", "token_masked"]]

    downstream = None
    logits = rows[rows["variant"] == "Logits"]
    if len(logits) and "kl" in logits:
        downstream = logits.sort_values("kl", ascending=False, kind="stable").head(max(top * 3, 5))
        downstream = downstream[["layer", "token_position", "token_masked", "kl", "top1_prob_delta"]]
    return Summary(step, metric, per_layer.reset_index(drop=True), layers, heads.reset_index(drop=True), downstream)


def print_summary(summary: Summary, console=None, title: str = "") -> None:
    """Render the summary as rich tables."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    column = metric_column(summary.metric)
    label = f"{summary.metric} distance"

    def table(caption: str, df: pd.DataFrame, headers: dict[str, str]) -> Table:
        console.print(Text("\n" + caption, style="bold"))  # above the table, so it never wraps to its width
        out = Table(show_edge=False, header_style="bold")
        for key, name in headers.items():
            out.add_column(name, justify="left" if key in ("token_masked", "top_token") else "right")
        for record in df.to_dict("records"):
            out.add_row(*(Text(_cell(record[key])) for key in headers))  # Text: tokens are not markup
        return out

    prefix = f"{title} · " if title else ""
    console.print(table(f"{prefix}most impactful tokens per layer (Full, {label}, step {summary.step})",
                        summary.tokens_per_layer,
                        {"layer": "layer", "rank": "#", "token_position": "pos", "token_masked": "token", column: label}))
    console.print(table("layers: dependence on single tokens (Full)", summary.layers,
                        {"layer": "layer", "mean": f"mean {summary.metric}", "max": f"max {summary.metric}",
                         "top_position": "pos", "top_token": "top token"}))
    console.print(table("heads most sensitive to one token", summary.heads,
                        {"layer": "layer", "head": "head", column: label, "token_position": "pos",
                         "token_masked": "token"}))
    if summary.downstream is not None:
        console.print(table("knockouts that move the next-token distribution most", summary.downstream,
                            {"layer": "layer", "token_position": "pos", "token_masked": "token",
                             "kl": "KL(base‖masked)", "top1_prob_delta": "Δp(top-1)"}))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value)[1:-1] if value.strip() == value and value else repr(value)
    return str(value)
