"""Atomic writes: a result file is either the old one or the complete new one, never half of it.

Under a distributed launcher only rank 0 writes (the other ranks hold the same gathered results),
so every file is written once; see interp.util.distributed.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from interp.errors import InterpError, one_line
from interp.util.distributed import is_main


def check_writable(path: str | os.PathLike, *, directory: bool = True, option: str = "--out") -> Path:
    """Refuse, in one line and before any work, an output that cannot be written.

    `path` is a directory to write into (`directory=True`) or a file. Nothing is created: the nearest
    existing ancestor must be a directory in which a file can actually be made (a probe file is
    created and removed, so read-only mounts and permissions count even for root). Returns `path`.
    """
    target = Path(path).expanduser()
    label = f"{option} {path}" if option else str(path)
    if target.exists():
        if directory and not target.is_dir():
            raise InterpError(f"{label}: is a file, not a directory to write into")
        if not directory and target.is_dir():
            raise InterpError(f"{label}: is a directory, not a file")
    existing = target if directory else target.parent
    while not existing.exists() and existing != existing.parent:  # Path.exists is False under a file too
        existing = existing.parent
    if not existing.is_dir():
        raise InterpError(f"{label}: cannot be created: {existing} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".interp-write-check.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InterpError(f"{label}: cannot write in {existing} ({exc.strerror or one_line(exc)})") from None
    return Path(path)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path` (same filesystem)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; results should read like any file
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Bytes to `path` atomically; every writer below goes through here (rank 0 only under a launcher)."""
    if not is_main():
        return Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def table_bytes(df, fmt: str) -> bytes:
    """The bytes `df.to_csv(path, index=False)` / `to_parquet` would write (hashed by the result contract)."""
    if fmt == "csv":
        return df.to_csv(index=False).encode("utf-8")
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_table(df, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """A pandas DataFrame as CSV or Parquet (by `fmt` or the file suffix), atomically."""
    fmt = fmt or ("parquet" if str(path).endswith(".parquet") else "csv")
    if fmt not in ("csv", "parquet"):
        raise InterpError(f"unknown table format {fmt!r}; choose csv or parquet")
    if not is_main():
        return Path(path)
    return write_bytes(path, table_bytes(df, fmt))


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """A matplotlib figure as PNG (or by suffix), atomically."""
    suffix = Path(path).suffix.lstrip(".") or "png"
    if not is_main():
        return Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix, **kwargs)
    return Path(path)


def read_yaml(path: str | os.PathLike) -> Any:
    """YAML → Python, with a one-line error for missing or malformed files."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InterpError(f"no such file: {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InterpError(f"malformed YAML in {path}{where}: {getattr(exc, 'problem', exc)}") from None
