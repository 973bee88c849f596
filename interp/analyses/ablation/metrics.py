"""Eval metrics from scored choices.

score(choice) = Σ log p(continuation token | context, earlier continuation tokens). As
lm-evaluation-harness defines them: acc picks the choice with the highest sum, acc_norm the
highest sum per character of the choice (its target delimiter left out), and acc_stderr /
acc_norm_stderr are the sample standard error of the mean. acc_token_norm picks the highest
per-token mean (the ministral3 ablation's length normalisation); acc_cc = (acc − chance) /
(1 − chance). Macro = unweighted mean over tasks.
"""

from __future__ import annotations

import math
from typing import Sequence

TASK_METRICS = ("n", "skipped", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "acc_token_norm", "acc_cc", "chance",
                "truncated")
MACRO_METRICS = ("acc", "acc_norm", "acc_token_norm", "acc_cc")


def choice_chars(item: dict) -> list[int]:
    """acc_norm's divisor per choice: its characters without the text joining it to the context —
    the item's `delimiter` (lm-eval's target delimiter) or, without one, its leading whitespace.
    This is lm-eval's len(choice) for its own task definitions."""
    delimiter = item.get("delimiter")
    out = []
    for choice in item["choices"]:
        joint = delimiter if delimiter is not None and choice.startswith(delimiter) else ""
        rest = choice[len(joint):]
        out.append(len(rest) if delimiter is not None else len(rest.lstrip()))
    return out


def mean_stderr(values: Sequence[float]) -> float | None:
    """lm-eval's stderr of a mean: sample standard deviation (n − 1) / √n; None below 2 values ("N/A")."""
    n = len(values)
    if n < 2:
        return None
    mu = sum(values) / n
    return math.sqrt(sum((x - mu) ** 2 for x in values) / (n - 1)) / math.sqrt(n)


def chance_corrected(value: float | None, chance: float) -> float | None:
    """(value − chance) / (1 − chance): 0 at chance, 1 at perfect."""
    if value is None or chance is None or math.isnan(value) or chance >= 1:
        return None
    return (value - chance) / (1 - chance)


def metric_or_acc(task_metrics: dict, metric: str) -> float | None:
    """A task's `metric`, or its acc where it does not report one (lm-eval's winogrande has acc only:
    every choice scores the same continuation, so length normalisation changes nothing)."""
    value = task_metrics.get(metric)
    return task_metrics.get("acc") if value is None and metric.startswith("acc") else value


def macro(per_task: dict[str, dict], metric: str) -> float:
    """Unweighted mean over tasks of `metric` (acc standing in where a task has none)."""
    return mean(v for v in (metric_or_acc(m, metric) for m in per_task.values()) if v is not None)


def argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))  # first of equal maxima, as np.argmax


def normalized(logprobs: Sequence[float], lengths: Sequence[int]) -> list[float]:
    return [lp / n if n else float("-inf") for lp, n in zip(logprobs, lengths)]


def task_metrics(examples, chances: Sequence[float], skipped: int, reported: Sequence[str], truncated: int = 0) -> dict:
    """TASK_METRICS from a task's examples table; metrics lm-eval does not report for it are None."""
    n = len(examples)
    correct = {
        "acc": [float(x) for x in examples.pred == examples.label],
        "acc_norm": [float(x) for x in examples.pred_norm == examples.label],
        "acc_token_norm": [float(x) for x in examples.pred_token_norm == examples.label],
    }
    chance = sum(chances) / n if n else float("nan")
    out: dict = {"n": n, "skipped": skipped}
    shown = {"acc", *(("acc_norm", "acc_token_norm") if "acc_norm" in reported else ())}
    for metric in ("acc", "acc_norm", "acc_token_norm"):
        value = mean(correct[metric]) if metric in shown else None
        out[metric] = value
        if metric != "acc_token_norm":
            out[f"{metric}_stderr"] = mean_stderr(correct[metric]) if metric in shown else None
    out["acc_cc"] = chance_corrected(out["acc"], chance)
    out["chance"] = chance
    out["truncated"] = truncated  # items whose context was cut from the left to fit the model
    return {k: out[k] for k in TASK_METRICS}



def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
