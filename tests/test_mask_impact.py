"""mask-impact means what docs/semantics.md says, the fast method equals the reference, and the CLI behaves."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from interp import Knockout
from interp.analyses.impact.mask_impact import COLUMNS, mask_impact, mask_impact_metadata, parse_layers, variant_names
from interp.analyses.impact.mask_impact.io import read_result, write_result
from interp.analyses.interventions.distances import cosine_distance, kl_from_baseline, top1_prob_delta
from interp.analyses.impact.predict import top_next_tokens
from interp.analyses.impact.summarize import summarize
from interp.cli.impact.mask_impact import heatmap, mask_impact_app, model_labels
from interp.errors import InterpError

TOL = 1e-4
DIST = ["l2_distance", "cosine_distance"]
PROMPT = "a quick test!"  # 13 bytes + BOS = 14 tokens: longer than the sliding window (5)


def max_abs_diff(a: pd.DataFrame, b: pd.DataFrame, cols) -> float:
    return float(np.nanmax(np.abs(a[cols].to_numpy(float) - b[cols].to_numpy(float))))


def row_keys(df: pd.DataFrame) -> pd.DataFrame:
    return df[["generation_step", "layer", "token_position", "token_masked", "variant"]].reset_index(drop=True)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("variant", ["qwen3_gqa4", "mistral_window"])
@pytest.mark.parametrize("mode", ["causal", "prefix"])
def test_fast_equals_reference_on_every_row(engines, variant, mode):
    engine = engines(variant)
    head_space = "residual" if mode == "prefix" else "z"
    kwargs = dict(attention=mode, num_tokens=3, head_space=head_space)
    fast = mask_impact(engine, PROMPT, chunk_size=4, **kwargs)  # small chunks: the batching is exercised
    ref = mask_impact(engine, PROMPT, method="reference", **kwargs)
    pd.testing.assert_frame_equal(row_keys(fast), row_keys(ref))
    assert sorted(fast["generation_step"].unique()) == [0, 1, 2]
    assert fast["l2_distance"].max() > 0.3, "knockouts too weak for the comparison to mean anything"
    assert max_abs_diff(fast, ref, DIST) <= TOL


def test_rows_match_the_engine_knockout_semantics(engines):
    """Independent of both methods: engine.run with Knockout(keys=[j], layers=[l]) and captures."""
    engine = engines("qwen3")
    ids = [1, 40, 41, 42, 43, 44]
    df = mask_impact(engine, ids)
    residual = mask_impact(engine, ids, head_space="residual")
    names = ["resid_pre", "resid_post", "attn_out", "z", "head_out"]
    for layer in range(engine.n_layers):
        capture = [(n, layer) for n in names]
        base = engine.run([ids], capture=capture).cache
        for j in range(len(ids)):
            ko = engine.run([ids], capture=capture, knockout=Knockout(keys=[j], layers=[layer])).cache
            expect = {
                "Full": (base["resid_post", layer] - base["resid_pre", layer], ko["resid_post", layer] - ko["resid_pre", layer]),
                "Attn": (base["attn_out", layer], ko["attn_out", layer]),
                "Head_1": (base["z", layer][:, :, 1], ko["z", layer][:, :, 1]),
            }
            for name, (b, m) in expect.items():
                b, m = b[0, -1], m[0, -1]
                row = df[(df.layer == layer) & (df.token_position == j) & (df.variant == name)].iloc[0]
                assert abs(row.l2_distance - (b - m).norm().item()) <= TOL
                cos = torch.nn.functional.cosine_similarity(b, m, dim=0).item()
                assert abs(row.cosine_distance - (1 - cos)) <= TOL
            b, m = base["head_out", layer][0, -1, 3], ko["head_out", layer][0, -1, 3]
            row = residual[(residual.layer == layer) & (residual.token_position == j) & (residual.variant == "Head_3")].iloc[0]
            assert abs(row.l2_distance - (b - m).norm().item()) <= TOL


def test_prefix_in_a_layer_subset_matches_the_engine_and_the_reference(engines):
    """bidirectional_layers: single-layer rows equal engine.run(Knockout, bidirectional_layers) with captures,
    and downstream rows (carried through the subset's masks) equal one engine forward per key."""
    engine = engines("mistral_window")
    ids, subset = list(range(30, 42)), [1]
    kwargs = dict(attention="prefix", bidirectional_layers=subset)
    df = mask_impact(engine, ids, **kwargs)
    assert df.attrs["mask_impact"]["bidirectional_layers"] == subset
    assert max_abs_diff(df, mask_impact(engine, ids, attention="prefix"), DIST) > 1e-3, "the subset must matter"
    for layer in range(engine.n_layers):
        capture = [("resid_pre", layer), ("resid_post", layer)]
        run = lambda ko=None: engine.run([ids], capture=capture, knockout=ko, prefix_len=len(ids), **kwargs).cache
        base = run()
        for j in (0, 5, len(ids) - 1):
            ko = run(Knockout(keys=[j], layers=[layer]))
            b = (base["resid_post", layer] - base["resid_pre", layer])[0, -1]
            m = (ko["resid_post", layer] - ko["resid_pre", layer])[0, -1]
            row = df[(df.layer == layer) & (df.token_position == j) & (df.variant == "Full")].iloc[0]
            assert abs(row.l2_distance - (b - m).norm().item()) <= TOL
    down = dict(kwargs, downstream=True, knockout_queries="final", window=1, num_tokens=2)
    fast, ref = mask_impact(engine, ids, **down), mask_impact(engine, ids, method="reference", **down)
    assert max_abs_diff(fast, ref, DIST + ["kl", "top1_prob_delta"]) <= TOL


def test_sliding_window_keys_out_of_reach_change_nothing(engines):
    engine = engines("mistral_window")  # window 5 on every layer
    df = mask_impact(engine, PROMPT)
    final = df.token_position.max()
    far = df[df.token_position <= final - 5]
    near = df[(df.token_position > final - 5) & (df.variant == "Full")]
    assert len(far) and (far[DIST] == 0).all().all()
    assert (near.l2_distance > 0).all()


def test_prefix_mode_changes_later_layers_only_through_their_inputs(engines):
    """Step 0: the final token sees every key in both modes, so layer 0 (embeddings in) is identical;
    layer 1 reads keys/values written by a bidirectional layer 0, so it differs."""
    engine = engines("qwen3_gqa4")
    causal = mask_impact(engine, PROMPT)
    prefix = mask_impact(engine, PROMPT, attention="prefix")
    layer0, layer1 = causal.layer == 0, causal.layer == 1
    assert max_abs_diff(causal[layer0], prefix[layer0], DIST) <= 1e-6
    assert max_abs_diff(causal[layer1], prefix[layer1], DIST) > 1e-2


def test_downstream_fast_equals_per_key_forwards(engines):
    for variant, mode, steps in (("qwen3_gqa4", "causal", 2), ("mistral_window", "prefix", 1)):
        engine = engines(variant)
        fast = mask_impact(engine, PROMPT, attention=mode, num_tokens=steps, downstream=True, chunk_size=5)
        ref = mask_impact(engine, PROMPT, attention=mode, num_tokens=steps, downstream=True, method="reference")
        pd.testing.assert_frame_equal(row_keys(fast), row_keys(ref))
        assert list(fast.columns) == [*COLUMNS, "kl", "top1_prob_delta"]
        logits = fast.variant == "Logits"
        assert fast.loc[logits, "kl"].max() > 1e-3
        assert fast.loc[logits, ["kl", "top1_prob_delta"]].notna().all().all()
        assert fast.loc[~logits, ["kl", "top1_prob_delta"]].isna().all().all()
        assert (fast.loc[logits, "kl"] >= 0).all()
        assert max_abs_diff(fast, ref, DIST + ["kl", "top1_prob_delta"]) <= TOL, variant


@pytest.mark.parametrize("variant, mode, queries, window", [
    ("qwen3_gqa4", "causal", "final", 3),
    ("mistral_window", "prefix", "final", 1),  # step 0: the final token is in the bidirectional prefix
    ("mistral_window", "causal", "all", 3),
])
def test_downstream_knockout_queries_and_windows_equal_full_recompute(engines, variant, mode, queries, window):
    """The fast path (single-token steps / suffix recompute) equals one engine forward per key."""
    engine = engines(variant)
    kwargs = dict(attention=mode, num_tokens=2, downstream=True, knockout_queries=queries, window=window)
    fast = mask_impact(engine, PROMPT, chunk_size=6, **kwargs)
    ref = mask_impact(engine, PROMPT, method="reference", **kwargs)
    pd.testing.assert_frame_equal(row_keys(fast), row_keys(ref))
    logits = fast.variant == "Logits"
    assert fast.loc[logits, "kl"].max() > 1e-3
    assert max_abs_diff(fast, ref, DIST + ["kl", "top1_prob_delta"]) <= TOL
    assert fast.attrs["mask_impact"]["knockout_queries"] == queries and fast.attrs["mask_impact"]["window"] == window


def test_final_and_all_queries_differ_except_at_the_last_layer(engines):
    """At the last layer only the final position reaches the logits, so both interventions agree there;
    earlier, removing a key for every query also changes what later layers read."""
    engine = engines("qwen3_gqa4")
    runs = {q: mask_impact(engine, PROMPT, downstream=True, knockout_queries=q) for q in ("all", "final")}
    logits = {q: df[df.variant == "Logits"] for q, df in runs.items()}
    last = engine.n_layers - 1
    at_last = {q: d[d.layer == last] for q, d in logits.items()}
    assert max_abs_diff(at_last["all"], at_last["final"], ["kl"]) <= TOL
    early = {q: d[d.layer == 0] for q, d in logits.items()}
    assert max_abs_diff(early["all"], early["final"], ["kl"]) > 1e-2
    with pytest.raises(InterpError, match="unknown knockout queries"):
        mask_impact(engine, PROMPT, downstream=True, knockout_queries="some")
    with pytest.raises(InterpError, match="window must be at least 1"):
        mask_impact(engine, PROMPT, downstream=True, window=0)


# --------------------------------------------------------------------------- definitions


def test_distance_definitions_never_nan():
    zero, x = torch.zeros(3), torch.tensor([1.0, 2.0, 2.0])
    assert cosine_distance(zero, zero).item() == 0.0
    assert cosine_distance(zero, x).item() == 1.0 and cosine_distance(x, zero).item() == 1.0
    assert cosine_distance(x, -x).item() == pytest.approx(2.0)
    assert cosine_distance(x, 2 * x).item() == pytest.approx(0.0, abs=1e-12)
    assert cosine_distance(x, torch.tensor([2.0, -1.0, 0.0])).item() == pytest.approx(1.0)


def test_kl_direction_and_top1_delta():
    base, masked = torch.tensor([0.0, 0.0]), torch.tensor([[0.0, math.log(3.0)]])  # P = (.5,.5), Q = (.25,.75)
    assert kl_from_baseline(base, masked).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))  # KL(P‖Q)
    assert top1_prob_delta(base, masked).item() == pytest.approx(-0.25)
    assert kl_from_baseline(base, base[None]).item() == 0.0


