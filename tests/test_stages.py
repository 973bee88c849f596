"""Stages run into timestamped directories from presets; the report computes what the published ablation reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from interp.analyses.ablation import stage_runners, stages
from interp.analyses.ablation.report import build_report, collect, recovery_table, success_criteria
from interp.analyses.ablation.stages import latest_run, resolve_config, run_stage
from interp.cli.ablation.stage import stage_app
from interp.data.toy import TOY_TASKS
from interp.analyses.ablation.stage_metrics import StageMetrics
from interp.errors import InterpError

FINETUNE_KEYS = {
    "data", "max_seq_len", "max_steps", "num_train_epochs", "learning_rate", "per_device_train_batch_size",
    "gradient_accumulation_steps", "warmup_ratio", "weight_decay", "logging_steps", "eval_steps", "save_steps", "seed",
    "bf16", "gradient_checkpointing", "fsdp", "min_loss_improvement", "kill_after_steps", "plateau_patience",
    "plateau_min_delta", "plateau_min_steps",
}


def test_presets_have_every_setting():
    toy, ministral = resolve_config("toy"), resolve_config("ministral3")
    assert toy["model"] == "toy" and toy["tasks"] == list(TOY_TASKS)
    assert ministral["model"] == "mistralai/Ministral-3-3B-Instruct-2512" and ministral["dtype"] == "bfloat16"
    assert ministral["tasks"] == ["hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande"]
    assert toy["limit"] == ministral["limit"] == 500
    assert (toy["format"], ministral["format"]) == ("lm-eval", "seed")  # ministral3 reproduces the ablation's prompts
    assert set(toy["finetune"]) == set(ministral["finetune"]) == FINETUNE_KEYS
    assert (toy["finetune"]["data"], ministral["finetune"]["data"]) == ("toy", "yahma/alpaca-cleaned")


def test_overrides_reach_every_value():
    config = resolve_config("toy", {"limit": 7, "tasks": "a.jsonl, b.jsonl", "model": None},
                            ["finetune.learning_rate=1e-4", "batch_size=3", "data_dir=null"])
    assert (config["limit"], config["tasks"], config["model"]) == (7, ["a.jsonl", "b.jsonl"], "toy")
    assert config["finetune"]["learning_rate"] == 1e-4 and config["batch_size"] == 3
    with pytest.raises(InterpError, match="unknown setting 'limt'; did you mean 'limit'"):
        resolve_config("toy", assignments=["limt=3"])
    with pytest.raises(InterpError, match="limit must be a positive integer"):
        resolve_config("toy", {"limit": 0})
    with pytest.raises(InterpError, match="unknown preset 'nope'"):
        resolve_config("nope")


@pytest.fixture
def tiny_config(model_dirs, tmp_path):
    """The toy preset pointed at a tiny random model and two small JSONL tasks."""
    items = [{"context": f"item {i}:", "choices": [" yes", " no", " maybe"][: 2 + i % 2], "label": i % 2} for i in range(6)]
    paths = []
    for name in ("alpha", "beta"):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
        paths.append(str(path))
    return resolve_config("toy", {"model": str(model_dirs("qwen3")), "tasks": ",".join(paths),
                                  "runs_dir": str(tmp_path / "runs"), "device": "cpu", "batch_size": 4})


def fake_finetune(model, data, attention, out_dir, **options):
    """Stands in for interp.analyses.ablation.finetune.trainer: the 'finetuned' checkpoint is the model unchanged."""
    shutil.copytree(model, Path(out_dir) / "final")
    return type("Result", (), {"checkpoint_dir": Path(out_dir) / "final", "summary": {"attention": attention, **options}})()


def test_stages_1_2_3_4_and_report(tiny_config, monkeypatch):
    runs = Path(tiny_config["runs_dir"])
    s1 = run_stage("1", tiny_config, echo=None, show_progress=False)
    s2 = run_stage("2", tiny_config, echo=None, show_progress=False)
    assert s1.parent == runs / "1" and latest_run(runs, "2") == s2
    for name in ("config.yaml", "metrics.json", "causal/examples.csv", "causal/metrics.json", "run.log",
                 "provenance.json", "causal/tasks/alpha.json"):
        assert (s1 / name).exists(), name
    config = yaml.safe_load((s1 / "config.yaml").read_text())
    assert config["stage"] == "1" and config["limit"] == 500 and config["model"] == tiny_config["model"]
    assert json.loads((s1 / "provenance.json").read_text())["seed"] == 0
    r1, r2 = (StageMetrics.read(s) for s in (s1, s2))
    m1, m2 = r1.evals[0].metrics, r2.evals[0].metrics
    assert (r1.stage, r2.stage) == ("1", "2") and [e.dir for e in (*r1.evals, *r2.evals)] == ["causal", "prefix"]
    assert (m1["attention"], m2["attention"]) == ("causal", "prefix") and set(m1["tasks"]) == {"alpha", "beta"}

    monkeypatch.setattr("interp.analyses.ablation.finetune.trainer.finetune", fake_finetune)
    s3 = run_stage("3b", tiny_config, echo=None)
    r3 = StageMetrics.read(s3)
    summary = r3.finetune["summary"]
    assert r3.evals == [] and r3.finetune["attention"] == "prefix"
    assert summary["attention"] == "prefix" and summary["learning_rate"] == tiny_config["finetune"]["learning_rate"]
    s4 = run_stage("4", tiny_config, echo=None, show_progress=False)
    r4 = StageMetrics.read(s4)
    assert [(e.checkpoint, e.attention, e.dir) for e in r4.evals] == [("3b", "prefix", "3b-prefix"), ("3b", "causal", "3b-causal")]
    assert r4.evals[0].checkpoint_path == str(s3 / "final")
    # The 'finetuned' checkpoint is the base model, so its evals reproduce stages 1 and 2 exactly.
    assert r4.find("prefix", "3b").metrics["tasks"] == m2["tasks"]
    assert r4.find("causal", "3b").metrics["tasks"] == m1["tasks"]
    # one shape: every stage's record has the same keys
    shapes = {tuple(json.loads((s / "metrics.json").read_text())) for s in (s1, s2, s3, s4)}
    assert shapes == {("kind", "stage", "model", "evals", "finetune")}

    files = build_report(runs)
    text = files.markdown.read_text()
    assert "| **macro** |" in text and "S4 3a prefix" in text and files.figure.stat().st_size > 1000
    table = pd.read_csv(files.table)
    macro = table[(table.task == "macro") & (table.metric == "acc")].iloc[0]
    assert macro["S1 causal"] == pytest.approx(m1["macro_acc"]) and macro["S2 prefix"] == pytest.approx(m2["macro_acc"])
    assert macro["recovery S4/S1"] == pytest.approx(m2["macro_acc"] / m1["macro_acc"])


def test_stage_3_passes_the_presets_model_settings_to_the_finetune(tiny_config, monkeypatch):
    monkeypatch.setattr("interp.analyses.ablation.finetune.trainer.finetune", fake_finetune)

    def summary(config):
        return StageMetrics.read(run_stage("3a", config, echo=None)).finetune["summary"]

    s = summary(tiny_config)
    assert (s["dtype"], s["device"], s["trust_remote_code"], s["resume"]) == ("float32", "cpu", False, False)
    s = summary({**tiny_config, "dtype": "bfloat16", "trust_remote_code": True})
    assert (s["dtype"], s["trust_remote_code"]) == ("bfloat16", True)
    own = {**tiny_config, "dtype": "bfloat16", "finetune": {**tiny_config["finetune"], "dtype": "float32"}}
    assert summary(own)["dtype"] == "float32"  # finetune.dtype: fp32 master weights while evals run in bf16


def test_resume_skips_finished_tasks(tiny_config, monkeypatch):
    first = run_stage("1", tiny_config, echo=None, show_progress=False)
    (first / "metrics.json").unlink()  # as if interrupted after both tasks were written
    from interp.analyses.ablation import evaluate as ev

    monkeypatch.setattr(ev, "evaluate_task", lambda *a, **k: pytest.fail("a finished task was run again"))
    lines = []
    assert run_stage("1", tiny_config, resume=True, echo=lines.append, show_progress=False) == first
    assert (first / "metrics.json").exists() and sum("skipped (--resume)" in line for line in lines) == 2
    with pytest.raises(InterpError, match="cannot resume .*limit: 500 there, 3 now"):
        run_stage("1", {**tiny_config, "limit": 3}, resume=True, echo=None)


def test_stage_4_without_checkpoints_and_with_a_bad_one(tiny_config, tmp_path):
    with pytest.raises(InterpError, match="no finetuned checkpoint .*interp stage run 3b"):
        run_stage("4", tiny_config, echo=None)
    with pytest.raises(InterpError, match="checkpoint for 3a is not a save_pretrained directory"):
        run_stage("4", tiny_config, checkpoints=[f"3a={tmp_path}"], echo=None)


def write_metrics(runs: Path, stage: str, content: dict, stamp: str = "20260214-145148") -> None:
    """A finished run's record: `content` is one eval's metrics, or {"evals": {checkpoint: {mode: metrics}}}."""
    from interp.analyses.ablation.stage_metrics import StageEval

    (runs / stage / stamp).mkdir(parents=True)
    if "tasks" in content:
        evals = [StageEval(content["attention"], content["attention"], content)]
    else:
        evals = [StageEval(f"{c}-{mode}", mode, m, c) for c, modes in content["evals"].items() for mode, m in modes.items()]
    StageMetrics(stage, "m", evals).write(runs / stage / stamp)


def eval_metrics(attention: str, accs: dict[str, float]) -> dict:
    tasks = {t: {"n": 500, "skipped": 0, "acc": a, "acc_norm": a, "chance": 0.25} for t, a in accs.items()}
    macro = sum(accs.values()) / len(accs)
    return {"model": "m", "attention": attention, "leaky": False, "limit": 500, "tasks": tasks,
            "macro_acc": macro, "macro_acc_norm": macro}


def test_report_reproduces_the_seeds_ratios_and_criteria(tmp_path):
    """The published ablation's figures: macro 0.695 → 0.356 (retention 0.512) → 0.409 after the 3b finetune."""
    runs = tmp_path / "runs"
    write_metrics(runs, "1", eval_metrics("causal", {"a": 0.79, "b": 0.60}))
    write_metrics(runs, "1", eval_metrics("causal", {"a": 0.10, "b": 0.10}), stamp="20260101-000000")  # older
    write_metrics(runs, "2", eval_metrics("prefix", {"a": 0.412, "b": 0.30}))
    write_metrics(runs, "4", {"stage": "4", "evals": {
        "3b": {"prefix": eval_metrics("prefix", {"a": 0.418, "b": 0.40}), "causal": eval_metrics("causal", {"a": 0.7, "b": 0.6})},
        "3a": {"prefix": eval_metrics("prefix", {"a": 0.62, "b": 0.55}), "causal": eval_metrics("causal", {"a": 0.7, "b": 0.6})},
    }})
    table = recovery_table(collect(runs), "acc").set_index("task")
    assert table.loc["macro", "S1 causal"] == pytest.approx(0.695)
    assert table.loc["macro", "retention S2/S1"] == pytest.approx(0.356 / 0.695)
    assert table.loc["macro", "recovery S4/S1"] == pytest.approx(0.409 / 0.695)
    assert table.loc["macro", "gain S4−S2"] == pytest.approx(0.053)
    assert table.loc["a", "Δ S2−S1"] == pytest.approx(0.412 - 0.79)
    results = {(c["checkpoint"], c["criterion"]): c["result"] for c in success_criteria(table.reset_index())}
    assert results == {("3b", "S4 ≥ 0.8 × S1"): "FAIL", ("3b", "S4 ≥ S2 + 0.05"): "PASS",
                       ("3a", "S4 ≥ 0.8 × S1"): "PASS", ("3a", "S4 ≥ S2 + 0.05"): "PASS"}
    result = CliRunner().invoke(stage_app, ["report", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    assert "| 3b | S4 ≥ 0.8 × S1 | 0.4090 | 0.5560 | **FAIL** |" in result.stdout
    assert (runs / "report.png").exists()
    cc = recovery_table(collect(runs), "acc", corrected=True).set_index("task")  # chance 0.25 everywhere
    assert cc.loc["a", "S1 causal"] == pytest.approx((0.79 - 0.25) / 0.75)
    assert cc.loc["macro", "S2 prefix"] == pytest.approx(((0.412 - 0.25) + (0.30 - 0.25)) / 2 / 0.75)
    assert cc.loc["macro", "retention S2/S1"] == pytest.approx((0.356 - 0.25) / (0.695 - 0.25))
    long = pd.read_csv(runs / "report.csv")
    assert set(long.scale) == {"raw", "chance-corrected"} and len(long) == 2 * 2 * 3  # metrics × scales × rows
    assert "| Ministral-3-3B-Instruct, published ablation (chance-corrected) | 0.3500 | 0.5308 | 0.0092 | 0.0908 | 0.017× | 0.171× |" in result.stdout


def test_report_with_only_stage_1(tmp_path):
    write_metrics(tmp_path, "1", eval_metrics("causal", {"a": 0.5}))
    text = build_report(tmp_path).markdown.read_text()
    assert "Not run yet: S2 prefix, S4 3b prefix" in text and "n/a" in text
    with pytest.raises(InterpError, match="no finished stage runs"):
        build_report(tmp_path / "empty")


def test_stage_cli_list_and_run(tiny_config):
    runs = tiny_config["runs_dir"]
    args = ["--model", tiny_config["model"], "--tasks", ",".join(tiny_config["tasks"]), "--runs-dir", runs,
            "--device", "cpu", "--limit", "3", "--set", "batch_size=2"]
    result = CliRunner().invoke(stage_app, ["run", "2", *args])
    assert result.exit_code == 0, result.output
    assert "attention: prefix" in result.stdout and "macro" in result.stdout
    listing = CliRunner().invoke(stage_app, ["list", "--runs-dir", runs])
    assert "finished" in listing.stdout and "macro acc" in listing.stdout
    bad = CliRunner().invoke(stage_app, ["run", "5", *args])
    assert isinstance(bad.exception, InterpError) and "unknown stage '5'" in str(bad.exception)


def test_stage_3b_runs_the_real_finetune_and_stage_4_evaluates_it(tiny_config):
    config = resolve_config("toy", {k: tiny_config[k] for k in ("model", "tasks", "runs_dir", "device", "batch_size")},
                            ["finetune.max_steps=2", "finetune.eval_steps=null", "finetune.per_device_train_batch_size=2",
                             "finetune.max_seq_len=96", "finetune.logging_steps=1"])
    s3 = run_stage("3b", config, echo=None)
    m3 = StageMetrics.read(s3).finetune
    assert m3["attention"] == "prefix" and m3["checkpoint_dir"] == str(s3 / "final") and m3["summary"]["steps"] == 2
    r4 = StageMetrics.read(run_stage("4", config, echo=None, show_progress=False))
    assert {e.attention for e in r4.evals if e.checkpoint == "3b"} == {"prefix", "causal"}


def test_missing_data_fails_before_a_run_directory_or_model_load(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(stage_runners, "_load", lambda *a: pytest.fail("model loaded before the data was checked"))
    with pytest.raises(InterpError, match="no local data for piqa"):
        run_stage("1", {**tiny_config, "tasks": ["piqa"], "data_dir": str(tmp_path)}, echo=None)
    assert not (Path(tiny_config["runs_dir"]) / "1").exists()


def test_results_and_report_name_the_model_as_given_not_its_install_path(tiny_config):
    from interp.data.toy import BUNDLED_MODEL_DIR

    config = {**tiny_config, "model": "toy", "limit": 2}
    run = run_stage("1", config, echo=None, show_progress=False)
    assert json.loads((run / "metrics.json").read_text())["model"] == "toy"
    text = build_report(config["runs_dir"]).markdown.read_text()
    assert "| toy | causal |" in text and str(BUNDLED_MODEL_DIR) not in text


def test_sweep_layers_writes_one_result_per_group_and_the_report_plots_them(tiny_config):
    from interp.analyses.ablation.evaluate import evaluate
    from interp.cli.common import load_quietly

    runs = Path(tiny_config["runs_dir"])
    run_stage("1", tiny_config, echo=None, show_progress=False)
    s2 = run_stage("2", tiny_config, echo=None, show_progress=False)
    args = ["--model", tiny_config["model"], "--tasks", ",".join(tiny_config["tasks"]), "--runs-dir", str(runs),
            "--device", "cpu", "--set", "batch_size=4"]
    result = CliRunner().invoke(stage_app, ["run", "2", "--sweep-layers", "2", *args])
    assert result.exit_code == 0, result.output
    sweep_dir = latest_run(runs, "2", sweep=True)
    assert latest_run(runs, "2") == s2 and sweep_dir != s2  # S2 stays the all-layer ablation
    from interp.analyses.ablation.stage_metrics import StageMetrics

    sweep = StageMetrics.read(sweep_dir).evals
    assert [g.bidirectional_layers for g in sweep] == [[0], [1]] and [g.layers for g in sweep] == ["0", "1"]
    assert [g.dir for g in sweep] == ["layers-0", "layers-1"] and all((sweep_dir / g.dir / "examples.csv").is_file() for g in sweep)
    engine = load_quietly(tiny_config["model"])
    for group in sweep:  # each group is exactly the eval with prefix attention in that group alone
        direct = evaluate(engine, tiny_config["tasks"], attention="prefix", bidirectional_layers=group.bidirectional_layers,
                          show_progress=False)
        assert group.metrics["tasks"] == direct["tasks"]
        assert group.metrics["bidirectional_layers"] == group.bidirectional_layers
    files = build_report(runs)
    table = pd.read_csv(files.sweep_table)
    assert len(table) == 2 * 3 and set(table.task) == {"alpha", "beta", "macro"}
    macro = table[table.task == "macro"].set_index("layers")["acc"]
    assert macro.tolist() == pytest.approx([g.metrics["macro_acc"] for g in sweep])
    assert files.sweep_figure.stat().st_size > 1000 and "## Ablation by layer" in files.markdown.read_text()
    with pytest.raises(InterpError, match="from 1 to 2"):
        run_stage("2", {**tiny_config, "sweep_layers": 3}, echo=None, show_progress=False)
    with pytest.raises(InterpError, match="is for stage 2"):
        run_stage("1", {**tiny_config, "sweep_layers": 2}, echo=None)
    with pytest.raises(InterpError, match="either bidirectional_layers or sweep_layers"):
        resolve_config("toy", {"sweep_layers": 2, "bidirectional_layers": "0-1"})
    assert resolve_config("toy", {"bidirectional_layers": "1-3,0"})["bidirectional_layers"] == [0, 1, 2, 3]


def test_report_groups_tasks_by_kind_and_states_the_targets(tmp_path):
    """Synthetic runs (no model accuracies hard-coded): group means and every target computed from them."""
    runs = tmp_path / "runs"
    s1 = {"toy_arc": 0.85, "toy_piqa": 0.9, "toy_order": 0.85, "toy_copy": 0.7}
    s2 = {"toy_arc": 0.85, "toy_piqa": 0.9, "toy_order": 0.40, "toy_copy": 0.55}
    b3 = {"toy_arc": 0.85, "toy_piqa": 0.9, "toy_order": 0.70, "toy_copy": 0.70}
    a3 = {"toy_arc": 0.85, "toy_piqa": 0.9, "toy_order": 0.40, "toy_copy": 0.55}
    write_metrics(runs, "1", eval_metrics("causal", s1))
    write_metrics(runs, "2", eval_metrics("prefix", s2))
    write_metrics(runs, "4", {"evals": {"3b": {"prefix": eval_metrics("prefix", b3)},
                                        "3a": {"prefix": eval_metrics("prefix", a3)}}})
    files = build_report(runs)
    text = files.markdown.read_text()
    cc = lambda x: (x - 0.25) / 0.75  # noqa: E731 (chance 0.25 in eval_metrics)
    wo1, wo2 = (cc(s1["toy_order"]) + cc(s1["toy_copy"])) / 2, (cc(s2["toy_order"]) + cc(s2["toy_copy"])) / 2
    gain = (cc(b3["toy_order"]) + cc(b3["toy_copy"])) / 2 - wo2
    assert f"| word order: S1cc ≥ 0.6 | toy_order, toy_copy | {wo1:.4f} | 0.60 | met |" in text
    assert f"| word order: S2cc / S1cc ≤ 0.7 | toy_order, toy_copy | {wo2 / wo1:.4f} | 0.70 | met |" in text
    assert f"| word order: S4cc 3b − 3a (prefix) ≥ +0.10 | toy_order, toy_copy | {gain:.4f} | 0.10 | met |" in text
    macro_s1 = sum(cc(v) for v in s1.values()) / 4
    assert f"| all toy tasks: macro S1cc ≥ 0.5 | toy_arc, toy_piqa, toy_order, toy_copy | {macro_s1:.4f} | 0.50 | met |" in text
    assert "| macro: S2cc / S1cc ≤ 0.6 |" in text and "**not met**" in text  # facts keep the macro retention high
    fact = f"| fact recall | toy_arc, toy_piqa | {(0.85 + 0.9) / 2:.4f} |"
    assert fact in text and "| in-context | toy_order, toy_copy |" in text and "| word order | toy_order, toy_copy |" in text
    assert text.index("## Replication targets") < text.index("## Reference: the published ablation")
