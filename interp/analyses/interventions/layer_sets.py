"""Layer sets a user writes ("20-27", "0,3,5"): for `bidirectional_layers` and the layer sweep."""

from __future__ import annotations

import sys
from typing import Iterable

from interp.analyses.impact.mask_impact import parse_layers
from interp.errors import InterpError

OPTION = "--bidirectional-layers"


def parse_bidirectional_layers(value: str | Iterable[int] | None) -> list[int] | None:
    """"20-27" / "0,3,5" / [20, 21] → sorted layer numbers; None stays None (every layer).

    Only the syntax is checked here, before a model is loaded; the engine checks each layer
    against the model it runs (one-line error either way).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        return sorted(set(value))
    return parse_layers(value, sys.maxsize, option=OPTION)


def contiguous_groups(n_layers: int, groups: int) -> list[list[int]]:
    """Layers 0..n_layers−1 cut into `groups` contiguous groups, sizes differing by at most one
    (the larger ones first), e.g. 10 layers in 3 groups → 0-3, 4-6, 7-9."""
    if isinstance(groups, bool) or not isinstance(groups, int) or not 1 <= groups <= n_layers:
        raise InterpError(f"--sweep-layers wants a number of groups from 1 to {n_layers} (the model's layers), "
                          f"not {groups!r}")
    size, extra = divmod(n_layers, groups)
    out, start = [], 0
    for g in range(groups):
        stop = start + size + (1 if g < extra else 0)
        out.append(list(range(start, stop)))
        start = stop
    return out


def layer_label(layers: Iterable[int]) -> str:
    """[4, 5, 6] → "4-6", [3] → "3", [0, 2] → "0,2"."""
    layers = sorted(layers)
    if not layers:
        return "none"
    if layers == list(range(layers[0], layers[-1] + 1)):
        return str(layers[0]) if len(layers) == 1 else f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))
