"""The label-leakage guard proves from the engine's masks which modes leak; the probe sees it in the loss."""

from __future__ import annotations

import warnings

import pytest

from interp.analyses.ablation.finetune.trainer import finetune
from interp.analyses.ablation.finetune.leakage import (
    LEAK_RATIO, check_label_leakage, guard_label_leakage, probe_leakage, run_leakage_probe,
)
from interp.data.instructions import tokenize_rows
from interp.errors import InterpError
from tests.test_finetune import FAST, instruction_rows, write_instruction_file


@pytest.fixture(scope="module")
def examples(engines):
    rows = instruction_rows(12)
    out, _ = tokenize_rows(rows, engines("qwen3").tokenizer, 96)
    return out


def labelled_count(examples) -> int:
    return sum(len(e["input_ids"]) - e["prefix_len"] for e in examples)


def test_guard_passes_causal_and_prefix_and_proves_bidirectional_leaks(examples):
    for mode in ("causal", "prefix"):
        verdict = check_label_leakage(examples, mode)
        assert verdict.leak_free and verdict.leaky_positions == 0
        assert verdict.labelled_positions == labelled_count(examples)  # every labelled query was checked
    leaky = check_label_leakage(examples, "bidirectional")
    assert not leaky.leak_free
    assert leaky.leaky_positions == leaky.labelled_positions == labelled_count(examples)
    assert leaky.leaky_examples == len(examples)
    assert leaky.first_leak["key"] == leaky.first_leak["query"] + 1  # the witness sees its own target


def test_guard_reads_the_mask_not_the_mode_name(examples):
    """A prefix one token too long lets the last prompt token see the first response token: one leak per example."""
    off_by_one = [dict(e, prefix_len=e["prefix_len"] + 1) for e in examples]
    verdict = check_label_leakage(off_by_one, "prefix")
    assert not verdict.leak_free
    assert verdict.leaky_positions == verdict.leaky_examples == len(examples)
    first = verdict.first_leak
    p = examples[first["example"]]["prefix_len"]
    assert (first["query"], first["key"]) == (p - 1, p)


def test_guard_refuses_bidirectional_unless_allowed(examples):
    with pytest.raises(InterpError) as err:
        guard_label_leakage(examples, "bidirectional")
    assert "leaks labels" in str(err.value) and "\n" not in str(err.value)
    with pytest.warns(UserWarning, match="LABEL LEAKAGE ALLOWED"):
        record = guard_label_leakage(examples, "bidirectional", allow_label_leakage=True)
    assert record["allowed"] is True and record["leak_free"] is False and "LABEL LEAKAGE" in record["warning"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guard_label_leakage(examples, "prefix")["leak_free"] is True


@pytest.fixture(scope="module")
def leak_trained(model_dirs, tmp_path_factory):
    """A tiny model trained on the leaky objective: it learns to copy the next token from the future.

    The responses are random letters, so nothing but the leak predicts them: after training, the
    bidirectional loss is near zero while the causal loss stays near log(26) per letter.
    """
    tmp = tmp_path_factory.mktemp("leak")
    data = write_instruction_file(tmp / "letters.jsonl", instruction_rows(48, seed=1))
    with pytest.warns(UserWarning, match="LABEL LEAKAGE ALLOWED"):
        result = finetune(str(model_dirs("qwen3")), str(data), "bidirectional", tmp / "run",
                          allow_label_leakage=True, max_steps=150, **dict(FAST, logging_steps=50, eval_limit=0))
    assert result.summary["leakage_guard"]["allowed"] is True
    return result.checkpoint_dir, data


def test_probe_flags_a_model_that_learned_the_leak(leak_trained):
    checkpoint, data = leak_trained
    table = run_leakage_probe(str(checkpoint), str(data), split="train", limit=24, max_seq_len=96)
    by_mode = table.set_index("mode")
    assert list(table["mode"]) == ["causal", "prefix", "bidirectional"]
    assert by_mode.loc["bidirectional", "ratio"] < 0.2 and by_mode.loc["bidirectional", "flagged"]
    assert not by_mode.loc["causal", "flagged"] and not by_mode.loc["prefix", "flagged"]
    assert by_mode.loc["prefix", "ratio"] > LEAK_RATIO
    assert list(table["mask_leak_free"]) == [True, True, False]


def test_probe_does_not_flag_an_untrained_model(engines, examples):
    table = probe_leakage(engines("qwen3"), examples)
    assert not table["flagged"].any()
    assert table.loc[0, "ratio"] == 1.0


def test_probe_cli_prints_the_table(leak_trained):
    import typer
    from typer.testing import CliRunner

    from interp.cli.ablation.finetune import probe_app

    checkpoint, data = leak_trained
    app = typer.Typer()
    app.add_typer(probe_app, name="probe")
    result = CliRunner().invoke(app, ["probe", "leakage", "--model", str(checkpoint), "--data", str(data),
                                      "--split", "train", "--limit", "8", "--max-seq-len", "96"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "bidirectional" in result.output and "LEAK?" in result.output
    assert "flagged (loss < 0.5 × causal): bidirectional" in result.output


def test_probe_on_the_toy_model(tmp_path):
    """The causally trained toy model does not exploit the leak by itself (bidirectional is *worse*
    than causal there); trained briefly on the leaky objective it does, as the published Ministral 3 3B run did."""
    base = run_leakage_probe("toy", "toy", limit=32, max_seq_len=128).set_index("mode")
    assert not base["flagged"].any()
    # No leak to exploit: prefix does not lower the response loss. (How much higher it is, is the
    # model's own sensitivity to the mask: the bundled model is built to lose word order under it.)
    assert base.loc["prefix", "ratio"] > 0.8
    data = write_instruction_file(tmp_path / "letters.jsonl", instruction_rows(64, seed=1))
    with pytest.warns(UserWarning, match="LABEL LEAKAGE ALLOWED"):
        result = finetune("toy", str(data), "bidirectional", tmp_path / "run", allow_label_leakage=True,
                          max_steps=120, **dict(FAST, learning_rate=1e-3, logging_steps=50, eval_limit=0, max_seq_len=128))
    table = run_leakage_probe(str(result.checkpoint_dir), str(data), split="train", limit=24, max_seq_len=128)
    by_mode = table.set_index("mode")
    assert by_mode.loc["bidirectional", "flagged"], table  # its loss is below LEAK_RATIO × causal
    assert not by_mode.loc["prefix", "flagged"] and not by_mode.loc["causal", "flagged"]
