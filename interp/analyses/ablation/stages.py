"""The prefill-mask ablation as numbered stages, each run into its own directory.

  1   zero-shot eval, causal attention (the baseline)
  2   zero-shot eval, prefix attention (the ablation: context bidirectional, answer causal)
  3a  finetune all weights under causal attention
  3b  finetune all weights under prefix attention (prompt bidirectional, response causal)
  4   zero-shot eval of the latest 3a and 3b checkpoints, under prefix and under causal

The ablation by layer: `bidirectional_layers` (e.g. "20-27") restricts prefix attention to those
layers in stages 2, 3b and 4 (the other layers stay causal); `sweep_layers: G` makes stage 2 a
sweep, evaluated once per contiguous group of layers (G groups), into RUNS/2/<timestamp>/layers-<a-b>/.

A run's settings come from a preset shipped in interp/analyses/ablation/presets/ (toy.yaml, the default,
runs on a fresh machine; ministral3.yaml is the Ministral 3 3B model of the original ablation) with any value overridden. Each run
writes RUNS/<stage>/<timestamp>/: config.yaml (the resolved settings), provenance.json,
run.log, metrics.json (one shape for every stage, see stage_metrics; written last: its presence
marks a finished run), and for each evaluation a sub-directory (causal/, prefix/, layers-<a-b>/,
3b-prefix/ …) holding an eval result: metrics.json, examples.csv and tasks/<task>.json|csv, written
as each task finishes so `resume` can skip them.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from interp.data.benchmarks import DEFAULT_FORMAT, check_format
from interp.errors import InterpError
from interp.util.io import read_yaml, write_json, write_text
from interp.util.provenance import provenance
from interp.util.settings import parse_settings

STAGES: dict[str, str] = {
    "1": "zero-shot eval, causal attention (baseline)",
    "2": "zero-shot eval, prefix attention (ablation: context bidirectional, answer causal)",
    "3a": "finetune all weights, causal attention",
    "3b": "finetune all weights, prefix attention (prompt bidirectional, response causal)",
    "4": "eval the latest 3a and 3b checkpoints under prefix and under causal attention",
}
EVAL_STAGES = {"1": "causal", "2": "prefix"}
FINETUNE_STAGES = {"3a": "causal", "3b": "prefix"}
PRESETS_DIR = Path(__file__).resolve().parent / "presets"
DEFAULT_PRESET = "toy"
REQUIRED_KEYS = ("model", "tasks", "limit", "batch_size", "dtype", "device", "runs_dir", "seed", "finetune")
OPTIONAL_KEYS = ("data_dir", "trust_remote_code", "threads", "preset", "format", "bidirectional_layers", "sweep_layers",
                 "device_map")
# Settings a resumed run must share with the run it continues.
RESUME_KEYS = ("model", "tasks", "limit", "dtype", "data_dir", "format", "bidirectional_layers", "sweep_layers")


# ------------------------------------------------------------------------------------- config
def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_preset(name_or_path: str) -> dict:
    """A shipped preset by name (toy, ministral3) or any YAML file with the same keys."""
    path = PRESETS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        if not str(name_or_path).endswith((".yaml", ".yml")):
            raise InterpError(f"unknown preset {name_or_path!r}; choose {', '.join(preset_names())} or a .yaml file")
        path = Path(name_or_path)
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise InterpError(f"preset {path} is not a mapping of settings")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise InterpError(f"preset {path} lacks {', '.join(missing)}")
    return config


def resolve_config(
    preset: str = DEFAULT_PRESET, overrides: dict[str, Any] | None = None, assignments: Sequence[str] = ()
) -> dict:
    """Preset + overrides (None values ignored; dotted keys reach into finetune) + "key=value" strings.

    Values in assignments are parsed by interp.util.settings ("1e-4" → float, "null" → None, "[a, b]" → list).
    """
    config = copy.deepcopy(load_preset(preset))
    config["preset"] = preset
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(config, key, value)
    for key, value in parse_settings(assignments).items():
        _set(config, key, value)
    return _checked(config)


def _set(config: dict, key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    known = [*REQUIRED_KEYS, *OPTIONAL_KEYS]
    if head not in known:
        near = difflib.get_close_matches(head, known, n=1)
        raise InterpError(f"unknown setting {head!r}" + (f"; did you mean {near[0]!r}?" if near else ""))
    if rest:
        if head != "finetune":
            raise InterpError(f"setting {head!r} has no parts ({key!r})")
        config.setdefault("finetune", {})[rest] = value
    else:
        config[head] = value


def _checked(config: dict) -> dict:
    tasks = config["tasks"]
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise InterpError(f"tasks must be a list of task names, not {config['tasks']!r}")
    config["tasks"] = tasks
    for key in ("limit", "batch_size"):
        if isinstance(config[key], bool) or not isinstance(config[key], int) or config[key] < 1:
            raise InterpError(f"{key} must be a positive integer, not {config[key]!r}")
    if not isinstance(config["finetune"], dict) or "data" not in config["finetune"]:
        raise InterpError("the finetune settings need at least `data`")
    config.setdefault("data_dir", None)
    config.setdefault("trust_remote_code", False)
    config.setdefault("threads", None)
    config.setdefault("format", DEFAULT_FORMAT)  # the benchmarks' prompt format: lm-eval or seed
    check_format(config["format"])
    _check_layer_settings(config)
    config.setdefault("device_map", None)
    return config


def _check_layer_settings(config: dict) -> None:
    """bidirectional_layers → sorted layer numbers or None; sweep_layers → a group count or None."""
    from interp.analyses.interventions.layer_sets import check_layer_settings

    config["bidirectional_layers"], config["sweep_layers"] = check_layer_settings(
        config.get("bidirectional_layers"), config.get("sweep_layers"))


def resolve_device(device: str) -> str:
    """'auto' → cuda if available, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# ------------------------------------------------------------------------------------- run dirs
