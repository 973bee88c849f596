"""`interp stage list | run STAGE | report`: the prefill-mask ablation, stage by stage."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from interp.cli.common import DeviceMapOpt, check_device, check_out

stage_app = typer.Typer(
    help="The prefill-mask ablation: 1 causal eval, 2 prefix eval, 3a/3b finetune, 4 post-finetune eval, report.",
    no_args_is_help=True,
)

PresetOpt = Annotated[str, typer.Option(help="toy (default: the bundled model), ministral3 (Ministral 3 3B, the prefill-mask ablation's model), or a .yaml file.")]
RunsDirOpt = Annotated[Optional[str], typer.Option(help="Root of the run directories (default: the preset's, ./runs).")]


@stage_app.command("list")
def list_cmd(preset: PresetOpt = "toy", runs_dir: RunsDirOpt = None) -> None:
    """Show the stages, the presets, and the newest run of each stage."""
    from interp.analyses.ablation.stages import preset_names, resolve_config, stage_status

    config = resolve_config(preset, {"runs_dir": runs_dir})
    for row in stage_status(config["runs_dir"]):
        typer.echo(f"{row['stage']:<3} {row['description']}")
        if row["latest"]:
            typer.echo(f"    {row['status']}: {row['latest']}" + (f"  ({row['headline']})" if row["headline"] else ""))
    typer.echo(f"presets: {', '.join(preset_names())}   runs: {config['runs_dir']}")


@stage_app.command("run")
def run_cmd(
    stage: Annotated[str, typer.Argument(help="1, 2, 3a, 3b or 4.")],
    preset: PresetOpt = "toy",
    model: Annotated[Optional[str], typer.Option(help="Hub id, local directory or 'toy'.")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated task names or .jsonl files.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Items per task.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Items (contexts) per forward.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float32, bfloat16 or float16.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:1, mps.")] = None,
    device_map: DeviceMapOpt = None,
    data_dir: Annotated[Optional[str], typer.Option(help="Local benchmark files: DATA_DIR/<task>/<split>.jsonl.")] = None,
    format: Annotated[Optional[str], typer.Option(
        "--format", help="Benchmark prompts: lm-eval or seed (the ministral3 ablation's; ministral3's default).")] = None,
    runs_dir: RunsDirOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    checkpoint: Annotated[Optional[list[str]], typer.Option(
        help="Stage 4: PATH (the 3b checkpoint) or 3a=PATH / 3b=PATH; repeatable. Default: the latest 3a/3b runs.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the newest run of this stage, skipping finished tasks.")] = False,
    bidirectional_layers: Annotated[Optional[str], typer.Option(
        help="Stages 2, 3b, 4: prefix attention only in these layers, e.g. 20-27 or 0,3,5; the others stay causal.")] = None,
    sweep_layers: Annotated[Optional[int], typer.Option(
        help="Stage 2: evaluate once per group of layers, G contiguous groups, prefix attention in that group only "
             "(`stage report` plots accuracy per group).", metavar="G")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Any other setting as KEY=VALUE (YAML value), e.g. finetune.learning_rate=1e-4; repeatable.")] = None,
    trust_remote_code: Annotated[Optional[bool], typer.Option(
        "--trust-remote-code/--no-trust-remote-code", help="Allow the checkpoint's own Python code.")] = None,
    fsdp: Annotated[Optional[bool], typer.Option(
        "--fsdp/--no-fsdp", help="Stages 3a/3b: shard the finetune with FSDP2 over the processes of "
        "`torchrun --nproc_per_node N -m interp stage run 3b ...` (finetune.fsdp in presets).")] = None,
) -> None:
    """Run one stage; writes RUNS/<stage>/<timestamp>/ (config.yaml, metrics.json, run.log, provenance.json, and one eval directory per evaluation: causal/, prefix/, 3b-prefix/ …)."""
    from interp.analyses.ablation.stages import EVAL_STAGES, resolve_config, run_stage

    overrides = dict(model=model, tasks=tasks, limit=limit, batch_size=batch_size, dtype=dtype, device=device,
                     device_map=device_map, data_dir=data_dir, format=format, runs_dir=runs_dir, seed=seed,
                     trust_remote_code=trust_remote_code, bidirectional_layers=bidirectional_layers,
                     sweep_layers=sweep_layers, **{"finetune.fsdp": fsdp})
    config = resolve_config(preset, overrides, set_ or ())
    check_out(config["runs_dir"], option="--runs-dir")
    check_device(None if config.get("device_map") else config.get("device"))
    run_dir = run_stage(stage, config, resume=resume, checkpoints=checkpoint or (),
                        echo=lambda line: typer.echo(line, err=True))
    if stage in EVAL_STAGES or stage == "4":
        _print_eval(run_dir)
    typer.echo(f"run directory: {run_dir}")


def _print_eval(run_dir) -> None:
    from interp.analyses.ablation.eval_table import format_metrics
    from interp.analyses.ablation.stage_metrics import StageMetrics

    record = StageMetrics.read(run_dir)
    for e in record.evals:
        if e.checkpoint is not None:
            typer.echo(f"\n{e.checkpoint} checkpoint, {e.attention} attention:")
        typer.echo(("\n" if record.is_sweep else "") + format_metrics(e.metrics))


@stage_app.command("report")
def report_cmd(
    preset: PresetOpt = "toy",
    runs_dir: RunsDirOpt = None,
    out: Annotated[Optional[str], typer.Option(help="Where to write report.md/.csv/.png (default: the runs root).")] = None,
) -> None:
    """Per task and macro for each stage: deltas, retention S2/S1, recovery S4/S1, gain S4−S2, the success criteria; tasks grouped by kind (fact recall, in-context, word order), and the replication targets beside the published row."""
    from interp.analyses.ablation.report import build_report
    from interp.analyses.ablation.stages import resolve_config

    config = resolve_config(preset, {"runs_dir": runs_dir})
    check_out(out if out is not None else config["runs_dir"], option="--out" if out is not None else "--runs-dir")
    files = build_report(config["runs_dir"], out)
    typer.echo(files.markdown.read_text(encoding="utf-8"))
    typer.echo(f"wrote {files.markdown}, {files.table}, {files.figure}"
               + (f", {files.sweep_table}, {files.sweep_figure}" if files.sweep_figure else ""))
