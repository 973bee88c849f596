"""A tiny replica of Mistral's FP8 Ministral 3 repositories, in their exact on-disk layout.

`mistralai/Ministral-3-3B-Instruct-2512` (the ablation's model) stores every Linear of its
language model as `float8_e4m3fn` with a per-tensor `weight_scale_inv` and a static
`activation_scale`, declares the published `quantization_config`, and keeps the vision tower,
the projector and the (tied) `lm_head` unquantized in bf16. Tests build this replica in seconds
and load it through the same `interp.load` path the real repository takes, so the FP8 handling
(dequantize on load, full-precision save after a finetune) is tested without a model hub.
"""

from __future__ import annotations

from pathlib import Path

import torch

# As published in the 3B/8B/14B instruct repositories' config.json.
QUANTIZATION_CONFIG = {
    "quant_method": "fp8",
    "activation_scheme": "static",
    "weight_block_size": None,
    "modules_to_not_convert": ["model.vision_tower", "model.multi_modal_projector", "lm_head"],
}
FP8_MAX = 448.0  # largest finite float8_e4m3fn
_TEXT_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def is_quantized_key(key: str) -> bool:
    """A language-model Linear weight: stored in FP8 in the published checkpoint."""
    return key.startswith("language_model.model.layers.") and key.endswith(tuple(f"{n}.weight" for n in _TEXT_LINEARS))


def quantize_per_tensor(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fp8 weight, weight_scale_inv) with weight ≈ fp8.float() * weight_scale_inv (one scale per tensor)."""
    scale = weight.abs().amax().float().clamp(min=1e-12) / FP8_MAX
    return (weight.float() / scale).to(torch.float8_e4m3fn), scale.to(torch.bfloat16)


def build_fp8_replica(out_dir: str | Path, *, seed: int = 0, layers: int = 2) -> Path:
    """Build a tiny FP8 `Mistral3ForConditionalGeneration` (+ tokenizer) laid out like the 3B repository.

    Text quirks of the 3B at toy size: tied embeddings, head_dim 24 with hidden 64 and 4 heads
    (not hidden/heads), YaRN with llama_4_scaling_beta 0.1 over an original length of 8, so the
    per-position query scaling is active from position 8 on.
    """
    import json

    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForImageTextToText

    from interp.data.random_models import make_config, make_tokenizer

    config = make_config("mistral3", layers=layers)
    config.text_config.head_dim = 24
    config.text_config.tie_word_embeddings = True
    config.tie_word_embeddings = True
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(1 + 0.2 * torch.randn_like(param))
    model = model.to(torch.bfloat16)  # the published unquantized tensors are bf16
    out = Path(out_dir)
    model.save_pretrained(out)
    make_tokenizer().save_pretrained(out)

    # Rewrite the weights file: text Linears → FP8 + per-tensor scales, as the repository stores them.
    path = out / "model.safetensors"
    tensors = load_file(path)
    replica: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        if is_quantized_key(key):
            prefix = key.removesuffix(".weight")
            replica[key], replica[f"{prefix}.weight_scale_inv"] = quantize_per_tensor(tensor)
            replica[f"{prefix}.activation_scale"] = torch.tensor(1.0 / 64, dtype=torch.bfloat16)
        else:
            replica[key] = tensor
    save_file(replica, path, metadata={"format": "pt"})
    config_path = out / "config.json"
    saved = json.loads(config_path.read_text())
    saved["quantization_config"] = dict(QUANTIZATION_CONFIG)
    config_path.write_text(json.dumps(saved, indent=2) + "\n")
    return out
