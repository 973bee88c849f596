"""`interp eval`: zero-shot multiple-choice accuracy of a model under an attention mode."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from interp.cli.common import (
    BidirectionalLayersOpt, DeviceMapOpt, DeviceOpt, DtypeOpt, ModelOpt, TrustOpt, check_at_least, check_device, check_out,
    load_quietly,
)
from interp.data.tasks import known_tasks


def split_tasks(tasks: str) -> list[str]:
    """'hellaswag,piqa' or 'items.jsonl' → task names (empty entries dropped)."""
    from interp.errors import InterpError

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names:
        raise InterpError("no tasks given: pass --tasks NAME,NAME or a .jsonl file")
    return names


def eval_cmd(
    tasks: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(known_tasks())}, or FILE.jsonl.")],
    out: Annotated[str, typer.Option(help="Directory for metrics.json and examples.csv.")],
    model: ModelOpt = None,
    attention: Annotated[str, typer.Option(
        help="causal; prefix (context bidirectional, continuation causal: the ablation); "
             "bidirectional (LEAKY: the continuation sees its own future, as in the original Ministral 3 prefill-mask ablation's eval; see docs/semantics.md).")] = "causal",
    bidirectional_layers: BidirectionalLayersOpt = None,
    limit: Annotated[int, typer.Option(help="Items per task (the first N valid ones).")] = 500,
    batch_size: Annotated[int, typer.Option(help="Items (contexts) per forward; all their choices go together.")] = 16,
    data_dir: Annotated[Optional[str], typer.Option(
        help="Local benchmark files: DATA_DIR/<task>/<split>.jsonl (default: the Hugging Face hub).")] = None,
    format: Annotated[str, typer.Option(
        "--format", help="Benchmark prompts: lm-eval (lm-evaluation-harness's task definitions) or seed "
                         "(the ministral3 ablation's). Toy tasks and .jsonl files have their own.")] = "lm-eval",
    resume: Annotated[bool, typer.Option(help="Skip tasks already finished in OUT.")] = False,
    device: DeviceOpt = "cpu",
    device_map: DeviceMapOpt = None,
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
) -> None:
    """Score each choice by the log-likelihood of its tokens given the context; write OUT/metrics.json, OUT/examples.csv."""
    from pathlib import Path

    from interp.analyses.ablation.eval_table import format_metrics
    from interp.analyses.ablation.evaluate import evaluate, load_tasks
    from interp.engine.masks import check_mode
    from interp.analyses.interventions.layer_sets import parse_bidirectional_layers

    check_out(out)
    check_mode(attention)
    check_at_least("--limit", limit, 1)
    check_at_least("--batch-size", batch_size, 1)
    layers = parse_bidirectional_layers(bidirectional_layers)
    check_device(None if device_map else device)
    loaded = load_tasks(split_tasks(tasks), limit=limit, data_dir=data_dir, format=format)  # before the model: fail fast
    engine = load_quietly(model, device, dtype, trust_remote_code, device_map)
    metrics = evaluate(engine, loaded, attention=attention, limit=limit, batch_size=batch_size, data_dir=data_dir,
                       format=format, out_dir=out, resume=resume, log=lambda line: typer.echo(line, err=True),
                       bidirectional_layers=layers)
    typer.echo(format_metrics(metrics))
    typer.echo(f"wrote {Path(out) / 'metrics.json'} and {Path(out) / 'examples.csv'}")
