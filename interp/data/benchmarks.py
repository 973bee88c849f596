"""The five real benchmarks: where each lives, and how one raw row becomes a multiple-choice item.

Every converter takes a row in the dataset's own schema (as `datasets` or a JSONL dump gives it)
and returns `{"context", "choices", "label"}` — the scored text is `context + choices[i]` — or
None when a field is missing or malformed (the loader skips and counts it).

Two formats. `lm-eval` (the default) is lm-evaluation-harness 0.4's own task definitions, so
scores are comparable with published lm-eval numbers; every choice starts with lm-eval's target
delimiter " " (kept in `delimiter`, which acc_norm's character count leaves out):

  hellaswag      clean("activity_label: ctx_a Ctx_b")   " " + clean(ending)
                 (clean: strip, " [title]" → ". ", drop "[...]", "  " → " ")
  piqa           "Question: goal\nAnswer:"               " " + solution
  arc_*          "Question: question\nAnswer:"           " " + choice text
  winogrande     sentence up to "_" + option (one context per choice)
                                                         " " + the rest of the sentence, stripped
                 (lm-eval's partial scoring: both choices score the same text; acc only)

`seed` is the ministral3 ablation format (`format: seed` in the ministral3 preset):

  hellaswag      "activity_label: ctx_a ctx_b"           " " + ending
  piqa           "goal\nAnswer:"                          " " + solution
  arc_*          "question\nAnswer:"                      " " + choice text
  winogrande     sentence before "_"                     option + rest of the sentence

ARC rows whose answerKey is not one of the choice labels are skipped in both. In the ministral3 ablation format (`seed`),
whitespace that ends a context is moved to the front of every choice (winogrande's "... and _"),
so an item states exactly the token boundary that will be scored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from interp.errors import InterpError

Item = dict[str, Any]
FORMATS: tuple[str, ...] = ("lm-eval", "seed")
DEFAULT_FORMAT = "lm-eval"
ALL_METRICS: tuple[str, ...] = ("acc", "acc_norm")
LM_EVAL_DELIMITER = " "  # lm-eval's default target_delimiter


@dataclass(frozen=True)
class Benchmark:
    """A benchmark on the hub (repo, config, default split) and its row → item converter per format."""

    name: str
    hub_path: str
    hub_config: str | None
    split: str
    fields: tuple[str, ...]  # the raw fields a row needs (for messages and docs)
    converters: dict[str, Callable[[dict], Item | None]]
    lm_eval_metrics: tuple[str, ...] = ALL_METRICS  # what lm-eval reports for it
    seed_metrics: tuple[str, ...] = ALL_METRICS

    def to_item(self, row: dict, format: str = DEFAULT_FORMAT) -> Item | None:
        return self.converters[check_format(format)](row)

    def metrics(self, format: str = DEFAULT_FORMAT) -> tuple[str, ...]:
        return self.lm_eval_metrics if check_format(format) == "lm-eval" else self.seed_metrics


def check_format(format: str) -> str:
    if format not in FORMATS:
        raise InterpError(f"unknown benchmark format {format!r}; choose {' or '.join(FORMATS)}")
    return format


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _label(value: Any, n_choices: int) -> int | None:
    """An int label in range, from an int or a digit string (hellaswag stores "0".."3")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and 0 <= value < n_choices:
        return value
    return None


def _item(context: str, choices: list[str], label: int) -> Item:
    """Move trailing whitespace of the context onto every choice (the boundary that is scored)."""
    stripped = context.rstrip()
    moved = context[len(stripped):]
    return {"context": stripped, "choices": [moved + c for c in choices], "label": label}


def _lm_eval_item(context: str | list[str], choices: list[str], label: int) -> Item:
    """lm-eval's request pairs: context as given, each choice after the target delimiter."""
    return {"context": context, "choices": [LM_EVAL_DELIMITER + c for c in choices], "label": label,
            "delimiter": LM_EVAL_DELIMITER}


# ------------------------------------------------------------------------------------- rows
def _hellaswag_fields(row: dict):
    label_text, ctx_a, ctx_b = (_text(row.get(k)) for k in ("activity_label", "ctx_a", "ctx_b"))
    endings = _as_list(row.get("endings"))
    if label_text is None or ctx_a is None or ctx_b is None or not _strings(endings):
        return None
    label = _label(row.get("label"), len(endings))
    return None if label is None else (label_text, ctx_a, ctx_b, endings, label)


def _piqa_fields(row: dict):
    goal, sol1, sol2 = (_text(row.get(k)) for k in ("goal", "sol1", "sol2"))
    if goal is None or not sol1 or not sol2:
        return None
    label = _label(row.get("label"), 2)
    return None if label is None else (goal, [sol1, sol2], label)