def test_emptied_row_gives_zero_output_not_nan(engines):
    engine = engines("qwen3")  # no o_proj bias: removing the only key leaves attn_out exactly 0
    df = mask_impact(engine, [37])
    base = engine.run([[37]], capture=["z"]).cache
    assert not df[DIST].isna().any().any()
    attn_and_heads = df[df.variant != "Full"]
    assert (attn_and_heads.cosine_distance == 1.0).all()
    for layer in range(engine.n_layers):
        row = df[(df.layer == layer) & (df.variant == "Head_2")].iloc[0]
        assert row.l2_distance == pytest.approx(base["z", layer][0, 0, 2].norm().item(), abs=1e-5)


# --------------------------------------------------------------------------- table shape, steps, layers


def test_row_count_order_columns_and_no_nan(engines):
    engine = engines("qwen3")  # 2 layers, 4 heads
    df = mask_impact(engine, "hello", num_tokens=3)
    n0, layers, heads = 6, engine.n_layers, engine.n_heads
    assert len(df) == sum(layers * (n0 + s) * (2 + heads) for s in range(3))
    assert list(df.columns) == list(COLUMNS)
    assert not df.isna().any().any()
    order = {name: i for i, name in enumerate(variant_names(heads))}
    keys = list(zip(df.generation_step, df.layer, df.token_position, df.variant.map(order)))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert df[df.generation_step == 0].drop_duplicates("token_position").token_masked.tolist() == ["<s>", *"hello"]


