"""The HTML viewer's payload and page: exact values, safe embedding, size, CLI and --html (no browser here)."""

from __future__ import annotations

import base64
import html
import json
import re

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import interp
from interp.analyses.impact.mask_impact import mask_impact, mask_impact_metadata
from interp.analyses.impact.mask_impact.io import read_result, write_result
from interp.cli.impact.mask_impact import mask_impact_app
from interp.cli.view import view_cmd
from interp.view.data import build_payload
from interp.view.page import embed_json
from devtools.synthetic import synthetic_result
from tests.cli_helpers import invoke

HOSTILE = '<img src=x onerror="window.__pwned=1">'
HOSTILE_2 = "</script><script>window.__pwned=2</script><!--"


def make_impact_results(engines, out) -> dict:
    """One prompt on two checkpoints (two generation steps), another prompt, and one with hostile token text."""
    paths = {}
    for key, variant, prompt in (("a", "qwen3", "Paris is big"), ("b", "qwen3_gqa4", "Paris is big"),
                                 ("other", "qwen3", "Rome is old!")):
        engine = engines(variant)
        df = mask_impact(engine, prompt, num_tokens=2)
        paths[key] = write_result(df, mask_impact_metadata(engine, df, model_label=key), out / f"{key}.csv")[0]
    df = pd.read_csv(paths["a"], keep_default_na=False, dtype={"token_masked": str})
    df.loc[df["token_position"] == 1, "token_masked"] = HOSTILE
    df.loc[df["token_position"] == 2, "token_masked"] = HOSTILE_2
    meta = json.loads(paths["a"].with_suffix(".json").read_text()) | {"prompt": HOSTILE + HOSTILE_2, "model_label": HOSTILE}
    paths["hostile"] = write_result(df, meta, out / "hostile.csv")[0]
    return paths


def make_knockout_dir(out, n_prompts: int = 3, n_layers: int = 4, seed: int = 0):
    """A knockout result in the format the knockout analysis writes: knockout.csv + summary.json."""
    rng = np.random.default_rng(seed)
    prompts, rows = [], []
    for i in range(n_prompts):
        tokens = ["<s>", " The", " Eiffel", " Tower", " is", " in"] if i else ["<s>", HOSTILE, HOSTILE_2, " is", " in"]
        subject = [1, 2] if i == 0 else [2, 3]
        prompts.append({"prompt_index": i, "prompt": "".join(tokens[1:]), "subject": "".join(tokens[p] for p in subject).strip(),
                        "tokens": tokens, "token_ids": list(range(10 * i, 10 * i + len(tokens))),
                        "sources": {"subject": subject, "non_subject": [p for p in range(1, len(tokens) - 1) if p not in subject],
                                    "last": [len(tokens) - 1]}})
        p = float(rng.uniform(0.3, 0.9))
        for layer in range(n_layers):
            for source in ("subject", "non_subject", "last"):
                masked = float(rng.uniform(0.0, 1.0))
                rows.append(dict(prompt_index=i, layer=layer, source=source, window=3, top1_token=" Paris", top1_prob=p,
                                 top1_prob_masked=masked, rel_change_pct=100 * (masked - p) / p, kl=float(rng.uniform(0, 2))))
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "knockout.csv", index=False)
    summary = {"model": "toy", "attention": "causal", "window": 3, "n_prompts": n_prompts, "skipped": 0,
               "provenance": {}, "prompts": prompts}
    (out / "summary.json").write_text(json.dumps(summary))
    return out


@pytest.fixture(scope="module")
def results(engines, tmp_path_factory):
    return make_impact_results(engines, tmp_path_factory.mktemp("view_results"))


