"""Full-weight finetuning under a chosen attention mask (stages 3a causal / 3b prefix).

The training forward is the engine's (so the mask trained is the mask measured); the
transformers Trainer runs the loop: gradient accumulation, schedules, bf16, checkpoints and
`resume_from_checkpoint`, multi-GPU through accelerate/torchrun (DDP), or FSDP2 with `fsdp=True`
(see finetune/fsdp.py). Before any step the leakage guard proves from the engine's masks that no
labelled position sees its target, and refuses a leaky mode unless `allow_label_leakage`.
Results: out_dir/final (save_pretrained + tokenizer; opens with `interp.load` and
`AutoModelForCausalLM`), out_dir/checkpoint-N (resumable; written whole or not at all),
out_dir/run_settings.json (what a resume must match) and out_dir/summary.json.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from interp.analyses.ablation.finetune import checkpoints
from interp.analyses.ablation.finetune import fsdp as fsdp2
from interp.analyses.ablation.finetune.config import (
    DEFAULTS, FinetuneConfig, check_resume_settings, record_settings, resolve_options,
)
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
from interp.util import distributed
from interp.util.io import write_json
from interp.util.provenance import provenance

logger = logging.getLogger(__name__)

__all__ = ["DEFAULTS", "FinetuneConfig", "FinetuneResult", "finetune", "resolve_options", "run_finetune"]


@dataclass
class FinetuneResult:
    checkpoint_dir: Path  # out_dir/final
    summary: dict
    note: str | None = None  # e.g. why a resumed run had nothing left to do


class _EngineTrainer(Trainer):
    """Trainer whose checkpoints are the HF model's own `save_pretrained` files (+ tokenizer).

    Every checkpoint-N opens with `interp.load`, and resume (and load_best_model_at_end) reads it
    back through the HF class's `from_pretrained`, whatever key layout its `save_pretrained` wrote.
    A checkpoint is written under out/.partial/ and renamed into place once whole. Under FSDP2
    (`sharded`) the weights and optimizer state are gathered to full tensors for rank 0 to write.
    """

    sharded = False
    _staging = False

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

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        if not self.sharded:
            return super().save_model(output_dir, _internal_call)
        state = fsdp2.full_model_state(self.model)  # a collective: every rank takes part
        if self.args.should_save:
            self._save(output_dir or self.args.output_dir, state_dict=state)

    def _get_output_dir(self, trial) -> str:
        run_dir = super()._get_output_dir(trial)
        return checkpoints.staging_dir(run_dir) if self._staging else run_dir

    def _save_checkpoint(self, model: nn.Module, trial) -> None:
        """Write checkpoint-N under out/.partial/, then rename it into place whole (see checkpoints.py)."""
        from transformers.trainer_utils import rotate_checkpoints

        run_dir, name = self._get_output_dir(trial), f"checkpoint-{self.state.global_step}"
        if self.args.should_save:
            checkpoints.clear_staged(run_dir, name)
        self._staging = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = False
        distributed.barrier()  # every rank's files (RNG states, shards) are in
        if self.args.should_save:
            final = checkpoints.publish(run_dir, name)
            best = self.state.best_model_checkpoint
            if best and Path(best).name == name:
                self.state.best_model_checkpoint = str(final)
            rotate_checkpoints(output_dir=run_dir, save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        distributed.barrier()

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        if not self.sharded:
            return super()._save_optimizer_and_scheduler(output_dir)
        from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME

        state = fsdp2.full_optimizer_state(self.model, self.optimizer)  # a collective
        if self.args.should_save:
            torch.save(state, os.path.join(output_dir, OPTIMIZER_NAME))
            torch.save(self.lr_scheduler.state_dict(), os.path.join(output_dir, SCHEDULER_NAME))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if not self.sharded or checkpoint is None:
            return super()._load_optimizer_and_scheduler(checkpoint)
        from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME

        state = torch.load(os.path.join(checkpoint, OPTIMIZER_NAME), map_location="cpu", weights_only=True)
        fsdp2.load_full_optimizer_state(self.model, self.optimizer, state)
        self.lr_scheduler.load_state_dict(torch.load(os.path.join(checkpoint, SCHEDULER_NAME), weights_only=True))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Resume through the HF model's own `from_pretrained`: its key mapping reads what its
        `save_pretrained` wrote (Mistral 3 writes `language_model.model.*`, holds `model.language_model.*`)."""
        if self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        wrapper = self.accelerator.unwrap_model(model or self.model)
        if self.sharded:
            fsdp2.load_full_model_state(wrapper, _saved_state(wrapper.hf_model, resume_from_checkpoint))
            return
        load_weights_into(wrapper.hf_model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        """load_best_model_at_end: the same loader as resume."""
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_best_model()
        self._load_from_checkpoint(self.state.best_model_checkpoint)


def _saved_state(hf_model: nn.Module, checkpoint_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A `save_pretrained` checkpoint of `hf_model`'s class, read through its own from_pretrained."""
    from interp.engine.loading import quiet_loading

    config = getattr(hf_model, "config")
    dtype = torch.float32
    for p in hf_model.parameters():  # the weights' own dtype (a DTensor's too)
        dtype = p.dtype
        break
    with quiet_loading():
        saved = type(hf_model).from_pretrained(checkpoint_dir, config=config, dtype=dtype)
    return saved.state_dict()


def load_weights_into(hf_model: nn.Module, checkpoint_dir: str | os.PathLike) -> None:
    """Copy a `save_pretrained` checkpoint of `hf_model`'s class into it, every key accounted for."""
    result = hf_model.load_state_dict(_saved_state(hf_model, checkpoint_dir), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise InterpError(f"checkpoint {checkpoint_dir} does not match the model: missing {result.missing_keys[:3]}, "
                          f"unexpected {result.unexpected_keys[:3]}")


# --------------------------------------------------------------------------- the steps of a run
@dataclass
class _Prepared:
    """What a run trains on: the engine and the tokenized rows."""

    engine: Engine
    rows: Any  # interp.data.instructions.InstructionRows
    train: list[dict]
    eval: list[dict]
    dropped: int
    pad: int
    layers: list[int] | None


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
    fsdp: bool = False,
    **options: Any,
) -> FinetuneResult:
    """Finetune all weights of `model` on alpaca-schema `data` under `attention`; see module doc.

    model: hub id, local directory, "toy", or a loaded Engine (trained in place).
    data: "toy", a .json/.jsonl file, or a hub dataset id (see interp.data.instructions).
    resume: True continues from the newest complete out_dir/checkpoint-N (or starts afresh if there
    is none yet), a path continues from that checkpoint. The run's settings must be the ones it
    started with (except how long to train, how often to log/save, and the stop rules); a finished
    run with no steps left is left as it is.
    dtype: the weights' own precision when `model` is loaded here (default float32). bfloat16
    trains bf16 weights with no fp32 copy; for fp32 master weights under bf16 compute keep
    float32 and pass bf16=True. device: cpu, cuda or auto (the Trainer's pick; default);
    trust_remote_code as in `interp.load`. The summary records both precisions.
    bidirectional_layers: train `attention` in these layers only, the others causal (None: all).
    fsdp: shard every decoder layer and the root with FSDP2 (under torchrun; see finetune/fsdp.py).
    options: DEFAULTS keys and any other TrainingArguments field (report_to, save_total_limit, ...).
    """
    check_mode(attention)
    opts, trainer_kwargs = resolve_options(options)
    fsdp2.check_launch(fsdp)
    config = FinetuneConfig(
        model=model, data=data, attention=attention, out_dir=Path(out_dir), allow_label_leakage=allow_label_leakage,
        resume=resume, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
        bidirectional_layers=sorted(bidirectional_layers) if bidirectional_layers is not None else None,
        fsdp=fsdp, options=opts, trainer_kwargs=_placement(device, trainer_kwargs),
    )
    return run_finetune(config)



def run_finetune(config: FinetuneConfig) -> FinetuneResult:
    """`finetune` with its settings already resolved and checked (see FinetuneConfig)."""
    from transformers import set_seed

    out = config.out_dir
    settings = config.settings(distributed.world_size())
    if config.resume:
        check_resume_settings(out, settings)
        finished = _finished_run(out, config.options)
        if finished is not None:
            return finished
    set_seed(config.seed)
    prepared = _prepare(config)
    guard = distributed.main_decides(lambda: _guard(config, prepared))  # once, before sharding
    checkpoint = checkpoints.resume_point(out, config.resume)
    if checkpoint is None:
        record_settings(out, settings)
    trainer, record, wrapper, kind = _build_trainer(config, prepared)
    eval_initial = trainer.evaluate()["eval_loss"] if prepared.eval and checkpoint is None else None
    # accelerate marks a model prepared for evaluation as prepared for good, so train() would skip
    # the DDP wrap and each rank would train alone on its shard: clear the mark first. Under FSDP2
    # the mark stays: the model is sharded already and must not be wrapped in DDP as well.
    if not trainer.sharded:
        vars(wrapper).pop("_is_accelerate_prepared", None)
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    eval_final = trainer.evaluate()["eval_loss"] if prepared.eval else None
    parallel = fsdp2.parallelism(wrapper, kind)

    final = out / "final"
    trainer.save_model(str(final))
    finite = _all_finite(wrapper)
    summary = _summary(config, prepared, trainer, train_output.metrics, record, guard, checkpoint,
                       eval_initial, eval_final, finite, parallel, final)
    if trainer.is_world_process_zero():
        write_json(out / "summary.json", summary)
    distributed.barrier()
    return FinetuneResult(final, summary)


def _prepare(config: FinetuneConfig) -> _Prepared:
    """Load the rows and the model, tokenize, and check that everything fits the model."""
    import interp

    opts = config.options
    rows = load_instructions(config.data, eval_limit=opts["eval_limit"], seed=config.seed)
    if isinstance(config.model, Engine):
        engine = config.model
    else:
        load_device = "cpu" if config.device in (None, "auto") else config.device  # the Trainer moves it
        engine = interp.load(config.model, dtype=config.dtype, device=load_device,
                             trust_remote_code=config.trust_remote_code)
    check_trainable(engine.model)  # kept FP8 modules cannot train; a dequantized checkpoint saves in full precision
    max_seq_len = int(opts["max_seq_len"])
    train, train_dropped = tokenize_rows(rows.train, engine.tokenizer, max_seq_len)
    evals, eval_dropped = tokenize_rows(rows.eval, engine.tokenizer, max_seq_len)
    check_truncation(len(rows.train), train_dropped, f"training rows of {config.data!r}", max_seq_len,
                     must_keep_some=True)
    check_truncation(len(rows.eval), eval_dropped, f"eval rows of {config.data!r}", max_seq_len)
    longest = max(len(e["input_ids"]) for e in train + evals)
    if engine.max_positions is not None and longest > engine.max_positions:
        raise InterpError(f"examples reach {longest} tokens but the model allows {engine.max_positions}; "
                          f"lower max_seq_len")
    layers = config.bidirectional_layers
    layers = sorted(check_layers(layers, engine.n_layers)) if layers is not None else None
    return _Prepared(engine, rows, train, evals, train_dropped + eval_dropped, pad_token_id(engine.tokenizer), layers)


def _guard(config: FinetuneConfig, prepared: _Prepared) -> dict:
    return guard_label_leakage(prepared.train, config.attention, allow_label_leakage=config.allow_label_leakage,
                               pad_token_id=prepared.pad, bidirectional_layers=prepared.layers,
                               n_layers=prepared.engine.n_layers)


def _build_trainer(config: FinetuneConfig, prepared: _Prepared):
    """The wrapper (sharded under FSDP2), the stop rules and the Trainer; (trainer, record, wrapper, kind)."""
    opts, engine = config.options, prepared.engine
    engine.gradient_checkpointing = bool(opts["gradient_checkpointing"])
    wrapper = EngineTrainingModel(engine, config.attention, bidirectional_layers=prepared.layers)
    trainer_kwargs = dict(config.trainer_kwargs)
    if config.fsdp:
        fsdp2.shard(wrapper, engine, bf16=bool(opts["bf16"]))
        trainer_kwargs["bf16"] = False  # FSDP2's MixedPrecisionPolicy computes in bf16, not autocast
        wrapper._is_accelerate_prepared = True  # accelerate: already distributed, no DDP wrap
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
        args = TrainingArguments(output_dir=str(config.out_dir), **trainer_kwargs)
    except (TypeError, ValueError) as exc:
        raise InterpError(f"invalid finetune options: {' '.join(str(exc).split())[:300]}") from None
    trainer = _EngineTrainer(
        model=wrapper, args=args, data_collator=InstructionCollator(prepared.pad), train_dataset=prepared.train,
        eval_dataset=prepared.eval or None, processing_class=engine.tokenizer, callbacks=callbacks,
    )
    trainer.sharded = config.fsdp
    kind = "fsdp2" if config.fsdp else "ddp" if distributed.world_size() > 1 else "single"
    return trainer, record, wrapper, kind


def _finished_run(out: Path, opts: dict[str, Any]) -> FinetuneResult | None:
    """A finished run (summary.json + final/) asked for no more steps than it ran: left as it is."""
    path, final = out / "summary.json", out / "final"
    if not (path.exists() and (final / "config.json").exists()):
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        done, planned = int(summary["steps"]), int(summary["max_steps"])
        recorded = summary.get("options", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InterpError(f"cannot resume {out}: summary.json is damaged ({exc})") from None
    if opts["max_steps"] > 0:
        target = int(opts["max_steps"])
        left = target > done and not (summary.get("stopped_early") and target <= planned)
    else:  # epochs decide: more only if more epochs are asked for than the run had
        left = recorded.get("max_steps", -1) != -1 or opts["num_train_epochs"] > recorded.get("num_train_epochs", 0)
    if left:
        return None
    note = (f"nothing to do: {out} finished at step {done} ({summary.get('stop_reason')}); "
            f"final/ and summary.json left as they were")
    logger.warning(note)
    return FinetuneResult(final, summary, note)


def _summary(config, prepared, trainer, metrics, record, guard, checkpoint, eval_initial, eval_final, finite,
             parallel, final) -> dict:
    state = trainer.state
    engine = prepared.engine
    return {
        "model": engine.name if isinstance(config.model, Engine) else str(config.model),  # as the user gave it
        "data": prepared.rows.source,
        "attention": config.attention,
        "bidirectional_layers": prepared.layers,
        "seed": config.seed,
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
        "data_sizes": prepared.rows.sizes() | {
            "train_examples": len(prepared.train), "eval_examples": len(prepared.eval),
            "dropped_by_truncation": prepared.dropped,
        },
        "leakage_guard": guard,
        "resumed_from": checkpoint,
        "precision": precision(engine, bool(config.options["bf16"]), fsdp=config.fsdp),
        "parallelism": parallel,
        "quantization": quantization_record(engine),  # None: a full-precision source
        "final_weights_finite": finite,
        "checkpoint_dir": str(final),
        "options": config.options,
        "training_arguments": {k: _plain(v) for k, v in config.trainer_kwargs.items()},
        "log_history": state.log_history,
        "provenance": provenance(seed=config.seed),
    }


def precision(engine: Engine, autocast_bf16: bool, *, fsdp: bool = False) -> dict[str, str | None]:
    """What the optimizer updates (the master weights) and what the forward computes in."""
    master = str(next(engine.model.parameters()).dtype).removeprefix("torch.")
    if fsdp:  # FSDP2's MixedPrecisionPolicy: bf16 compute, fp32 reductions; --dtype bfloat16 is pure bf16
        compute = "bfloat16" if autocast_bf16 else master
        return {"master_weights": master, "autocast": None, "fsdp_param_dtype": compute,
                "fsdp_reduce_dtype": "float32" if autocast_bf16 else master,
                "description": f"{master} weights" + (", FSDP2 mixed precision: bf16 compute, fp32 reduce"
                                                      if autocast_bf16 else "")}
    return {"master_weights": master, "autocast": "bfloat16" if autocast_bf16 else None,
            "description": f"{master} weights" + (" under bf16 autocast" if autocast_bf16 else "")}


def _all_finite(model: nn.Module) -> bool:
    """Every weight finite (each rank checks its shards; all must agree)."""
    ok = all(bool(torch.isfinite(p.to_local() if hasattr(p, "to_local") else p).all()) for p in model.parameters())
    if distributed.initialized() and distributed.world_size() > 1:
        flag = torch.tensor([0 if ok else 1], device=next(model.parameters()).device)
        torch.distributed.all_reduce(flag)
        ok = int(flag) == 0
    return ok


def _placement(device: str | None, trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Device → TrainingArguments: the Trainer places the model itself (GPU if it has one)."""
    if device in (None, "auto", "cuda", "mps"):
        return trainer_kwargs
    if device == "cpu":
        return trainer_kwargs | {"use_cpu": True}
    raise InterpError(f"finetune device must be auto, cpu, cuda or mps, not {device!r}; "
                      "choose a GPU with CUDA_VISIBLE_DEVICES (one process) or torchrun (several)")


def _last(history: list[dict], key: str) -> float | None:
    values = [h[key] for h in history if key in h]
    return values[-1] if values else None


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
