"""The five real benchmarks: where each lives, and how one raw row becomes a multiple-choice item.

Every converter takes a row in the dataset's own schema (as `datasets` or a JSONL dump gives it)
and returns `{"context", "choices", "label"}` — the scored text is `context + choices[i]` — or
None when a field is missing or malformed (the loader skips and counts it). Formats follow the
seed experiment:

  hellaswag      "activity_label: ctx_a ctx_b"  +  " " + ending
  piqa           "goal\\nAnswer:"                 +  " " + solution
  arc_*          "question\\nAnswer:"             +  " " + choice text  (rows whose answerKey is
                                                     not one of the choice labels are skipped)
  winogrande     sentence before "_"             +  option + rest of the sentence

Whitespace that ends a context is moved to the front of every choice (winogrande's "... and _"),
so an item states exactly the token boundary that will be scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

Item = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark on the hub (repo, config, default split) and its row → item converter."""

    name: str
    hub_path: str
    hub_config: str | None
    split: str
    fields: tuple[str, ...]  # the raw fields a row needs (for messages and docs)
    to_item: Callable[[dict], Item | None]


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


def hellaswag_item(row: dict) -> Item | None:
    label_text, ctx_a, ctx_b = (_text(row.get(k)) for k in ("activity_label", "ctx_a", "ctx_b"))
    endings = _as_list(row.get("endings"))
    if label_text is None or ctx_a is None or ctx_b is None or not _strings(endings):
        return None
    label = _label(row.get("label"), len(endings))
    if label is None:
        return None
    context = f"{label_text}: " + " ".join(part for part in (ctx_a, ctx_b) if part)
    return _item(context, [" " + e for e in endings], label)


def piqa_item(row: dict) -> Item | None:
    goal, sol1, sol2 = (_text(row.get(k)) for k in ("goal", "sol1", "sol2"))
    if goal is None or not sol1 or not sol2:
        return None
    label = _label(row.get("label"), 2)
    if label is None:
        return None
    return _item(f"{goal}\nAnswer:", [" " + sol1, " " + sol2], label)


def arc_item(row: dict) -> Item | None:
    question, choices, key = _text(row.get("question")), row.get("choices"), row.get("answerKey")
    if question is None or not isinstance(choices, dict):
        return None
    texts, labels = _as_list(choices.get("text")), _as_list(choices.get("label"))
    if not _strings(texts) or labels is None or len(labels) != len(texts) or key not in labels:
        return None
    return _item(f"{question}\nAnswer:", [" " + t for t in texts], labels.index(key))


def winogrande_item(row: dict) -> Item | None:
    sentence, option1, option2 = (_text(row.get(k)) for k in ("sentence", "option1", "option2"))
    if sentence is None or "_" not in sentence or not option1 or not option2:
        return None
    label = _label(row.get("answer"), 3)  # "1" or "2"
    if label is None or label == 0:
        return None
    blank = sentence.index("_")
    rest = sentence[blank + 1:]
    return _item(sentence[:blank], [option1 + rest, option2 + rest], label - 1)


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


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("hellaswag", "Rowan/hellaswag", None, "validation",
                  ("activity_label", "ctx_a", "ctx_b", "endings", "label"), hellaswag_item),
        Benchmark("piqa", "baber/piqa", None, "validation", ("goal", "sol1", "sol2", "label"), piqa_item),
        Benchmark("arc_easy", "allenai/ai2_arc", "ARC-Easy", "test", ("question", "choices", "answerKey"), arc_item),
        Benchmark("arc_challenge", "allenai/ai2_arc", "ARC-Challenge", "test",
                  ("question", "choices", "answerKey"), arc_item),
        Benchmark("winogrande", "allenai/winogrande", "winogrande_xl", "validation",
                  ("sentence", "option1", "option2", "answer"), winogrande_item),
    )
}
