"""A finetune's settings: the typed config, the option defaults, and their validation.

Every option is checked here, before a model or a dataset is loaded, so a bad value costs a
one-line error and nothing else. The settings that decide what is trained are recorded in the
run directory (`run_settings.json`) so a resume can refuse to mix two different runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import TrainingArguments

from interp.errors import InterpError
from interp.util.distributed import launched

# Options the stage presets set; the ones not handled here go straight to TrainingArguments.
DEFAULTS: dict[str, Any] = {
    "max_seq_len": 512,
    "max_steps": -1,  # -1: num_train_epochs decides
    "num_train_epochs": 1.0,
    "learning_rate": 2e-5,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "warmup_ratio": 0.03,
    "weight_decay": 0.0,
    "logging_steps": 10,
    "eval_steps": None,  # None: evaluate only before and after training
    "save_steps": 500,
    "seed": 0,
    "bf16": False,
    "gradient_checkpointing": False,
    "min_loss_improvement": 0.0,
    "kill_after_steps": None,  # None: rule off
    "plateau_patience": None,  # None: rule off
    "plateau_min_delta": 0.0,
    "plateau_min_steps": 0,
    "eval_limit": 200,
}
OWN_OPTIONS = frozenset({
    "max_seq_len", "warmup_ratio", "gradient_checkpointing", "min_loss_improvement", "kill_after_steps",
    "plateau_patience", "plateau_min_delta", "plateau_min_steps", "eval_limit",
})
# TrainingArguments we set ourselves unless the caller overrides them.
TRAINER_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "save_strategy": "steps",
    "save_total_limit": 2,
    "logging_first_step": True,  # the first loss is the no-improvement rule's baseline
    "logging_nan_inf_filter": False,  # a NaN must reach the logs and the non-finite rule
    "remove_unused_columns": False,  # prefix_len is an input the wrapper needs
    "prediction_loss_only": True,
    "dataloader_num_workers": 0,
}
RESERVED = frozenset({"output_dir", "gradient_checkpointing_kwargs", "resume_from_checkpoint"})
# Lower bounds: (minimum, whether the minimum itself is allowed). max_steps -1 is handled apart.
BOUNDS: dict[str, tuple[float, bool]] = {
    "per_device_train_batch_size": (1, True), "gradient_accumulation_steps": (1, True), "max_seq_len": (2, True),
    "learning_rate": (0, False), "num_train_epochs": (0, False), "weight_decay": (0, True),
    "logging_steps": (1, True), "save_steps": (1, True), "eval_steps": (1, True), "eval_limit": (0, True),
    "kill_after_steps": (0, True), "plateau_patience": (1, True), "plateau_min_steps": (0, True),
}
# Settings a resume may change: how long to train, how often to log/save, the kill switches.
# Everything else decides what the steps compute, and must equal the run being continued.
RESUMABLE_CHANGES = frozenset({
    "max_steps", "num_train_epochs", "logging_steps", "save_steps", "save_total_limit", "eval_steps",
    "disable_tqdm", "report_to", "logging_dir", "run_name", "dataloader_num_workers", "gradient_checkpointing",
    "min_loss_improvement", "kill_after_steps", "plateau_patience", "plateau_min_delta", "plateau_min_steps",
})
SETTINGS_FILE = "run_settings.json"


@dataclass
class FinetuneConfig:
    """Everything `finetune` needs; see `interp.analyses.ablation.finetune.trainer.finetune`."""

    model: Any  # hub id, local directory, "toy", or a loaded Engine (trained in place)
    data: str
    attention: str
    out_dir: Path
    allow_label_leakage: bool = False
    resume: bool | str = False
    dtype: str | torch.dtype | None = None
    device: str | None = None
    trust_remote_code: bool = False
    bidirectional_layers: Sequence[int] | None = None
    fsdp: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # resolved: DEFAULTS + the caller's options
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)  # → TrainingArguments

    @property
    def seed(self) -> int:
        return int(self.options["seed"])

    def settings(self, world_size: int) -> dict[str, Any]:
        """What a resume must share with this run (see RESUMABLE_CHANGES), as plain JSON values."""
        from interp.engine import Engine

        model = self.model.name if isinstance(self.model, Engine) else str(self.model)
        dtype = None if self.dtype is None else str(self.dtype).removeprefix("torch.")
        own = {"model": model, "data": self.data, "attention": self.attention, "dtype": dtype or "float32",
               "bidirectional_layers": list(self.bidirectional_layers) if self.bidirectional_layers else None,
               "fsdp": self.fsdp, "world_size": world_size}
        options = {k: v for k, v in self.options.items() if k not in RESUMABLE_CHANGES}
        return json.loads(json.dumps(own | options, default=str))


def resolve_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(our options with defaults, TrainingArguments kwargs); a bad key or value → one-line InterpError."""
    fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    known = set(DEFAULTS) | fields
    for key in options:
        if key in RESERVED:
            raise InterpError(f"finetune option {key!r} is set by finetune itself (out_dir / resume)")
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise InterpError(f"unknown finetune option {key!r}{hint}")
    for key, value in options.items():
        _check_type(key, value)
        _check_range(key, value)
    resolved = {**DEFAULTS, **options}
    defaults = TRAINER_DEFAULTS | {"dataloader_pin_memory": torch.cuda.is_available()}
    trainer_kwargs = {**defaults, **{k: v for k, v in resolved.items() if k not in OWN_OPTIONS}}
    if resolved["warmup_ratio"] and "warmup_steps" not in options:
        trainer_kwargs["warmup_steps"] = float(resolved["warmup_ratio"])  # a float < 1 is a ratio
    if (resolved["bf16"] or launched()) and not torch.cuda.is_available():
        # CPU autocast (TrainingArguments refuses bf16 otherwise); under torchrun, DDP over gloo
        trainer_kwargs.setdefault("use_cpu", True)
    if resolved["eval_steps"] is not None:
        trainer_kwargs.setdefault("eval_strategy", "steps")
    else:
        trainer_kwargs.pop("eval_steps")
    if resolved["plateau_patience"] is not None and resolved["eval_steps"] is None:
        raise InterpError("plateau_patience needs eval_steps (the plateau is measured on evaluations)")
    if not 0 <= float(resolved["warmup_ratio"]) < 1:
        raise InterpError(f"warmup_ratio must be in [0, 1), not {resolved['warmup_ratio']}")
    return resolved, trainer_kwargs


