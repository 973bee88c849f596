"""Row-selective captures and per-layer streaming: the sweep keeps what only the final row needs at
the final row only, and holds one layer's keys and values at a time."""

from __future__ import annotations

import torch

from interp.analyses.interventions.context import baseline_context
from tests.conftest import random_ids


def test_row_selective_capture_keeps_exactly_the_asked_rows(engines):
    engine = engines("qwen3")
    ids = random_ids(2, 9)
    full = engine.run(ids, capture=["q", "resid_pre", "pattern"], attn_impl="explicit").cache
    rows = engine.run(ids, capture=[("q", 1, slice(-1, None)), ("resid_pre", 0, slice(3, None)),
                                    ("pattern", 0, slice(-2, None))], attn_impl="explicit").cache
    assert rows["q", 1].shape == (2, 1, engine.n_heads, engine.d_head)
    assert torch.equal(rows["q", 1], full["q", 1][:, -1:])
    assert torch.equal(rows["resid_pre", 0], full["resid_pre", 0][:, 3:])
    assert torch.equal(rows["pattern", 0], full["pattern", 0][:, :, -2:])  # the query axis of [B,H,Tq,Tk]
    assert rows["q", 1]._base is None  # its own storage: the other rows are freed


def test_on_layer_hands_over_each_layer_and_keeps_none(engines):
    engine = engines("qwen3")
    ids = random_ids(1, 7)
    seen = {}
    streamed = engine.run(ids, capture=["k", "resid_post"], on_layer=lambda layer, cache: seen.update(cache))
    plain = engine.run(ids, capture=["k", "resid_post"])
    assert not any(layer is not None for _, layer in streamed.cache)  # nothing per-layer left in the run's cache
    assert sorted(seen) == sorted(plain.cache)
    for key, value in plain.cache.items():
        assert torch.equal(seen[key], value)
    torch.testing.assert_close(streamed.logits, plain.logits, rtol=0, atol=0)


def test_baseline_keeps_q_and_resid_pre_at_the_final_position_only(engines):
    engine = engines("qwen3")
    ids = random_ids(1, 10)
    t, layers = ids.shape[1], [0, 1]
    ctx = baseline_context(engine, ids, layers, attention="causal", prefix_len=None)
    reference = baseline_context(engine, ids, layers, attention="causal", prefix_len=None, full_rows=True)
    for layer in layers:
        assert ctx.q[layer].shape[1] == ctx.resid_pre[layer].shape[1] == 1
        assert ctx.k[layer].shape[1] == ctx.v[layer].shape[1] == t  # keys and values: every position
        assert torch.equal(ctx.final_q(layer), reference.q[layer][:, -1:])
        assert torch.equal(ctx.final_resid_pre(layer), reference.resid_pre[layer][:, -1:])
    # carried knockouts of the final query recompute the final row only in causal mode; under a
    # bidirectional prefix every query sees the final position, so every row is kept.
    final = baseline_context(engine, ids, [], attention="causal", prefix_len=None, carry_layers=[1], carry_queries="final")
    assert final.resid_pre[1].shape[1] == 1
    prefix = baseline_context(engine, ids, [], attention="prefix", prefix_len=t, carry_layers=[1], carry_queries="final")
    assert prefix.resid_pre[1].shape[1] == t


def test_streamed_baseline_drops_each_readout_layer_after_use(engines):
    engine = engines("qwen3")
    ids = random_ids(1, 8)
    held = []
    ctx = baseline_context(engine, ids, [0, 1], attention="causal", prefix_len=None, carry_layers=[1],
                           on_layer=lambda c, layer: held.append(sorted(c.k)))
    assert held == [[0], [1]]  # layer 0 was gone before layer 1 arrived
    assert sorted(ctx.k) == [1]  # the carry layer stays for the downstream part