def test_layers_subset_equals_the_full_sweep_and_is_validated(engines):
    engine = engines("qwen3")
    full = mask_impact(engine, "hello")
    only = mask_impact(engine, "hello", layers=[1])
    assert set(only.layer) == {1}
    assert max_abs_diff(only, full[full.layer == 1], DIST) == 0.0
    assert parse_layers("1-1,0", 2) == [0, 1]
    with pytest.raises(InterpError, match="layer 2 out of range"):
        mask_impact(engine, "hello", layers="0,2")
    with pytest.raises(InterpError, match="not a layer number"):
        parse_layers("0,x", 2)


def test_generation_steps_are_greedy_and_stop_at_eos(engines):
    engine = engines("qwen3_gqa4")
    df = mask_impact(engine, "hello", attention="prefix", num_tokens=3)
    meta = df.attrs["mask_impact"]
    generated = engine.generate("hello", attention="prefix", max_new_tokens=2, eos_token_id=-1).new_ids[0].tolist()
    assert [t["id"] for t in meta["tokens"][6:]] == generated
    first = meta["steps"][0]["next_token"]["id"]
    stopped = mask_impact(engine, "hello", num_tokens=3, eos_token_id=first)
    assert set(stopped.generation_step) == {0}
    assert stopped.attrs["mask_impact"]["stopped_at_eos"]


