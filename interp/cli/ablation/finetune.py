"""`interp finetune` (full-weight finetuning under a chosen mask) and `interp probe leakage`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from interp.cli.common import BidirectionalLayersOpt, DeviceOpt, DtypeOpt, ModelOpt, TrustOpt, check_out
from interp.engine.masks import MODES
from interp.util.logs import quiet_transformers
from interp.util.settings import parse_settings

DataOpt = Annotated[
    str, typer.Option("--data", "-d", help="'toy' (bundled instruction set), a .json/.jsonl file, or a hub dataset id.")
]


def _opt(help_text: str, *names: str):
    return typer.Option(*names, help=help_text, show_default=False)


def finetune_cmd(
    out: Annotated[str, typer.Option("--out", "-o", help="Run directory: checkpoint-N/, final/, summary.json.")],
    attention: Annotated[str, typer.Option(help="causal (3a), prefix (3b: prompt bidirectional, response causal), or bidirectional (leaky; refused unless allowed).")],
    model: ModelOpt = None,
    data: DataOpt = "toy",
    allow_label_leakage: Annotated[bool, typer.Option("--allow-label-leakage", help="Train even if the mask lets labels leak (loud warning, recorded).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest OUT/checkpoint-N.")] = False,
    bidirectional_layers: BidirectionalLayersOpt = None,
    max_steps: Annotated[Optional[int], _opt("Optimizer steps (overrides --epochs).")] = None,
    epochs: Annotated[Optional[float], _opt("Training epochs (default 1).", "--epochs")] = None,
    learning_rate: Annotated[Optional[float], _opt("Peak learning rate (default 2e-5).")] = None,
    batch_size: Annotated[Optional[int], _opt("Examples per device per micro-batch (default 4).", "--batch-size")] = None,
    gradient_accumulation_steps: Annotated[Optional[int], _opt("Micro-batches per optimizer step (default 1).")] = None,
    max_seq_len: Annotated[Optional[int], _opt("Truncate examples to this many tokens (default 512).")] = None,
    warmup_ratio: Annotated[Optional[float], _opt("Fraction of steps spent warming up (default 0.03).")] = None,
    weight_decay: Annotated[Optional[float], _opt("AdamW weight decay (default 0).")] = None,
    logging_steps: Annotated[Optional[int], _opt("Log the training loss every N steps (default 10).")] = None,
    eval_steps: Annotated[Optional[int], _opt("Evaluate every N steps (default: only before and after).")] = None,
    save_steps: Annotated[Optional[int], _opt("Save a resumable checkpoint every N steps (default 500).")] = None,
    seed: Annotated[Optional[int], _opt("Seed for data order and held-out rows (default 0).")] = None,
    bf16: Annotated[Optional[bool], _opt("bfloat16 mixed precision.", "--bf16/--no-bf16")] = None,
    gradient_checkpointing: Annotated[Optional[bool], _opt("Recompute layers in backward to save memory.", "--gradient-checkpointing/--no-gradient-checkpointing")] = None,
    min_loss_improvement: Annotated[Optional[float], _opt("Stop rule: required training-loss improvement ...")] = None,
    kill_after_steps: Annotated[Optional[int], _opt("... by this step (rule off unless set).")] = None,
    plateau_patience: Annotated[Optional[int], _opt("Stop rule: evaluations without eval-loss improvement (needs --eval-steps).")] = None,
    plateau_min_delta: Annotated[Optional[float], _opt("Eval-loss improvement that counts (default 0).")] = None,
    plateau_min_steps: Annotated[Optional[int], _opt("No plateau stop before this step (default 0).")] = None,
    eval_limit: Annotated[Optional[int], _opt("Eval examples (held out when the data has no eval split; default 200).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any transformers TrainingArguments field, KEY=VALUE (repeatable), e.g. report_to=wandb, adam_epsilon=1e-8.")] = None,
    device: Annotated[str, typer.Option(help="auto (the Trainer's pick: a GPU if there is one), cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="Precision of the weights trained: float32 (default; with --bf16, fp32 master weights under bf16 autocast, or FSDP2's bf16 compute with --fsdp) or bfloat16 (bf16 weights, no fp32 copy).")] = "float32",
    fsdp: Annotated[bool, typer.Option("--fsdp", help="Shard weights, gradients and optimizer state over the processes of `torchrun --nproc_per_node N` (FSDP2: each decoder layer, then the rest).")] = False,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Finetune all weights on alpaca-schema data under an attention mask (stages 3a/3b)."""
    from interp.analyses.ablation.finetune.trainer import finetune
    from interp.analyses.interventions.layer_sets import parse_bidirectional_layers
    from interp.errors import InterpError

    if max_steps is not None and max_steps < 1:  # the library's -1 ("epochs decide") is leaving it out here
        raise InterpError(f"--max-steps must be at least 1, not {max_steps} (leave it out to train --epochs)")
    check_out(out)
    layers = parse_bidirectional_layers(bidirectional_layers)
    given = dict(
        max_steps=max_steps, num_train_epochs=epochs, learning_rate=learning_rate,
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=gradient_accumulation_steps,
        max_seq_len=max_seq_len, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
        logging_steps=logging_steps, eval_steps=eval_steps, save_steps=save_steps, seed=seed, bf16=bf16,
        gradient_checkpointing=gradient_checkpointing, min_loss_improvement=min_loss_improvement,
        kill_after_steps=kill_after_steps, plateau_patience=plateau_patience,
        plateau_min_delta=plateau_min_delta, plateau_min_steps=plateau_min_steps, eval_limit=eval_limit,
    )
    options = {k: v for k, v in given.items() if v is not None} | parse_settings(set_ or [])
    quiet_transformers()
    result = finetune(model or "toy", data, attention, out, allow_label_leakage=allow_label_leakage,
                      resume=resume, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                      bidirectional_layers=layers, fsdp=fsdp, **options)
    s = result.summary
    if result.note:
        typer.echo(result.note)
        return
    guard = s["leakage_guard"]
    typer.echo(f"leakage guard: {guard['mode']} " + ("leak-free" if guard["leak_free"] else "LEAKS LABELS (allowed)")
               + f" over {guard['labelled_positions']} labelled positions in {guard['examples_checked']} examples")
    typer.echo(f"{s['attention']}: {s['steps']} steps ({s['precision']['description']}), stop: {s['stop_reason']}; train loss {_fmt(s['train_loss'])}, "
               f"eval loss {_fmt(s['eval_loss_initial'])} → {_fmt(s['eval_loss'])}")
    p = s["parallelism"]
    if p["kind"] != "single":
        typer.echo(f"parallelism: {p['kind']} over {p['world_size']} processes, {p['params_per_rank']:,} of "
                   f"{p['params_total']:,} parameters per rank")
    typer.echo(f"checkpoint: {result.checkpoint_dir}\nsummary:    {result.checkpoint_dir.parent / 'summary.json'}")


