"""Representation drift: the per-layer mean cosine between causal and prefix hidden states."""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from interp.analyses.ablation.drift import context_ids, representation_drift
from interp.cli.app import app
from tests.conftest import random_ids


def test_drift_is_exactly_one_where_the_two_masks_coincide(engines):
    engine = engines("qwen3")
    one_token = [[5], [77], [130]]
    table = representation_drift(engine, one_token, batch_size=2)
    assert table["cosine"].tolist() == [1.0] * engine.n_layers and table["n_tokens"].iloc[0] == 3
    ragged = [random_ids(1, n, seed=n)[0].tolist() for n in (3, 9, 6)]
    none = representation_drift(engine, ragged, batch_size=2, bidirectional_layers=[])
    assert none["cosine"].tolist() == [1.0] * engine.n_layers
    # Prefix in layer 1 only: layer 0 is causal in both runs (exactly 1), layer 1 moves.
    upper = representation_drift(engine, ragged, batch_size=2, bidirectional_layers=[1])
    assert upper["cosine"].iloc[0] == 1.0 and upper["cosine"].iloc[1] < 0.999


def test_drift_equals_a_per_context_reference_pooled_over_tokens(engines):
    engine = engines("mistral_window")
    contexts = [random_ids(1, n, seed=20 + n)[0].tolist() for n in (4, 11, 7)]
    table = representation_drift(engine, contexts, batch_size=2)  # padded batches
    sums, count = torch.zeros(engine.n_layers, dtype=torch.float64), 0
    with torch.no_grad():
        for ids in contexts:
            causal = engine.run([ids], capture="resid_post").cache
            prefix = engine.run([ids], attention="prefix", prefix_len=len(ids), capture="resid_post").cache
            for layer in range(engine.n_layers):
                sums[layer] += F.cosine_similarity(causal["resid_post", layer][0].double(),
                                                   prefix["resid_post", layer][0].double(), dim=-1).sum()
            count += len(ids)
    assert table["n_tokens"].iloc[0] == count == 22
    assert (torch.tensor(table["cosine"].values) - sums / count).abs().max() <= 1e-6
    assert table["cosine"].max() < 0.999  # the modes really differ on these contexts


def test_context_ids_tokenize_as_eval_does(engines):
    tok = engines("qwen3").tokenizer
    ids, skipped = context_ids(tok, ["ab ", "", "abc"], max_length=3)
    assert ids == [[1] + tok("ab", add_special_tokens=False)["input_ids"], tok("abc", add_special_tokens=False)["input_ids"]]
    assert skipped == 1


def test_drift_cli_puts_several_checkpoints_on_one_plot(model_dirs, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the cat sat\n\nwhere is the dog\nhi\n", encoding="utf-8")
    a, b = str(model_dirs("qwen3")), str(model_dirs("mistral_window"))
    out = tmp_path / "drift"
    result = CliRunner().invoke(app, ["drift", "--model", a, "--model", b, "--prompts", str(prompts),
                                      "--out", str(out), "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "drift.csv")
    assert table.groupby("model").size().to_dict() == {a: 2, b: 2}
    assert (table["n_items"] == 3).all() and (out / "drift.png").stat().st_size > 1000
    assert (out / "drift.json").exists()
