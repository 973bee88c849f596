"""Geva-style knockout equals the transformers model's own layers under per-layer 4-D masks;
bad rows are skipped and counted; the toy prompt set stays valid; the CLI writes the contract."""

from __future__ import annotations

import json
import pandas as pd
import pytest
import torch
import typer

import interp
from interp.analyses import knockout
from interp.analyses.impact.knockout import COLUMNS, SOURCES, knockout_summary
from interp.analyses.impact.knockout.prompts import toy_prompts
from interp.analyses.interventions.carry import window_layers
from interp.cli.impact.knockout import knockout_cmd
from interp.data.random_models import build_random_model
from interp.data.toy import GENERATED_DIR
from interp.errors import InterpError
from tests.cli_helpers import invoke

TOL = 1e-4
PROMPTS = [  # byte-level tokens: ~30 positions, longer than the sliding window (5)
    {"prompt": "so the quick brown fox is in the", "subject": "quick brown fox"},
    {"prompt": "Big Ben stands tall in rainy London", "subject": "Big Ben"},
]


@pytest.fixture(scope="module")
def deep_engines(tmp_path_factory):
    """4-layer models, so windows of 1 and 3 layers differ: Qwen3 (qk-norm, GQA) and Mistral (window 5)."""
    specs = {"qwen3": dict(arch="qwen3", layers=4), "mistral_window": dict(arch="mistral", layers=4, sliding_window=5)}
    cache = {}

    def get(name: str):
        if name not in cache:
            spec = dict(specs[name])
            cache[name] = interp.load(build_random_model(spec.pop("arch"), tmp_path_factory.mktemp(name), **spec))
        return cache[name]

    return get


def mode_mask(t: int, attention: str, window: int | None) -> torch.Tensor:
    """[T,T] bool from the definitions: causal k ≤ q; prefix over the whole prompt: every key; window |q−k| < w."""
    q, k = torch.arange(t)[:, None], torch.arange(t)[None]
    visible = k <= q if attention == "causal" else torch.ones(t, t, dtype=torch.bool)
    return visible & ((q - k).abs() < window) if window is not None else visible


@torch.no_grad()
def hf_final_probs(engine, ids: list[int], masks: list[torch.Tensor]) -> torch.Tensor:
    """Next-token probabilities from the transformers model's own decoder layers, one additive 4-D mask per layer."""
    decoder = engine.model.model
    x = decoder.embed_tokens(torch.tensor([ids]))
    positions = torch.arange(len(ids))[None]
    embeddings = decoder.rotary_emb(x, positions)
    for layer, allowed in zip(decoder.layers, masks):
        additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)[None, None]
        x = layer(x, attention_mask=additive, position_ids=positions, position_embeddings=embeddings)
    return engine.model.lm_head(decoder.norm(x))[0, -1].double().softmax(-1)


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window"])
@pytest.mark.parametrize("attention", ["causal", "prefix"])
def test_knockout_equals_hf_layers_with_per_layer_masks(deep_engines, variant, attention):
    engine = deep_engines(variant)
    n_layers = engine.n_layers
    for window in (1, 3):
        df = knockout(engine, PROMPTS, window=window, attention=attention)
        prompts = df.attrs["knockout"]["prompts"]
        assert len(df) == len(PROMPTS) * n_layers * len(SOURCES) and list(df.columns) == list(COLUMNS)
        for record in prompts:
            ids, t = record["token_ids"], len(record["token_ids"])
            base = [mode_mask(t, attention, engine.windows[i]) for i in range(n_layers)]
            p = hf_final_probs(engine, ids, base)
            top = int(p.argmax())
            rows = df[df.prompt_index == record["prompt_index"]]
            assert (rows.top1_token == engine.tokenizer.decode([top])).all()
            assert abs(rows.top1_prob.iloc[0] - float(p[top])) <= TOL
            for row in rows.itertuples():
                first, last = window_layers(row.layer, window, n_layers)
                masks = [m.clone() for m in base]
                for i in range(first, last + 1):
                    masks[i][t - 1, record["sources"][row.source]] = False  # final → source edges
                q = hf_final_probs(engine, ids, masks)
                assert abs(row.top1_prob_masked - float(q[top])) <= TOL, (row.layer, row.source)
                assert abs(row.kl - float((p * (p.log() - q.log())).sum())) <= TOL
                assert row.rel_change_pct == pytest.approx(100 * (row.top1_prob_masked - row.top1_prob) / row.top1_prob)
        assert df.rel_change_pct.abs().max() > 1.0, "knockouts too weak for the comparison to mean anything"


def test_bad_rows_are_skipped_and_counted_and_sources_partition_the_prompt(engines):
    engine = engines("qwen3")
    rows = [
        PROMPTS[0],
        {"prompt": "no subject here"},  # subject missing
        {"prompt": "the cat sat", "subject": "dog"},  # subject not in the prompt
        {"prompt": "the cat sat", "subject": None},
        {"prompt": "the cat sat", "subject": ""},
        ["not", "a", "row"],
        {"prompt": "a b", "subject": "b"},  # the subject is only the last token
        {"prompt": "zz " + "x" * 300, "subject": "zz"},  # longer than the model allows (256)
        PROMPTS[1],
    ]
    df = knockout(engine, rows)
    info = df.attrs["knockout"]
    assert info["skipped"] == 7 and info["n_prompts"] == 2
    assert sorted(df.prompt_index.unique()) == [0, 1]
    for record, source in zip(info["prompts"], PROMPTS):
        assert record["prompt"] == source["prompt"] and record["subject"] == source["subject"]
        positions = sorted(p for s in SOURCES for p in record["sources"][s])
        assert positions == list(range(len(record["token_ids"]))), "sources partition the positions"
        assert record["sources"]["last"] == [len(record["token_ids"]) - 1]
        subject_text = "".join(record["tokens"][i] for i in record["sources"]["subject"])
        assert subject_text.strip() == source["subject"]
    summary = knockout_summary(engine, df)
    assert summary["skipped"] == 7 and summary["prompts"] == info["prompts"] and summary["provenance"]["torch"]
    with pytest.raises(InterpError, match="no usable prompts"):
        knockout(engine, rows[1:8])


