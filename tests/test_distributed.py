"""Data-parallel runs on CPU: 2 gloo processes under torchrun give what one process gives.

Two launches (process-group start-up is the cost): `torchrun -m interp eval`, and
tests/distributed_worker.py for mask-impact --config, knockout, harness, DDP finetuning and the FSDP save path.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import interp
from interp.cli.app import app
from interp.util import distributed

from tests.test_harness import json_task, mc_rows
from tests.test_knockout import PROMPTS as KNOCKOUT_PROMPTS

WORKER = Path(__file__).with_name("distributed_worker.py")
TIMEOUT = 240  # seconds; the machine is shared


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def write_inputs(root: Path) -> tuple[Path, Path]:
    prompts = root / "prompts.yaml"
    prompts.write_text("prompts:\n  eiffel: {prompt: 'The Eiffel Tower is in', num_tokens: 2}\n"
                       "  paris: 'Paris is the capital of'\n  off: {prompt: 'never run', enabled: false}\n"
                       "  sky: 'The sky is blue and the grass is'\n", encoding="utf-8")
    rng = random.Random(0)
    rows = [{"instruction": f"Write code {i}.", "input": f"set {i % 3}" if i % 2 else "",
             "output": " ".join(rng.choice("abcdefgh") for _ in range(5))} for i in range(40)]
    data = root / "letters.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return prompts, data


@pytest.fixture(scope="module")
def runs(model_dirs, tmp_path_factory):
    """Both launches, then the one-process references."""
    root = tmp_path_factory.mktemp("distributed")
    model = str(model_dirs("llama"))
    prompts, data = write_inputs(root)
    facts = root / "facts.jsonl"
    facts.write_text("".join(json.dumps(r) + "\n" for r in KNOCKOUT_PROMPTS + [{"prompt": "no subject"}]), encoding="utf-8")
    json_task(root / "tasks", "mc", mc_rows(7, seed=3))
    eval_args = ["eval", "--tasks", "toy_arc,toy_piqa", "--limit", "9", "--batch-size", "2", "--model", model]
    torchrun("-m", "interp", *eval_args, "--out", "eval2", cwd=root)
    torchrun(str(WORKER), model, str(prompts), str(data), "two", str(facts), str(root / "tasks"), cwd=root)

    one = root / "one"
    for args in (eval_args + ["--out", str(one / "eval")],
                 ["mask-impact", "--config", str(prompts), "--model", model, "--out", str(one / "mask_impact")],
                 ["knockout", "--prompts", str(facts), "--model", model, "--window", "3", "--out", str(one / "knockout")],
                 ["harness", "--tasks", "mc", "--include-path", str(root / "tasks"), "--model", model,
                  "--attention", "prefix", "--batch-size", "2", "--out", str(one / "harness")]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    from tests.distributed_worker import FINETUNE
    from interp.analyses.ablation.finetune.trainer import finetune

    single = finetune(model, str(data), "prefix", one / "ddp",
                      **FINETUNE | {"per_device_train_batch_size": 2 * FINETUNE["per_device_train_batch_size"]})
    return root, single


def test_sharding_covers_every_item_once_in_order():
    parts = [list(range(7))[r::3] for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(7))
    assert distributed.shard(list(range(7))) == list(range(7))  # not launched: everything
    assert distributed.gather([1, 2]) == [1, 2]
    assert distributed.local_device("cuda") == "cuda" and not distributed.launched()


def test_distributed_eval_equals_one_process(runs):
    root, _ = runs
    two, one = root / "eval2", root / "one" / "eval"
    assert json.loads((two / "metrics.json").read_text()) == json.loads((one / "metrics.json").read_text())
    assert (two / "examples.csv").read_text() == (one / "examples.csv").read_text()
    examples = pd.read_csv(two / "examples.csv")
    assert len(examples) == 18 and examples.groupby("task").index.apply(list).to_dict() == {
        "toy_arc": list(range(9)), "toy_piqa": list(range(9))}
    for name in ("toy_arc", "toy_piqa"):
        assert (two / "tasks" / f"{name}.csv").read_text() == (one / "tasks" / f"{name}.csv").read_text()


def test_distributed_mask_impact_config_equals_one_process(runs):
    root, _ = runs
    two, one = root / "two" / "mask_impact", root / "one" / "mask_impact"
    names = sorted(p.name for p in two.iterdir())
    assert names == sorted(p.name for p in one.iterdir()) == [
        "eiffel.csv", "eiffel.json", "paris.csv", "paris.json", "sky.csv", "sky.json"]
    for stem in ("eiffel", "paris", "sky"):
        assert (two / f"{stem}.csv").read_text() == (one / f"{stem}.csv").read_text()
        meta_two, meta_one = (json.loads((d / f"{stem}.json").read_text()) for d in (two, one))
        meta_two.pop("provenance"), meta_one.pop("provenance")  # the time of the run
        assert meta_two == meta_one
    assert pd.read_csv(two / "eiffel.csv").generation_step.nunique() == 2


def test_distributed_knockout_and_harness_equal_one_process(runs):
    root, _ = runs
    two, one = root / "two", root / "one"
    assert (two / "knockout" / "knockout.csv").read_text() == (one / "knockout" / "knockout.csv").read_text()
    summaries = [json.loads((d / "knockout" / "summary.json").read_text()) for d in (two, one)]
    for summary in summaries:
        summary.pop("provenance")
    assert summaries[0] == summaries[1] and summaries[0]["n_prompts"] == 2 and summaries[0]["skipped"] == 1
    results = [json.loads((d / "harness" / "results.json").read_text()) for d in (two, one)]
    assert results[0]["results"] == results[1]["results"] and "acc,none" in results[0]["results"]["mc"]
    samples = [sorted((json.loads(line) for line in (d / "harness" / "samples_mc.jsonl").read_text().splitlines()),
                      key=lambda doc: doc["doc_id"]) for d in (two, one)]
    assert len(samples[0]) == 7 and [s["resps"] for s in samples[0]] == [s["resps"] for s in samples[1]]


def test_ddp_finetuning_matches_one_process_with_the_same_global_batch(runs):
    root, single = runs
    ddp = json.loads((root / "two" / "ddp_losses.json").read_text())
    losses = [h["loss"] for h in single.summary["log_history"] if "loss" in h]
    assert ddp["world_size"] == 2 and len(losses) == len(ddp["losses"]) == 5
    assert max(abs(a - b) for a, b in zip(losses, ddp["losses"])) <= 1e-4
    assert losses[-1] < losses[0]  # it trained
    # The DDP checkpoint opens both ways and holds the one-process weights (to Adam's amplification
    # of rounding: k_proj's bias has a gradient of zero up to rounding, which Adam normalises).
    ddp_final, one_final = root / "two" / "ddp" / "final", root / "one" / "ddp" / "final"
    engine = interp.load(ddp_final)
    reference = interp.load(one_final)
    for (name, a), (_, b) in zip(engine.model.state_dict().items(), reference.model.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-3), name
    assert_opens_both_ways(ddp_final)


def test_fsdp_sharded_parameters_save_to_a_checkpoint_that_opens_both_ways(runs, model_dirs):
    root, _ = runs
    saved = root / "two" / "fsdp" / "final"
    original = interp.load(model_dirs("llama"))
    engine = assert_opens_both_ways(saved)
    for name, tensor in original.model.state_dict().items():
        expected = tensor * 0.5 if name == "lm_head.weight" else tensor
        assert torch.equal(engine.model.state_dict()[name], expected), name


def assert_opens_both_ways(path: Path):
    from transformers import AutoModelForCausalLM

    engine = interp.load(path)
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = torch.randint(4, 300, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(engine.run(ids).logits, hf(ids).logits, atol=1e-4)
    return engine
