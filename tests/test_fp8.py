"""FP8 Ministral 3 checkpoints (the ablation's own model) through load, finetune and every stage.

The replica (interp.data.fp8_replica) has the published repository's layout: FP8 text Linears
with per-tensor weight_scale_inv and activation_scale, the published quantization_config, a bf16
vision tower, tied embeddings, head_dim != hidden/heads, YaRN with llama_4_scaling_beta. Every
test runs on this CPU and again with transformers seeing an FP8-capable GPU (compute capability
9.0, where transformers would otherwise keep FP8Linear modules that need hub kernels).
"""

from __future__ import annotations

import json
import types
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import pytest
import torch
from safetensors import safe_open

import interp
from interp.analyses.ablation.finetune.trainer import finetune
from interp.data.fp8_replica import QUANTIZATION_CONFIG
from interp.errors import InterpError

DEVICES = ["cpu", "fp8_gpu"]
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FAST = dict(max_steps=2, logging_steps=1, save_steps=2, per_device_train_batch_size=4, learning_rate=3e-3,
            warmup_ratio=0.0, eval_limit=0, max_seq_len=96, disable_tqdm=True, dataloader_pin_memory=False)


class _FP8CapableTorch(types.ModuleType):
    """torch as transformers' FP8 quantizer sees it on an H100: CUDA available, compute capability 9.0."""

    def __init__(self):
        super().__init__("torch")
        self.cuda = types.SimpleNamespace(is_available=lambda: True, get_device_capability=lambda *a: (9, 0))

    def __getattr__(self, name):
        return getattr(torch, name)


def sees(device: str):
    """transformers' view of the machine: this CPU, or a GPU of compute capability 9.0 (H100).

    The GPU is what the FP8 quantizer checks when it decides to keep FP8Linear modules; the rest
    of the process (the Trainer's RNG checkpointing, placement) still runs on this CPU.
    """
    if device == "cpu":
        return nullcontext()
    from transformers.quantizers import quantizer_finegrained_fp8

    return mock.patch.object(quantizer_finegrained_fp8, "torch", _FP8CapableTorch())


def dequantized_reference(path: Path):
    """transformers' own dequantized model in fp32: the weights the FP8 checkpoint means."""
    from transformers import AutoConfig, AutoModelForImageTextToText, FineGrainedFP8Config

    config = AutoConfig.from_pretrained(path)
    quant = FineGrainedFP8Config(**{**config.quantization_config, "dequantize": True})
    return AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32, quantization_config=quant).float().eval()


def weights(path: Path) -> dict[str, tuple[str, list[int]]]:
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()}


def lm_linears(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()
            if "language_model.layers" in n and n.endswith(tuple(f"{x}.weight" for x in LINEARS))}


def logprobs(run_dir: Path) -> list[float]:
    """Every choice's summed log-probability, in order, from a stage's examples.csv."""
    import pandas as pd

    frame = pd.read_csv(run_dir / "examples.csv")
    return [x for row in frame["logprobs"] for x in json.loads(row)]


def test_the_replica_is_laid_out_like_the_published_repository(fp8_replica):
    config = json.loads((fp8_replica / "config.json").read_text())
    assert config["architectures"] == ["Mistral3ForConditionalGeneration"]
    assert config["quantization_config"] == QUANTIZATION_CONFIG
    text = config["text_config"]
    assert text["tie_word_embeddings"] and text["head_dim"] * text["num_attention_heads"] != text["hidden_size"]
    assert text["rope_parameters"]["rope_type"] == "yarn" and text["rope_parameters"]["llama_4_scaling_beta"] == 0.1
    stored = weights(fp8_replica)
    q = "language_model.model.layers.0.self_attn.q_proj"
    assert stored[f"{q}.weight"][0] == "F8_E4M3" and stored[f"{q}.weight_scale_inv"] == ("BF16", [])
    assert stored[f"{q}.activation_scale"] == ("BF16", [])
    assert sum(v[0] == "F8_E4M3" for v in stored.values()) == 2 * len(LINEARS)
    assert stored["vision_tower.transformer.layers.0.attention.q_proj.weight"][0] == "BF16"
    assert "lm_head.weight" not in stored  # tied


@pytest.mark.parametrize("device", DEVICES)
def test_load_dequantizes_and_matches_transformers_dequantized_logits(fp8_replica, device, caplog):
    with sees(device), caplog.at_level("WARNING", logger="interp"):
        engine = interp.load(fp8_replica)
        ids = torch.randint(4, 320, (2, 24), generator=torch.Generator().manual_seed(0))  # past YaRN's 8 positions
        logits = engine.run(ids).logits
    reference = dequantized_reference(fp8_replica)(input_ids=ids).logits
    assert (logits - reference).abs().max().item() <= 1e-4 and reference.abs().max().item() > 1
    model = engine.model
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # vision tower and norms too, not left in bf16
    assert not model.is_quantized and getattr(model, "hf_quantizer", None) is None
    assert getattr(model.config, "quantization_config", None) is None
    assert engine.quantization.dequantized and engine.quantization.method == "fp8"
    lines = [r.getMessage() for r in caplog.records if r.name == "interp"]
    assert lines == ["fp8 (float8_e4m3fn, per-tensor scales, static activations) checkpoint → dequantized to float32"]