def decode(b64: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").reshape(shape)


def embedded_payload(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="interp-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_payload_holds_every_value_of_the_table(results):
    df = pd.read_csv(results["a"], keep_default_na=False, dtype={"token_masked": str})
    run = build_payload([results["a"]])["mask_impact"][0]
    assert run["variants"][:2] == ["Full", "Attn"] and run["metrics"] == ["l2", "cosine"]
    meta = json.loads(results["a"].with_suffix(".json").read_text())
    assert run["token_ids"] == [t["id"] for t in meta["tokens"]]
    assert [s["n"] for s in run["steps"]] == [len(run["tokens"]) - 1, len(run["tokens"])]  # step 1 adds the greedy token
    checked = 0
    for step in run["steps"]:
        for metric, column in (("l2", "l2_distance"), ("cosine", "cosine_distance")):
            for variant, b64 in step["values"][metric].items():
                cube = decode(b64, (len(run["layers"]), step["n"]))
                rows = df[(df.generation_step == step["step"]) & (df.variant == variant)]
                expected = rows.pivot(index="layer", columns="token_position", values=column).to_numpy()
                np.testing.assert_allclose(cube, expected, rtol=1e-6, atol=1e-7)
                checked += 1
    assert checked == 2 * 2 * len(run["variants"])


def test_extra_columns_and_dataframes_are_accepted(results):
    df = pd.read_csv(results["a"], keep_default_na=False, dtype={"token_masked": str})
    df["something_new"] = "x"
    run = build_payload([df])["mask_impact"][0]
    assert run["label"] == "result 1" and run["token_ids"] == [None] * len(run["tokens"])  # no sidecar: no ids
    assert run["tokens"] == build_payload([results["a"]])["mask_impact"][0]["tokens"]


def test_embedded_json_cannot_end_the_script_block(results):
    text = embed_json({"t": [HOSTILE, HOSTILE_2, "a\u2028b & c"]})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"t": [HOSTILE, HOSTILE_2, "a\u2028b & c"]}
    page = interp.view(results["hostile"]).html
    assert HOSTILE not in page and "window.__pwned=2</script>" not in page
    assert page.count("</script>") == 2  # the data block's and the viewer's: nothing in between closes early
    assert HOSTILE in embedded_payload(page)["mask_impact"][0]["tokens"]
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_notebook_repr_is_an_iframe_of_the_page(results):
    viewer = interp.view(results["a"])
    frame = viewer._repr_html_()
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" [^>]*></iframe>', frame)
    assert match and html.unescape(match.group(1)) == viewer.html


def test_large_result_fits_in_ten_megabytes():
    """28 layers × 512 tokens × 16 heads × 2 metrics, random values (see bench/view.py for the load time)."""
    page = interp.view(synthetic_result(28, 512, 16)).html
    assert len(page.encode()) <= 10_000_000
    run = embedded_payload(page)["mask_impact"][0]
    assert len(run["layers"]) == 28 and len(run["tokens"]) == 512 and len(run["variants"]) == 18


def cli(*args: str):
    app = typer.Typer()
    app.command("view")(view_cmd)
    app.command("unused")(lambda: None)
    return invoke(app, ["view", *args])


def test_view_command_writes_one_page_and_refuses_mismatches(results, tmp_path):
    out = tmp_path / "v.html"
    code, output = cli(str(results["a"]), str(results["b"]), "-o", str(out))
    assert code == 0 and str(out) in output
    payload = embedded_payload(out.read_text())
    assert [r["label"] for r in payload["mask_impact"]] == ["a", "b"]
    df, meta = read_result(results["b"])
    parquet = write_result(df, meta, tmp_path / "b.parquet")[0]
    code, _ = cli(str(results["a"]), str(parquet), "-o", str(out))
    assert code == 0 and embedded_payload(out.read_text())["mask_impact"][1]["tokens"] == payload["mask_impact"][1]["tokens"]
    code, output = cli(str(results["a"]), str(results["other"]))
    assert code == 2 and "cannot compare other with a: their tokens differ" in output and "\n" not in output
    code, output = cli(str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in output
    code, output = cli(str(tmp_path))
    assert code == 2 and "without knockout.csv" in output


def test_knockout_directory_is_read_in_the_contract_format(tmp_path):
    ko = make_knockout_dir(tmp_path / "ko")
    code, output = cli(str(ko))
    assert code == 0 and (ko / "view.html").is_file()
    data = embedded_payload((ko / "view.html").read_text())["knockout"][0]
    assert data["label"] == "toy" and data["window"] == 3 and len(data["prompts"]) == 3
    df = pd.read_csv(ko / "knockout.csv")
    assert sorted(data["columns"]["rel_change_pct"]) == pytest.approx(sorted(df["rel_change_pct"]), rel=1e-6)
    df.drop(columns="kl").to_csv(ko / "knockout.csv", index=False)
    code, output = cli(str(ko / "knockout.csv"))
    assert code == 2 and "missing column(s) kl" in output


def test_mask_impact_html_flag_writes_the_viewer(model_dirs, tmp_path):
    app = typer.Typer()
    app.add_typer(mask_impact_app, name="mask-impact")
    app.command("unused")(lambda: None)
    model = str(model_dirs("qwen3"))
    result = CliRunner().invoke(app, ["mask-impact", "-p", "Paris is", "-m", model, "-m", model, "--layers", "0",
                                      "--out", str(tmp_path / "r.csv"), "--html"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "r.html"
    assert f"wrote {page}" in result.output
    runs = embedded_payload(page.read_text())["mask_impact"]
    assert len(runs) == 2 and runs[0]["layers"] == [0]
