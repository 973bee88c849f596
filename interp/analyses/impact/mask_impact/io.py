"""mask-impact result files: the long table (CSV or Parquet) plus a JSON sidecar beside it.

`result.csv` goes with `result.json` (model, prompt, tokens, mode, dtype, method, versions, the
baseline's top next tokens). Both are written atomically. Reading is strict about the columns and
keeps token strings as written (a token "nan", "NULL" or "" stays a string, not a missing value).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from interp.analyses.impact.mask_impact import COLUMNS
from interp.errors import InterpError
from interp.util.io import write_json, write_table

FORMATS: tuple[str, ...] = ("csv", "parquet")
_NUMERIC = ("l2_distance", "cosine_distance", "kl", "top1_prob_delta")


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def table_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format to write: `fmt` if given (it must agree with a .csv/.parquet suffix), else the suffix, else csv."""
    suffix = Path(path).suffix.lstrip(".").lower()
    if fmt is not None and fmt not in FORMATS:
        raise InterpError(f"unknown format {fmt!r}; choose csv or parquet")
    if fmt and suffix in FORMATS and suffix != fmt:
        raise InterpError(f"--format {fmt} does not match the file name {Path(path).name}")
    return fmt or (suffix if suffix in FORMATS else "csv")


def write_result(df: pd.DataFrame, metadata: dict, path: str | os.PathLike, fmt: str | None = None) -> tuple[Path, Path]:
    """Write the table and its sidecar atomically; returns (table path, sidecar path)."""
    fmt = table_format(path, fmt)
    table = Path(path)
    if table.suffix.lstrip(".").lower() not in FORMATS:
        table = table.with_name(table.name + f".{fmt}")
    write_table(df, table, fmt)
    sidecar = write_json(sidecar_path(table), metadata | {"table": table.name, "format": fmt})
    return table, sidecar


def read_result(path: str | os.PathLike) -> tuple[pd.DataFrame, dict | None]:
    """A result table (CSV or Parquet, by suffix) and its sidecar if present."""
    path = Path(path)
    if not path.is_file():
        raise InterpError(f"no such file: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(
                path, keep_default_na=False, na_values={c: [""] for c in _NUMERIC}, dtype={"token_masked": str}
            )
    except Exception as exc:  # malformed file: one line, not a traceback
        raise InterpError(f"cannot read {path} as a mask-impact table: {' '.join(str(exc).split())[:200]}") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InterpError(f"{path} is not a mask-impact result: missing column(s) {', '.join(missing)}")
    sidecar = sidecar_path(path)
    metadata = None
    if sidecar.is_file():
        try:
            metadata = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            metadata = None  # a broken sidecar loses labels, not the result
    return df, metadata


def step_tokens(df: pd.DataFrame, step: int = 0) -> list[str]:
    """The token strings of one generation step, by position."""
    rows = df[df["generation_step"] == step].drop_duplicates("token_position").sort_values("token_position")
    return rows["token_masked"].astype(str).tolist()
