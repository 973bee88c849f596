"""`interp mask-impact …`, `interp mask-impact summarize FILE`, `interp heatmap …`: thin wrappers.

Register in interp/cli/app.py:
    app.add_typer(mask_impact_app, name="mask-impact")
    app.command("heatmap")(heatmap)

`mask-impact` is a group whose callback runs the analysis when no subcommand follows, so both
`interp mask-impact --prompt TEXT …` and `interp mask-impact summarize FILE` parse as written.
`heatmap` takes FILE, or the word `compare` followed by two or more files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from interp.cli.common import (
    BidirectionalLayersOpt, DeviceMapOpt, DeviceOpt, DtypeOpt, TrustOpt, check_device, check_out, load_quietly, read_prompt,
)
from interp.errors import InterpError

mask_impact_app = typer.Typer(
    help="Which prompt tokens matter to the final position, at which layer and head.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModelsOpt = Annotated[
    Optional[list[str]],
    typer.Option("--model", "-m", help="Hub id, local directory or 'toy' (default). Repeat to compare checkpoints."),
]
MetricOpt = Annotated[str, typer.Option(help="l2, cosine, or kl (Logits rows, with --downstream).")]
VariantOpt = Annotated[str, typer.Option(help="Full, Attn, Head_<h>, or Logits (with --downstream).")]
StepOpt = Annotated[int, typer.Option(help="Generation step to show.")]
ExcludeFirstOpt = Annotated[
    bool, typer.Option("--exclude-first", help="Keep position 0 (the attention sink) out of the colour scale.")
]


@mask_impact_app.callback(invoke_without_command=True)
def mask_impact_cmd(
    ctx: typer.Context,
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Text, or a path to a .txt file.")] = None,
    model: ModelsOpt = None,
    out: Annotated[Optional[str], typer.Option(help="Result file (a directory with --config).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv (default) or parquet.")] = None,
    attention: Annotated[str, typer.Option(
        help="causal, or prefix (the prompt attends bidirectionally; generated tokens causally).")] = "causal",
    bidirectional_layers: BidirectionalLayersOpt = None,
    num_tokens: Annotated[int, typer.Option(help="Analyse, append the greedy token, repeat: K steps (stops at EOS).")] = 1,
    layers: Annotated[Optional[str], typer.Option(help="Layers to analyse, e.g. 0,3,5 or 2-6 (default: all).")] = None,
    method: Annotated[str, typer.Option(help="fast (exact, batched) or reference (one layer recompute per token).")] = "fast",
    head_space: Annotated[str, typer.Option(help="z: per-head output before o_proj; residual: after o_proj.")] = "z",
    downstream: Annotated[bool, typer.Option("--downstream", help="Also carry each knockout to the logits (Logits rows, kl, top1_prob_delta).")] = False,
    knockout_queries: Annotated[str, typer.Option(help="With --downstream: all (key removed for every query) or final (only the final query's edge, Geva et al.; much faster).")] = "all",
    window: Annotated[int, typer.Option(help="With --downstream: knock out at the K layers centred on each layer.")] = 1,
    config: Annotated[Optional[str], typer.Option(help="prompts.yaml: named prompts, each with num_tokens and enabled.")] = None,
    device: DeviceOpt = "cpu",
    device_map: DeviceMapOpt = None,
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
    html: Annotated[bool, typer.Option("--html", help="Also write the interactive viewer (<name>.html) beside the results.")] = False,
) -> None:
    """Knock each prompt token out of attention at each layer; measure the final position's update."""
    if ctx.invoked_subcommand is not None:
        return
    if (prompt is None) == (config is None):
        raise typer.BadParameter("give --prompt TEXT or --config prompts.yaml (one of them)", ctx=ctx)
    from functools import partial

    from interp.analyses.impact.mask_impact import check_options
    from interp.analyses.impact.mask_impact.batch import Job, load_jobs, run_jobs
    from interp.analyses.impact.mask_impact.io import FORMATS, table_format

    from interp.analyses.interventions.layer_sets import parse_bidirectional_layers, parse_layer_choice

    check_options(attention=attention, method=method, head_space=head_space, num_tokens=num_tokens,
                  knockout_queries=knockout_queries, window=window)
    subset = parse_bidirectional_layers(bidirectional_layers)
    parse_layer_choice(layers, None)  # the syntax now; the range once the model is loaded
    if config is not None:
        jobs = load_jobs(config, default_num_tokens=num_tokens)
        out_dir, table_fmt = Path(out or "out/mask_impact"), table_format("result", fmt)
    else:
        text = read_prompt(prompt)
        target = Path(out) if out else Path("out/mask_impact") / slug(text)
        table_fmt = table_format(target, fmt)
        name = target.stem if target.suffix.lstrip(".").lower() in FORMATS else target.name
        jobs, out_dir = [Job(name=name, prompt=text, num_tokens=num_tokens)], target.parent
    check_out(out_dir)
    check_device(None if device_map else device)
    models = model or [None]
    paths = run_jobs(
        jobs, models, out_dir, fmt=table_fmt, labels=model_labels(models), echo=typer.echo,
        load=partial(load_quietly, device=device, dtype=dtype, trust_remote_code=trust_remote_code, device_map=device_map),
        settings=dict(attention=attention, layers=layers, method=method, head_space=head_space, downstream=downstream,
                      knockout_queries=knockout_queries, window=window, bidirectional_layers=subset),
    )
    if html:  # one page per prompt; with several checkpoints, their results side by side
        from interp.view import write_view

        tables = [p for p in paths if p.suffix.lstrip(".") in FORMATS]  # job by job, checkpoints in order
        for job, start in zip(jobs, range(0, len(tables), len(models))):
            typer.echo(f"wrote {write_view(tables[start:start + len(models)], out_dir / f'{job.name}.html')}")


