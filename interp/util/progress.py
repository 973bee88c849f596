"""One progress-bar style for all long work (rich), quiet when not attached to a terminal."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from interp.util.distributed import is_main


@contextmanager
def progress_bar(description: str, total: int, *, disable: bool = False) -> Iterator:
    """`with progress_bar("layers", n) as advance: ... advance()` (advance(k) for k steps).

    Under a distributed launcher only rank 0 shows its bar (counting its own shard).
    """
    disable = disable or not is_main()
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), transient=False, disable=disable,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda k=1: progress.advance(task, k)
