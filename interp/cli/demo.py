"""`interp demo`: the headline job on the bundled model, on a fresh machine, with no hub.

Runs mask-impact on "The Eiffel Tower is in", writes the table (+ sidecar) and its heatmap under
out/demo/, prints the summary and the model's next tokens (causal vs bidirectional prefill).
"""

from __future__ import annotations

from typing import Annotated

import typer

from interp.cli.common import check_out, load_quietly


def demo(
    prompt: Annotated[str, typer.Option(help="The prompt to analyse.")] = "The Eiffel Tower is in",
    out: Annotated[str, typer.Option(help="Directory for the demo's outputs.")] = "out/demo",
) -> None:
    """mask-impact on PROMPT with the bundled model: CSV, heatmap PNG, summary, next tokens."""
    from pathlib import Path

    from rich.console import Console

    from interp.analyses.impact.heatmaps import write_heatmap
    from interp.analyses.impact.mask_impact import mask_impact, mask_impact_metadata, parse_layers
    from interp.analyses.impact.mask_impact.io import write_result
    from interp.analyses.impact.predict import top_next_tokens
    from interp.analyses.impact.summarize import print_summary, summarize
    from interp.cli.impact.mask_impact import slug
    from interp.util.progress import progress_bar

    check_out(out)
    engine = load_quietly("toy")
    typer.echo(repr(engine))

    with progress_bar("mask-impact", len(parse_layers(None, engine.n_layers))) as advance:
        df = mask_impact(engine, prompt, progress=advance)
    meta = mask_impact_metadata(engine, df, model_label="toy")
    table, sidecar = write_result(df, meta, Path(out) / f"{slug(prompt)}.csv")
    figure = write_heatmap(table, Path(out) / f"{slug(prompt)}_full_l2.png", exclude_first=True)
    typer.echo(f"wrote {table}, {sidecar.name} and {figure}\n")
    print_summary(summarize(df, top=2), Console(), title="toy")

    for mode in ("causal", "prefix"):
        typer.echo(f"\n{prompt!r} → next token ({mode} prefill):")
        for token, prob in top_next_tokens(engine, prompt, attention=mode):
            typer.echo(f"  {prob:8.4f}  {token!r}")
