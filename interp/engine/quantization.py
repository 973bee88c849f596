"""Quantized checkpoints (FP8 and the like): loaded dequantized, saved in full precision.

Mistral's instruct repositories ship FP8 text weights. The engine computes each weight's
contribution by hand and the finetune trains every weight, so both need the real weights:
interp asks transformers itself to dequantize on load (the `dequantize` switch of the
checkpoint's own quantization config), on every device. Afterwards nothing on the model may
say "quantized", or `save_pretrained` would re-quantize (transformers round-trips FP8 on save)
and a finetune would be written back as FP8 tensors. Keeping the FP8 modules as shipped is an
inference-only opt-in (`keep_quantized=True`) for GPUs with the FP8 kernels.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
from torch import nn

from interp.errors import InterpError

logger = logging.getLogger("interp")

KEEP_OPT_IN = "keep_quantized=True (interp.load)"


@dataclass
class QuantizationInfo:
    """What the checkpoint stored and what interp made of it (recorded in a finetune's summary)."""

    method: str  # the checkpoint's quant_method: "fp8", "compressed-tensors", ...
    source: str  # e.g. "fp8 (float8_e4m3fn, per-tensor scales, static activations)"
    dequantized: bool
    loaded_as: str  # "dequantized to bfloat16", "fp8 modules kept (inference only)", ...

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return f"{self.source} checkpoint → {self.loaded_as}"


def checkpoint_quantization(config) -> dict | None:
    """The checkpoint's `quantization_config` as a dict (None: a full-precision checkpoint)."""
    qc = getattr(config, "quantization_config", None)
    if qc is None:
        return None
    return dict(qc) if isinstance(qc, dict) else qc.to_dict()


def describe_source(qc: dict) -> str:
    method = str(qc.get("quant_method", "unknown"))
    if method == "fp8":
        blocks = qc.get("weight_block_size")
        scales = f"{blocks[0]}x{blocks[1]} block scales" if blocks else "per-tensor scales"
        return f"fp8 (float8_e4m3fn, {scales}, {qc.get('activation_scheme', 'dynamic')} activations)"
    return method


def loading_kwargs(qc: dict | None, keep_quantized: bool) -> dict:
    """from_pretrained kwargs: the checkpoint's own quantization config with dequantize=True."""
    if qc is None or keep_quantized:
        return {}
    from transformers.quantizers.auto import AutoQuantizationConfig

    try:
        quant_config = AutoQuantizationConfig.from_dict({**qc, "dequantize": True})
    except Exception as exc:  # an unknown method or a config its class refuses
        raise InterpError(f"cannot read the checkpoint's quantization_config ({qc.get('quant_method')!r}): "
                          f"{' '.join(str(exc).split())[:200]}") from None
    if not getattr(quant_config, "dequantize", False):
        raise InterpError(f"{qc.get('quant_method')!r} checkpoints cannot be dequantized by transformers; "
                          "load a full-precision copy of the model")
    return {"quantization_config": quant_config}


def finish_loading(model: nn.Module, qc: dict | None, dtype: torch.dtype | str, keep_quantized: bool) -> QuantizationInfo | None:
    """After from_pretrained: drop every trace of quantization, one precision everywhere; say so in one line."""
    if qc is None:
        return None
    kept = is_quantized(model)
    if not kept:
        strip_quantization_state(model)
        if isinstance(dtype, torch.dtype):
            # transformers leaves the modules it never quantized (vision tower, norms, embeddings)
            # in the checkpoint's bf16 whatever dtype was asked: one dtype for the whole model.
            model.to(dtype)
    method = str(qc.get("quant_method"))
    loaded = f"{method} modules kept (inference only)" if kept else "dequantized to " + _dtype_name(model)
    if keep_quantized and not kept:
        loaded += " (keep_quantized asked, but transformers found no FP8-capable device)"
    info = QuantizationInfo(method=method, source=describe_source(qc), dequantized=not kept,
                            loaded_as=loaded)
    logger.warning("%s", info.line())
    return info


def is_quantized(model: nn.Module) -> bool:
    """Quantized modules still in the model (FP8Linear, compressed Linears): weights not in a float dtype."""
    return bool(getattr(model, "is_quantized", False)) or any(
        p.dtype in _FP8_DTYPES or not p.is_floating_point() for p in model.parameters()
    )


def strip_quantization_state(model: nn.Module) -> None:
    """No quantizer, no quantization_config, no load-time dequantize op left to reverse into FP8 on save."""
    for owner in (model, *(m for m in model.modules() if m is not model and hasattr(m, "config"))):
        for attr in ("hf_quantizer", "quantization_method"):
            if attr in vars(owner):
                delattr(owner, attr)
        if getattr(owner, "is_quantized", False):
            owner.is_quantized = False
        config = getattr(owner, "config", None)
        if config is not None and getattr(config, "quantization_config", None) is not None:
            del config.quantization_config
    conversions = getattr(model, "_weight_conversions", None)
    if conversions:
        model._weight_conversions = [c for c in map(_without_quantizer_ops, conversions) if c is not None]


def _without_quantizer_ops(conversion):
    """A load-time converter minus its dequantize op (whose reverse re-quantizes on save).

    A converter that only dequantized goes; a model-specific one (e.g. an expert merge the
    quantizer prefixed with a dequantize) keeps its own ops and loses the scale sources.
    """
    operations = list(getattr(conversion, "operations", None) or [])
    own = [op for op in operations if getattr(op, "hf_quantizer", None) is None]
    if len(own) == len(operations):
        return conversion
    if not own:
        return None
    sources = [s for s in conversion._original_source_patterns if not s.endswith(("_scale_inv", "activation_scale"))]
    return conversion.copy(sources, conversion._original_target_patterns, operations=own)


def check_trainable(model: nn.Module) -> None:
    """Finetuning needs every weight in full precision: refuse kept FP8 modules in one line."""
    if is_quantized(model):
        raise InterpError("cannot finetune a model loaded with FP8 modules kept as shipped (inference only); "
                          f"load it without {KEEP_OPT_IN} so interp dequantizes it")


def quantization_record(engine) -> dict | None:
    """What a finetune's summary records about its source: None for a full-precision checkpoint."""
    info = getattr(engine, "quantization", None)  # set by load_engine; absent on a hand-built Engine
    return info.to_dict() if info is not None else None


def _dtype_name(model: nn.Module) -> str:
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    return "/".join(dtypes)


_FP8_DTYPES = {getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
               if hasattr(torch, n)}
