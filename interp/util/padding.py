"""One padding helper: lists of token ids → a padded id tensor and its mask.

Used by eval scoring (left-padded contexts, right-padded continuations), drift, the lm-eval
harness's generation and the finetuning collator. Padding never changes a real token's result:
the mask keeps pad positions out of attention and out of every score.
"""

from __future__ import annotations

from typing import Sequence

import torch


def pad(
    rows: Sequence[Sequence[int]], side: str = "right", *, value: int = 0, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids → ids [N,T] (filled with `value`) and mask [N,T] bool (True on real tokens), padded on `side`."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        cols = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, cols] = torch.as_tensor(list(row), dtype=torch.long)
        mask[i, cols] = True
    return (ids.to(device), mask.to(device)) if device is not None else (ids, mask)
