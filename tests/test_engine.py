"""The engine computes exactly what the Hugging Face model computes, and its masks mean what docs/semantics.md says."""

from __future__ import annotations

import pytest
import torch

from interp import Knockout
from tests.conftest import VARIANTS, random_ids

TOL = 1e-4
ALL = list(VARIANTS)


def hf_logits(engine, ids, **kwargs):
    with torch.no_grad():
        return engine.model(input_ids=ids, **kwargs).logits


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("variant", ALL)
def test_logits_match_transformers(engines, variant):
    engine = engines(variant)
    ids = random_ids(2, 24)  # longer than the windows (5) and Ministral3's original_max (8)
    with torch.no_grad():
        ours = engine.run(ids).logits
    ref = hf_logits(engine, ids)
    assert ref.std() > 0.3, "random model too flat for the comparison to mean anything"
    assert max_diff(ours, ref) <= TOL


@pytest.mark.parametrize("variant", ALL)
def test_explicit_path_equals_sdpa(engines, variant):
    engine = engines(variant)
    ids = random_ids(2, 16, seed=1)
    with torch.no_grad():
        for mode, p in (("causal", None), ("prefix", 6), ("bidirectional", None)):
            sdpa = engine.run(ids, attention=mode, prefix_len=p, attn_impl="sdpa").logits
            explicit = engine.run(ids, attention=mode, prefix_len=p, attn_impl="explicit").logits
            assert max_diff(sdpa, explicit) <= TOL, mode


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window", "ministral3", "qwen2_window"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_never_changes_real_tokens(engines, variant, side):
    engine = engines(variant)
    long, short = random_ids(1, 14, seed=2)[0], random_ids(1, 9, seed=3)[0]
    pad = torch.zeros(5, dtype=torch.long)
    row = torch.cat([pad, short]) if side == "left" else torch.cat([short, pad])
    ids = torch.stack([long, row])
    mask = torch.ones_like(ids, dtype=torch.bool)
    real = slice(5, None) if side == "left" else slice(0, 9)
    mask[1] = False
    mask[1, real] = True
    with torch.no_grad():
        for mode, p in (("causal", None), ("prefix", torch.tensor([7, 4])), ("bidirectional", None)):
            batched = engine.run(ids, attention_mask=mask, attention=mode, prefix_len=p, attn_impl="explicit").logits
            alone_short = engine.run(short[None], attention=mode, prefix_len=None if p is None else 4).logits
            alone_long = engine.run(long[None], attention=mode, prefix_len=None if p is None else 7).logits
            assert max_diff(batched[1, real], alone_short[0]) <= TOL, mode
            assert max_diff(batched[0], alone_long[0]) <= TOL, mode
            assert torch.isfinite(batched).all()
        # And the unpadded row equals transformers.
        assert max_diff(engine.run(short[None]).logits, hf_logits(engine, short[None])) <= TOL


def _prefix_mask(t: int, p: int) -> torch.Tensor:
    """Independent statement of the prefix-LM rule: key j visible to query i iff j ≤ i or j < p."""
    m = torch.zeros(t, t, dtype=torch.bool)
    for i in range(t):
        for j in range(t):
            m[i, j] = j <= i or j < p
    return m


@pytest.mark.parametrize("variant", ["llama", "qwen3", "qwen3_gqa4", "ministral3", "mistral3"])
def test_modes_are_one_rule_and_match_transformers_with_the_same_mask(engines, variant):
    engine = engines(variant)
    t = 12
    ids = random_ids(2, t, seed=4)
    with torch.no_grad():
        bidir = engine.run(ids, attention="bidirectional").logits
        causal = engine.run(ids, attention="causal").logits
        assert max_diff(engine.run(ids, attention="prefix", prefix_len=t).logits, bidir) <= TOL
        assert max_diff(engine.run(ids, attention="prefix", prefix_len=1).logits, causal) <= TOL
        assert max_diff(bidir, causal) > 1e-2  # the modes really differ
        for p in (1, 5, t):
            ours = engine.run(ids, attention="prefix", prefix_len=p).logits
            mask4d = _prefix_mask(t, p)[None, None].expand(2, 1, t, t)
            assert max_diff(ours, hf_logits(engine, ids, attention_mask=mask4d)) <= TOL, p


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window", "ministral3"])
def test_prefix_prefill_then_decode_equals_one_pass(engines, variant):
    engine = engines(variant)
    ids = random_ids(2, 15, seed=5)
    p = 9
    with torch.no_grad():
        one_pass = engine.run(ids, attention="prefix", prefix_len=p).logits
        out = engine.run(ids[:, :p], attention="prefix", prefix_len=p, use_cache=True)
        steps = [out.logits]
        for t in range(p, ids.shape[1]):
            out = engine.run(ids[:, t : t + 1], past=out.past, use_cache=True)
            steps.append(out.logits)
    assert max_diff(torch.cat(steps, 1), one_pass) <= TOL


