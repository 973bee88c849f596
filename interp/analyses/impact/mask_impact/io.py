"""mask-impact result files: the long table (CSV or Parquet) plus a JSON sidecar beside it.

`result.csv` goes with `result.json` (model, prompt, tokens, mode, dtype, method, the baseline's
top next tokens, provenance, and the table's row count and SHA-256). Both are written as one unit
through the result contract (`interp.results`). Reading is strict about the columns and their
numbers, checks the table against its sidecar, and keeps token strings as written (a token "nan",
"NULL" or "" stays a string, not a missing value).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from interp.analyses.impact.mask_impact import COLUMNS
from interp.errors import InterpError
from interp.results import TABLE_FORMATS, TableResult

FORMATS: tuple[str, ...] = TABLE_FORMATS


class MaskImpactResult(TableResult):
    """A mask-impact table and its sidecar (same name, .json)."""

    kind = "mask_impact"
    columns = COLUMNS
    integer = ("generation_step", "layer", "token_position")
    numeric = ("l2_distance", "cosine_distance", "kl", "top1_prob_delta")
    strings = ("token_masked", "variant")


def sidecar_path(path: str | os.PathLike) -> Path:
    return MaskImpactResult.meta_path(path)


def table_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format to write: `fmt` if given (it must agree with a .csv/.parquet suffix), else the suffix, else csv."""
    suffix = Path(path).suffix.lstrip(".").lower()
    if fmt is not None and fmt not in FORMATS:
        raise InterpError(f"unknown format {fmt!r}; choose csv or parquet")
    if fmt and suffix in FORMATS and suffix != fmt:
        raise InterpError(f"--format {fmt} does not match the file name {Path(path).name}")
    return fmt or (suffix if suffix in FORMATS else "csv")


def write_result(df: pd.DataFrame, metadata: dict, path: str | os.PathLike, fmt: str | None = None) -> tuple[Path, Path]:
    """Write the table and its sidecar as one unit; returns (table path, sidecar path)."""
    paths = MaskImpactResult(df, metadata).write(path, table_format(path, fmt))
    return paths["table"], paths["meta"]


def read_result(path: str | os.PathLike) -> tuple[pd.DataFrame, dict | None]:
    """A result table (CSV or Parquet, by suffix) and its sidecar if present (checked against each other)."""
    result = MaskImpactResult.read(path)
    return result.df, result.meta or None


def step_tokens(df: pd.DataFrame, step: int = 0) -> list[str]:
    """The token strings of one generation step, by position."""
    rows = df[df["generation_step"] == step].drop_duplicates("token_position").sort_values("token_position")
    return rows["token_masked"].astype(str).tolist()
