"""The stage runners: what each stage of the prefill-mask ablation does once its run directory exists.

`interp.analyses.ablation.stages.run_stage` resolves the settings and the run directory, then calls
one of these with a `StageRun`; each writes the run's metrics.json last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from interp.analyses.ablation.stage_metrics import StageEval, StageMetrics

POST_FINETUNE_MODES = ("prefix", "causal")


@dataclass
class StageRun:
    """One stage run as its runner sees it: the resolved settings, where it writes, what it resumes."""

    stage: str
    config: dict  # resolve_config's settings
    device: str  # resolved: cpu, cuda, ...
    run_dir: Path
    resume: bool  # continuing an earlier run in run_dir: finished tasks are skipped, a finetune continues
    log: Callable[[str], None]  # stages.RunLog: run.log + terminal
    show_progress: bool = True
    tasks: list | None = None  # evaluation stages: the loaded tasks
    targets: dict[str, Path] | None = None  # stage 4: {"3b": checkpoint, "3a": checkpoint}


def _load(model: str, config: dict, device: str):
    import interp
    from interp.util.logs import quiet_transformers

    quiet_transformers()
    from interp.util.distributed import local_device

    return interp.load(model, dtype=config["dtype"], device=local_device(device),
                       trust_remote_code=bool(config["trust_remote_code"]), device_map=config.get("device_map"))


def _eval_kwargs(config: dict, mode: str = "causal") -> dict:
    layers = config.get("bidirectional_layers") if mode != "causal" else None
    return dict(limit=config["limit"], batch_size=config["batch_size"], data_dir=config["data_dir"],
                format=config["format"], bidirectional_layers=layers)


def run_eval(run: StageRun, mode: str) -> None:
    """Stage 1 or 2: one evaluation into RUN/<mode>/."""
    from interp.analyses.ablation.evaluate import evaluate

    engine = _load(run.config["model"], run.config, run.device)
    run.log(f"model {engine!r}")
    metrics = evaluate(engine, run.tasks, attention=mode, out_dir=run.run_dir / mode, resume=run.resume, log=run.log,
                       show_progress=run.show_progress, **_eval_kwargs(run.config, mode))
    evals = [StageEval(mode, mode, metrics, bidirectional_layers=metrics.get("bidirectional_layers"))]
    StageMetrics(run.stage, run.config["model"], evals).write(run.run_dir)


def run_sweep(run: StageRun) -> None:
    """Stage 2 once per contiguous layer group: prefix attention in that group, causal elsewhere."""
    from interp.analyses.ablation.evaluate import evaluate
    from interp.analyses.interventions.layer_sets import contiguous_groups, layer_label

    config, log = run.config, run.log
    engine = _load(config["model"], config, run.device)
    log(f"model {engine!r}")
    groups = contiguous_groups(engine.n_layers, int(config["sweep_layers"]))
    results = []
    for layers in groups:
        label = layer_label(layers)
        log(f"sweep: prefix attention in layers {label} of {engine.n_layers}, causal elsewhere")
        metrics = evaluate(engine, run.tasks, attention="prefix", out_dir=run.run_dir / f"layers-{label}",
                           resume=run.resume, log=log, show_progress=run.show_progress,
                           **(_eval_kwargs(config) | {"bidirectional_layers": layers}))
        results.append(StageEval(f"layers-{label}", "prefix", metrics, bidirectional_layers=list(layers), layers=label))
    StageMetrics("2", config["model"], results).write(run.run_dir)


def run_finetune(run: StageRun, mode: str) -> None:
    """finetune(model, data, attention, out_dir, **the preset's finetune options), loading the model
    with the preset's dtype (finetune.dtype overrides it), device and trust_remote_code;
    finetune.fsdp shards it with FSDP2 under torchrun."""
    from interp.analyses.ablation.finetune.trainer import finetune

    config = run.config
    options = dict(config["finetune"])
    data = options.pop("data")
    dtype = options.pop("dtype", config["dtype"])
    layers = config.get("bidirectional_layers") if mode != "causal" else None
    if layers is not None:
        options["bidirectional_layers"] = layers
    run.log(f"finetune {config['model']} on {data} under {mode} attention" + (f" in layers {layers}" if layers else "")
            + f" ({dtype} weights, {run.device}" + (", FSDP2" if options.get("fsdp") else "") + ")")
    result = finetune(model=config["model"], data=data, attention=mode, out_dir=run.run_dir, resume=run.resume,
                      dtype=dtype, device=run.device, trust_remote_code=bool(config["trust_remote_code"]), **options)
    if getattr(result, "note", None):
        run.log(result.note)
    StageMetrics(run.stage, config["model"], finetune={"attention": mode, "data": data,
                                                       "checkpoint_dir": str(result.checkpoint_dir),
                                                       "summary": result.summary}).write(run.run_dir)
    run.log(f"checkpoint: {result.checkpoint_dir}")


def run_post_finetune(run: StageRun) -> None:
    from interp.analyses.ablation.evaluate import evaluate

    targets = run.targets or {}
    evals: list[StageEval] = []
    for label, path in targets.items():
        engine = _load(str(path), run.config, run.device)
        run.log(f"{label} checkpoint {path}: {engine!r}")
        for mode in POST_FINETUNE_MODES:
            metrics = evaluate(engine, run.tasks, attention=mode, out_dir=run.run_dir / f"{label}-{mode}",
                               resume=run.resume, log=run.log, show_progress=run.show_progress,
                               **_eval_kwargs(run.config, mode))
            evals.append(StageEval(f"{label}-{mode}", mode, metrics, label, str(path), metrics.get("bidirectional_layers")))
        del engine
    StageMetrics("4", run.config["model"], evals).write(run.run_dir)