def test_toy_prompt_set_comes_from_the_world_and_tolerates_a_larger_one():
    rows = toy_prompts()
    assert {"prompt": "The Eiffel Tower is in", "subject": "Eiffel Tower", "answer": " Paris",
            "relation": "landmarks.city"} in rows
    assert all(r["subject"] in r["prompt"] and not r["prompt"].endswith(r["subject"]) for r in rows)
    world = json.loads((GENERATED_DIR / "world.json").read_text())
    extended = dict(world, landmarks=world["landmarks"] + [{"name": "Moon Gate", "article": True, "city": "Zorb"},
                                                           {"name": "Half Entry"}],
                    spaceships=[{"name": "Argo"}])  # a new kind and an incomplete entry are ignored
    more = toy_prompts(extended)
    assert len(more) == len(rows) + 1 and {"prompt": "The Moon Gate is in", "subject": "Moon Gate", "answer": " Zorb",
                                           "relation": "landmarks.city"} in more
    assert rows[0]["prompt"] == "The Eiffel Tower is in" and len({r["relation"] for r in rows[:7]}) == 7  # interleaved


def cli(*args: str):
    app = typer.Typer()
    app.command()(knockout_cmd)
    return invoke(app, list(args))


def test_cli_writes_the_result_contract(model_dirs, tmp_path):
    source = tmp_path / "facts.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in [PROMPTS[0], {"prompt": "x"}, PROMPTS[1]]) + "\n[1, 2]\n")
    code, out = cli("--prompts", str(source), "-m", str(model_dirs("qwen3")), "--window", "3", "--out", str(tmp_path / "ko"),
                    "--html")
    assert code == 0, out
    df = pd.read_csv(tmp_path / "ko" / "knockout.csv")
    assert list(df.columns) == list(COLUMNS) and set(df.window) == {3} and set(df.source) == set(SOURCES)
    summary = json.loads((tmp_path / "ko" / "summary.json").read_text())
    assert summary["n_prompts"] == 2 and summary["skipped"] == 2  # one row without subject, one non-object line
    assert summary["attention"] == "causal" and summary["window"] == 3 and summary["provenance"]["git_commit"] is not None
    for key in ("prompt_index", "prompt", "subject", "tokens", "token_ids", "sources"):
        assert key in summary["prompts"][0]
    assert (tmp_path / "ko" / "knockout.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "ko" / "view.html").read_text()  # --html: the viewer beside the results, data inline
    assert "http://" not in page.replace("http://www.w3.org", "") and json.dumps(summary["prompts"][0]["subject"])[1:-1] in page


@pytest.mark.parametrize("args, fragment", [
    (["--prompts", "/no/such.jsonl"], "no such file"),
    (["--prompts", "toy", "--window", "0"], "window must be at least 1"),
    (["--prompts", "toy", "--attention", "bidirectional"], "unknown attention mode for knockout"),
])
def test_cli_bad_input_is_one_line_exit_2(args, fragment):
    code, err = cli(*args)
    assert code == 2 and fragment in err and "\n" not in err, err


def test_cli_all_rows_bad_is_one_line_exit_2(model_dirs, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps({"prompt": "a b", "subject": "zzz"}) + "\n")
    code, err = cli("--prompts", str(source), "-m", str(model_dirs("qwen3")), "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("error: no usable prompts (1 skipped)") and "\n" not in err, err


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window"])
def test_knockout_with_prefix_in_a_layer_subset_equals_hf_layers(deep_engines, variant):
    """bidirectional_layers: prefix attention in layers 1-2 only, causal in 0 and 3, window 3."""
    engine, subset, window = deep_engines(variant), [1, 2], 3
    df = knockout(engine, PROMPTS[:1], window=window, attention="prefix", bidirectional_layers=subset)
    record = df.attrs["knockout"]["prompts"][0]
    assert df.attrs["knockout"]["bidirectional_layers"] == subset
    ids, t = record["token_ids"], len(record["token_ids"])
    base = [mode_mask(t, "prefix" if i in subset else "causal", engine.windows[i]) for i in range(engine.n_layers)]
    p = hf_final_probs(engine, ids, base)
    top = int(p.argmax())
    assert abs(df.top1_prob.iloc[0] - float(p[top])) <= TOL
    everywhere = knockout(engine, PROMPTS[:1], window=window, attention="prefix")
    assert abs(everywhere.top1_prob.iloc[0] - df.top1_prob.iloc[0]) > 1e-6, "the subset must change the baseline"
    for row in df.itertuples():
        first, last = window_layers(row.layer, window, engine.n_layers)
        masks = [m.clone() for m in base]
        for i in range(first, last + 1):
            masks[i][t - 1, record["sources"][row.source]] = False
        q = hf_final_probs(engine, ids, masks)
        assert abs(row.top1_prob_masked - float(q[top])) <= TOL, (row.layer, row.source)
    with pytest.raises(InterpError, match="out of range"):
        knockout(engine, PROMPTS[:1], attention="prefix", bidirectional_layers=[7])