def test_bfloat16_load_is_bfloat16_throughout(fp8_replica):
    engine = interp.load(fp8_replica, dtype="bfloat16")
    assert {p.dtype for p in engine.model.parameters()} == {torch.bfloat16}
    assert engine.quantization.loaded_as == "dequantized to bfloat16"


def test_full_precision_checkpoints_carry_no_quantization_record(engines):
    assert engines("mistral3").quantization is None


@pytest.mark.parametrize(("device", "dtype"), [("cpu", "bfloat16"), ("fp8_gpu", "float32")])
def test_finetune_trains_every_linear_and_saves_the_trained_weights_in_full_precision(fp8_replica, device, dtype, tmp_path):
    """Issue example 1: final/ held FP8 tensors without scales; reloaded q_proj reached 448, logits 3,886."""
    from transformers import AutoModelForImageTextToText

    original = interp.load(fp8_replica, dtype=dtype).model
    with sees(device):
        engine = interp.load(fp8_replica, dtype=dtype)
        result = finetune(engine, "toy", "prefix", tmp_path / "run", device="cpu", **FAST)
    trained = engine.model.state_dict()
    changed = {n: (w - original.state_dict()[n]).abs().max().item() for n, w in lm_linears(engine.model).items()}
    assert len(changed) == 2 * len(LINEARS) and min(changed.values()) > 1e-4, changed

    reloaded = interp.load(result.checkpoint_dir, dtype=dtype)
    again = reloaded.model.state_dict()
    assert again.keys() == trained.keys()
    assert max((again[k] - trained[k]).abs().max().item() for k in trained) == 0.0  # the trained weights, exactly
    assert reloaded.quantization is None
    stored = weights(result.checkpoint_dir)
    assert {stored_dtype for stored_dtype, _ in stored.values()} == {"F32" if dtype == "float32" else "BF16"}
    assert not any("scale" in k for k in stored)
    saved_config = json.loads((result.checkpoint_dir / "config.json").read_text())
    assert "quantization_config" not in saved_config

    for name, value in original.state_dict().items():
        if "vision_tower" in name or "multi_modal_projector" in name:
            assert torch.equal(again[name], value), name  # kept unquantized, left as it was
    auto = AutoModelForImageTextToText.from_pretrained(result.checkpoint_dir, dtype=dtype).state_dict()
    assert max((auto[k] - trained[k]).abs().max().item() for k in trained) == 0.0

    quantization = result.summary["quantization"]
    assert quantization["method"] == "fp8" and quantization["dequantized"] and quantization["loaded_as"] == f"dequantized to {dtype}"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["quantization"] == quantization


def test_finetune_resumes_from_its_full_precision_checkpoint(fp8_replica, tmp_path):
    opts = FAST | {"lr_scheduler_type": "constant"}
    first = finetune(str(fp8_replica), "toy", "causal", tmp_path / "run", device="cpu", **opts)
    a = interp.load(first.checkpoint_dir).model.state_dict()  # final/ is rewritten by the resumed run
    resumed = finetune(str(fp8_replica), "toy", "causal", tmp_path / "run", device="cpu", resume=True,
                       **(opts | {"max_steps": 3}))
    assert resumed.summary["resumed_from"].endswith("checkpoint-2") and resumed.summary["steps"] == 3
    b = interp.load(resumed.checkpoint_dir).model.state_dict()
    assert 0 < max((a[k] - b[k]).abs().max().item() for k in a) < 1  # one more step from the saved weights


def test_kept_fp8_modules_are_inference_only_and_finetuning_them_is_refused(fp8_replica, tmp_path):
    """Issue example 2: on an FP8 GPU transformers keeps FP8Linear; the default load must not."""
    from transformers.integrations.finegrained_fp8 import FP8Linear

    with sees("fp8_gpu"):
        kept = interp.load(fp8_replica, keep_quantized=True)
        assert isinstance(kept.decoder.layers[0].self_attn.q_proj, FP8Linear) and not kept.quantization.dequantized
        with pytest.raises(InterpError, match=r"cannot finetune .* without keep_quantized=True \(interp.load\)"):
            finetune(kept, "toy", "prefix", tmp_path / "run", device="cpu", **FAST)
    assert not (tmp_path / "run" / "final").exists()


def test_keep_quantized_on_a_machine_without_fp8_says_it_dequantized(fp8_replica, caplog):
    with caplog.at_level("WARNING", logger="interp"):
        engine = interp.load(fp8_replica, keep_quantized=True)
    assert engine.quantization.dequantized and "no FP8-capable device" in engine.quantization.loaded_as
    assert {p.dtype for p in engine.model.parameters()} == {torch.float32}


