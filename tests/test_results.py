"""The result contract: results written as one unit, damaged or mismatched files refused in one line."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from interp.analyses.ablation.eval_files import ExamplesTable
from interp.analyses.ablation.stage_metrics import StageMetrics
from interp.analyses.impact.knockout.files import KnockoutResult
from interp.analyses.impact.mask_impact.io import read_result, write_result
from interp.errors import InterpError
from interp.results import output_lock
from interp.view.data import load_source


def impact_table(n_layers: int = 3, value: float = 1.0) -> pd.DataFrame:
    rows = [{"generation_step": 0, "layer": layer, "token_position": p, "token_masked": t, "variant": "Full",
             "l2_distance": value * (layer + p), "cosine_distance": 0.1 * p}
            for layer in range(n_layers) for p, t in enumerate(["The", " Eiffel", "nan"])]
    return pd.DataFrame(rows)


def test_round_trip_keeps_tokens_and_records_rows_and_hash(tmp_path):
    table, sidecar = write_result(impact_table(), {"model": "m"}, tmp_path / "r.csv")
    side = json.loads(sidecar.read_text())
    assert side["rows"] == 9 and len(side["table_sha256"]) == 64 and side["table"] == "r.csv"
    df, meta = read_result(table)
    assert df["token_masked"].tolist()[:3] == ["The", " Eiffel", "nan"] and df["l2_distance"].sum() == pytest.approx(18.0)


def test_a_table_cut_mid_way_is_refused(tmp_path):
    table, _ = write_result(impact_table(), {"model": "m"}, tmp_path / "r.csv")
    lines = table.read_text().splitlines(keepends=True)
    table.write_text("".join(lines[:5]))  # header + 4 rows of 9
    with pytest.raises(InterpError, match=r"r.csv is damaged: 4 rows, but r.json says 9"):
        read_result(table)


def test_a_table_from_another_run_is_refused(tmp_path):
    """Run A's sidecar with run B's table (same row count): the hash tells them apart."""
    write_result(impact_table(value=1.0), {"model": "A"}, tmp_path / "a.csv")
    write_result(impact_table(value=2.0), {"model": "B"}, tmp_path / "b.csv")
    (tmp_path / "a.csv").write_bytes((tmp_path / "b.csv").read_bytes())
    with pytest.raises(InterpError, match="a.csv does not match a.json"):
        read_result(tmp_path / "a.csv")
    with pytest.raises(InterpError, match="does not match"):
        load_source(tmp_path / "a.csv")


@pytest.mark.parametrize("column,value", [("layer", "x"), ("l2_distance", "abc"), ("token_position", "1.5")])
def test_non_numeric_layer_or_metric_is_one_line(tmp_path, column, value):
    df = impact_table().astype({column: object})
    df.loc[4, column] = value
    df.to_csv(tmp_path / "bad.csv", index=False)  # no sidecar: the values alone are checked
    with pytest.raises(InterpError, match=rf"bad.csv is damaged: column '{column}', row 5: '{value}' is not a"):
        read_result(tmp_path / "bad.csv")


def test_damaged_sidecar_is_one_line(tmp_path):
    table, sidecar = write_result(impact_table(), {"model": "m"}, tmp_path / "r.csv")
    sidecar.write_text('{"model": "m", "rows": ')
    with pytest.raises(InterpError, match=r"r.json is damaged: not valid JSON"):
        read_result(table)


def test_two_writers_of_one_output_never_mix(tmp_path):
    """Many writers of one --out: whatever is left reads back as one writer's table and sidecar."""
    out = tmp_path / "same.csv"
    errors = []

    def write(value: float) -> None:
        try:
            for _ in range(5):
                write_result(impact_table(n_layers=4, value=value), {"model": f"run{value}"}, out)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(float(v),)) for v in (1, 2, 3)]
    for t in threads:
        t.start()
    for _ in range(20):  # readers meanwhile never see a mixed pair
        if out.exists():
            df, meta = read_result(out)
            assert df["l2_distance"].max() == pytest.approx(5 * float(meta["model"].removeprefix("run")))
    for t in threads:
        t.join()
    assert not errors
    df, meta = read_result(out)
    assert df["l2_distance"].max() == pytest.approx(5 * float(meta["model"].removeprefix("run")))


def test_a_writer_waits_for_the_lock(tmp_path):
    out = tmp_path / "r.csv"
    done = threading.Event()
    with output_lock(out):
        t = threading.Thread(target=lambda: (write_result(impact_table(), {"model": "m"}, out), done.set()))
        t.start()
        assert not done.wait(0.3) and not out.exists()  # held off while another run holds the output
    t.join(5)
    assert done.is_set() and read_result(out)[1]["model"] == "m"


def test_knockout_cut_table_is_refused_by_the_viewer(tmp_path):
    rows = [{"prompt_index": 0, "layer": layer, "source": s, "window": 1, "top1_token": " Paris", "top1_prob": 0.5,
             "top1_prob_masked": 0.25, "rel_change_pct": -50.0, "kl": 0.1} for layer in range(3) for s in ("subject", "last")]
    KnockoutResult(pd.DataFrame(rows), {"model": "m", "prompts": []}).write(tmp_path / "ko")
    assert len(KnockoutResult.read(tmp_path / "ko").df) == 6
    csv = tmp_path / "ko" / "knockout.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(InterpError, match="knockout.csv is damaged: 2 rows, but summary.json says 6"):
        load_source(tmp_path / "ko")


def test_damaged_stage_record_is_one_line(tmp_path):
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(InterpError, match="metrics.json is damaged: not valid JSON"):
        StageMetrics.read(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"kind": "stage", "stage": "1", "evals": [
        {"dir": "causal", "attention": "causal", "metrics": {"tasks": {"a": {"n": 3, "chance": 0.25, "acc": "high"}},
                                                              "macro_acc": 0.5, "macro_acc_norm": 0.5}}]}))
    with pytest.raises(InterpError, match=r"evals\[0\].metrics.tasks.a.acc is 'high', not a number"):
        StageMetrics.read(tmp_path)


def test_damaged_task_table_is_one_line(tmp_path):
    df = pd.DataFrame([{"task": "t", "index": i, "label": 0, "pred": 0, "pred_norm": 0, "pred_token_norm": 0,
                        "context": "c", "choices": "[]", "logprobs": "[]", "n_tokens": "[]", "n_chars": "[]",
                        "leaky": False} for i in range(4)])
    ExamplesTable(df, {"metrics": {}}).write(tmp_path / "t.csv")
    (tmp_path / "t.csv").write_text((tmp_path / "t.csv").read_text().replace("\nt,3,", "\nt,three,"))
    with pytest.raises(InterpError, match=r"t.csv is damaged: column 'index', row 4: 'three' is not a whole number"):
        ExamplesTable.read(tmp_path / "t.csv")
