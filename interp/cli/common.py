"""Options and helpers every command shares: model/device/dtype flags, loading, atomic writes."""

from __future__ import annotations

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
    """A prompt given inline, or the contents of a .txt file path."""
    from pathlib import Path

    from interp.errors import InterpError

    if prompt.endswith(".txt") and Path(prompt).is_file():
        prompt = Path(prompt).read_text(encoding="utf-8").rstrip("\n")
    if not prompt.strip():
        raise InterpError("empty prompt: give some text (or a .txt file that has some)")
    return prompt
