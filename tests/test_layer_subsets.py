"""Attention in a subset of layers (`bidirectional_layers`): each layer's mask is exactly the one
a reference built from the transformers model's own decoder layers is given."""

from __future__ import annotations

import pytest
import torch

from interp.errors import InterpError
from tests.conftest import random_ids

TOL = 1e-4


def _rule(t: int, p: int, window: int | None) -> torch.Tensor:
    """[T,T] bool, written independently of the engine: key j visible to query i iff
    (j ≤ i or j < p) and, with a sliding window, |i − j| < window."""
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    visible = (j <= i) | (j < p)
    if window is not None:
        visible &= (i - j).abs() < window
    return visible


def hf_layerwise_logits(engine, ids: torch.Tensor, prefix: dict[int, int], window: int | None = None) -> torch.Tensor:
    """The HF model's own embeddings, rotary module, decoder layers, norm and lm_head, each layer
    called directly with its own 4-D additive mask (prefix[l] tokens bidirectional, 0 = causal)."""
    decoder = engine.decoder  # the Hugging Face text model
    b, t = ids.shape
    positions = torch.arange(t)[None].expand(b, t)
    h = decoder.embed_tokens(ids)
    cos_sin = decoder.rotary_emb(h, positions)
    neg = torch.finfo(h.dtype).min
    for index, layer in enumerate(decoder.layers):
        visible = _rule(t, prefix.get(index, 0), window)
        additive = torch.zeros(t, t).masked_fill(~visible, neg)[None, None].expand(b, 1, t, t)
        h = layer(h, attention_mask=additive, position_ids=positions, position_embeddings=cos_sin)
        h = h[0] if isinstance(h, tuple) else h
    return engine.model.get_output_embeddings()(decoder.norm(h))


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window", "ministral3", "mistral3"])
def test_layer_subsets_equal_hf_decoder_layers_with_per_layer_masks(engines, variant):
    engine = engines(variant)
    window = engine.windows[0]
    t, p = 12, 7
    ids = random_ids(2, t, seed=11)
    with torch.no_grad():
        causal = engine.run(ids).logits
        assert (hf_layerwise_logits(engine, ids, {}, window) - causal).abs().max() <= TOL  # the reference is right
        for mode, layers in (("prefix", [1]), ("prefix", [0]), ("bidirectional", [1]), ("prefix", [])):
            p_mode = p if mode == "prefix" else t
            ref = hf_layerwise_logits(engine, ids, {layer: p_mode for layer in layers}, window)
            for impl in ("sdpa", "explicit"):
                ours = engine.run(ids, attention=mode, prefix_len=p if mode == "prefix" else None,
                                  bidirectional_layers=layers, attn_impl=impl).logits
                assert (ours - ref).abs().max() <= TOL, (mode, layers, impl)
        # A subset really changes something, and None means every layer.
        one = engine.run(ids, attention="prefix", prefix_len=p, bidirectional_layers=[0]).logits
        every = engine.run(ids, attention="prefix", prefix_len=p, bidirectional_layers=None).logits
        both = engine.run(ids, attention="prefix", prefix_len=p, bidirectional_layers=[0, 1]).logits
        assert (one - causal).abs().max() > 1e-2 and (one - every).abs().max() > 1e-2
        assert (both - every).abs().max() == 0


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window"])
def test_layer_subset_prefix_prefill_then_decode_equals_one_pass(engines, variant):
    engine = engines(variant)
    ids = random_ids(2, 13, seed=12)
    p = 8
    with torch.no_grad():
        one_pass = engine.run(ids, attention="prefix", prefix_len=p, bidirectional_layers=[1]).logits
        out = engine.run(ids[:, :p], attention="prefix", prefix_len=p, bidirectional_layers=[1], use_cache=True)
        steps = [out.logits]
        for t in range(p, ids.shape[1]):
            out = engine.run(ids[:, t:t + 1], past=out.past, use_cache=True)
            steps.append(out.logits)
        generated = engine.generate(ids[:, :p], max_new_tokens=3, attention="prefix", bidirectional_layers=[1],
                                    eos_token_id=-1).new_ids
    assert (torch.cat(steps, 1) - one_pass).abs().max() <= TOL
    assert generated[:, 0].tolist() == one_pass[:, p - 1].argmax(-1).tolist()


def test_bad_bidirectional_layers_are_one_line_errors(engines):
    engine = engines("qwen3")
    ids = random_ids(1, 5)
    for bad, message in (([2], "out of range"), ([-1], "out of range"), ([0.5], "not a layer number"),
                         ("0-1", "layer numbers")):
        with pytest.raises(InterpError, match=message):
            engine.run(ids, attention="prefix", prefix_len=3, bidirectional_layers=bad)


def test_bad_bidirectional_layers_on_the_command_line_exit_2(model_dirs, tmp_path, monkeypatch, capsys):
    """The console entry point itself (in-process: a subprocess would only add interpreter start-up)."""
    from interp.analyses.interventions.layer_sets import parse_bidirectional_layers
    from interp.cli.app import main

    argv = ["interp", "eval", "--tasks", "toy_arc", "--limit", "2", "--out", str(tmp_path), "-m",
            str(model_dirs("qwen3")), "--attention", "prefix", "--bidirectional-layers", "1-5"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["error: bidirectional layer 2 out of range: the model has 2 layers (0..1)"]
    with pytest.raises(InterpError, match="--bidirectional-layers: 'one' is not a layer number"):
        parse_bidirectional_layers("one")  # the same one line every command gives, before any model loads
