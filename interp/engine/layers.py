"""Layer sets: the one parser for everything that names layers ("20-27", "0,3,5", [0, 3], 4).

`--layers` (mask-impact), `--bidirectional-layers` (every command), a preset's
`bidirectional_layers` and the engine's `bidirectional_layers=` argument all go through
`parse_layers`, so they accept the same things and refuse the rest with the same one-line errors.
It lives in the engine because the engine checks its own argument; the analyses use it through
`interp.analyses.interventions.layer_sets`.
"""

from __future__ import annotations

import operator
from typing import Iterable

from interp.errors import InterpError


def parse_layers(
    value: str | int | Iterable[int],
    n_layers: int | None = None,
    *,
    option: str = "--layers",
    what: str = "layer",
    text: bool = True,
    empty_ok: bool = False,
) -> list[int]:
    """"0,3,5" / "2-4" / [0, 3] / 4 → sorted unique layer numbers.

    n_layers: check each layer against the model (None: only the syntax and the sign, before a
    model is loaded). option / what: how errors name the setting and its items. text=False
    refuses strings (a Python caller passes numbers); empty_ok allows an empty set.
    """
    if isinstance(value, (str, bytes)) and not text:
        raise InterpError(f"{option} must be layer numbers, not the string {value!r}")
    if isinstance(value, str):
        chosen = _parse_text(value, option)
    else:
        items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        try:
            items = list(items)
        except TypeError:
            raise InterpError(f"{option} must be layer numbers like 0,3,5 or a range like 2-4, not {value!r}") from None
        chosen = [_layer_number(item, what) for item in items]
    if not chosen and not empty_ok:
        raise InterpError(f"{option}: no layers chosen: give layer numbers like 0,3,5 or a range like 2-4")
    bad = [layer for layer in chosen if layer < 0 or (n_layers is not None and layer >= n_layers)]
    if bad and n_layers is not None:
        raise InterpError(f"{what} {bad[0]} out of range: the model has {n_layers} layers (0..{n_layers - 1})")
    if bad:
        raise InterpError(f"{what} {bad[0]} out of range: layers count from 0")
    return sorted(set(chosen))


def _parse_text(value: str, option: str) -> list[int]:
    chosen: list[int] = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        lo, _, hi = part.partition("-") if "-" in part[1:] else (part, "", part)
        try:
            first, last = int(lo), int(hi)
        except ValueError:
            raise InterpError(f"{option}: {part!r} is not a layer number or range like 2-4") from None
        if last < first:
            raise InterpError(f"{option}: {part!r} is an empty range (write the lower layer first, like 2-4)")
        chosen.extend(range(first, last + 1))
    return chosen


def _layer_number(item: object, what: str) -> int:
    if isinstance(item, bool):
        raise InterpError(f"{what} {item!r} is not a layer number")
    try:
        return operator.index(item)  # ints and numpy/torch integers, not floats
    except TypeError:
        raise InterpError(f"{what} {item!r} is not a layer number") from None
