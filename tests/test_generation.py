"""Batched greedy generation equals one prompt at a time and transformers' greedy decoding.

The reference recomputes the whole sequence with the Hugging Face model at every step (no KV
cache, no padding), so it shares nothing with the engine's prefill + cached decode.
"""

from __future__ import annotations

import pytest
import torch

PROMPTS = ["ab", "The tower is in the city of", "Q: 2 plus 3?\nA:"]  # 3, 28, 16 tokens with BOS
STEPS = 6


def reference_mask(t: int, prompt_len: int, mode: str, window: int | None) -> torch.Tensor:
    """[1,1,t,t] bool: key j visible to query i (prefix: j < prompt_len counts as seen), within the window."""
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    visible = (j <= i) | ((j < prompt_len) if mode == "prefix" else torch.zeros(t, t, dtype=torch.bool))
    if window is not None:
        visible &= (i - j).abs() < window
    return visible[None, None]


def hf_greedy(engine, prompt: str, mode: str, eos: int | None) -> list[int]:
    """Greedy decoding by full recompute with the transformers model, one unpadded prompt."""
    ids = engine.tokenizer(prompt, return_tensors="pt")["input_ids"]
    prompt_len = ids.shape[1]
    window = engine.windows[0]
    assert all(w == window for w in engine.windows)  # one mask serves every layer
    new: list[int] = []
    with torch.no_grad():
        for _ in range(STEPS):
            mask = reference_mask(ids.shape[1], prompt_len, mode, window)
            token = int(engine.model(input_ids=ids, attention_mask=mask).logits[0, -1].argmax())
            new.append(token)
            if token == eos:
                break
            ids = torch.cat([ids, torch.tensor([[token]])], 1)
    return new


def until_eos(row: list[int], eos: int | None) -> list[int]:
    return row[: row.index(eos) + 1] if eos in row else row


@pytest.fixture
def padding_side(engines):
    """Set a tokenizer's padding side for one test, then restore it (the engines are shared)."""
    changed = []

    def set_side(engine, side: str):
        changed.append((engine.tokenizer, engine.tokenizer.padding_side))
        engine.tokenizer.padding_side = side

    yield set_side
    for tokenizer, side in changed:
        tokenizer.padding_side = side


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window"])
@pytest.mark.parametrize("mode", ["causal", "prefix"])
def test_batched_generation_equals_transformers_greedy_on_both_padding_sides(engines, padding_side, variant, mode):
    engine = engines(variant)
    plain = [hf_greedy(engine, p, mode, None) for p in PROMPTS]
    # EOS in one row: the token the shortest prompt emits at its third step, if no other row meets it
    # earlier, so that one row stops while the others go on.
    eos = plain[0][2]
    assert all(eos not in row[:3] for row in plain[1:]) and plain[0].index(eos) == 2
    expected = [until_eos(row, eos) for row in plain]
    for side in ("right", "left"):
        padding_side(engine, side)
        ids = engine.tokenizer(PROMPTS, return_tensors="pt", padding=True)["attention_mask"]
        assert not ids.all()  # the rows really are padded
        batched = engine.generate(PROMPTS, max_new_tokens=STEPS, attention=mode, eos_token_id=eos)
        got = [until_eos(row, eos) for row in batched.new_ids.tolist()]
        assert got == expected, side
        alone = [until_eos(engine.generate(p, max_new_tokens=STEPS, attention=mode, eos_token_id=eos).new_ids[0].tolist(), eos)
                 for p in PROMPTS]
        assert alone == expected, side
        assert batched.texts == [engine.tokenizer.decode(row[:-1] if row[-1] == eos else row) for row in expected]


def test_last_logits_are_each_rows_last_real_token(engines, padding_side):
    engine = engines("qwen3")
    padding_side(engine, "right")
    with torch.no_grad():
        out = engine.run(PROMPTS, logits="last")
        for row, prompt in enumerate(PROMPTS):
            alone = engine.run(prompt).logits[0, -1]
            assert (out.logits[row, 0] - alone).abs().max() <= 1e-4


def test_toy_model_batch_equals_one_prompt_at_a_time():
    """The issue's example, on the bundled model, whose tokenizer pads on the right."""
    import interp

    engine = interp.load("toy")
    assert engine.tokenizer.padding_side == "right"
    prompts = ["The Eiffel Tower is in the city of", "Q: What is 2 plus 3?\nA:", "Rome is the capital of"]
    batched = engine.generate(prompts, max_new_tokens=6).texts
    assert batched == [engine.generate(p, max_new_tokens=6).texts[0] for p in prompts]