@mask_impact_app.command("summarize")
def summarize_cmd(
    file: Annotated[str, typer.Argument(help="A mask-impact result (.csv or .parquet).")],
    step: StepOpt = 0,
    metric: Annotated[str, typer.Option(help="l2 or cosine.")] = "l2",
    top: Annotated[int, typer.Option(help="Tokens per layer to list.")] = 3,
    exclude_first: ExcludeFirstOpt = False,
) -> None:
    """Most impactful tokens per layer, layers and heads of a result file, as tables."""
    from interp.analyses.impact.heatmaps import result_label
    from interp.analyses.impact.mask_impact.io import read_result
    from interp.analyses.impact.summarize import print_summary, summarize

    df, meta = read_result(file)
    print_summary(summarize(df, step=step, metric=metric, top=top, exclude_first=exclude_first),
                  title=result_label(file, meta))


def heatmap(
    files: Annotated[list[str], typer.Argument(metavar="FILE | compare A B [C …]", help="A result file, or `compare` and 2+ files of the same prompt.")],
    variant: VariantOpt = "Full",
    metric: MetricOpt = "l2",
    step: StepOpt = 0,
    exclude_first: ExcludeFirstOpt = False,
    out: Annotated[Optional[str], typer.Option(help="PNG to write (default: beside the first file).")] = None,
) -> None:
    """Layer × token heatmap of a mask-impact result; `heatmap compare A B …` puts checkpoints side by side."""
    from interp.analyses.impact.heatmaps import write_comparison, write_heatmap

    options = dict(variant=variant, metric=metric, step=step, exclude_first=exclude_first)
    compare = files[0] == "compare" and not (len(files) == 1 and Path("compare").is_file())
    if not compare and len(files) != 1:
        raise InterpError("give one result file, or `compare` followed by two or more files")
    inputs = files[1:] if compare else files
    if out is not None:
        check_out(out, directory=False)
    elif inputs:  # the PNG goes beside the first file
        check_out(Path(inputs[0]).parent, option="the directory of")
    path = write_comparison(inputs, out, **options) if compare else write_heatmap(inputs[0], out, **options)
    typer.echo(f"wrote {path}")


# --------------------------------------------------------------------------- helpers


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe stem from a prompt or model name."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return stem[:limit].rstrip("_") or "prompt"


def model_labels(models: list[str | None]) -> list[str]:
    """Short unique names for output files: the last path part (or 'toy'), numbered if they collide."""
    labels = [slug(Path(m).name if m else "toy") for m in models]
    if len(set(labels)) < len(labels):
        labels = [f"{i}_{label}" for i, label in enumerate(labels)]
    return labels
