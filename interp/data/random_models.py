"""Tiny random checkpoints of every supported architecture, written with `save_pretrained`.

Tests and benchmarks need real Hugging Face checkpoints without a model hub: these are built
from configs, saved to a directory with a byte-level tokenizer, and loaded back through the
same `interp.load` path a user's checkpoint takes. Weights are drawn larger than the usual
0.02 init and norm weights are perturbed, so logits are far from uniform and a wrong step in the
forward shows up as a large difference rather than hiding under 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import torch

ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "ministral3", "mistral3")
VOCAB_SIZE = 320


def _common(layers: int, hidden: int, heads: int, kv_heads: int, max_positions: int) -> dict:
    return dict(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        max_position_embeddings=max_positions,
        initializer_range=0.08,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def make_config(
    arch: str,
    *,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    max_positions: int = 256,
    sliding_window: int | None = None,
):
    """A small config of `arch` exercising what makes it different (bias, qk-norm, scaling...)."""
    from transformers import (
        LlamaConfig, Ministral3Config, Mistral3Config, MistralConfig, Qwen2Config, Qwen3Config,
    )

    common = _common(layers, hidden, heads, kv_heads, max_positions)
    if arch == "llama":
        return LlamaConfig(**common, attention_bias=True, rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0,
                           "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 32})
    if arch == "mistral":
        return MistralConfig(**common, sliding_window=sliding_window)
    if arch == "qwen2":
        return Qwen2Config(**common, use_sliding_window=sliding_window is not None,
                           sliding_window=sliding_window or 4096, max_window_layers=1)
    if arch == "qwen3":
        return Qwen3Config(**common, use_sliding_window=sliding_window is not None,
                           sliding_window=sliding_window or 4096, max_window_layers=1)
    if arch in ("ministral3", "mistral3"):
        text = Ministral3Config(
            **common,
            sliding_window=sliding_window,
            rope_parameters={
                "rope_type": "yarn", "rope_theta": 1_000_000.0, "factor": 16.0,
                "original_max_position_embeddings": 8, "beta_fast": 32.0, "beta_slow": 1.0,
                "mscale": 1.0, "mscale_all_dim": 1.0, "llama_4_scaling_beta": 0.1,
            },
        )
        if arch == "ministral3":
            return text
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      head_dim=16, image_size=32, patch_size=16, num_channels=3)
        return Mistral3Config(text_config=text.to_dict(), vision_config=vision, spatial_merge_size=1,
                              image_token_index=3)
    raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHITECTURES}")


def make_tokenizer():
    """Byte-level BPE with no merges: any text encodes, ids stay below VOCAB_SIZE."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<pad>", "<s>", "</s>", "<img>"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left"
    )


def build_random_model(arch: str, out_dir: str | Path, *, seed: int = 0, **config_kwargs) -> Path:
    """Build, randomise and `save_pretrained` a tiny `arch` checkpoint (+ tokenizer) into out_dir."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    config = make_config(arch, **config_kwargs)
    torch.manual_seed(seed)
    auto = AutoModelForImageTextToText if arch == "mistral3" else AutoModelForCausalLM
    model = auto.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(1 + 0.2 * torch.randn_like(param))
            elif name.endswith("bias"):
                param.copy_(0.1 * torch.randn_like(param))
    out = Path(out_dir)
    model.save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    return out
