"""Bad input → one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "interp.cli.app", *args], capture_output=True, text=True, timeout=120
    )


def assert_clean_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.data.random_models import make_tokenizer

    out = tmp_path_factory.mktemp("gpt2")
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=320)).save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    return out


def test_unknown_model_directory():
    assert_clean_error(run_cli("predict", "-p", "hello", "-m", "/no/such/checkpoint"), "no such model directory")


def test_unknown_hub_id_fails_fast_offline():
    assert_clean_error(run_cli("predict", "-p", "hello", "-m", "nobody/no-such-model-xyz"), "unknown model")


def test_unsupported_architecture_names_what_is_supported(gpt2_dir):
    assert_clean_error(run_cli("predict", "-p", "hello", "-m", str(gpt2_dir)), "unsupported architecture 'gpt2'; supported: llama")


def test_empty_prompt(model_dirs):
    assert_clean_error(run_cli("predict", "-p", "   ", "-m", str(model_dirs("qwen3"))), "empty prompt")


def test_prompt_longer_than_the_model_allows(model_dirs):
    # The tiny models allow 256 positions; the byte-level tokenizer gives one token per character.
    proc = run_cli("predict", "-p", "x" * 400, "-m", str(model_dirs("qwen3")))
    assert_clean_error(proc, "the model allows at most 256")


def test_bad_attention_mode(model_dirs):
    proc = run_cli("predict", "-p", "hello", "--attention", "sideways", "-m", str(model_dirs("qwen3")))
    assert_clean_error(proc, "unknown attention mode 'sideways'")


def test_predict_and_generate_run(model_dirs):
    proc = run_cli("predict", "-p", "hello", "-m", str(model_dirs("qwen3")), "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    probs = [float(line.split()[0]) for line in proc.stdout.splitlines()]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    proc = run_cli("generate", "-p", "hello", "-m", str(model_dirs("qwen3")), "--max-new-tokens", "3", "--attention", "prefix")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("hello")


def invoke_in_process(*args: str) -> str:
    """The InterpError a command raises (main() turns it into one line and exit 2, as above)."""
    from typer.testing import CliRunner

    from interp.cli.app import app
    from interp.errors import InterpError

    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, InterpError), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("setting, fragment", [
    ("no_such_field=1", "unknown finetune option 'no_such_field'"),
    ("adam_epsilon=tiny", "finetune option 'adam_epsilon' takes a number, not 'tiny'"),
])
def test_finetune_set_with_a_bad_field_or_value_is_one_line(tmp_path, setting, fragment):
    assert fragment in invoke_in_process("finetune", "--out", str(tmp_path), "--attention", "causal", "--set", setting)


def test_finetune_and_probe_take_the_model_loading_options(model_dirs, tmp_path):
    model = str(model_dirs("qwen3"))
    message = invoke_in_process("probe", "leakage", "-m", model, "--dtype", "int3", "--device", "cpu",
                                "--trust-remote-code")
    assert "unknown dtype 'int3'" in message
    message = invoke_in_process("finetune", "-m", model, "--out", str(tmp_path), "--attention", "causal",
                                "--device", "cuda:7", "--dtype", "bfloat16", "--trust-remote-code")
    assert "finetune device must be auto, cpu, cuda or mps, not 'cuda:7'" in message


def test_library_load_prints_nothing():
    proc = subprocess.run([sys.executable, "-c", "import interp; interp.load('toy')"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and (proc.stdout, proc.stderr) == ("", "")


def test_library_load_leaves_the_callers_logging_as_it_was():
    import interp
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    try:
        hf_logging.set_verbosity_info()
        hf_logging.enable_progress_bar()
        interp.load("toy")
        assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == (hf_logging.INFO, True)
    finally:
        hf_logging.set_verbosity(before[0])
        (hf_logging.enable_progress_bar if before[1] else hf_logging.disable_progress_bar)()