# --------------------------------------------------------------------------- files


def test_result_files_round_trip_with_sidecar(engines, tmp_path):
    engine = engines("qwen3")
    df = mask_impact(engine, "hi", downstream=True)
    odd = ["nan", "", " ", "NULL", "a,b", "\n"]
    df["token_masked"] = [odd[i % len(odd)] for i in range(len(df))]  # strings CSV readers like to mangle
    meta = mask_impact_metadata(engine, df)
    for name in ("r.csv", "r.parquet"):
        table, sidecar = write_result(df, meta, tmp_path / name)
        back, side = read_result(table)
        pd.testing.assert_frame_equal(back, df, check_dtype=False)
        assert sidecar.name == "r.json" and side["table"] == name
    for key in ("model", "prompt", "tokens", "mode", "dtype", "method", "provenance", "top_next_tokens"):
        assert key in side, key
    assert side["dtype"] == "float32" and side["mode"] == "causal" and side["provenance"]["torch"]
    top = side["top_next_tokens"]
    expected = top_next_tokens(engine, "hi", k=5)
    assert [t["token"] for t in top] == [t for t, _ in expected]
    assert [t["prob"] for t in top] == pytest.approx([p for _, p in expected], abs=1e-6)


def test_summary_tables_pick_the_largest(engines):
    df = mask_impact(engines("qwen3"), "hello")
    s = summarize(df, top=2)
    full = df[df.variant == "Full"]
    for layer in (0, 1):
        expect = full[full.layer == layer].l2_distance.nlargest(2).tolist()
        assert s.tokens_per_layer[s.tokens_per_layer.layer == layer].l2_distance.tolist() == expect
    heads = df[df.variant.str.startswith("Head_")]
    assert s.heads.l2_distance.iloc[0] == heads.l2_distance.max()


# --------------------------------------------------------------------------- CLI


def cli(*args: str):
    """Invoke the commands as `interp` would: InterpError → one line, exit 2 (as interp.cli.app.main)."""
    app = typer.Typer()
    app.add_typer(mask_impact_app, name="mask-impact")
    app.command("heatmap")(heatmap)
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, InterpError):
        return 2, f"error: {result.exception}", result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, "", result.output


