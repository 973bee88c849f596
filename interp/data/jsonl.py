"""The one JSON Lines reader: benchmark items, task files, instruction data and the toy set."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from interp.errors import InterpError


def read_jsonl(path: str | os.PathLike) -> Iterator[Any]:
    """Rows of a JSON Lines file, lazily; a line that is not JSON yields None.

    Callers skip and count None like any row missing a field: one bad line in a big dataset
    costs one row, not the run. Blank lines are not rows.
    """
    try:
        handle = open(Path(path), encoding="utf-8")
    except FileNotFoundError:
        raise InterpError(f"no such file: {path}") from None
    return _rows(handle)


def _rows(handle) -> Iterator[Any]:
    with handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield None
