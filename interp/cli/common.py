"""Options and helpers every command shares: model/device/dtype flags, loading, atomic writes."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Hub id, local save_pretrained directory, or 'toy' (the bundled model; default)."),
]
DeviceOpt = Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:1, mps.")]
DtypeOpt = Annotated[str, typer.Option(help="float32 (exact), bfloat16 or float16.")]
TrustOpt = Annotated[
    bool, typer.Option("--trust-remote-code", help="Allow the checkpoint's own Python code (off by default).")
]
AttentionOpt = Annotated[
    str,
    typer.Option(
        help="causal; prefix (the prompt attends bidirectionally, what follows causally); bidirectional.",
    ),
]

BidirectionalLayersOpt = Annotated[
    Optional[str],
    typer.Option(
        "--bidirectional-layers",
        help="Layers where --attention applies, e.g. 20-27 or 0,3,5 (default: all); the other layers stay causal.",
    ),
]


DeviceMapOpt = Annotated[
    Optional[str],
    typer.Option("--device-map", help="auto (or balanced, sequential): spread a model too big for one GPU over all "
                                      "visible GPUs with accelerate; replaces --device."),
]


def load_quietly(model: str | None, device: str = "cpu", dtype: str = "float32", trust_remote_code: bool = False,
                 device_map: str | None = None):
    """interp.load with transformers' progress bars and warnings silenced for the terminal.

    Under torchrun / accelerate launch, --device cuda means this process's own GPU.
    """
    import interp
    from interp.util.distributed import local_device
    from interp.util.logs import quiet_transformers

    quiet_transformers()
    return interp.load(model, device=local_device(device), dtype=dtype, trust_remote_code=trust_remote_code,
                       device_map=device_map)


def read_prompt(prompt: str) -> str:
    """A prompt given inline, or the contents of a .txt file path (which must exist)."""
    from interp.util.prompts import read_prompt as read

    return read(prompt, where="--prompt: ")


def check_out(path: str | os.PathLike, *, directory: bool = True, option: str = "--out") -> None:
    """Every writing command calls this first: an output that cannot be written fails in one line
    before anything is loaded or computed (not with a PermissionError after the work)."""
    from interp.util.io import check_writable

    check_writable(path, directory=directory, option=option)


def check_device(device: str | None) -> None:
    """--device names a device this machine has ('auto' and None are resolved later), before any work."""
    if device is None or device == "auto":
        return
    from interp.engine.loading import check_device as check
    from interp.util.distributed import local_device

    check(local_device(device))


def check_at_least(option: str, value: int | float | None, least: int | float) -> None:
    """A numeric option below its smallest sensible value is a one-line error (None: not given)."""
    if value is not None and value < least:
        from interp.errors import InterpError

        raise InterpError(f"{option} must be at least {least}, not {value}")
