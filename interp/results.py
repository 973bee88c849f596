"""One result contract: a table, its metadata and provenance, written as one unit and read back strictly.

Every analysis result (mask-impact, knockout, an eval, a stage run) is a `TableResult` subclass or
a JSON record read through `read_json`. What the contract guarantees:

- **One unit.** The table and its metadata are written while holding an exclusive lock on the
  output's directory, each file atomically (temp name, then rename), so two runs writing one
  `--out` cannot interleave; readers take the shared lock. The metadata records the table's row
  count and SHA-256, so a table that does not belong to its metadata (cut mid-way, copied from
  another run, or left by a run killed between the two renames) is refused, not shown.
- **Strict reading.** Missing columns, non-numeric values in numeric columns, a row count or hash
  that disagrees with the metadata, and malformed JSON each give a one-line `InterpError` naming
  the file and what is wrong.
- **One metadata shape.** `result_metadata` is what every sidecar starts with: the model, the
  analysis's settings (from `df.attrs[kind]`), the table's shape, and provenance.

General: nothing here imports a particular analysis; the analyses subclass `TableResult`.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import pandas as pd

from interp.errors import InterpError
from interp.util.io import table_bytes, write_bytes, write_text

TABLE_FORMATS: tuple[str, ...] = ("csv", "parquet")
CONTRACT_KEYS: tuple[str, ...] = ("table", "table_format", "rows", "table_sha256")  # added to metadata on write


def without_contract(meta: dict) -> dict:
    """Metadata as the analysis gave it, without the keys the contract adds."""
    return {k: v for k, v in meta.items() if k not in CONTRACT_KEYS}


# ------------------------------------------------------------------------------------- locking
@contextmanager
def output_lock(path: str | os.PathLike, *, shared: bool = False) -> Iterator[None]:
    """Hold a lock on the directory that holds (or is) `path`: exclusive to write, shared to read.

    Writers of one output directory take turns, so a table and its metadata always come from the
    same run; a reader never sees one half of a write.
    """
    where = Path(path)
    directory = where if where.is_dir() else where.parent
    if not directory.exists():
        if shared:
            yield
            return
        directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# ------------------------------------------------------------------------------------- metadata
def result_metadata(engine, df: pd.DataFrame, kind: str, *, last: tuple[str, ...] = (), **extra: Any) -> dict:
    """A result's metadata: the model, the analysis's settings (`df.attrs[kind]`), the table's shape,
    `extra` (e.g. the prompts file), provenance; keys in `last` (long lists) go after provenance."""
    from interp.util.provenance import provenance

    info = dict(df.attrs.get(kind) or {})
    tail = {key: info.pop(key) for key in last if key in info}
    return {
        "kind": kind,
        "model": engine.name,
        "model_type": engine.spec.model_type,
        "n_layers": engine.n_layers,
        "n_heads": engine.n_heads,
        "dtype": str(engine.dtype).removeprefix("torch."),
        "device": str(engine.device),
        **info,
        "rows": len(df),
        "columns": list(df.columns),
        **extra,
        "provenance": provenance(),
        **tail,
    }


# ------------------------------------------------------------------------------------- JSON
def read_json(path: str | os.PathLike, what: str = "result", *, required: tuple[str, ...] = ()) -> dict:
    """A JSON object from `path`, with a one-line error when it is missing, malformed, or lacks `required` keys."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InterpError(f"no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InterpError(f"{path} is damaged: not valid JSON ({_short(exc)})") from None
    if not isinstance(data, dict):
        raise InterpError(f"{path} is damaged: expected a JSON object for the {what}, found {type(data).__name__}")
    missing = [key for key in required if key not in data]
    if missing:
        raise InterpError(f"{path} is not a {what}: missing {', '.join(missing)}")
    return data


