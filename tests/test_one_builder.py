"""One mask builder: the leakage guard checks the very tensors the training forward runs, and no
module outside the engine builds an attention mask."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import interp
from interp.analyses.ablation.finetune.leakage import check_label_leakage
from interp.analyses.ablation.finetune.training_model import EngineTrainingModel
from interp.data.instructions import InstructionCollator, pad_token_id, tokenize_rows
from interp.engine import masks
from tests.test_finetune import instruction_rows


def _record_builds(monkeypatch) -> list[list]:
    """Every list of layer masks `masks.build_masks` returns from now on (the real builder still runs)."""
    calls, original = [], masks.build_masks

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(masks, "build_masks", recording)
    return calls


def test_leakage_guard_checks_the_masks_the_training_forward_uses(engines, monkeypatch):
    engine = engines("qwen3")
    assert engine.windows == [None] * engine.n_layers  # the guard leaves windows out; this model has none
    examples, _ = tokenize_rows(instruction_rows(8), engine.tokenizer, 96)
    examples.sort(key=lambda e: len(e["input_ids"]))  # the guard's own order: one identical batch
    assert len({len(e["input_ids"]) for e in examples}) > 1  # padded rows: every layer gets a mask tensor
    subset = [1]  # prefix in layer 1 only: two different layer masks to tell apart
    calls = _record_builds(monkeypatch)
    for mode in ("prefix", "bidirectional"):
        model = EngineTrainingModel(engine, mode, bidirectional_layers=subset)
        with torch.no_grad():
            model(**InstructionCollator(pad_token_id(engine.tokenizer))(examples))
        verdict = check_label_leakage(examples, mode, bidirectional_layers=subset, n_layers=engine.n_layers)
        forward_masks, guard_masks = calls
        calls.clear()
        assert len(forward_masks) == len(guard_masks) == engine.n_layers
        for ours, theirs in zip(forward_masks, guard_masks):
            assert ours is not None and torch.equal(ours, theirs)
        assert not torch.equal(forward_masks[0], forward_masks[1])  # causal layer 0, the mode in layer 1
        p = int(examples[0]["prefix_len"])
        assert bool(forward_masks[1][0, 0, 0, p - 1])  # the first query sees the whole prompt in layer 1
        assert not bool(forward_masks[0][0, 0, 0, 1])  # and only itself in the causal layer
        assert verdict.leak_free == (mode == "prefix")


def test_no_module_outside_the_engine_builds_an_attention_mask():
    root = Path(interp.__file__).parent
    files = [p for p in root.rglob("*.py") if p.relative_to(root).parts[0] != "engine"]
    assert len(files) > 50  # the scan covered the package
    offenders = [str(p.relative_to(root)) for p in files if re.search(r"\btri[lu]\b|\btri[lu]_\b", p.read_text())]
    assert offenders == []


def test_the_mode_table_says_what_the_guard_proves(engines):
    """Each mode's leak_free in the one table is what the guard proves from the masks."""
    from interp.engine import ATTENTION_MODES

    examples, _ = tokenize_rows(instruction_rows(6), engines("qwen3").tokenizer, 96)
    assert list(ATTENTION_MODES) == list(masks.MODES) == ["causal", "prefix", "bidirectional"]
    for name, mode in ATTENTION_MODES.items():
        assert check_label_leakage(examples, name).leak_free is mode.leak_free
    assert masks.LEAKY_MODES == {"bidirectional"}


def test_prefix_len_defaults_in_one_place():
    assert masks.default_prefix_len("prefix", 7) == 7
    assert masks.default_prefix_len("causal", 7) is None and masks.default_prefix_len("bidirectional", 7) is None
    root = Path(interp.__file__).parent
    copies = [str(p.relative_to(root)) for p in root.rglob("*.py")
              if re.search(r'if attention == "prefix" else None', p.read_text())]
    assert copies == []
