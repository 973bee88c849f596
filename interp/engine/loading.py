"""Load a Hugging Face checkpoint (hub id or `save_pretrained` directory) into an Engine."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from interp.engine.arch import spec_for
from interp.engine.engine import Engine
from interp.engine.quantization import checkpoint_quantization, finish_loading, loading_kwargs
from interp.errors import InterpError, one_line
from interp.util.hub import hub_reachable

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")

# The `tokenizers` backend (tokenizer.json), chosen explicitly. Mistral's repositories also ship
# tekken.json, and with mistral-common installed transformers 5 would load MistralCommonBackend
# instead: it has no character offsets (knockout locates the subject with them) and does not let
# a pad token be set. tokenizer.json is Mistral's own export of the same vocabulary.
TOKENIZER_BACKEND = {"mistral_format": False}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str:
    """'bf16' / torch.bfloat16 / 'auto' → what from_pretrained takes."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise InterpError(f"unknown dtype {dtype!r}; choose one of float32, bfloat16, float16, auto") from None


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device this machine has, else a one-line InterpError (not torch's assertion)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InterpError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InterpError(f"device {str(device)!r}: this machine has no CUDA GPU that torch can use; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise InterpError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InterpError(f"device {str(device)!r}: MPS (Apple GPU) is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        backend = getattr(torch, dev.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise InterpError(f"device {str(device)!r} is not available here; use cpu, cuda or mps")
    return dev


@contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' warnings and "Loading weights" bars off while loading, then as the caller had them.

    A library call should not print for a 13 MB model, nor leave the caller's logging changed.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_engine(
    name_or_path: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = "float32",
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
    device_map: str | dict | None = None,
    keep_quantized: bool = False,
) -> Engine:
    """Load config, weights (safetensors preferred) and tokenizer; refuse unsupported models.

    A quantized checkpoint (Mistral's FP8 repositories) is dequantized to `dtype` by transformers'
    own switch, on every device, and carries no quantization state afterwards (see
    interp.engine.quantization); keep_quantized=True keeps the shipped FP8 modules instead
    (inference only, on a GPU with transformers' FP8 kernels).

    device_map ("auto", "balanced", "sequential" or a {module: device} dict) places the model with
    accelerate's big-model loading instead of moving it to `device`: each layer stays on its
    device and the engine runs it there. Every weight must be resident (no CPU/disk offload).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

    name = str(name_or_path)
    torch_dtype = parse_dtype(dtype)
    if device_map is None:
        check_device(device)
    _check_resolvable(name)
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except Exception as exc:  # OSError, ValueError, HTTP errors: all mean "cannot resolve this model"
        raise InterpError(_unresolvable(name, exc, trust_remote_code)) from None
    spec = spec_for(config)
    quantization = checkpoint_quantization(config)
    quant_kwargs = loading_kwargs(quantization, keep_quantized)
    auto_class = AutoModelForImageTextToText if spec.multimodal else AutoModelForCausalLM
    try:
        placement = {"device_map": _check_device_map(device_map)} if device_map is not None else {}
        with quiet_loading():
            model = auto_class.from_pretrained(
                name, config=config, dtype=torch_dtype, trust_remote_code=trust_remote_code, **placement,
                **quant_kwargs,
            )
            tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, **TOKENIZER_BACKEND)
    except InterpError:
        raise
    except Exception as exc:
        raise InterpError(_unresolvable(name, exc, trust_remote_code)) from None
    info = finish_loading(model, quantization, torch_dtype, keep_quantized)
    if device_map is None:
        model.to(device)
    else:
        _check_resident(model, name)
    model.eval()
    engine = Engine(model, tokenizer, spec, name=name)
    engine.quantization = info  # QuantizationInfo, or None for a full-precision checkpoint
    return engine


def _check_device_map(device_map: str | dict) -> str | dict:
    from interp.util.distributed import launched

    if launched():
        raise InterpError("--device-map spreads one model over all devices; under torchrun / accelerate launch "
                          "each process loads its own copy (use --device cuda)")
    if isinstance(device_map, str) and device_map not in DEVICE_MAPS:
        raise InterpError(f"unknown device map {device_map!r}; choose one of {', '.join(DEVICE_MAPS)}")
    return device_map


def _check_resident(model, name: str) -> None:
    """The engine calls a layer's submodules itself, so accelerate's offload hooks never run: refuse offload."""
    placed = set(getattr(model, "hf_device_map", {}).values())
    if "disk" in placed or any(p.device.type == "meta" for p in model.parameters()):
        raise InterpError(f"{name!r} does not fit the devices: the device map offloads weights, which the engine "
                          "cannot run (it calls each layer's parts itself); free memory or add devices")


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.sep * 2 in name or name.count("/") > 1


def _check_resolvable(name: str) -> None:
    """Fail fast, in one line, instead of letting the hub client retry for half a minute."""
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise InterpError(f"{name!r} is a directory without config.json: not a save_pretrained checkpoint")
        return
    if _looks_like_path(name):
        raise InterpError(f"no such model directory: {name!r}")
    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str) or constants.HF_HUB_OFFLINE:
        return
    if not hub_reachable(constants.ENDPOINT):
        raise InterpError(
            f"unknown model {name!r}: not a local directory, not in the Hugging Face cache, and the hub "
            f"({constants.ENDPOINT}) is unreachable"
        )


def _unresolvable(name: str, exc: Exception, trust_remote_code: bool = False) -> str:
    if not trust_remote_code and "trust_remote_code" in str(exc) or "custom code" in str(exc):  # transformers' refusal, cut short by one_line
        return (f"{name!r} ships its own Python code, which runs only with --trust-remote-code "
                "(trust_remote_code=True in Python): pass it if you trust this checkpoint")
    return f"cannot load model {name!r}: {one_line(exc).rstrip('.')}"