def number(value: Any, path: str | os.PathLike, where: str, *, optional: bool = True) -> float | None:
    """A metric from a JSON record as a float, or a one-line error naming the file and the field."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InterpError(f"{path} is damaged: {where} is {value!r}, not a number")
    return float(value)


# ------------------------------------------------------------------------------------- tables
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class TableResult:
    """A result table with its metadata. Subclasses name their files and columns.

    table_name / meta_name: file names inside a result directory (None: the table is the path the
    user gave and the metadata is the same name with `.json`).
    """

    df: pd.DataFrame
    meta: dict = field(default_factory=dict)
    path: Path | None = None  # where it was read from / written to (the table)

    kind: ClassVar[str] = "result"
    columns: ClassVar[tuple[str, ...]] = ()
    numeric: ClassVar[tuple[str, ...]] = ()  # must be numbers (empty cells allowed)
    integer: ClassVar[tuple[str, ...]] = ()  # must be whole numbers, never empty
    strings: ClassVar[tuple[str, ...]] = ()  # kept as written ("nan", "NULL" stay text)
    table_name: ClassVar[str | None] = None
    meta_name: ClassVar[str | None] = None

    @classmethod
    def shown(cls) -> str:
        """The kind as messages spell it ("mask-impact")."""
        return cls.kind.replace("_", "-")

    # ---- paths
    @classmethod
    def table_path(cls, out: str | os.PathLike, fmt: str = "csv") -> Path:
        out = Path(out)
        if cls.table_name is not None:
            return out / (Path(cls.table_name).stem + f".{fmt}")
        return out if out.suffix.lstrip(".").lower() in TABLE_FORMATS else out.with_name(out.name + f".{fmt}")

    @classmethod
    def meta_path(cls, table: str | os.PathLike) -> Path:
        table = Path(table)
        return table.parent / cls.meta_name if cls.meta_name is not None else table.with_suffix(".json")

    # ---- writing
    def extra_files(self, out: Path) -> dict[str, Path]:
        """Files drawn from the table after it is written (e.g. a figure), inside the same lock."""
        return {}

    def write(self, out: str | os.PathLike, fmt: str = "csv") -> dict[str, Path]:
        """Table + metadata (+ extra files) as one unit; returns their paths by name."""
        if fmt not in TABLE_FORMATS:
            raise InterpError(f"unknown format {fmt!r}; choose csv or parquet")
        table = self.table_path(out, fmt)
        data = table_bytes(self.df, fmt)
        meta = dict(self.meta) | {"table": table.name, "table_format": fmt, "rows": len(self.df),
                                  "table_sha256": sha256(data)}
        with output_lock(table):
            paths = {"table": write_bytes(table, data),
                     "meta": write_text(self.meta_path(table), json.dumps(meta, indent=2, default=str) + "\n")}
            paths.update(self.extra_files(Path(out)))
        self.meta, self.path = meta, table
        return paths

    # ---- reading
    @classmethod
    def read(cls, path: str | os.PathLike) -> "TableResult":
        """The table at `path` (or in the result directory `path`) and its metadata, checked against each other."""
        table = Path(path)
        if table.is_dir() and cls.table_name is not None:
            found = [table / (Path(cls.table_name).stem + f".{f}") for f in TABLE_FORMATS]
            table = next((p for p in found if p.is_file()), found[0])
        if not table.is_file():
            raise InterpError(f"no such file: {table}")
        with output_lock(table, shared=True):
            data = table.read_bytes()
            meta_file = cls.meta_path(table)
            meta = read_json(meta_file, f"{cls.shown()} metadata") if meta_file.is_file() else None
        df = cls.parse(data, table)
        if meta is not None:
            check_against_meta(df, data, meta, table, meta_file)
        return cls(df, meta or {}, table)

    @classmethod
    def parse(cls, data: bytes, path: Path) -> pd.DataFrame:
        """Bytes → DataFrame with the columns checked and typed; one-line errors naming `path`."""
        try:
            if path.suffix.lower() == ".parquet":
                df = pd.read_parquet(io.BytesIO(data))
            else:
                na = {c: [""] for c in cls.numeric}
                df = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=na,
                                 dtype={c: str for c in cls.strings})
        except Exception as exc:  # malformed file: one line, not a traceback
            raise InterpError(f"cannot read {path} as a {cls.shown()} table: {_short(exc)}") from None
        missing = [c for c in cls.columns if c not in df.columns]
        if missing:
            raise InterpError(f"{path} is not a {cls.shown()} result: missing column(s) {', '.join(missing)}")
        for column in (*cls.integer, *cls.numeric):
            if column in df.columns:
                df[column] = checked_numbers(df[column], path, column, integer=column in cls.integer)
        return df


def checked_numbers(series: pd.Series, path: Path, column: str, *, integer: bool = False) -> pd.Series:
    """`series` as numbers, or a one-line error naming the first cell that is not one."""
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & (series.notna() if not integer else True)
    if integer:
        bad = bad | (values.notna() & (values != values.round()))
    if bool(bad.any()):
        row = int(bad.to_numpy().nonzero()[0][0])
        kind = "a whole number" if integer else "a number"
        raise InterpError(f"{path} is damaged: column {column!r}, row {row + 1}: {str(series.iloc[row])!r} is not {kind}")
    return values.astype("int64") if integer else values


def check_against_meta(df: pd.DataFrame, data: bytes, meta: dict, table: Path, meta_file: Path) -> None:
    """Refuse a table that is not the one its metadata describes."""
    rows = meta.get("rows")
    if isinstance(rows, int) and rows != len(df):
        raise InterpError(f"{table} is damaged: {len(df)} rows, but {meta_file.name} says {rows} "
                          "(cut mid-way, or written by another run)")
    digest = meta.get("table_sha256")
    if isinstance(digest, str) and digest != sha256(data):
        raise InterpError(f"{table} does not match {meta_file.name} (its contents changed, or another run wrote it)")


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]

