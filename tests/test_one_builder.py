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


def test_one_unembed_and_attention_step_outside_the_engine():
    """Nothing outside the engine applies the final norm / lm_head or rewrites the attention softmax."""
    root = Path(interp.__file__).parent
    pattern = re.compile(r"decoder\.norm\(|lm_head\(|\.softmax\(-1\) \* allowed|scaled_dot_product_attention")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.relative_to(root).parts[0] != "engine" and pattern.search(p.read_text())]
    assert offenders == []


def test_shared_keys_are_attended_without_copies_and_exactly(engines):
    """J query rows over a batch-1 block of cached keys/values (the carry's one-token steps) equal
    the same attention over the block copied J times."""
    engine = engines("qwen3_gqa4")
    g = torch.Generator().manual_seed(0)
    j, t, dh = 5, 9, engine.d_head
    q = torch.randn(j, engine.n_heads, 1, dh, generator=g)
    past = (torch.randn(1, engine.n_kv_heads, t, dh, generator=g), torch.randn(1, engine.n_kv_heads, t, dh, generator=g))
    own = (torch.randn(j, engine.n_kv_heads, 1, dh, generator=g), torch.randn(j, engine.n_kv_heads, 1, dh, generator=g))
    allowed = torch.rand(j, 1, 1, t + 1, generator=g) > 0.3
    allowed[0] = False  # an emptied row: zero output
    shared = engine.attend(1, q, *own, allowed, past_kv=past)
    copied = engine.attend(1, q, torch.cat([past[0].expand(j, -1, -1, -1), own[0]], 2),
                           torch.cat([past[1].expand(j, -1, -1, -1), own[1]], 2), allowed)
    sdpa = engine.attend(1, q[1:], torch.cat([past[0].expand(j - 1, -1, -1, -1), own[0][1:]], 2),
                         torch.cat([past[1].expand(j - 1, -1, -1, -1), own[1][1:]], 2), allowed[1:], impl="sdpa")
    assert shared.shape == (j, engine.n_heads, 1, dh)
    assert torch.equal(shared[0], torch.zeros_like(shared[0]))
    torch.testing.assert_close(shared, copied, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(shared[1:], sdpa, rtol=1e-5, atol=1e-6)