def _arc_fields(row: dict):
    question, choices, key = _text(row.get("question")), row.get("choices"), row.get("answerKey")
    if question is None or not isinstance(choices, dict):
        return None
    texts, labels = _as_list(choices.get("text")), _as_list(choices.get("label"))
    if not _strings(texts) or labels is None or len(labels) != len(texts) or key not in labels:
        return None
    return question, texts, labels.index(key)


def _winogrande_fields(row: dict):
    sentence, option1, option2 = (_text(row.get(k)) for k in ("sentence", "option1", "option2"))
    if sentence is None or "_" not in sentence or not option1 or not option2:
        return None
    label = _label(row.get("answer"), 3)  # "1" or "2"
    if label is None or label == 0:
        return None
    blank = sentence.index("_")
    return sentence[:blank], [option1, option2], sentence[blank + 1:], label - 1


# ------------------------------------------------------------------------------------- lm-eval format
def hellaswag_clean(text: str) -> str:
    """lm-eval's hellaswag `preprocess`: brackets are artifacts of the WikiHow part of the data."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag_lm_eval(label_text: str, ctx_a: str, ctx_b: str, endings: list[str], label: int) -> Item:
    query = hellaswag_clean(label_text + ": " + ctx_a + " " + ctx_b.capitalize())
    return _lm_eval_item(query, [hellaswag_clean(e) for e in endings], label)


def piqa_lm_eval(goal: str, solutions: list[str], label: int) -> Item:
    return _lm_eval_item(f"Question: {goal}\nAnswer:", solutions, label)


def arc_lm_eval(question: str, texts: list[str], label: int) -> Item:
    return _lm_eval_item(f"Question: {question}\nAnswer:", texts, label)


def winogrande_lm_eval(before: str, options: list[str], rest: str, label: int) -> Item:
    """Partial scoring: each option fills the blank in its own context; both score the same rest."""
    return _lm_eval_item([before + option for option in options], [rest.strip()] * 2, label)


# ------------------------------------------------------------------------------------- ministral3 ablation format
def hellaswag_seed(label_text: str, ctx_a: str, ctx_b: str, endings: list[str], label: int) -> Item:
    context = f"{label_text}: " + " ".join(part for part in (ctx_a, ctx_b) if part)
    return _item(context, [" " + e for e in endings], label)


def piqa_seed(goal: str, solutions: list[str], label: int) -> Item:
    return _item(f"{goal}\nAnswer:", [" " + s for s in solutions], label)


def arc_seed(question: str, texts: list[str], label: int) -> Item:
    return _item(f"{question}\nAnswer:", [" " + t for t in texts], label)


def winogrande_seed(before: str, options: list[str], rest: str, label: int) -> Item:
    return _item(before, [option + rest for option in options], label)


def _as_list(value: Any) -> list | None:
    """Lists, tuples and numpy arrays (parquet) → list; anything else → None."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return None


def _strings(value: Any) -> bool:
    """At least two non-empty strings."""
    value = _as_list(value)
    return value is not None and len(value) >= 2 and all(isinstance(v, str) and v for v in value)


def _converter(fields: Callable[[dict], tuple | None], build: Callable[..., Item]) -> Callable[[dict], Item | None]:
    """row → the row's fields (None when missing or malformed) → the format's item."""
    def convert(row: dict) -> Item | None:
        values = fields(row)
        return None if values is None else build(*values)

    return convert


def _formats(fields: Callable[[dict], tuple | None], lm_eval: Callable[..., Item], seed: Callable[..., Item]) -> dict:
    return {"lm-eval": _converter(fields, lm_eval), "seed": _converter(fields, seed)}


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("hellaswag", "Rowan/hellaswag", None, "validation",
                  ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
                  _formats(_hellaswag_fields, hellaswag_lm_eval, hellaswag_seed)),
        Benchmark("piqa", "baber/piqa", None, "validation", ("goal", "sol1", "sol2", "label"),
                  _formats(_piqa_fields, piqa_lm_eval, piqa_seed)),
        Benchmark("arc_easy", "allenai/ai2_arc", "ARC-Easy", "test", ("question", "choices", "answerKey"),
                  _formats(_arc_fields, arc_lm_eval, arc_seed)),
        Benchmark("arc_challenge", "allenai/ai2_arc", "ARC-Challenge", "test",
                  ("question", "choices", "answerKey"), _formats(_arc_fields, arc_lm_eval, arc_seed)),
        Benchmark("winogrande", "allenai/winogrande", "winogrande_xl", "validation",
                  ("sentence", "option1", "option2", "answer"),
                  _formats(_winogrande_fields, winogrande_lm_eval, winogrande_seed), lm_eval_metrics=("acc",)),
    )
}