def _check_type(key: str, value: Any) -> None:
    """A number where the default is a number: "1e-8" must not reach the optimizer as a string."""
    default = DEFAULTS.get(key) if key in DEFAULTS else _TRAINING_DEFAULTS.get(key)
    if isinstance(default, bool) or default is None or value is None:
        return
    if isinstance(default, (int, float)) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise InterpError(f"finetune option {key!r} takes a number, not {value!r}")


def _check_range(key: str, value: Any) -> None:
    """Values the Trainer would take and misuse (max_steps 0 trains a step, a negative rate ascends)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if key == "max_steps":
        if value != -1 and value < 1:
            raise InterpError(f"max_steps must be at least 1 (or -1: num_train_epochs decides), not {value}")
        return
    if key in BOUNDS:
        low, inclusive = BOUNDS[key]
        if value < low or (value == low and not inclusive):
            word = "at least" if inclusive else "more than"
            raise InterpError(f"{key} must be {word} {low:g}, not {value}")


_TRAINING_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingArguments)
                      if f.init and f.default is not dataclasses.MISSING}


def record_settings(out: Path, settings: dict[str, Any]) -> None:
    """Write the settings a resume must match (rank 0, atomically)."""
    from interp.util.io import write_json

    write_json(out / SETTINGS_FILE, settings)


def check_resume_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to continue a run whose recorded settings differ from these, naming each difference."""
    path = out / SETTINGS_FILE
    if not path.exists():
        return  # a run from before settings were recorded, or a bare copied checkpoint
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InterpError(f"cannot resume {out}: {path.name} is damaged ({exc})") from None
    differs = [k for k in sorted(set(saved) | set(settings)) if saved.get(k) != settings.get(k)]
    if differs:
        what = "; ".join(f"{k}: {saved.get(k)!r} there, {settings.get(k)!r} now" for k in differs)
        raise InterpError(f"cannot resume {out}: other settings ({what}); use another --out, or drop --resume "
                          "to start over")
