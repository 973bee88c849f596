"""Finetuning under a chosen mask: the data it trains on, the loop, checkpoints, resume, stop rules, CLI."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

import interp
from interp.analyses.ablation.finetune.trainer import finetune, resolve_options
from interp.analyses.ablation.finetune.stop_rules import EvalPlateauStop, NoImprovementStop, NonFiniteLossStop, StopRecord
from interp.analyses.ablation.finetune.training_model import mean_response_loss
from interp.data.instructions import (
    IGNORE_INDEX, InstructionCollator, format_prompt, load_instructions, tokenize_example, tokenize_rows,
)
from interp.errors import InterpError

FAST = dict(logging_steps=1, save_steps=1000, per_device_train_batch_size=8, learning_rate=3e-3,
            warmup_ratio=0.0, eval_limit=4, max_seq_len=96, disable_tqdm=True)


def instruction_rows(n: int = 48, seed: int = 0) -> list[dict]:
    """Responses of random letters: nothing in the prompt or the past predicts the next letter."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        letters = " ".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
        rows.append({"instruction": f"Write code {i}.", "input": f"set {i % 3}" if i % 2 else "", "output": letters})
    return rows


def write_instruction_file(path: Path, rows: list[dict] | None = None) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in (rows or instruction_rows())) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    return write_instruction_file(tmp_path_factory.mktemp("data") / "letters.jsonl")


@pytest.fixture(scope="module")
def tokenizer(engines):
    return engines("qwen3").tokenizer


# ----------------------------------------------------------------------------- data
def test_prompt_template_has_input_block_only_when_input_is_given():
    assert format_prompt({"instruction": "Add.", "input": "2 3", "output": "5"}) == (
        "### Instruction:\nAdd.\n\n### Input:\n2 3\n\n### Response:\n")
    assert format_prompt({"instruction": "Add.", "input": "", "output": "5"}) == (
        "### Instruction:\nAdd.\n\n### Response:\n")


def test_labels_cover_response_and_eos_only(tokenizer):
    row = {"instruction": "Say hi.", "input": "", "output": "hi there"}
    ex = tokenize_example(row, tokenizer, 512)
    prompt_ids = tokenizer(format_prompt(row))["input_ids"]
    response_ids = tokenizer("hi there", add_special_tokens=False)["input_ids"]
    assert ex["prefix_len"] == len(prompt_ids)
    assert ex["input_ids"] == prompt_ids + response_ids + [tokenizer.eos_token_id]
    assert ex["labels"] == [IGNORE_INDEX] * len(prompt_ids) + response_ids + [tokenizer.eos_token_id]


def test_truncation_keeps_prefix_len_and_drops_rows_without_response(tokenizer):
    row = {"instruction": "Say hi.", "input": "", "output": "hi there"}
    full = tokenize_example(row, tokenizer, 512)
    p = full["prefix_len"]
    cut = tokenize_example(row, tokenizer, p + 2)
    assert len(cut["input_ids"]) == p + 2 and cut["prefix_len"] == p
    assert cut["labels"][p:] == full["input_ids"][p : p + 2]
    examples, dropped = tokenize_rows([row, row], tokenizer, p)  # prompt fills the budget: no label left
    assert examples == [] and dropped == 2


def test_collator_right_pads_with_masked_labels(tokenizer):
    rows = instruction_rows(2)
    examples, _ = tokenize_rows(rows, tokenizer, 512)
    batch = InstructionCollator(0)(examples)
    lengths = [len(e["input_ids"]) for e in examples]
    assert batch["attention_mask"].sum(-1).tolist() == lengths
    assert batch["prefix_len"].tolist() == [e["prefix_len"] for e in examples]
    short = lengths.index(min(lengths))
    assert (batch["labels"][short, min(lengths):] == IGNORE_INDEX).all()


def test_rows_missing_fields_are_skipped_and_counted(tmp_path):
    rows = instruction_rows(20) + [{"instruction": "x"}, {"output": "y"}, {"instruction": "", "output": "z"}, "junk"]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows), encoding="utf-8")  # a JSON array, as alpaca_data.json
    data = load_instructions(str(path), eval_limit=2, seed=0)
    assert data.skipped == 4
    assert len(data.train) == 18 and len(data.eval) == 2
    assert not {r["instruction"] for r in data.train} & {r["instruction"] for r in data.eval}


