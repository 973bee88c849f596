"""Layer sets a user writes ("20-27", "0,3,5"): for `--layers`, `bidirectional_layers` and the layer sweep.

Every setting that names layers goes through one parser, `parse_layers` (in the engine, which
checks its own `bidirectional_layers=` argument with it); this module holds what the analyses
add on top: the option names, the defaults, and the sweep's groups.
"""

from __future__ import annotations

from typing import Iterable

from interp.engine.layers import parse_layers
from interp.errors import InterpError

OPTION = "--bidirectional-layers"

__all__ = ["OPTION", "check_layer_settings", "contiguous_groups", "layer_label", "parse_bidirectional_layers",
           "parse_layers", "parse_layer_choice"]


def parse_bidirectional_layers(value: str | int | Iterable[int] | None) -> list[int] | None:
    """"20-27" / "0,3,5" / [20, 21] → sorted layer numbers; None stays None (every layer).

    Only the syntax and the sign are checked here, before a model is loaded; the engine checks
    each layer against the model it runs (one-line error either way).
    """
    if value is None:
        return None
    return parse_layers(value, option=OPTION, what="bidirectional layer")


def parse_layer_choice(value: str | Iterable[int] | None, n_layers: int | None, option: str = "--layers") -> list[int] | None:
    """The layers to analyse: None → every layer of the model (None before a model is loaded)."""
    if value is None:
        return None if n_layers is None else list(range(n_layers))
    return parse_layers(value, n_layers, option=option)


def check_layer_settings(bidirectional_layers: object, sweep_layers: object) -> tuple[list[int] | None, int | None]:
    """A preset's bidirectional_layers (parsed) and sweep_layers (a group count), checked together."""
    layers = parse_bidirectional_layers(bidirectional_layers)
    groups = sweep_layers
    if groups is not None and (isinstance(groups, bool) or not isinstance(groups, int) or groups < 1):
        raise InterpError(f"sweep_layers must be a positive number of layer groups, not {groups!r}")
    if groups is not None and layers is not None:
        raise InterpError("give either bidirectional_layers or sweep_layers: the sweep chooses the layers itself")
    return layers, groups


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
