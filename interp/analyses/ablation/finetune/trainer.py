"""Full-weight finetuning under a chosen attention mask (stages 3a causal / 3b prefix).

The training forward is the engine's (so the mask trained is the mask measured); the
transformers Trainer runs the loop: gradient accumulation, schedules, bf16, checkpoints and
`resume_from_checkpoint`, multi-GPU through accelerate/torchrun. Before any step the leakage
guard proves from the engine's masks that no labelled position sees its target, and refuses a
leaky mode unless `allow_label_leakage`. Results: out_dir/final (save_pretrained + tokenizer;
opens with `interp.load` and `AutoModelForCausalLM`), out_dir/checkpoint-N (resumable), and
out_dir/summary.json.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from interp.analyses.ablation.finetune.leakage import guard_label_leakage
from interp.analyses.ablation.finetune.stop_rules import StopRecord, stop_rule_callbacks
from interp.analyses.ablation.finetune.training_model import EngineTrainingModel
from interp.data.instructions import (
    InstructionCollator, check_truncation, load_instructions, pad_token_id, tokenize_rows,
)
from interp.engine import Engine
from interp.engine.masks import check_layers, check_mode
from interp.engine.quantization import check_trainable, quantization_record
from interp.errors import InterpError
from interp.util.distributed import launched
from interp.util.io import write_json
from interp.util.provenance import provenance

logger = logging.getLogger(__name__)

# Options the stage presets set; the ones not handled here go straight to TrainingArguments.
DEFAULTS: dict[str, Any] = {
    "max_seq_len": 512,
    "max_steps": -1,
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


@dataclass
class FinetuneResult:
    checkpoint_dir: Path  # out_dir/final
    summary: dict


class _EngineTrainer(Trainer):
    """Trainer whose checkpoints are the HF model's own `save_pretrained` files (+ tokenizer).

    Every checkpoint-N opens with `interp.load`, and resume (and load_best_model_at_end) reads it
    back through the HF class's `from_pretrained`, whatever key layout its `save_pretrained` wrote.
    """

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        # Under FSDP the Trainer passes the consolidated full state dict (the wrapper's keys are the
        # HF model's); the model's own tensors would be this rank's shards.
        self.accelerator.unwrap_model(self.model).hf_model.save_pretrained(output_dir, state_dict=state_dict)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Resume through the HF model's own `from_pretrained`: its key mapping reads what its
        `save_pretrained` wrote (Mistral 3 writes `language_model.model.*`, holds `model.language_model.*`)."""
        if self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_weights_into(self.accelerator.unwrap_model(model or self.model).hf_model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        """load_best_model_at_end: the same loader as resume."""
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_best_model()
        load_weights_into(self.accelerator.unwrap_model(self.model).hf_model, self.state.best_model_checkpoint)


def load_weights_into(hf_model: nn.Module, checkpoint_dir: str | os.PathLike) -> None:
    """Copy a `save_pretrained` checkpoint of `hf_model`'s class into it, every key accounted for."""
    from interp.engine.loading import quiet_loading

    dtype = next(hf_model.parameters()).dtype
    with quiet_loading():
        saved = type(hf_model).from_pretrained(checkpoint_dir, config=hf_model.config, dtype=dtype)
    result = hf_model.load_state_dict(saved.state_dict(), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise InterpError(f"checkpoint {checkpoint_dir} does not match the model: missing {result.missing_keys[:3]}, "
                          f"unexpected {result.unexpected_keys[:3]}")


def resolve_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(our options with defaults, TrainingArguments kwargs); unknown keys → one-line InterpError."""
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


_TRAINING_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingArguments)
                      if f.init and f.default is not dataclasses.MISSING}


def finetune(
    model: str | Engine,
    data: str,
    attention: str,
    out_dir: str | os.PathLike,
    *,
    allow_label_leakage: bool = False,
    resume: bool | str = False,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    bidirectional_layers: Sequence[int] | None = None,
    **options: Any,
) -> FinetuneResult:
    """Finetune all weights of `model` on alpaca-schema `data` under `attention`; see module doc.

    model: hub id, local directory, "toy", or a loaded Engine (trained in place).
    data: "toy", a .json/.jsonl file, or a hub dataset id (see interp.data.instructions).
    resume: True continues from the latest out_dir/checkpoint-N (or starts afresh if there is
    none yet), a path continues from that checkpoint.
    dtype: the weights' own precision when `model` is loaded here (default float32). bfloat16
    trains bf16 weights with no fp32 copy; for fp32 master weights under bf16 autocast keep
    float32 and pass bf16=True. device: cpu, cuda or auto (the Trainer's pick; default);
    trust_remote_code as in `interp.load`. The summary records both precisions.
    bidirectional_layers: train `attention` in these layers only, the others causal (None: all).
    options: DEFAULTS keys and any other TrainingArguments field (report_to, save_total_limit, ...).
    """
    import interp
    from transformers import set_seed

    check_mode(attention)
    opts, trainer_kwargs = resolve_options(options)
    trainer_kwargs = _placement(device, trainer_kwargs)
    out = Path(out_dir)
    set_seed(int(opts["seed"]))

    rows = load_instructions(data, eval_limit=opts["eval_limit"], seed=int(opts["seed"]))
    if isinstance(model, Engine):
        engine = model
    else:
        load_device = "cpu" if device in (None, "auto") else device  # the Trainer moves it to its device
        engine = interp.load(model, dtype=dtype, device=load_device, trust_remote_code=trust_remote_code)
    check_trainable(engine.model)  # kept FP8 modules cannot train; a dequantized checkpoint saves in full precision
    tokenizer = engine.tokenizer
    max_seq_len = int(opts["max_seq_len"])
    train_examples, train_dropped = tokenize_rows(rows.train, tokenizer, max_seq_len)
    eval_examples, eval_dropped = tokenize_rows(rows.eval, tokenizer, max_seq_len)
    check_truncation(len(rows.train), train_dropped, f"training rows of {data!r}", max_seq_len, must_keep_some=True)
    check_truncation(len(rows.eval), eval_dropped, f"eval rows of {data!r}", max_seq_len)
    longest = max(len(e["input_ids"]) for e in train_examples + eval_examples)
    if engine.max_positions is not None and longest > engine.max_positions:
        raise InterpError(f"examples reach {longest} tokens but the model allows {engine.max_positions}; "
                          f"lower max_seq_len")
    pad = pad_token_id(tokenizer)
    layers = sorted(check_layers(bidirectional_layers, engine.n_layers)) if bidirectional_layers is not None else None
    guard = guard_label_leakage(train_examples, attention, allow_label_leakage=allow_label_leakage, pad_token_id=pad,
                                bidirectional_layers=layers, n_layers=engine.n_layers)

    engine.gradient_checkpointing = bool(opts["gradient_checkpointing"])
    wrapper = EngineTrainingModel(engine, attention, bidirectional_layers=layers)
    record = StopRecord()
    callbacks = stop_rule_callbacks(
        record,
        min_loss_improvement=float(opts["min_loss_improvement"]),
        kill_after_steps=opts["kill_after_steps"],
        plateau_patience=opts["plateau_patience"],
        plateau_min_delta=float(opts["plateau_min_delta"]),
        plateau_min_steps=int(opts["plateau_min_steps"]),
    )
    try:
        args = TrainingArguments(output_dir=str(out), **trainer_kwargs)
    except (TypeError, ValueError) as exc:
        raise InterpError(f"invalid finetune options: {' '.join(str(exc).split())[:300]}") from None
    trainer = _EngineTrainer(
        model=wrapper, args=args, data_collator=InstructionCollator(pad), train_dataset=train_examples,
        eval_dataset=eval_examples or None, processing_class=tokenizer, callbacks=callbacks,
    )

    checkpoint = _resume_point(out, resume)
    eval_initial = trainer.evaluate()["eval_loss"] if eval_examples and checkpoint is None else None
    # accelerate marks a model prepared for evaluation as prepared for good, so train() would skip
    # the DDP wrap and each rank would train alone on its shard: clear the mark first.
    vars(wrapper).pop("_is_accelerate_prepared", None)
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    eval_final = trainer.evaluate()["eval_loss"] if eval_examples else None

    final = out / "final"
    trainer.save_model(str(final))
    engine.model.eval()
    finite = all(bool(torch.isfinite(p).all()) for p in engine.model.parameters())
    state = trainer.state
    metrics = train_output.metrics
    summary = {
        "model": engine.name if isinstance(model, Engine) else str(model),  # as the user gave it
        "data": rows.source,
        "attention": attention,
        "bidirectional_layers": layers,
        "seed": int(opts["seed"]),
        "steps": state.global_step,
        "max_steps": state.max_steps,
        "epochs": state.epoch,
        "stop_reason": record.reason or f"completed {state.global_step} of {state.max_steps} steps",
        "stop_rule": record.rule,
        "stopped_early": record.reason is not None,
        "train_loss": metrics.get("train_loss"),
        "train_loss_last": _last(state.log_history, "loss"),
        "eval_loss_initial": eval_initial,
        "eval_loss": eval_final,
        "train_runtime_s": metrics.get("train_runtime"),
        "train_steps_per_second": metrics.get("train_steps_per_second"),
        "train_samples_per_second": metrics.get("train_samples_per_second"),
        "data_sizes": rows.sizes() | {
            "train_examples": len(train_examples), "eval_examples": len(eval_examples),
            "dropped_by_truncation": train_dropped + eval_dropped,
        },
        "leakage_guard": guard,
        "resumed_from": checkpoint,
        "precision": precision(engine, bool(opts["bf16"])),
        "quantization": quantization_record(engine),  # None: a full-precision source
        "final_weights_finite": finite,
        "checkpoint_dir": str(final),
        "options": opts,
        "training_arguments": {k: _plain(v) for k, v in trainer_kwargs.items()},
        "log_history": state.log_history,
        "provenance": provenance(seed=int(opts["seed"])),
    }
    if trainer.is_world_process_zero():
        write_json(out / "summary.json", summary)
    return FinetuneResult(final, summary)


def precision(engine: Engine, autocast_bf16: bool) -> dict[str, str | None]:
    """What the optimizer updates (the master weights) and what the forward computes in."""
    master = str(next(engine.model.parameters()).dtype).removeprefix("torch.")
    return {"master_weights": master, "autocast": "bfloat16" if autocast_bf16 else None,
            "description": f"{master} weights" + (" under bf16 autocast" if autocast_bf16 else "")}


def _placement(device: str | None, trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Device → TrainingArguments: the Trainer places the model itself (GPU if it has one)."""
    if device in (None, "auto", "cuda", "mps"):
        return trainer_kwargs
    if device == "cpu":
        return trainer_kwargs | {"use_cpu": True}
    raise InterpError(f"finetune device must be auto, cpu, cuda or mps, not {device!r}; "
                      "choose a GPU with CUDA_VISIBLE_DEVICES (one process) or torchrun (several)")


def _resume_point(out: Path, resume: bool | str) -> str | None:
    """The checkpoint to resume from: None, the latest out/checkpoint-N, or an explicit path.

    resume=True with no checkpoint yet (a run that stopped before its first save) starts afresh,
    with a notice: the stage runner resumes unfinished runs whatever state they reached.
    """
    if not resume:
        return None
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(str(out)) if out.is_dir() else None
        if last is None:
            logger.warning("nothing to resume in %s (no checkpoint-N yet): training from the start", out)
        return last
    if not (Path(resume) / "trainer_state.json").exists():
        raise InterpError(f"cannot resume from {resume}: not a Trainer checkpoint (no trainer_state.json)")
    return str(resume)


def _last(history: list[dict], key: str) -> float | None:
    values = [h[key] for h in history if key in h]
    return values[-1] if values else None


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