def run_dirs(runs_dir: str | Path, stage: str) -> list[Path]:
    """A stage's run directories, oldest first (timestamps, then _2, _3… for same-second runs)."""
    base = Path(runs_dir) / stage
    if not base.is_dir():
        return []

    def key(path: Path):
        stamp, _, n = path.name.partition("_")
        return stamp, int(n) if n.isdigit() else 0

    return sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")), key=key)


def latest_run(runs_dir: str | Path, stage: str, *, finished: bool = True, sweep: bool = False) -> Path | None:
    """The newest run of `stage` (only finished ones — with metrics.json — unless finished=False);
    layer sweeps (stage 2 with sweep_layers) and other runs are told apart by `sweep`."""
    for path in reversed(run_dirs(runs_dir, stage)):
        if (not finished or (path / "metrics.json").exists()) and is_sweep_run(path) == sweep:
            return path
    return None


def is_sweep_run(run_dir: Path) -> bool:
    """Whether a run directory holds a layer sweep (its config.yaml sets sweep_layers)."""
    path = run_dir / "config.yaml"
    return path.exists() and bool((read_yaml(path) or {}).get("sweep_layers"))


def new_run_dir(runs_dir: str | Path, stage: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / stage
    path, n = base / stamp, 1
    while path.exists():
        n += 1
        path = base / f"{stamp}_{n}"
    path.mkdir(parents=True)
    return path


class RunLog:
    """Timestamped lines appended to run.log and echoed (to the terminal by the CLI)."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = print):
        self.path = path
        self.echo = echo

    def __call__(self, message: str) -> None:
        from interp.util.distributed import is_main

        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        if not is_main():  # torchrun / accelerate launch: one log, rank 0's
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp}  {message}\n")
        if self.echo is not None:
            self.echo(message)


# ------------------------------------------------------------------------------------- stages
def run_stage(
    stage: str,
    config: dict,
    *,
    resume: bool = False,
    checkpoints: Sequence[str] = (),
    echo: Callable[[str], None] | None = print,
    show_progress: bool = True,
) -> Path:
    """Run one stage with a resolved config (see `resolve_config`); returns the run directory.

    resume: continue the newest run of this stage (finished tasks are skipped; a finetune
    continues from its last checkpoint) instead of starting a new one.
    checkpoints (stage 4): "PATH" (taken as the 3b checkpoint) or "3a=PATH" / "3b=PATH"; by
    default RUNS/3a/<latest>/final and RUNS/3b/<latest>/final.
    """
    if stage not in STAGES:
        raise InterpError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    sweep = bool(config.get("sweep_layers"))
    if sweep and stage != "2":
        raise InterpError(f"--sweep-layers is for stage 2 (the ablation), not stage {stage}")
    runs_dir = Path(config["runs_dir"])
    targets = resolve_checkpoints(runs_dir, checkpoints) if stage == "4" else None
    tasks = _tasks(config) if stage not in FINETUNE_STAGES else None  # missing data fails before any run dir

    previous = latest_run(runs_dir, stage, finished=False, sweep=sweep) if resume else None
    if previous is not None:
        _check_resumable(previous, config, stage)
        run_dir = previous
    else:
        from interp.util.distributed import main_decides

        run_dir = main_decides(lambda: new_run_dir(runs_dir, stage))  # one run directory for all ranks
    device = resolve_device(config["device"])
    write_text(run_dir / "config.yaml", yaml.safe_dump({"stage": stage, **config, "resolved_device": device},
                                                      sort_keys=False))
    write_json(run_dir / "provenance.json", provenance(seed=config["seed"], device=device))
    log = RunLog(run_dir / "run.log", echo)
    log(f"stage {stage}: {STAGES[stage]} → {run_dir}" + (" (resumed)" if previous is not None else ""))

    import torch

    torch.manual_seed(int(config["seed"]))
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    from interp.analyses.ablation import stage_runners as runners

    run = runners.StageRun(stage, config, device, run_dir, previous is not None, log, show_progress, tasks, targets)
    if sweep:
        runners.run_sweep(run)
    elif stage in EVAL_STAGES:
        runners.run_eval(run, EVAL_STAGES[stage])
    elif stage in FINETUNE_STAGES:
        runners.run_finetune(run, FINETUNE_STAGES[stage])
    else:
        runners.run_post_finetune(run)
    log(f"stage {stage} finished: {run_dir / 'metrics.json'}")
    from interp.util.distributed import barrier

    barrier()  # rank 0 has written the files every rank may read next
    return run_dir


def _tasks(config: dict) -> list:
    """Load the tasks before the model, so missing data fails in seconds, not after a big load."""
    from interp.analyses.ablation.evaluate import load_tasks

    return load_tasks(config["tasks"], limit=config["limit"], data_dir=config["data_dir"], format=config["format"])


def resolve_checkpoints(runs_dir: str | Path, given: Sequence[str] = ()) -> dict[str, Path]:
    """{"3b": path, "3a": path} from --checkpoint values, else the latest finetune runs' final/."""
    found: dict[str, Path] = {}
    for value in given:
        label, sep, path = value.partition("=")
        if not sep or label not in FINETUNE_STAGES:
            label, path = "3b", value
        if label in found:
            raise InterpError(f"two checkpoints given for {label}")
        found[label] = Path(path).expanduser()
    if not given:
        for label in ("3b", "3a"):
            for run in reversed(run_dirs(runs_dir, label)):
                if (run / "final" / "config.json").exists():
                    found[label] = run / "final"
                    break
        if not found:
            raise InterpError(f"no finetuned checkpoint under {runs_dir}/3a or {runs_dir}/3b: run "
                              "`interp stage run 3b` first, or pass --checkpoint PATH")
    for label, path in found.items():
        if not (path / "config.json").exists():
            raise InterpError(f"checkpoint for {label} is not a save_pretrained directory: {path}")
    return dict(sorted(found.items(), reverse=True))  # 3b (the recovery run) first


def _check_resumable(run_dir: Path, config: dict, stage: str) -> None:
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        return
    saved = read_yaml(saved_path) or {}
    keys = RESUME_KEYS + (("finetune",) if stage in FINETUNE_STAGES else ())
    differs = [k for k in keys if saved.get(k) != config.get(k)]
    if differs:
        what = "; ".join(f"{k}: {saved.get(k)!r} there, {config.get(k)!r} now" for k in differs)
        raise InterpError(f"cannot resume {run_dir}: other settings ({what}); drop --resume to start a new run")


# ------------------------------------------------------------------------------------- listing
def stage_status(runs_dir: str | Path) -> list[dict]:
    """One row per stage: what it does, its newest run, and that run's headline figures (read through
    the stage record, so a damaged metrics.json is a one-line error naming it)."""
    from interp.analyses.ablation.stage_metrics import METRICS_FILE, StageMetrics

    rows = []
    sweep_run = latest_run(runs_dir, "2", finished=False, sweep=True)
    listed = [(stage, what, False) for stage, what in STAGES.items()]
    if sweep_run is not None:  # shown only once there is one
        listed.insert(2, ("2", "layer sweep: prefix attention in each group of layers (--sweep-layers)", True))
    for stage, what, sweep in listed:
        run = latest_run(runs_dir, stage, finished=False, sweep=sweep)
        row = {"stage": stage, "description": what, "latest": str(run) if run else None, "status": "not run",
               "headline": ""}
        if run is not None:
            finished = (run / METRICS_FILE).exists()
            row["status"] = "finished" if finished else "unfinished"
            if finished:
                row["headline"] = StageMetrics.read(run).headline()
        rows.append(row)
    return rows
