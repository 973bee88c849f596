"""Alpaca-schema instruction data (instruction, input, output) for finetuning and the leakage probe.

Sources: "toy" (the bundled instruction set), a local JSON array / JSONL file, or a hub dataset
id loaded with `datasets.load_dataset`. Rows become token sequences whose labels cover only the
response (plus EOS), and whose `prefix_len` is the prompt length — the prefix the prefix-LM mask
makes bidirectional, and exactly where the labels start.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from interp.data.jsonl import read_jsonl
from interp.errors import InterpError, one_line
from interp.util.hub import hub_offline_now, load_hub_dataset

IGNORE_INDEX = -100
PROMPT_TEMPLATE = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
PROMPT_TEMPLATE_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"
EVAL_SPLIT_NAMES = ("validation", "eval", "test")
TRUNCATION_WARN_FRACTION = 0.1  # say so when truncation drops more than this share of the rows
logger = logging.getLogger(__name__)


@dataclass
class InstructionData:
    """Rows {"instruction", "input", "output"} split for training and evaluation."""

    train: list[dict]
    eval: list[dict]
    source: str
    skipped: int  # rows dropped for missing/invalid fields

    def sizes(self) -> dict:
        return {"train_rows": len(self.train), "eval_rows": len(self.eval), "skipped_rows": self.skipped}


# ----------------------------------------------------------------------------- loading
def load_instructions(data: str, *, eval_limit: int | None = 200, seed: int = 0) -> InstructionData:
    """Load `data` ("toy", a .json/.jsonl path, or a hub dataset id) into train and eval rows.

    The toy set and hub datasets with a validation/test split bring their own eval split; otherwise
    `eval_limit` rows (a `seed`ed sample, at most a tenth of the rows) are held out of training.
    `eval_limit` also caps a provided eval split; 0 means no eval rows; None keeps a provided eval
    split whole and holds nothing out of a file or a hub dataset without one.
    """
    if data == "toy":
        from interp.data.toy import load_toy_instructions

        train, train_skipped = clean_rows(load_toy_instructions("train"))
        held, eval_skipped = clean_rows(load_toy_instructions("eval"))
        return InstructionData(train, _limit(held, eval_limit), "toy", train_skipped + eval_skipped)
    path = Path(data).expanduser()
    if path.exists() or data.endswith((".json", ".jsonl")):
        rows, skipped = clean_rows(_read_local(path))
        held = None
        source = str(path)
    else:
        rows, held, skipped = _read_hub(data)
        source = f"hub:{data}"
    if not rows:
        raise InterpError(f"no usable instruction rows in {data!r} ({skipped} skipped for missing fields)")
    if held is None:
        rows, held = _hold_out(rows, eval_limit or 0, seed)
    return InstructionData(rows, _limit(held, eval_limit), source, skipped)


def clean_rows(rows: Sequence) -> tuple[list[dict], int]:
    """Keep rows with a non-empty string instruction and a string output; a missing input is ""."""
    kept, skipped = [], 0
    for row in rows:
        if not isinstance(row, dict):
            skipped += 1
            continue
        instruction, inp, output = row.get("instruction"), row.get("input", ""), row.get("output")
        if inp is None:
            inp = ""
        if not (isinstance(instruction, str) and instruction.strip() and isinstance(output, str) and isinstance(inp, str)):
            skipped += 1
            continue
        kept.append({"instruction": instruction, "input": inp, "output": output})
    return kept, skipped


def _read_local(path: Path) -> list:
    if not path.is_file():
        raise InterpError(f"no such data file: {path}")
    if path.suffix == ".jsonl":
        return list(read_jsonl(path))  # a line that is not JSON is None: skipped and counted
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InterpError(f"malformed JSON in {path} (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(rows, list):
        raise InterpError(f"{path} must hold a JSON array of {{instruction, input, output}} rows")
    return rows


def _read_hub(name: str) -> tuple[list[dict], list[dict] | None, int]:
    """A hub dataset's train split (and its eval split if it has one); fails fast when offline."""
    offline = hub_offline_now()
    try:
        splits = load_hub_dataset(name, offline=offline)
    except Exception as exc:
        why = "the hub is unreachable and it is not in the local datasets cache" if offline else one_line(exc)
        raise InterpError(f"cannot load dataset {name!r}: {why}") from None
    if "train" not in splits:
        raise InterpError(f"dataset {name!r} has no train split (splits: {', '.join(splits)})")
    train, skipped = clean_rows(splits["train"])
    held = None
    for split in EVAL_SPLIT_NAMES:
        if split in splits:
            held, more = clean_rows(splits[split])
            skipped += more
            break
    return train, held, skipped


