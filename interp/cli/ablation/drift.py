"""`interp drift`: per layer, how far hidden states move when the context attends bidirectionally."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from interp.cli.common import DeviceOpt, DtypeOpt, TrustOpt, check_at_least, check_device, check_out, load_quietly


def drift_cmd(
    out: Annotated[str, typer.Option(help="Directory for drift.csv, drift.png and drift.json.")],
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", help="Hub id, local directory or 'toy' (default); repeat to put several checkpoints on one plot.")] = None,
    tasks: Annotated[Optional[str], typer.Option(
        help="Comma-separated task names or .jsonl files: their items' contexts are measured.")] = None,
    prompts: Annotated[Optional[str], typer.Option(
        help="Instead of --tasks: a .jsonl file with a \"prompt\" per row, or a text file with one prompt per line.")] = None,
    limit: Annotated[int, typer.Option(help="Items per task.")] = 100,
    batch_size: Annotated[int, typer.Option(help="Contexts per forward.")] = 8,
    bidirectional_layers: Annotated[Optional[str], typer.Option(
        help="The prefix run attends bidirectionally only in these layers, e.g. 2-3 (default: all); the others causal.")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="Local benchmark files: DATA_DIR/<task>/<split>.jsonl.")] = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
) -> None:
    """Mean cosine similarity, per layer, between hidden states under causal and under prefix attention.

    The hidden state is resid_post of each layer (its output: the residual stream after its attention
    and MLP), at every real token of each context; prefix attention lets every context token see the
    whole context. The cosine is averaged over all context tokens of all items (pooled, padding
    excluded): 1 = the states did not move. Contexts are tokenized as `interp eval` tokenizes them
    (leading special tokens, trailing whitespace dropped). One line per --model on the plot.
    """
    from interp.analyses.ablation.drift import drift, read_prompts, task_contexts, write_drift
    from interp.analyses.interventions.layer_sets import parse_bidirectional_layers
    from interp.cli.ablation.eval import split_tasks
    from interp.errors import InterpError

    check_out(out)
    if (tasks is None) == (prompts is None):
        raise InterpError("give either --tasks or --prompts (the texts whose hidden states are compared)")
    models = model or ["toy"]
    repeated = sorted({name for name in models if models.count(name) > 1})
    if repeated:
        raise InterpError(f"--model {repeated[0]} is given twice: name each checkpoint once (one line per model)")
    check_at_least("--limit", limit, 1)
    check_at_least("--batch-size", batch_size, 1)
    layers = parse_bidirectional_layers(bidirectional_layers)
    check_device(device)
    if tasks is not None:
        texts, skipped = task_contexts(split_tasks(tasks), limit=limit, data_dir=data_dir), 0
    else:
        texts, skipped = read_prompts(prompts)
    if not texts:
        raise InterpError(f"no prompts in {prompts}")
    table = drift(models, texts, batch_size=batch_size, bidirectional_layers=layers,
                  load=lambda name: load_quietly(name, device, dtype, trust_remote_code))
    table.attrs["skipped"] += skipped
    settings = dict(models=models, tasks=tasks, prompts=prompts, limit=limit, bidirectional_layers=layers,
                    n_texts=len(texts), dtype=dtype, device=device)
    files = write_drift(table, out, settings)
    wide = table.pivot(index="layer", columns="model", values="cosine")[list(dict.fromkeys(table["model"]))]
    typer.echo(f"mean cos(causal, prefix) of resid_post over {int(table['n_tokens'].iloc[0])} context tokens "
               f"of {len(texts)} texts:")
    typer.echo(wide.to_string(float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"wrote {', '.join(map(str, files))}")
