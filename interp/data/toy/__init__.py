"""The bundled toy world, its tasks and instruction data, and the small model trained on it.

Everything here loads from files shipped inside the package (generated/ and model/), so the
toolkit runs on a real trained model with no network. Importing this module is cheap: it touches
no torch or transformers; training and generation live in the submodules.
"""

from __future__ import annotations

from pathlib import Path

from interp.data.jsonl import read_jsonl
from interp.errors import InterpError

_HERE = Path(__file__).resolve().parent
BUNDLED_MODEL_DIR: Path = _HERE / "model"
GENERATED_DIR: Path = _HERE / "generated"
TOY_FACT_TASKS: tuple[str, ...] = ("toy_arc", "toy_piqa", "toy_hellaswag", "toy_winogrande")
TOY_IN_CONTEXT_TASKS: tuple[str, ...] = ("toy_binding", "toy_order", "toy_copy", "toy_tracking")
TOY_TASKS: tuple[str, ...] = TOY_FACT_TASKS + TOY_IN_CONTEXT_TASKS
TASK_SPLITS: tuple[str, ...] = ("eval",)
INSTRUCTION_SPLITS: tuple[str, ...] = ("train", "eval")


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise InterpError(f"toy data file {path} is missing; run `interp toy build`")
    return list(read_jsonl(path))


def task_path(name: str, split: str = "eval") -> Path:
    """Where a toy task's items live (only held-out eval items exist: the model trains on the corpus)."""
    if name not in TOY_TASKS:
        raise InterpError(f"unknown toy task {name!r}; choose from {', '.join(TOY_TASKS)}")
    if split not in TASK_SPLITS:
        raise InterpError(f"toy task {name} has no split {split!r}; choose from {', '.join(TASK_SPLITS)}")
    return GENERATED_DIR / "tasks" / f"{name}.jsonl"


def load_toy_task(name: str, split: str = "eval") -> list[dict]:
    """Items {"context", "choices", "label", ...}; score choices[i] appended to context."""
    return _read_jsonl(task_path(name, split))


def instructions_path(split: str) -> Path:
    """The alpaca-schema JSONL file for "train" or "eval"."""
    if split not in INSTRUCTION_SPLITS:
        raise InterpError(f"unknown instruction split {split!r}; choose from {', '.join(INSTRUCTION_SPLITS)}")
    return GENERATED_DIR / f"instructions_{split}.jsonl"


def load_toy_instructions(split: str) -> list[dict]:
    """Rows {"instruction", "input", "output"} (alpaca schema) for "train" or "eval"."""
    return _read_jsonl(instructions_path(split))


def corpus_path() -> Path:
    """The pretraining corpus (documents separated by corpus.DOC_SEPARATOR)."""
    return GENERATED_DIR / "corpus.txt"