def test_decode_with_left_padding_matches_unpadded(engines):
    engine = engines("qwen3")
    short = random_ids(1, 6, seed=6)
    ids = torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1)
    mask = torch.tensor([[0, 0, 0] + [1] * 6], dtype=torch.bool)
    nxt = random_ids(1, 1, seed=7)
    with torch.no_grad():
        out = engine.run(ids, attention_mask=mask, attention="prefix", prefix_len=6, use_cache=True)
        dec = engine.run(nxt, past=out.past).logits[0, -1]
        ref = engine.run(torch.cat([short, nxt], 1), attention="prefix", prefix_len=6).logits[0, -1]
    assert max_diff(dec, ref) <= TOL


def test_greedy_generate_matches_transformers(engines):
    engine = engines("qwen3")
    ids = random_ids(1, 7, seed=8)
    ours = engine.generate(ids, max_new_tokens=6, eos_token_id=-1).new_ids
    with torch.no_grad():
        ref = engine.model.generate(ids, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert ours.tolist() == ref[:, 7:].tolist()


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window"])
def test_knockout_changes_only_queries_that_see_the_key(engines, variant):
    engine = engines(variant)
    ids = random_ids(1, 12, seed=9)
    j = 6
    with torch.no_grad():
        base = engine.run(ids, capture=["resid_post"], attn_impl="explicit")
        ko = engine.run(ids, knockout=Knockout(keys=[j], layers=[0]), capture=["resid_post"])
    before, after = base.cache["resid_post", 0][0], ko.cache["resid_post", 0][0]
    assert max_diff(before[:j], after[:j]) == 0.0  # queries < j never see j in causal mode
    window = engine.windows[0] or 10**9
    seen_by = [t for t in range(j, 12) if t - j < window]
    unseen = [t for t in range(j, 12) if t - j >= window]
    assert all((before[t] - after[t]).abs().max() > 1e-4 for t in seen_by)
    if unseen:  # sliding window: queries past the window are untouched too
        assert max_diff(before[unseen], after[unseen]) == 0.0


def test_knockout_restricted_to_heads_and_queries(engines):
    engine = engines("qwen3")
    ids = random_ids(1, 10, seed=10)
    with torch.no_grad():
        base = engine.run(ids, capture=["z"], attn_impl="explicit")
        ko = engine.run(ids, knockout=Knockout(keys=[2], layers=[1], heads=[3], queries=[8]), capture=["z"])
    diff = (base.cache["z", 1] - ko.cache["z", 1]).abs().amax(-1)[0]  # [T,H]
    assert diff[8, 3] > 1e-4
    diff[8, 3] = 0
    assert diff.max() == 0.0
    assert max_diff(base.cache["z", 0], ko.cache["z", 0]) == 0.0


def test_emptied_row_gives_zero_attention_output_not_nan(engines):
    engine = engines("llama")  # has an o_proj bias: the emptied row's attn_out is exactly that bias
    ids = random_ids(1, 8, seed=11)
    ko = Knockout(keys=range(8), layers=[0], queries=[5])
    with torch.no_grad():
        out = engine.run(ids, knockout=ko, capture=["z", "attn_out", "pattern"])
    assert torch.isfinite(out.logits).all()
    assert out.cache["z", 0][0, 5].abs().max() == 0.0
    assert out.cache["pattern", 0][0, :, 5].abs().max() == 0.0
    bias = engine.layers[0].self_attn.o_proj.bias
    assert max_diff(out.cache["attn_out", 0][0, 5], bias) <= 1e-6
    # The gradient through an emptied row is finite too (finetuning never sees NaN).
    emb = engine.decoder.embed_tokens.weight
    emb.requires_grad_(True)
    try:
        engine.run(ids, knockout=ko).logits.sum().backward()
        assert torch.isfinite(emb.grad).all()
    finally:
        emb.grad = None
        emb.requires_grad_(False)


@pytest.mark.parametrize("variant", ["llama", "qwen3", "mistral3"])
def test_head_out_sums_to_attn_out_minus_bias(engines, variant):
    engine = engines(variant)
    ids = random_ids(2, 9, seed=12)
    with torch.no_grad():
        out = engine.run(ids, capture=["head_out", "attn_out", "resid_pre", "resid_mid", "mlp_out", "resid_post"])
    for layer in range(engine.n_layers):
        bias = engine.layers[layer].self_attn.o_proj.bias
        total = out.cache["head_out", layer].sum(2) + (0 if bias is None else bias)
        assert max_diff(total, out.cache["attn_out", layer]) <= 1e-5
        c = out.cache
        assert max_diff(c["resid_pre", layer] + c["attn_out", layer], c["resid_mid", layer]) <= 1e-6
        assert max_diff(c["resid_mid", layer] + c["mlp_out", layer], c["resid_post", layer]) <= 1e-6


@pytest.mark.parametrize("variant", ["qwen3", "mistral3"])
def test_z_equals_what_nnsight_reads_at_o_proj_input(engines, variant):
    engine = engines(variant)
    ids = random_ids(1, 10, seed=13)
    with torch.no_grad():
        ours = engine.run(ids, capture=["z", "resid_post"]).cache
    lm = engine.nnsight()
    layers = engine.decoder.layers
    assert lm._module is engine.model  # the same weights, not a copy
    saved = []
    path = lm.model.language_model.layers if engine.spec.multimodal else lm.model.layers
    with torch.no_grad(), lm.trace(ids):
        for layer in range(len(layers)):
            saved.append((path[layer].self_attn.o_proj.input.save(), path[layer].output.save()))
    for layer, (z_in, out) in enumerate(saved):
        z_in = z_in.value if hasattr(z_in, "value") else z_in
        expected = ours["z", layer].reshape(1, 10, -1)
        assert max_diff(z_in, expected) <= TOL
        hidden = out[0] if isinstance(out, tuple) else out
        assert max_diff(hidden, ours["resid_post", layer]) <= TOL


def test_capture_only_what_is_asked(engines):
    engine = engines("qwen3")
    out = engine.run(random_ids(1, 5), capture=[("q", 1), "logits"])
    assert set(out.cache) == {("q", 1), ("logits", None)}
    assert out.cache["q", 1].shape == (1, 5, engine.n_heads, engine.d_head)
    with pytest.raises(KeyError, match="was not captured"):
        out.cache["k", 1]


def test_gradients_match_transformers(engines):
    engine = engines("qwen3")
    ids = random_ids(1, 8, seed=14)
    weight = engine.layers[0].self_attn.q_proj.weight
    weight.requires_grad_(True)
    try:
        engine.run(ids).logits.logsumexp(-1).sum().backward()
        ours = weight.grad.clone()
        weight.grad = None
        engine.model(input_ids=ids).logits.logsumexp(-1).sum().backward()
        assert ours.abs().max() > 1e-3
        assert max_diff(ours, weight.grad) <= 1e-4
    finally:
        weight.grad = None
        weight.requires_grad_(False)


def test_bf16_equals_transformers_bf16_with_the_same_attention_kernel(model_dirs):
    """In bf16 the engine does transformers' operations in transformers' order: equal bit for bit."""
    import interp

    engine = interp.load(model_dirs("qwen3"), dtype="bf16")
    assert engine.dtype == torch.bfloat16
    ids = random_ids(1, 12, seed=15)
    with torch.no_grad():
        for ours_impl, hf_impl in (("sdpa", "sdpa"), ("explicit", "eager")):
            engine.model.set_attn_implementation(hf_impl)  # a fresh load: no other test shares it
            ours = engine.run(ids, attn_impl=ours_impl).logits
            assert torch.equal(ours, hf_logits(engine, ids)), ours_impl
        assert max_diff(ours.float(), interp.load(model_dirs("qwen3")).run(ids).logits) > 1e-3  # really bf16
