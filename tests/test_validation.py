"""Every option is checked before any work: one line and exit code 2, never a traceback or a guess.

Each case below gave a traceback, a misleading message or a silently wrong result before these
checks existed. The commands run in-process (tests/cli_helpers.py), as `interp` would run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from interp.cli.app import app
from interp.errors import InterpError
from tests.cli_helpers import invoke

NO_MODEL = "/no/such/checkpoint"  # loading it fails: an error about --out proves --out was checked first


def one_line_error(args: list[str]) -> str:
    code, output = invoke(app, args)
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory", encoding="utf-8")
    return {"empty": empty, "file": a_file, "dir": tmp_path}


@pytest.mark.parametrize("args, fragment", [
    (["predict", "-p", "hi", "--device", "bogus"], "unknown device 'bogus'"),
    (["generate", "-p", "hi", "--device", "bogus"], "unknown device 'bogus'"),
    (["knockout", "--prompts", "toy", "--device", "bogus", "--out", "{dir}/ko"], "unknown device 'bogus'"),
    (["generate", "-p", "hi", "--max-new-tokens", "-1"], "--max-new-tokens must be at least 1, not -1"),
    (["predict", "-p", "hi", "--top-k", "0"], "--top-k must be at least 1"),
    (["predict", "-p", "nosuch.txt"], "no such prompt file: nosuch.txt"),
    (["mask-impact", "-p", "nosuch.txt", "--out", "{dir}/mi.csv"], "no such prompt file: nosuch.txt"),
    (["toy", "train", "--out", "{dir}/m", "--corpus", "nosuch.txt"], "no such corpus file: nosuch.txt"),
    (["toy", "train", "--out", "{dir}/m", "--corpus", "{empty}"], "has no documents: nothing to train on"),
    (["toy", "train", "--out", "{dir}/m", "--arch", "num_attention_heads=3"],
     "num_attention_heads (3) must be a multiple of num_key_value_heads (2)"),
    (["toy", "train", "--out", "{dir}/m", "--arch", "head_dim=31"], "head_dim must be even"),
    (["toy", "train", "--out", "{dir}/m", "--block-size", "1024"], "longer than the model's max_position_embeddings"),
    (["drift", "--model", "toy", "--model", "toy", "--prompts", "{empty}", "--out", "{dir}/d"],
     "--model toy is given twice"),
    (["drift", "--bidirectional-layers=-2", "--prompts", "{empty}", "--out", "{dir}/d"],
     "bidirectional layer -2 out of range: layers count from 0"),
    (["eval", "--tasks", "toy_arc", "--bidirectional-layers", "5-2", "--attention", "prefix", "--out", "{dir}/e"],
     "'5-2' is an empty range"),
    (["eval", "--tasks", "toy_arc", "--batch-size", "0", "--out", "{dir}/e"], "--batch-size must be at least 1"),
    (["mask-impact", "-p", "hi", "--layers", "x", "-m", NO_MODEL, "--out", "{dir}/mi.csv"],
     "--layers: 'x' is not a layer number"),
])
def test_bad_options_are_one_line_before_any_work(args, fragment, files):
    line = one_line_error([a.format(**files) for a in args])
    assert fragment in line, line
    assert "9223372036854775807" not in line


@pytest.mark.parametrize("device, available", [
    ("cuda", torch.cuda.is_available()),
    ("cuda:0", torch.cuda.is_available()),
    ("mps", torch.backends.mps.is_available()),
])
def test_a_device_this_machine_lacks_is_one_line(device, available):
    if available:
        pytest.skip(f"this machine has {device}")
    line = one_line_error(["predict", "-p", "hi", "--device", device])
    assert f"device {device!r}" in line and ("not available" in line or "no CUDA GPU" in line), line


def test_library_load_refuses_a_missing_device_in_one_line():
    import interp

    with pytest.raises(InterpError, match="unknown device 'bogus'"):
        interp.load("toy", device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(InterpError, match="no CUDA GPU"):
            interp.load("toy", device="cuda")


# ------------------------------------------------------------------------------ outputs
# Every writing command, with "{out}" where its output goes. The model (or input) does not exist,
# so any other order of checks would give a different error than the one about the output.
WRITERS = {
    "mask-impact": ["mask-impact", "-p", "hi", "-m", NO_MODEL, "--out", "{out}/r.csv"],
    "mask-impact --config": ["mask-impact", "--config", "{config}", "-m", NO_MODEL, "--out", "{out}"],
    "heatmap": ["heatmap", "{dir}/nosuch.csv", "--out", "{out}/h.png"],
    "heatmap compare": ["heatmap", "compare", "{dir}/a.csv", "{dir}/b.csv", "--out", "{out}/h.png"],
    "view": ["view", "{dir}/nosuch.csv", "--out", "{out}/v.html"],
    "knockout": ["knockout", "--prompts", "toy", "-m", NO_MODEL, "--out", "{out}"],
    "eval": ["eval", "--tasks", "toy_arc", "-m", NO_MODEL, "--out", "{out}"],
    "drift": ["drift", "--prompts", "{dir}/nosuch.txt", "-m", NO_MODEL, "--out", "{out}"],
    "harness": ["harness", "--tasks", "nosuch_task", "-m", NO_MODEL, "--out", "{out}"],
    "finetune": ["finetune", "--attention", "causal", "-m", NO_MODEL, "--out", "{out}"],
    "stage run": ["stage", "run", "1", "--model", NO_MODEL, "--runs-dir", "{out}"],
    "stage report": ["stage", "report", "--runs-dir", "{dir}/no_runs", "--out", "{out}"],
    "toy build": ["toy", "build", "--out", "{out}"],
    "toy train": ["toy", "train", "--corpus", "nosuch.txt", "--out", "{out}"],
    "demo": ["demo", "--out", "{out}"],
}


def _writer_args(name: str, out: str, files: dict[str, Path]) -> list[str]:
    config = files["dir"] / "prompts.yaml"
    config.write_text("a: hello\n", encoding="utf-8")
    return [a.format(out=out, dir=files["dir"], config=config) for a in WRITERS[name]]


@pytest.mark.parametrize("name", list(WRITERS))
def test_an_output_under_a_file_fails_before_the_work(name, files):
    start = time.perf_counter()
    line = one_line_error(_writer_args(name, f"{files['file']}/sub", files))
    assert f"{files['file']} is a file, not a directory" in line, line
    assert time.perf_counter() - start < 10  # nothing loaded, built or trained
    assert sorted(p.name for p in files["dir"].iterdir()) == ["a_file", "empty.txt", "prompts.yaml"]


@pytest.mark.parametrize("name", ["eval", "knockout", "toy build", "stage run"])
def test_an_output_that_is_a_file_fails_before_the_work(name, files):
    line = one_line_error(_writer_args(name, str(files["file"]), files))
    assert "is a file, not a directory" in line, line


def test_a_file_output_that_is_a_directory_is_refused(files):
    (files["dir"] / "v.html").mkdir()
    line = one_line_error(["view", f"{files['dir']}/nosuch.csv", "--out", str(files["dir"] / "v.html")])
    assert "is a directory, not a file" in line, line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permission bits do not stop root; the /sys case below covers a directory root cannot write")
@pytest.mark.parametrize("name", list(WRITERS))
def test_an_output_in_a_read_only_directory_fails_before_the_work(name, files):
    locked = files["dir"] / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = one_line_error(_writer_args(name, str(locked / "sub"), files))
    finally:
        locked.chmod(0o755)
    assert f"cannot write in {locked}" in line, line


@pytest.mark.parametrize("name", ["eval", "view", "toy build"])
def test_an_output_nobody_can_write_fails_before_the_work_even_for_root(name, files):
    import tempfile

    try:  # sysfs refuses new files to everyone, root included
        os.close(tempfile.mkstemp(dir="/sys")[0])
    except OSError:
        pass
    else:
        pytest.skip("/sys is writable here")
    line = one_line_error(_writer_args(name, "/sys/interp_out", files))
    assert "cannot write in /sys" in line, line


def test_check_writable_leaves_nothing_behind(tmp_path):
    from interp.util.io import check_writable

    assert check_writable(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert list(tmp_path.iterdir()) == []  # neither the directories nor the probe file


# ------------------------------------------------------------------------------ prompts
def test_a_prompts_file_entry_that_is_null_or_a_missing_txt_is_one_line(tmp_path):
    from interp.analyses.impact.mask_impact.batch import load_jobs

    config = tmp_path / "prompts.yaml"
    config.write_text("a:\n  prompt: null\n", encoding="utf-8")
    with pytest.raises(InterpError, match=r"prompt 'a': the prompt must be text or a \.txt path, not None"):
        load_jobs(config)
    config.write_text("a: {prompt: nosuch.txt}\n", encoding="utf-8")
    with pytest.raises(InterpError, match="prompt 'a': no such prompt file: nosuch.txt"):
        load_jobs(config)
    (tmp_path / "long.txt").write_text("The Eiffel Tower is in\n", encoding="utf-8")
    config.write_text("a: {prompt: long.txt}\nb: 'Paris is'\n", encoding="utf-8")  # found beside the prompts file
    assert [(j.name, j.prompt) for j in load_jobs(config)] == [("a", "The Eiffel Tower is in"), ("b", "Paris is")]


def test_mask_impact_help_offers_only_the_modes_it_runs():
    import re

    import typer

    from interp.analyses.impact.mask_impact import MODES
    from interp.cli.impact.mask_impact import mask_impact_app

    command = typer.main.get_command(mask_impact_app)
    help_text = next(p.help for p in command.params if p.name == "attention")
    assert not re.search(r"\bbidirectional\b", help_text), help_text
    assert all(mode in help_text for mode in MODES)
    line = one_line_error(["mask-impact", "-p", "hi", "--attention", "bidirectional"])
    assert "choose one of causal, prefix" in line


def test_knockout_names_why_prompts_were_skipped(model_dirs, tmp_path):
    """A prompt longer than the model is not blamed on its subject."""
    source = tmp_path / "facts.jsonl"
    rows = [{"prompt": "zz " + "x" * 300, "subject": "zz"}, {"prompt": "zz " + "y" * 300, "subject": "zz"},
            {"prompt": "the cat sat", "subject": "dog"}]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    line = one_line_error(["knockout", "--prompts", str(source), "-m", str(model_dirs("qwen3")),
                           "--out", str(tmp_path / "ko")])
    assert line == ("error: no usable prompts (3 skipped): 2 longer than the model allows (256 tokens); "
                    "1 with a subject not in the prompt")


def test_custom_code_refusal_names_the_flag(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "custom_thing", "architectures": ["CustomLM"],
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig", "AutoModelForCausalLM": "modeling_custom.CustomLM"},
    }), encoding="utf-8")
    marker = tmp_path / "ran"
    (tmp_path / "configuration_custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    line = one_line_error(["predict", "-p", "hi", "-m", str(tmp_path)])
    assert "--trust-remote-code" in line and not marker.exists(), line


def test_toy_train_checks_its_corpus_and_shape_before_creating_the_output(tmp_path):
    """Nothing is created for a run that cannot start."""
    for bad in (["--corpus", "nosuch.txt"], ["--arch", "num_attention_heads=3"]):
        one_line_error(["toy", "train", "--out", str(tmp_path / "m"), *bad])
        assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------ imports
def test_import_interp_is_light_and_view_is_a_plain_function():
    code = ("import sys, types, inspect, interp\n"
            "heavy = [m for m in ('torch', 'transformers', 'pandas', 'matplotlib', 'interp.engine', 'interp.view.data') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert inspect.isfunction(interp.view), type(interp.view)\n"
            "from interp.view import write_view\n"
            "import interp.view.data\n"
            "assert inspect.isfunction(interp.view) and interp.view.__module__ == 'interp.view'\n"
            "assert type(sys.modules['interp.view']) is types.ModuleType\n"
            "from interp import Knockout\n"
            "assert interp.Engine.__name__ == 'Engine' and Knockout.__name__ == 'Knockout'\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr
