"""FSDP2 finetuning on CPU: 2 gloo processes, each holding half the weights, train what one process trains.

Two launches (process-group start-up is the cost): `torchrun -m interp finetune --fsdp` on the
bundled toy model, then tests/fsdp_worker.py for the resumes and the tied-embedding Ministral 3.
Each is compared with one process training the same global batch (2 per rank × 2 = 4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import interp
from interp.analyses.ablation.finetune.trainer import finetune

from tests.fsdp_worker import M3, TOY
from tests.test_distributed import write_inputs

WORKER = Path(__file__).with_name("fsdp_worker.py")
TIMEOUT = 900  # seconds: a launch takes about a minute on a quiet 2-core machine, far more on a shared one


def torchrun(*args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def tied_ministral3(out: Path) -> Path:
    """Mistral3ForConditionalGeneration (the 3B's class) with lm_head tied to the input embeddings."""
    from transformers import AutoModelForImageTextToText

    from interp.data.random_models import make_config, make_tokenizer

    config = make_config("mistral3")
    config.tie_word_embeddings = config.text_config.tie_word_embeddings = True
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    assert model.lm_head.weight is model.model.language_model.embed_tokens.weight
    model.save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    return out


def cli_args(options: dict) -> list[str]:
    flags = {"max_steps": "--max-steps", "per_device_train_batch_size": "--batch-size", "eval_limit": "--eval-limit",
             "max_seq_len": "--max-seq-len", "logging_steps": "--logging-steps", "learning_rate": "--learning-rate",
             "warmup_ratio": "--warmup-ratio", "save_steps": "--save-steps"}
    args = []
    for key, value in options.items():
        args += [flags[key], str(value)] if key in flags else ["--set", f"{key}={value}"]
    return args


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdp")
    _, data = write_inputs(root)
    m3 = tied_ministral3(root / "m3")
    torchrun("-m", "interp", "finetune", "--model", "toy", "--data", "toy", "--attention", "prefix", "--fsdp",
             "--out", "toy", *cli_args(TOY), cwd=root)
    torchrun(str(WORKER), str(root / "toy"), str(m3), str(data), str(root / "two"), cwd=root)
    double = {"per_device_train_batch_size": 2 * TOY["per_device_train_batch_size"]}
    one = {"toy": finetune("toy", "toy", "prefix", root / "one" / "toy", **TOY | double),
           "m3": finetune(str(m3), str(data), "prefix", root / "one" / "m3", **M3 | double)}
    return root, one


def assert_opens_both_ways(path: Path, image_text: bool) -> None:
    """interp.load and the Auto class (Mistral 3's is image-text-to-text) give the same logits."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    auto = AutoModelForImageTextToText if image_text else AutoModelForCausalLM
    engine = interp.load(path)
    hf = auto.from_pretrained(path, dtype=torch.float32).eval()
    ids = torch.randint(4, 200, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(engine.run(ids).logits, hf(input_ids=ids).logits, atol=1e-4)


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


def losses(s: dict) -> list[float]:
    return [h["loss"] for h in s["log_history"] if "loss" in h]


def max_weight_gap(a: Path, b: Path) -> float:
    x, y = interp.load(a).model.state_dict(), interp.load(b).model.state_dict()
    assert x.keys() == y.keys()
    return max((x[k] - y[k]).abs().max().item() for k in x)


@pytest.mark.parametrize("name,run", [("toy", "toy"), ("m3", "two/m3_straight")])
def test_fsdp_trains_what_one_process_trains(runs, name, run):
    root, one = runs
    two = summary(root / run)
    reference = one[name].summary
    assert two["steps"] == reference["steps"] == 4 and len(losses(two)) == len(losses(reference)) == 4
    assert max(abs(a - b) for a, b in zip(losses(two), losses(reference))) <= 1e-4
    assert max_weight_gap(root / run / "final", one[name].checkpoint_dir) <= 1e-4
    p = two["parallelism"]
    assert (p["kind"], p["world_size"]) == ("fsdp2", 2)
    assert reference["parallelism"] == {"kind": "single", "world_size": 1, "params_per_rank": p["params_total"],
                                        "params_total": p["params_total"]}
    assert 0.45 <= p["params_per_rank"] / p["params_total"] <= 0.55  # each rank held about half
    assert_opens_both_ways(root / run / "final", image_text=name == "m3")


def test_fsdp_trained_the_weights(runs):
    root, _ = runs
    base = interp.load("toy").model.state_dict()
    tuned = interp.load(root / "toy" / "final").model.state_dict()
    assert max((base[k] - tuned[k]).abs().max().item() for k in base) > 1e-4


@pytest.mark.parametrize("straight,resumed", [("toy", "two/toy_resumed"), ("two/m3_straight", "two/m3_resumed")])
def test_fsdp_resume_equals_an_uninterrupted_run(runs, straight, resumed):
    root, _ = runs
    s = summary(root / resumed)
    assert s["resumed_from"].endswith("checkpoint-2") and s["steps"] == 4
    assert losses(s)[:2] == losses(summary(root / straight))[:2]  # steps 1-2: the checkpoint's own history
    assert [round(x, 5) for x in losses(s)[2:]] == [round(x, 5) for x in losses(summary(root / straight))[2:]]
    assert max_weight_gap(root / resumed / "final", root / straight / "final") <= 1e-6


def test_tied_embeddings_stay_tied_through_fsdp(runs):
    root, _ = runs
    tuned = interp.load(root / "two" / "m3_straight" / "final").model
    assert tuned.lm_head.weight is tuned.model.language_model.embed_tokens.weight


def test_guard_verdict_and_stop_rules_reach_every_rank(runs):
    root, _ = runs
    refusals = [(root / "two" / f"leaky_rank{r}.txt").read_text() for r in (0, 1)]
    assert refusals[0] == refusals[1] and "leaks labels" in refusals[0]
    s = summary(root / "two" / "m3_stopped")
    assert s["stop_rule"] == "no_improvement" and s["steps"] == 1 and s["stopped_early"]


def test_bf16_is_fsdp2_mixed_precision_with_fp32_master_weights(runs):
    root, one = runs
    s = summary(root / "two" / "m3_bf16")
    assert s["precision"]["master_weights"] == "float32" and s["precision"]["autocast"] is None
    assert (s["precision"]["fsdp_param_dtype"], s["precision"]["fsdp_reduce_dtype"]) == ("bfloat16", "float32")
    assert s["final_weights_finite"] and interp.load(root / "two" / "m3_bf16" / "final").dtype == torch.float32
    first_fp32 = losses(one["m3"].summary)[0]
    assert losses(s)[0] != first_fp32 and abs(losses(s)[0] - first_fp32) < 0.05  # bf16 compute: close, not equal