def test_bad_data_sources_fail_in_one_line(tmp_path):
    with pytest.raises(InterpError, match="no such data file"):
        load_instructions(str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"instruction": "a"}\n', encoding="utf-8")
    with pytest.raises(InterpError, match=r"no usable instruction rows .*\(2 skipped"):
        load_instructions(str(bad))  # a line that is not JSON is skipped and counted like a row missing a field
    with pytest.raises(InterpError, match="cannot load dataset") as err:
        load_instructions("no-such-user-xyz/no-such-dataset-xyz")
    assert "\n" not in str(err.value)


def test_toy_instruction_set_loads():
    data = load_instructions("toy", eval_limit=50)
    assert len(data.train) > 1000 and len(data.eval) == 50 and data.skipped == 0


# ----------------------------------------------------------------------------- options
def test_unknown_option_is_one_line_error_with_suggestion():
    with pytest.raises(InterpError, match="unknown finetune option 'learning_rat'; did you mean 'learning_rate'"):
        resolve_options({"learning_rat": 1e-4})
    with pytest.raises(InterpError, match="plateau_patience needs eval_steps"):
        resolve_options({"plateau_patience": 2})
    ours, trainer = resolve_options({"save_total_limit": 1, "report_to": "none", "warmup_ratio": 0.1})
    assert trainer["save_total_limit"] == 1 and trainer["warmup_steps"] == 0.1
    assert "max_seq_len" not in trainer and ours["max_seq_len"] == 512


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def base_dir(model_dirs):
    return model_dirs("qwen3")


@pytest.fixture(scope="module")
def tied_dir(tmp_path_factory):
    """Like the toy model: lm_head tied to the input embeddings (save_pretrained stores one copy)."""
    from transformers import AutoModelForCausalLM

    from interp.data.random_models import make_config, make_tokenizer

    config = make_config("qwen3")
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    out = tmp_path_factory.mktemp("tied")
    model.save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def eval_examples(engines, data_file):
    examples, _ = tokenize_rows(load_instructions(str(data_file), eval_limit=4).train[:16],
                                engines("qwen3").tokenizer, 96)
    return examples


@pytest.mark.parametrize("mode", ["causal", "prefix"])
def test_few_steps_lower_the_response_loss_and_checkpoint_opens_everywhere(
    mode, base_dir, data_file, eval_examples, tmp_path
):
    from transformers import AutoModelForCausalLM

    before = mean_response_loss(interp.load(base_dir), eval_examples, mode)
    result = finetune(str(base_dir), str(data_file), mode, tmp_path, max_steps=12, **FAST)
    assert result.checkpoint_dir == tmp_path / "final"
    tuned = interp.load(result.checkpoint_dir)
    after = mean_response_loss(tuned, eval_examples, mode)
    assert after < before - 1.0, (before, after)

    hf = AutoModelForCausalLM.from_pretrained(result.checkpoint_dir).eval()
    ids = torch.tensor([eval_examples[0]["input_ids"]])
    with torch.no_grad():
        assert (hf(input_ids=ids).logits - tuned.run(ids).logits).abs().max() < 1e-4

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["attention"] == mode and summary["seed"] == 0
    assert summary["leakage_guard"]["leak_free"] is True and summary["leakage_guard"]["leaky_positions"] == 0
    assert summary["eval_loss"] < summary["eval_loss_initial"]
    assert summary["data_sizes"]["train_examples"] == 44 and summary["data_sizes"]["eval_examples"] == 4
    assert summary["train_steps_per_second"] > 0 and summary["provenance"]["torch"]
    assert summary["stop_reason"] == "completed 12 of 12 steps" and not summary["stopped_early"]
    assert summary["precision"]["master_weights"] == "float32" and summary["model"] == str(base_dir)


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(tied_dir, data_file, tmp_path):
    base_dir = tied_dir
    opts = dict(FAST, max_steps=6, save_steps=3, eval_limit=0)
    straight = finetune(str(base_dir), str(data_file), "prefix", tmp_path / "straight", **opts)
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(tmp_path / "straight" / "checkpoint-3", interrupted / "checkpoint-3")
    resumed = finetune(str(base_dir), str(data_file), "prefix", interrupted, resume=True, **opts)
    assert resumed.summary["resumed_from"].endswith("checkpoint-3")
    assert resumed.summary["steps"] == 6
    losses = [(h["step"], round(h["loss"], 5)) for h in straight.summary["log_history"] if "loss" in h]
    assert [(h["step"], round(h["loss"], 5)) for h in resumed.summary["log_history"] if "loss" in h] == losses
    assert [step for step, _ in losses] == [1, 2, 3, 4, 5, 6]  # steps 1-3 restored, 4-6 trained again
    a = interp.load(straight.checkpoint_dir).model.state_dict()
    b = interp.load(resumed.checkpoint_dir).model.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert interp.load(interrupted / "checkpoint-6").n_layers == 2  # intermediate checkpoints open too
    tuned = interp.load(resumed.checkpoint_dir).model
    assert tuned.lm_head.weight is tuned.model.embed_tokens.weight  # still tied after resume and save
    assert (tuned.lm_head.weight - interp.load(base_dir).model.lm_head.weight).abs().max() > 1e-3
    fresh = finetune(str(base_dir), str(data_file), "prefix", tmp_path / "empty", resume=True, **opts)
    assert fresh.summary["resumed_from"] is None and fresh.summary["steps"] == 6  # nothing saved yet: from the start
    with pytest.raises(InterpError, match="not a Trainer checkpoint"):
        finetune(str(base_dir), str(data_file), "prefix", tmp_path / "x", resume=str(tmp_path), **opts)


