"""`interp knockout …`: Geva-style attention knockout over a prompt set (a thin wrapper)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from interp.cli.common import (
    BidirectionalLayersOpt, DeviceMapOpt, DeviceOpt, DtypeOpt, ModelOpt, TrustOpt, check_device, check_out, load_quietly,
)


def knockout_cmd(
    prompts: Annotated[str, typer.Option(help="JSONL of {\"prompt\", \"subject\"} rows, or 'toy' (facts of the bundled toy world).")],
    model: ModelOpt = None,
    window: Annotated[int, typer.Option(help="Block the edges at the K layers centred on each layer (Geva et al. use 9).")] = 1,
    attention: Annotated[str, typer.Option(help="causal, or prefix (the prompt attends bidirectionally).")] = "causal",
    bidirectional_layers: BidirectionalLayersOpt = None,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N rows.")] = None,
    out: Annotated[str, typer.Option(help="Directory for knockout.csv, summary.json and knockout.png.")] = "out/knockout",
    device: DeviceOpt = "cpu",
    device_map: DeviceMapOpt = None,
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
    html: Annotated[bool, typer.Option("--html", help="Also write the interactive viewer (OUT/view.html).")] = False,
) -> None:
    """Block the final token's attention to the subject, the other tokens, or itself, layer by layer; measure p(top-1)."""
    from pathlib import Path

    from interp.analyses.impact.knockout import check_options, knockout, knockout_summary
    from interp.analyses.impact.knockout.files import write_knockout
    from interp.analyses.impact.knockout.prompts import load_prompts
    from interp.analyses.interventions.layer_sets import parse_bidirectional_layers
    from interp.errors import InterpError
    from interp.util.progress import progress_bar

    check_out(out)
    check_options(attention=attention, window=window)
    check_device(None if device_map else device)
    subset = parse_bidirectional_layers(bidirectional_layers)
    if limit is not None and limit < 1:
        raise InterpError(f"--limit must be at least 1, not {limit}")
    rows, read_skipped = load_prompts(prompts)
    rows = rows[:limit] if limit else rows
    engine = load_quietly(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, device_map=device_map)
    with progress_bar("knockout", len(rows)) as advance:
        df = knockout(engine, rows, window=window, attention=attention, bidirectional_layers=subset, progress=advance)
    info = df.attrs["knockout"]
    label = Path(model).name if model else "toy"
    summary = knockout_summary(engine, df, skipped=info["skipped"] + read_skipped, prompts_file=str(prompts),
                               model_label=label)
    title = f"{label}: final → source knockout, window {window}, {info['n_prompts']} prompts ({attention})"
    paths = write_knockout(df, summary, out, title=title)
    typer.echo(f"wrote {paths['table']}, {paths['summary'].name} and {paths['figure'].name} "
               f"({info['n_prompts']} prompts, {summary['skipped']} skipped)")
    if html:
        from interp.view import write_view

        typer.echo(f"wrote {write_view([out])}")
