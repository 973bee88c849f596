"""Finetuning past one GPU: FSDP2 (`torch.distributed.fsdp.fully_shard`) through the engine's forward.

The engine runs each decoder layer by calling the layer's submodules itself, so FSDP's hooks on
the layer's `forward` would never gather its parameters. Each decoder layer therefore gets the
engine's per-layer step as a method, registered with `register_fsdp_forward_method`: calling it
gathers the layer's shards, runs `Engine._layer`, frees them again, and sets up the same gather
for the backward (and for the recompute under gradient checkpointing). The engine routes its
per-layer step through that method. The root group (the training wrapper) holds what is left:
the embeddings, the final norm and the lm_head, so tied embeddings are sharded in one group.

Checkpoints hold full tensors (rank 0 writes them): the model as `save_pretrained` files, the
optimizer as the full state dict keyed by parameter name; each rank reads them back and keeps
its shard, so `checkpoint-N` resumes at the same world size.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from interp.engine import Engine
from interp.errors import InterpError
from interp.util import distributed

STEP_METHOD = "interp_layer_step"


def check_launch(fsdp: bool) -> None:
    """Refuse what would train unsharded or not at all: accelerate's own FSDP, --fsdp without ranks."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true"):
        raise InterpError("accelerate's FSDP plugin cannot shard the engine's forward: launch without the FSDP "
                          "config (plain `accelerate launch` or torchrun) and pass --fsdp")
    if fsdp and not distributed.launched():
        raise InterpError("--fsdp shards the model over several processes: launch with "
                          "`torchrun --nproc_per_node N -m interp finetune ... --fsdp`")


def mixed_precision(bf16: bool):
    """--bf16 under FSDP2: bf16 compute, fp32 gradient reductions and fp32 master weights."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if bf16:
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def shard(wrapper: nn.Module, engine: Engine, *, bf16: bool) -> None:
    """fully_shard every decoder layer, then the root; route the engine's layer step through them."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    distributed.init()
    cuda = torch.cuda.is_available()
    mesh = init_device_mesh("cuda" if cuda else "cpu", (distributed.world_size(),))
    policy = mixed_precision(bf16)
    for index, layer in enumerate(engine.layers):
        setattr(layer, STEP_METHOD, _layer_step(engine, index))
        fully_shard(layer, mesh=mesh, mp_policy=policy)
        register_fsdp_forward_method(layer, STEP_METHOD)
    # The root resharded after forward too: an evaluation before training must leave sharded
    # parameters behind, or the optimizer the Trainer builds next would hold the gathered copies.
    fully_shard(wrapper, mesh=mesh, mp_policy=policy, reshard_after_forward=True)
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    engine.layer_devices = [device] * engine.n_layers  # fully_shard placed every layer here
    # Engine.run calls self._layer(layer, x, step) (also under torch.utils.checkpoint): route it
    # through the sharded layer's registered method, which gathers and frees its parameters.
    engine._layer = lambda layer, x, step: getattr(engine.layers[layer], STEP_METHOD)(x, step)  # type: ignore[method-assign]


def _layer_step(engine: Engine, index: int):
    def step(x: torch.Tensor, run_step: Any) -> torch.Tensor:
        return Engine._layer(engine, index, x, run_step)

    return step


def is_sharded(module: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every rank gathers; rank 0 gets the full CPU state dict (the others an empty dict)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Every rank passes the full state dict; each keeps its shard."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    result = set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=False))
    missing = [k for k in result.missing_keys if k in dict(model.named_parameters())]
    if missing or result.unexpected_keys:
        raise InterpError(f"checkpoint does not match the model: missing {missing[:3]}, "
                          f"unexpected {result.unexpected_keys[:3]}")


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    # strict=False: parameters that never had a gradient (a vision tower under text training) have no state
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True, strict=False))


def parallelism(model: nn.Module, kind: str) -> dict[str, Any]:
    """summary.json's record: elements rank 0 held during training, of how many in the model."""
    params = list(model.parameters())  # unique tensors: tied weights count once
    total = sum(p.numel() for p in params)
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in params)
    return {"kind": kind, "world_size": distributed.world_size(), "params_per_rank": int(local),
            "params_total": int(total)}