def test_gradient_accumulation_gives_the_token_mean_of_the_whole_step(base_dir, data_file, tmp_path):
    """2 micro-batches of 4 = one batch of 8: the Trainer passes num_items_in_batch to the loss."""
    opts = dict(FAST, max_steps=2, eval_limit=0)
    whole = finetune(str(base_dir), str(data_file), "prefix", tmp_path / "whole", **opts)
    split = finetune(str(base_dir), str(data_file), "prefix", tmp_path / "split",
                     **dict(opts, per_device_train_batch_size=4, gradient_accumulation_steps=2))
    losses = [[h["loss"] for h in r.summary["log_history"] if "loss" in h] for r in (whole, split)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    assert losses[0][1] < losses[0][0] - 0.5


def test_bidirectional_is_refused_before_training(base_dir, data_file, tmp_path):
    with pytest.raises(InterpError) as err:
        finetune(str(base_dir), str(data_file), "bidirectional", tmp_path / "run", max_steps=2, **FAST)
    message = str(err.value)
    assert "leaks labels" in message and "--allow-label-leakage" in message and "\n" not in message
    assert not (tmp_path / "run").exists()


def test_no_improvement_rule_stops_and_is_recorded(base_dir, data_file, tmp_path):
    result = finetune(str(base_dir), str(data_file), "causal", tmp_path, max_steps=20, kill_after_steps=3,
                      min_loss_improvement=100.0, **FAST)
    s = result.summary
    assert s["steps"] == 3 and s["stopped_early"] and s["stop_rule"] == "no_improvement"
    assert "min_loss_improvement=100.0" in s["stop_reason"]
    assert json.loads((tmp_path / "summary.json").read_text())["stop_rule"] == "no_improvement"


def _step(n: int) -> TrainerState:
    state = TrainerState()
    state.global_step = n
    return state


def test_stop_rules_fire_exactly_when_they_should():
    record, control = StopRecord(), TrainerControl()
    rule = NoImprovementStop(record, min_improvement=0.5, after_steps=10)
    for step, loss in [(1, 3.0), (5, 2.8), (10, 2.6)]:  # improved 0.4 < 0.5 by step 10 → stop at 10
        rule.on_log(None, _step(step), control, logs={"loss": loss})
        assert control.should_training_stop == (step == 10)
    assert record.rule == "no_improvement" and record.step == 10

    record, control = StopRecord(), TrainerControl()
    rule = EvalPlateauStop(record, patience=2, min_delta=0.01, min_steps=30)
    for step, loss in [(10, 2.0), (20, 1.995), (30, 1.999), (40, 1.5)]:
        rule.on_evaluate(None, _step(step), control, metrics={"eval_loss": loss})
    assert record.rule == "eval_plateau" and record.step == 30  # 1.995 is not 0.01 better than 2.0

    record, control = StopRecord(), TrainerControl()
    rule = NonFiniteLossStop(record)
    rule.on_step_end(None, _step(4), control, model=type("M", (), {"nonfinite_losses": torch.tensor(0)})())
    assert not control.should_training_stop
    rule.on_log(None, _step(5), control, logs={"loss": float("nan")})
    assert control.should_training_stop and record.rule == "non_finite_loss" and record.step == 5


def test_finetune_cli(base_dir, data_file, tmp_path):
    import typer
    from typer.testing import CliRunner

    from interp.cli.ablation.finetune import finetune_cmd

    app = typer.Typer()
    app.command()(finetune_cmd)
    args = ["--model", str(base_dir), "--data", str(data_file), "--out", str(tmp_path), "--max-steps", "2",
            "--learning-rate", "1e-3", "--eval-limit", "2", "--max-seq-len", "96", "--set", "save_total_limit=1",
            "--set", "disable_tqdm=true"]
    result = CliRunner().invoke(app, [*args, "--attention", "prefix"])
    assert result.exit_code == 0, result.output
    assert "prefix: 2 steps" in result.output and (tmp_path / "final" / "config.json").exists()
    refused = CliRunner().invoke(app, [*args, "--attention", "bidirectional"])
    assert isinstance(refused.exception, InterpError) and "leaks labels" in str(refused.exception)


@pytest.mark.parametrize("mode", ["causal", "prefix"])
def test_few_steps_on_the_toy_model_lower_the_response_loss(mode, tmp_path):
    # The bundled model already follows the toy instruction format (its corpus has some), so a
    # few steps cannot move its held-out loss much: train on a fixed set of unseen-format rows
    # and check the response loss on exactly those rows falls, in this mode.
    engine = interp.load("toy")
    rows = load_instructions("toy").eval[:48]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    examples, _ = tokenize_rows(rows, engine.tokenizer, 128)
    before = mean_response_loss(engine, examples, mode)
    result = finetune("toy", str(data), mode, tmp_path / "run", max_steps=30,
                      **dict(FAST, learning_rate=3e-4, per_device_train_batch_size=16, max_seq_len=128, eval_limit=0))
    after = mean_response_loss(interp.load(result.checkpoint_dir), examples, mode)
    assert after < 0.7 * before, (before, after)

# ----------------------------------------------------------------------------- hardening (issue 15)
@pytest.mark.parametrize("variant", ["llama", "mistral_window", "qwen2_window", "qwen3", "ministral3", "mistral3"])
def test_resume_loads_a_checkpoint_back_into_every_architecture(model_dirs, engines, variant):
    """What resume does: a save_pretrained checkpoint goes back into the live model, every key."""
    from interp.analyses.ablation.finetune.trainer import load_weights_into

    engine = interp.load(model_dirs(variant))
    with torch.no_grad():
        for p in engine.model.parameters():
            p.zero_()
    load_weights_into(engine.model, model_dirs(variant))
    saved = engines(variant).model.state_dict()
    assert all(torch.equal(t, saved[k]) for k, t in engine.model.state_dict().items())


def test_mistral3_two_steps_then_resume_to_four_equals_four_steps(model_dirs, data_file, tmp_path):
    """The issue's commands: `--max-steps 2 --save-steps 2`, then `--resume --max-steps 4`."""
    from typer.testing import CliRunner

    from interp.cli.app import app

    base = str(model_dirs("mistral3"))
    opts = dict(FAST, save_steps=2, eval_limit=0, lr_scheduler_type="constant")
    straight = finetune(base, str(data_file), "prefix", tmp_path / "straight", max_steps=4, **opts)
    args = ["finetune", "--model", base, "--data", str(data_file), "--out", str(tmp_path / "run"), "--attention",
            "prefix", "--save-steps", "2", "--eval-limit", "0", "--max-seq-len", "96", "--batch-size", "8",
            "--learning-rate", "3e-3", "--warmup-ratio", "0", "--logging-steps", "1",
            "--set", "lr_scheduler_type=constant", "--set", "disable_tqdm=true", "--set", "adam_epsilon=1e-8"]
    first = CliRunner().invoke(app, [*args, "--max-steps", "2"])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(app, [*args, "--max-steps", "4", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["steps"] == 4
    assert summary["training_arguments"]["adam_epsilon"] == 1e-8  # a float, not the string "1e-8"
    losses = [(h["step"], round(h["loss"], 5)) for h in straight.summary["log_history"] if "loss" in h]
    assert [(h["step"], round(h["loss"], 5)) for h in summary["log_history"] if "loss" in h] == losses
    a = interp.load(straight.checkpoint_dir).model.state_dict()
    b = interp.load(tmp_path / "run" / "final").model.state_dict()
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert max((a[k] - interp.load(base).model.state_dict()[k]).abs().max().item() for k in a) > 1e-3  # it trained


def test_set_values_are_parsed_once_for_both_commands():
    from interp.analyses.ablation.stages import resolve_config
    from interp.util.settings import parse_settings

    assert parse_settings(["adam_epsilon=1e-8", "report_to=none", "save_total_limit=3", "x="]) == {
        "adam_epsilon": 1e-8, "report_to": "none", "save_total_limit": 3, "x": ""}
    _, trainer = resolve_options(parse_settings(["adam_epsilon=1e-8"]))
    assert TrainingArguments(output_dir="unused", **trainer).adam_epsilon == 1e-8
    config = resolve_config("toy", assignments=["finetune.adam_epsilon=1e-8", "finetune.learning_rate=1e-4"])
    assert (config["finetune"]["adam_epsilon"], config["finetune"]["learning_rate"]) == (1e-8, 1e-4)
    with pytest.raises(InterpError, match="'adam_epsilon' takes a number, not 'tiny'"):
        resolve_options({"adam_epsilon": "tiny"})


def test_truncation_warns_with_count_and_reason_and_refuses_when_nothing_is_left(base_dir, data_file, tmp_path, caplog):
    # Rows with an input block have prompts of 60+ tokens, rows without one fewer than 50.
    with caplog.at_level("WARNING", logger="interp.data.instructions"):
        result = finetune(str(base_dir), str(data_file), "causal", tmp_path / "half", max_steps=1,
                          **dict(FAST, max_seq_len=50))
    dropped = result.summary["data_sizes"]["dropped_by_truncation"]
    assert dropped > 10
    warned = [r.getMessage() for r in caplog.records if "of 44 training rows" in r.getMessage()]
    assert len(warned) == 1 and re.search(r"truncation dropped (1\d|2\d) of 44 .*prompt fills max_seq_len=50", warned[0])
    with pytest.raises(InterpError, match=r"no examples left: all 44 training rows .*max_seq_len=20"):
        finetune(str(base_dir), str(data_file), "causal", tmp_path / "none", max_steps=1, **dict(FAST, max_seq_len=20))


def test_bfloat16_weights_train_without_an_fp32_copy_and_the_summary_says_so(base_dir, data_file, tmp_path):
    result = finetune(str(base_dir), str(data_file), "prefix", tmp_path, max_steps=2, dtype="bfloat16",
                      **dict(FAST, eval_limit=0))
    assert result.summary["precision"] == {"master_weights": "bfloat16", "autocast": None,
                                           "description": "bfloat16 weights"}
    tuned = interp.load(result.checkpoint_dir, dtype="auto")
    assert {p.dtype for p in tuned.model.parameters()} == {torch.bfloat16}
    base = interp.load(base_dir).model.state_dict()
    assert max((t.float() - base[k]).abs().max().item() for k, t in tuned.model.state_dict().items()) > 1e-3


# ----------------------------------------------------------------------------- resume safety, validation
def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`python -m interp ARGS` in this process: (exit code, stdout, stderr)."""
    import sys

    from interp.cli.app import main

    monkeypatch.setattr(sys, "argv", ["interp", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize("flag,value,fragment", [
    ("--max-steps", "0", "--max-steps must be at least 1"), ("--max-steps", "-1", "--max-steps must be at least 1"),
    ("--batch-size", "0", "per_device_train_batch_size must be at least 1"),
    ("--learning-rate", "-1", "learning_rate must be more than 0"),
])
def test_bad_training_numbers_are_one_line_errors_before_any_work(flag, value, fragment, tmp_path, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "finetune", "--model", "nosuch-model", "--data", "nosuch.jsonl",
                            "--attention", "prefix", "--out", str(tmp_path / "run"), flag, value)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert not (tmp_path / "run").exists()  # checked before the (missing) model and data were touched
    with pytest.raises(InterpError, match="max_steps must be at least 1"):
        resolve_options({"max_steps": 0})
    assert resolve_options({"max_steps": -1})[0]["max_steps"] == -1  # the presets' "epochs decide"


def test_resume_refuses_other_settings_and_names_them(base_dir, data_file, tmp_path):
    opts = dict(FAST, save_steps=2, eval_limit=0)
    finetune(str(base_dir), str(data_file), "prefix", tmp_path, max_steps=2, **opts)
    with pytest.raises(InterpError, match=r"cannot resume .*attention: 'prefix' there, 'causal' now; "
                                          r"learning_rate: 0.003 there, 0.001 now"):
        finetune(str(base_dir), str(data_file), "causal", tmp_path, resume=True, **opts | dict(
            learning_rate=1e-3, max_steps=4))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["attention"] == "prefix" and summary["steps"] == 2  # the record is untouched
    longer = finetune(str(base_dir), str(data_file), "prefix", tmp_path, resume=True, max_steps=4, **opts)
    assert longer.summary["steps"] == 4 and longer.summary["resumed_from"].endswith("checkpoint-2")


def test_resume_skips_a_half_written_checkpoint_and_matches_an_uninterrupted_run(tied_dir, data_file, tmp_path, caplog):
    opts = dict(FAST, max_steps=4, save_steps=2, eval_limit=0, lr_scheduler_type="constant")
    straight = finetune(str(tied_dir), str(data_file), "prefix", tmp_path / "straight", **opts)
    assert sorted(p.name for p in (tmp_path / "straight").iterdir()) == [
        "checkpoint-2", "checkpoint-4", "final", "run_settings.json", "summary.json"]  # nothing staged is left
    killed = tmp_path / "killed"  # as SIGKILL during the step-4 save left it before checkpoints were staged
    shutil.copytree(tmp_path / "straight", killed, ignore=shutil.ignore_patterns("final", "summary.json"))
    (killed / "checkpoint-4" / "model.safetensors").unlink()
    shutil.copytree(killed / "checkpoint-4", killed / ".partial" / "checkpoint-6")  # and a staged save, cut short
    with caplog.at_level("WARNING"):
        resumed = finetune(str(tied_dir), str(data_file), "prefix", killed, resume=True, **opts)
    assert resumed.summary["resumed_from"] == str(killed / "checkpoint-2") and resumed.summary["steps"] == 4
    assert "checkpoint-4 (no model.safetensors)" in caplog.text and "checkpoint-6 (its save was interrupted)" in caplog.text
    a, b = (interp.load(r.checkpoint_dir).model.state_dict() for r in (straight, resumed))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert (killed / "checkpoint-4" / "model.safetensors").exists()  # saved again, whole


def test_resuming_a_finished_run_leaves_it_as_it_was(base_dir, data_file, tmp_path, monkeypatch, capsys):
    opts = dict(FAST, save_steps=3, eval_limit=4)
    finetune(str(base_dir), str(data_file), "prefix", tmp_path, max_steps=6, **opts)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in [tmp_path / "summary.json",
                                                                  *sorted((tmp_path / "final").iterdir())]}
    again = finetune(str(base_dir), str(data_file), "prefix", tmp_path, resume=True, max_steps=2, **opts)
    assert again.note.startswith("nothing to do") and again.summary["steps"] == 6
    assert again.summary["eval_loss_initial"] is not None
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before
    code, out, _ = run_main(monkeypatch, capsys, "finetune", "--model", str(base_dir), "--data", str(data_file),
                            "--attention", "prefix", "--out", str(tmp_path), "--resume", "--max-steps", "6",
                            "--save-steps", "3", "--eval-limit", "4", "--max-seq-len", "96", "--batch-size", "8",
                            "--learning-rate", "3e-3", "--warmup-ratio", "0", "--logging-steps", "1",
                            "--set", "disable_tqdm=true")
    assert code in (0, None) and "nothing to do" in out and "finished at step 6" in out
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before


def test_fsdp_is_refused_where_it_would_not_shard(monkeypatch, tmp_path):
    """--fsdp needs ranks to shard over; accelerate's FSDP plugin would wrap a forward the engine never calls."""
    with pytest.raises(InterpError, match="--fsdp shards the model over several processes: launch with `torchrun"):
        finetune("toy", "toy", "prefix", tmp_path / "a", fsdp=True)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(InterpError, match="accelerate's FSDP plugin cannot shard the engine's forward.*--fsdp"):
        finetune("toy", "toy", "prefix", tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