def _hold_out(rows: list[dict], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded sample of n rows (at most a tenth of the file) for eval; the rest, in order, for training."""
    n = min(n, len(rows) // 10)
    chosen = set(random.Random(seed).sample(range(len(rows)), n)) if n else set()
    return [r for i, r in enumerate(rows) if i not in chosen], [r for i, r in enumerate(rows) if i in chosen]


def _limit(rows: list[dict], limit: int | None) -> list[dict]:
    return rows if limit is None else rows[:limit]


# ----------------------------------------------------------------------------- tokenization
def format_prompt(row: dict) -> str:
    """The alpaca prompt; the Input block only when the row has a non-empty input."""
    if row.get("input", "").strip():
        return PROMPT_TEMPLATE.format(instruction=row["instruction"], input=row["input"])
    return PROMPT_TEMPLATE_NO_INPUT.format(instruction=row["instruction"])


def tokenize_example(row: dict, tokenizer, max_seq_len: int) -> dict | None:
    """{"input_ids", "labels", "prefix_len"} for one row; see `tokenize_rows`."""
    examples, _ = tokenize_rows([row], tokenizer, max_seq_len)
    return examples[0] if examples else None


def tokenize_rows(rows: Sequence[dict], tokenizer, max_seq_len: int) -> tuple[list[dict], int]:
    """Tokenize rows into {"input_ids", "labels", "prefix_len"}; returns (examples, number dropped).

    labels = the response tokens plus EOS, -100 on the prompt. Prompt and response are tokenized
    separately so the boundary is exact (the prompt keeps the tokenizer's special tokens, e.g.
    BOS). After truncation to max_seq_len, prefix_len is the number of prompt tokens left; a row
    whose response is truncated away entirely is dropped (and counted).
    """
    if max_seq_len < 2:
        raise InterpError(f"max_seq_len must be at least 2, not {max_seq_len}")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InterpError("the tokenizer has no EOS token; finetuning appends EOS to every response")
    if not rows:
        return [], 0
    prompts = tokenizer([format_prompt(r) for r in rows], add_special_tokens=True)["input_ids"]
    responses = tokenizer([r["output"] for r in rows], add_special_tokens=False)["input_ids"]
    examples = []
    for prompt, response in zip(prompts, responses):
        ids = (list(prompt) + list(response) + [eos])[:max_seq_len]
        prefix_len = min(len(prompt), max_seq_len)
        if 0 < prefix_len < len(ids):
            labels = [IGNORE_INDEX] * prefix_len + ids[prefix_len:]
            examples.append({"input_ids": ids, "labels": labels, "prefix_len": prefix_len})
    return examples, len(rows) - len(examples)


def check_truncation(n_rows: int, dropped: int, what: str, max_seq_len: int, *, must_keep_some: bool = False) -> None:
    """Say when `tokenize_rows` dropped more than a tenth of `what`; error if nothing is left and some must be."""
    reason = (f"their prompt fills max_seq_len={max_seq_len}, so no response token is left to learn; "
              "raise max_seq_len to keep them")
    if must_keep_some and n_rows and dropped == n_rows:
        raise InterpError(f"no examples left: all {n_rows} {what} were dropped by truncation ({reason})")
    if n_rows and dropped > TRUNCATION_WARN_FRACTION * n_rows:
        logger.warning("truncation dropped %d of %d %s: %s", dropped, n_rows, what, reason)


class InstructionCollator:
    """Right-pads a list of tokenized examples into tensors for the engine's training forward.

    Returns input_ids [B,T], attention_mask [B,T] (1 = real token), labels [B,T] (-100 on the
    prompt and padding), prefix_len [B] (prompt lengths: the engine's per-row prefix).
    """

    def __init__(self, pad_token_id: int | None):
        self.pad_token_id = 0 if pad_token_id is None else pad_token_id

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        from interp.util.padding import pad

        ids, mask = pad([e["input_ids"] for e in examples], "right", value=self.pad_token_id)  # [B,T]
        labels, _ = pad([e["labels"] for e in examples], "right", value=IGNORE_INDEX)  # [B,T]
        mask = mask.long()
        prefix = torch.tensor([e["prefix_len"] for e in examples], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "prefix_len": prefix}


def pad_token_id(tokenizer) -> int:
    """The id the collator pads with (pad, else EOS, else 0): masked out, so its value never matters."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return tid
    return 0