@pytest.mark.parametrize("device", DEVICES)
def test_stages_1_2_3a_3b_4_and_the_report_run_on_the_replica(fp8_replica, device, tmp_path):
    from interp.analyses.ablation.report import build_report
    from interp.analyses.ablation.stage_metrics import StageMetrics
    from interp.analyses.ablation.stages import resolve_config, run_stage

    items = [{"context": f"item {i}:", "choices": [" yes", " no", " maybe"][: 2 + i % 2], "label": i % 2} for i in range(4)]
    task = tmp_path / "alpha.jsonl"
    task.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    config = resolve_config("toy", {"model": str(fp8_replica), "tasks": str(task), "runs_dir": str(tmp_path / "runs"),
                                    "device": "cpu", "batch_size": 4, "limit": 4},
                            ["finetune.max_steps=2", "finetune.eval_steps=null", "finetune.per_device_train_batch_size=2",
                             "finetune.max_seq_len=96", "finetune.logging_steps=1", "finetune.learning_rate=3e-3"])
    with sees(device):
        runs = {stage: run_stage(stage, config, echo=None, show_progress=False) if stage in "124"
                else run_stage(stage, config, echo=None) for stage in ("1", "2", "3a", "3b", "4")}
    m1, m4 = (StageMetrics.read(runs[s]) for s in ("1", "4"))
    s1, s2, s4 = logprobs(runs["1"] / "causal"), logprobs(runs["2"] / "prefix"), logprobs(runs["4"] / "3a-causal")
    assert m1.evals[0].metrics["tasks"]["alpha"]["n"] == 4 and len(s1) == len(s2) == len(s4) == 10  # 2 + 3 + 2 + 3 choices
    assert 1e-3 < max(abs(a - b) for a, b in zip(s1, s2)) < 5  # the ablation changes the scores
    # Stage 4 scores the trained weights: changed, but nowhere near the FP8-read-as-float garbage (logits ~3,886).
    assert 1e-3 < max(abs(a - b) for a, b in zip(s1, s4)) < 20 and min(s4) > -100
    for stage in ("3a", "3b"):
        m3 = StageMetrics.read(runs[stage]).finetune
        assert m3["summary"]["steps"] == 2 and m3["summary"]["quantization"]["dequantized"]
        final = Path(m3["checkpoint_dir"])
        assert {dtype for dtype, _ in weights(final).values()} == {"F32"}
        assert "quantization_config" not in json.loads((final / "config.json").read_text())
    assert {(e.checkpoint, e.attention) for e in m4.evals} == {(c, a) for c in ("3a", "3b") for a in ("prefix", "causal")}
    files = build_report(tmp_path / "runs")
    assert "| **macro** |" in files.markdown.read_text()


def test_the_tokenizers_backend_is_chosen_even_where_transformers_would_pick_mistral_common(fp8_replica, tmp_path):
    """Mistral's repositories ship tekken.json too; with mistral-common installed transformers 5 would load
    MistralCommonBackend, which has no character offsets. interp asks for tokenizer.json explicitly."""
    import shutil

    from interp.analyses.impact.knockout import fact_prompt

    repo = Path(shutil.copytree(fp8_replica, tmp_path / "repo"))
    (repo / "tekken.json").write_text("{}", encoding="utf-8")  # transformers only probes for the file here
    from transformers.models.auto import tokenization_auto

    # What `pip install mistral-common` changes: transformers maps Mistral model types to
    # MistralCommonBackend (decided at import) and probes for tekken.json.
    mistral_common = {t: "MistralCommonBackend" for t in ("mistral3", "ministral3")}
    with mock.patch("transformers.integrations.mistral.tokenizer.is_mistral_common_available", return_value=True), \
            mock.patch.dict(tokenization_auto.TOKENIZER_MAPPING_NAMES, mistral_common):
        engine = interp.load(repo)
    tokenizer = engine.tokenizer
    assert type(tokenizer).__name__ != "MistralCommonBackend" and tokenizer.is_fast
    ids, mask = engine.tokenize(["The Eiffel Tower is in", "Hi"])  # batch padding, left as shipped
    assert mask.sum(1).tolist() == [23, 3] and mask[1, :20].sum() == 0 and ids[1, -3:].tolist() == [1, *tokenizer.convert_tokens_to_ids(["H", "i"])]
    assert tokenizer.decode(ids[0], skip_special_tokens=True) == "The Eiffel Tower is in"
    fact = fact_prompt(engine, {"prompt": "The Eiffel Tower is in", "subject": "Eiffel Tower"})
    assert fact.sources["subject"] == list(range(5, 17))  # <s> + "The " = 5 tokens, then the 12 subject bytes