probe_app = typer.Typer(help="Diagnostics on a model's training objective.", no_args_is_help=True)


@probe_app.command("leakage")
def probe_leakage_cmd(
    model: ModelOpt = None,
    data: DataOpt = "toy",
    limit: Annotated[int, typer.Option(help="Examples to probe.")] = 64,
    split: Annotated[str, typer.Option(help="eval (held-out rows) or train.")] = "eval",
    max_seq_len: Annotated[int, typer.Option(help="Truncate examples to this many tokens.")] = 512,
    batch_size: Annotated[int, typer.Option(help="Examples per forward.")] = 8,
    modes: Annotated[str, typer.Option(help="Comma-separated modes to compare with causal.")] = ",".join(MODES),
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
) -> None:
    """Response loss under causal and each mode on the same weights; flags a mode far below causal."""
    from rich.console import Console
    from rich.table import Table

    from interp.analyses.ablation.finetune.leakage import LEAK_RATIO, run_leakage_probe
    from interp.cli.common import check_at_least, check_device, load_quietly

    for option, value in (("--limit", limit), ("--max-seq-len", max_seq_len), ("--batch-size", batch_size)):
        check_at_least(option, value, 1)
    check_device(device)
    engine = load_quietly(model, device, dtype, trust_remote_code)
    table = run_leakage_probe(engine, data, limit=limit, split=split, max_seq_len=max_seq_len,
                              batch_size=batch_size, modes=[m.strip() for m in modes.split(",") if m.strip()])
    out = Table(title=f"response loss on {table.attrs['examples']} {split} examples of {data} ({engine.name})")
    for col in ("mode", "loss", "loss / causal", "mask leak-free", "flagged"):
        out.add_column(col, justify="left" if col == "mode" else "right")
    for row in table.itertuples():
        out.add_row(row.mode, f"{row.loss:.4f}", f"{row.ratio:.3f}", "yes" if row.mask_leak_free else "NO",
                    "LEAK?" if row.flagged else "")
    console = Console()
    console.print(out)
    flagged = table.loc[table.flagged, "mode"].tolist()
    console.print(f"flagged (loss < {LEAK_RATIO} × causal): {', '.join(flagged) if flagged else 'none'}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
