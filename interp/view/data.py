"""Result files → the viewer's payload: compact, JSON-ready, checked for comparability.

Two kinds of input:
- a mask-impact result (CSV or Parquet with its JSON sidecar, or the DataFrame `mask_impact` returned);
- a knockout result: a directory holding knockout.csv (or .parquet) and summary.json, either file of
  it, or its DataFrame.
Files are read through the result contract (interp.results: columns, numbers and the sidecar's row
count and hash checked, one-line errors).

Mask-impact values are stored per (step, metric, variant) as one base64 little-endian float32
array of layers × positions (NaN where the table has no row). That keeps 28 layers × 512 tokens ×
18 variants × 2 metrics near 2.8 MB, where JSON numbers would take three times that, and the page
decodes an array only when it is first shown. Extra columns in either table are ignored.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from interp.analyses.impact.knockout import COLUMNS as KNOCKOUT_COLUMNS
from interp.analyses.impact.knockout.files import KnockoutResult
from interp.analyses.impact.mask_impact.io import MaskImpactResult
from interp.errors import InterpError
from interp.results import TableResult
from interp.view import Source

PROMPT_KEYS = ("prompt_index", "prompt", "subject", "tokens", "token_ids", "sources")
KINDS: dict[str, type[TableResult]] = {"mask_impact": MaskImpactResult, "knockout": KnockoutResult}


@dataclass
class Loaded:
    """One input, read: its kind, table, metadata (sidecar or summary.json) and where it came from."""

    kind: str  # "mask_impact" | "knockout"
    df: pd.DataFrame
    meta: dict | None
    path: Path | None
    label: str = ""


# --------------------------------------------------------------------------- reading


def load_source(source: Source) -> Loaded:
    """Read one input through the result contract; its kind from its columns (a knockout table has
    `source` and `rel_change_pct`) or its place (a directory or summary.json is a knockout result)."""
    if isinstance(source, pd.DataFrame):
        kind = "knockout" if _is_knockout(source.columns) else "mask_impact"
        meta = source.attrs.get(kind)
        return Loaded(kind, source, dict(meta) if isinstance(meta, dict) else None, None)
    path = Path(source)
    if path.is_dir():
        if not any((path / name).is_file() for name in ("knockout.csv", "knockout.parquet")):
            raise InterpError(f"{path} is a directory without knockout.csv: give a result file or a knockout directory")
    elif not path.is_file():
        raise InterpError(f"no such file: {path}")
    elif path.name == KnockoutResult.meta_name:
        path = path.parent
    kind = "knockout" if path.is_dir() or _is_knockout(_columns(path)) else "mask_impact"
    result = KINDS[kind].read(path)
    return Loaded(kind, result.df, result.meta or None, result.path)


def _columns(path: Path) -> list[str]:
    """The header of a CSV or Parquet table, without reading it whole."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception:
        return []  # not a table we can peek at: the mask-impact reader gives the one-line error


def _is_knockout(columns) -> bool:
    return {"source", "rel_change_pct"} <= set(columns)


# --------------------------------------------------------------------------- mask-impact


def mask_impact_payload(item: Loaded) -> dict:
    """One mask-impact result as the page reads it: tokens, ids, layers, variants, packed values per step."""
    from interp.analyses.impact.heatmaps import HEATMAP_METRICS

    df, meta = item.df, item.meta or {}
    if df.empty:
        raise InterpError(f"{item.path or 'the mask-impact table'} has no rows")
    layers = sorted(int(x) for x in df["layer"].unique())
    variants = list(dict.fromkeys(str(v) for v in df["variant"]))
    metrics = [name for name, column in HEATMAP_METRICS.items() if column in df.columns]
    layer_index = pd.Index(layers)
    variant_index = pd.Index(variants)
    meta_steps = {int(s.get("generation_step", -1)): s for s in meta.get("steps") or [] if isinstance(s, dict)}
    steps, tokens = [], {}
    for step, rows in df.groupby("generation_step", sort=True):
        step = int(step)
        positions = rows["token_position"].to_numpy(dtype=np.int64)
        n = int(positions.max()) + 1
        first = rows.drop_duplicates("token_position")
        tokens.update(zip(first["token_position"].astype(int), first["token_masked"].astype(str)))
        li = layer_index.get_indexer(rows["layer"].astype(int))
        vi = variant_index.get_indexer(rows["variant"].astype(str))
        values: dict[str, dict[str, str]] = {}
        for name in metrics:
            cube = np.full((len(variants), len(layers), n), np.nan, dtype="<f4")  # [V,L,N]
            cube[vi, li, positions] = pd.to_numeric(rows[HEATMAP_METRICS[name]], errors="coerce").to_numpy(dtype="<f4")
            packed = {variants[v]: _pack(cube[v]) for v in range(len(variants)) if not np.isnan(cube[v]).all()}
            if packed:
                values[name] = packed
        next_token = (meta_steps.get(step) or {}).get("next_token") or {}
        steps.append({"step": step, "n": n, "next_token": next_token.get("token"), "values": values})
    n_max = max(tokens) + 1 if tokens else 0
    token_list = [tokens.get(p, "") for p in range(n_max)]
    return {
        "kind": "mask_impact",
        "label": item.label,
        "model": meta.get("model"),
        "prompt": meta.get("prompt"),
        "settings": {k: meta.get(k) for k in ("mode", "method", "head_space", "dtype") if meta.get(k) is not None},
        "layers": layers,
        "variants": variants,
        "metrics": [m for m in metrics if any(m in s["values"] for s in steps)],
        "tokens": token_list,
        "token_ids": _token_ids(meta, token_list),
        "steps": steps,
    }