def test_cli_run_summarize_and_formats(model_dirs, tmp_path):
    model = str(model_dirs("qwen3"))
    code, _, out = cli("mask-impact", "--prompt", "hello", "-m", model, "--out", str(tmp_path / "a.csv"),
                       "--num-tokens", "2", "--layers", "1", "--head-space", "residual")
    assert code == 0, out
    df, meta = read_result(tmp_path / "a.csv")
    assert len(df) == 1 * 6 * 6 + 1 * 7 * 6 and set(df.layer) == {1}
    assert meta["head_space"] == "residual" and meta["layers"] == [1] and meta["prompt"] == "hello"
    code, _, out = cli("mask-impact", "summarize", str(tmp_path / "a.csv"))
    assert code == 0 and "most impactful tokens per layer" in out and "heads most sensitive" in out
    prompt_file = tmp_path / "p.txt"
    prompt_file.write_text("hey\n")
    code, _, out = cli("mask-impact", "-p", str(prompt_file), "-m", model, "--out", str(tmp_path / "b"), "--format", "parquet")
    assert code == 0, out
    assert read_result(tmp_path / "b.parquet")[1]["prompt"] == "hey"


def test_cli_config_batch_with_two_checkpoints_writes_the_comparison(model_dirs, tmp_path):
    (tmp_path / "long.txt").write_text("from a file")
    (tmp_path / "prompts.yaml").write_text(
        "prompts:\n"
        "  eiffel: {prompt: 'The tower', num_tokens: 2}\n"
        "  skipped: {prompt: 'nope', enabled: false}\n"
        "  filed: {prompt: long.txt}\n"
    )
    a, b = str(model_dirs("qwen3")), str(model_dirs("qwen3_gqa4"))
    code, _, out = cli("mask-impact", "--config", str(tmp_path / "prompts.yaml"), "-m", a, "-m", b,
                       "--out", str(tmp_path / "runs"))
    assert code == 0, out
    la, lb = model_labels([a, b])  # the checkpoint directories' names
    written = sorted(p.name for p in (tmp_path / "runs").iterdir())
    expected = [f"{n}_{m}.{e}" for n in ("eiffel", "filed") for m in (la, lb) for e in ("csv", "json")]
    assert written == sorted(expected + ["eiffel_compare.png", "filed_compare.png"])
    assert (tmp_path / "runs" / "eiffel_compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(read_result(tmp_path / "runs" / f"eiffel_{la}.csv")[0].generation_step) == {0, 1}
    assert read_result(tmp_path / "runs" / f"filed_{lb}.csv")[1]["prompt"] == "from a file"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--prompt", "hi", "--layers", "0,5"], "layer 5 out of range: the model has 2 layers"),
        (["--prompt", "hi", "--attention", "bidirectional"], "unknown attention mode for mask-impact"),
        (["--prompt", "hi", "--method", "slow"], "unknown method 'slow'"),
        (["--prompt", "hi", "--downstream", "--knockout-queries", "last"], "unknown knockout queries 'last'"),
        (["--prompt", "hi", "--downstream", "--window", "0"], "window must be at least 1 layer"),
        (["--prompt", "hi", "--out", "x.csv", "--format", "parquet"], "does not match the file name"),
        (["--config", "CONFIG"], "prompt 'a' has unknown key(s) num_token"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(model_dirs, tmp_path, args, fragment):
    config = tmp_path / "bad.yaml"
    config.write_text("a: {prompt: hi, num_token: 2}\n")
    args = [str(config) if a == "CONFIG" else a for a in args]
    code, err, _ = cli("mask-impact", *args, "-m", str(model_dirs("qwen3")), "--out", str(tmp_path / "o.csv")) if "--out" not in args \
        else cli("mask-impact", *args, "-m", str(model_dirs("qwen3")))
    assert code == 2 and fragment in err and "\n" not in err, err


def test_cli_needs_a_prompt_or_config(model_dirs):
    code, _, out = cli("mask-impact", "-m", str(model_dirs("qwen3")))
    assert code == 2 and "give --prompt TEXT or --config" in out


def test_sidecar_is_json_beside_the_table(model_dirs, tmp_path):
    code, _, _ = cli("mask-impact", "-p", "ok", "-m", str(model_dirs("qwen3")), "--out", str(tmp_path / "r.csv"))
    assert code == 0
    side = json.loads((tmp_path / "r.json").read_text())
    assert side["rows"] == 2 * 3 * 6 and side["method"] == "fast" and len(side["top_next_tokens"]) == 5
