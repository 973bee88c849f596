"""Stop rules for finetuning, as transformers TrainerCallbacks (the kill switches of the Ministral 3 prefill-mask ablation).

- no training-loss improvement of `min_loss_improvement` (from the first logged loss to the best
  since) once `kill_after_steps` steps have run;
- eval-loss plateau: `patience` evaluations in a row without beating the best by `min_delta`,
  only once `min_steps` steps have run;
- a non-finite training or eval loss.

The first rule to fire wins; its reason is logged and kept in `StopRecord` for summary.json.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from interp.util.distributed import any_rank

logger = logging.getLogger(__name__)


@dataclass
class StopRecord:
    """Why and when training was stopped early (None if it ran to the end)."""

    reason: str | None = None
    rule: str | None = None
    step: int | None = None

    def stop(self, control: TrainerControl, state: TrainerState, rule: str, reason: str) -> None:
        if self.reason is None:
            self.reason, self.rule, self.step = reason, rule, state.global_step
            logger.warning("stopping at step %d: %s", state.global_step, reason)
            print(f"[interp] stopping at step {state.global_step}: {reason}", flush=True)
        control.should_training_stop = True


class NoImprovementStop(TrainerCallback):
    """Kill a run whose training loss has not improved by `min_improvement` after `after_steps`."""

    def __init__(self, record: StopRecord, min_improvement: float, after_steps: int):
        self.record, self.min_improvement, self.after_steps = record, min_improvement, after_steps
        self.first: float | None = None
        self.best = math.inf

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kw):
        loss = (logs or {}).get("loss")
        if loss is None or not math.isfinite(loss):
            return
        if self.first is None:
            self.first = loss
        self.best = min(self.best, loss)
        gained = self.first - self.best
        if state.global_step >= self.after_steps and gained < self.min_improvement:
            self.record.stop(control, state, "no_improvement",
                             f"training loss improved by {gained:.4f} (from {self.first:.4f} to best {self.best:.4f}) "
                             f"in {state.global_step} steps, less than min_loss_improvement={self.min_improvement}")


class EvalPlateauStop(TrainerCallback):
    """Stop when the eval loss has not beaten its best by `min_delta` for `patience` evaluations."""

    def __init__(self, record: StopRecord, patience: int, min_delta: float = 0.0, min_steps: int = 0):
        self.record, self.patience, self.min_delta, self.min_steps = record, patience, min_delta, min_steps
        self.best = math.inf
        self.bad_evals = 0

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None, **kw):
        loss = (metrics or {}).get("eval_loss")
        if loss is None or not math.isfinite(loss):
            return
        if loss < self.best - self.min_delta:
            self.best, self.bad_evals = loss, 0
        else:
            self.bad_evals += 1
        if self.bad_evals >= self.patience and state.global_step >= self.min_steps:
            self.record.stop(control, state, "eval_plateau",
                             f"eval loss plateaued: {self.bad_evals} evaluations without improving on "
                             f"{self.best:.4f} by more than {self.min_delta}")


class NonFiniteLossStop(TrainerCallback):
    """Stop at the first optimizer step with a NaN/inf loss (checked once per step, not per micro-batch)."""

    def __init__(self, record: StopRecord):
        self.record = record

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kw):
        count = getattr(model, "nonfinite_losses", None)
        mine = int(count) if count is not None else 0
        # Each rank counts its own micro-batches: a NaN on one rank must stop all of them together.
        if any_rank(mine > 0):
            self.record.stop(control, state, "non_finite_loss",
                             f"non-finite training loss ({mine} micro-batches)")

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kw):
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                self.record.stop(control, state, "non_finite_loss", f"non-finite {key.replace('_', ' ')}: {value}")


def stop_rule_callbacks(
    record: StopRecord,
    *,
    min_loss_improvement: float,
    kill_after_steps: int | None,
    plateau_patience: int | None,
    plateau_min_delta: float,
    plateau_min_steps: int,
) -> list[TrainerCallback]:
    """The callbacks the options ask for (the non-finite rule is always on)."""
    callbacks: list[TrainerCallback] = [NonFiniteLossStop(record)]
    if kill_after_steps is not None:
        callbacks.append(NoImprovementStop(record, min_loss_improvement, kill_after_steps))
    if plateau_patience is not None:
        callbacks.append(EvalPlateauStop(record, plateau_patience, plateau_min_delta, plateau_min_steps))
    return callbacks