def _pack(matrix: np.ndarray) -> str:
    """A float32 matrix (row-major) as base64 of its little-endian bytes."""
    return base64.b64encode(np.ascontiguousarray(matrix, dtype="<f4").tobytes()).decode("ascii")


def _token_ids(meta: dict, tokens: list[str]) -> list[int | None]:
    """Token ids by position from the sidecar's token records, where they cover the table's positions."""
    ids: list[int | None] = [None] * len(tokens)
    for record in meta.get("tokens") or []:
        if isinstance(record, dict) and isinstance(record.get("position"), int) and 0 <= record["position"] < len(ids):
            ids[record["position"]] = record.get("id")
    return ids


def check_mask_impact_comparable(items: list[Loaded]) -> None:
    """Refuse to compare results of different prompts or layers, with `heatmap compare`'s one-line error."""
    from interp.analyses.impact.heatmaps import check_comparable, grid

    variant = str(items[0].df["variant"].iloc[0])
    check_comparable([grid(item.df, variant=variant, metric="l2", step=0, label=item.label) for item in items])


# --------------------------------------------------------------------------- knockout


def knockout_payload(item: Loaded) -> dict:
    """One knockout result: its rows column by column, and the prompts' tokens and source positions."""
    df, meta = item.df, item.meta or {}
    missing = [c for c in KNOCKOUT_COLUMNS if c not in df.columns]
    if missing:
        where = item.path or "the table"
        raise InterpError(f"{where} is not a knockout result: missing column(s) {', '.join(missing)}")
    df = df.sort_values(["prompt_index", "source", "window", "layer"], kind="stable")
    columns = {}
    for name in KNOCKOUT_COLUMNS:
        series = df[name]
        if name in ("prompt_index", "layer", "window"):
            columns[name] = [int(x) for x in series]
        elif name in ("source", "top1_token"):
            columns[name] = [str(x) for x in series]
        else:
            columns[name] = [_number(x) for x in pd.to_numeric(series, errors="coerce")]
    prompts = [{k: p[k] for k in PROMPT_KEYS if k in p} for p in meta.get("prompts") or [] if isinstance(p, dict)]
    return {
        "kind": "knockout",
        "label": item.label,
        "model": meta.get("model"),
        "attention": meta.get("attention"),
        "window": meta.get("window"),
        "n_prompts": meta.get("n_prompts"),
        "skipped": meta.get("skipped"),
        "columns": columns,
        "prompts": prompts,
    }


def _number(x: float) -> float | None:
    """JSON has no NaN; 7 significant digits are more than the page shows."""
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else float(f"{x:.7g}")


# --------------------------------------------------------------------------- all inputs


def build_payload(sources: list[Source], title: str | None = None) -> dict:
    """Every input read, labelled, checked and packed: mask-impact results form one comparison."""
    if not sources:
        raise InterpError("give at least one result file (mask-impact .csv/.parquet or a knockout directory)")
    items = [load_source(s) for s in sources]
    _label(items)
    impact = [i for i in items if i.kind == "mask_impact"]
    knockout = [i for i in items if i.kind == "knockout"]
    if len(impact) > 1:
        check_mask_impact_comparable(impact)
    return {
        "title": title or _title(impact, knockout),
        "mask_impact": [mask_impact_payload(i) for i in impact],
        "knockout": [knockout_payload(i) for i in knockout],
    }


def _label(items: list[Loaded]) -> None:
    """Short names: the model from the sidecar, else the file name; file names again where those collide."""
    from interp.analyses.impact.heatmaps import result_label

    for index, item in enumerate(items):
        if item.path is not None:
            stem = item.path.parent if item.kind == "knockout" else item.path
            item.label = result_label(stem, item.meta)
        else:
            item.label = result_label(f"result {index + 1}", item.meta)
    labels = [i.label for i in items]
    if len(set(labels)) < len(labels):
        for index, item in enumerate(items):
            where = item.path.parent.name if item.path is not None and item.kind == "knockout" else (item.path.stem if item.path else "")
            item.label = f"{item.label} ({where or index + 1})"


def _title(impact: list[Loaded], knockout: list[Loaded]) -> str:
    kinds = [name for name, items in (("mask-impact", impact), ("knockout", knockout)) if items]
    return "interp view: " + " and ".join(kinds)
