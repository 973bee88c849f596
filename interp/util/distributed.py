"""Data parallelism over torch.distributed: who am I, my share of the work, everyone's results.

Launched by `torchrun -m interp …` or `accelerate launch -m interp …`, every process runs the
same command; the launcher sets RANK / WORLD_SIZE / LOCAL_RANK. Each rank scores its shard of the
items (`map_sharded`), the results are gathered in the original order, and only rank 0 writes
files (interp.util.io skips writes elsewhere), so the output equals a one-process run. Without a
launcher every helper degrades to the one-process answer (rank 0 of 1, no process group).
The backend is NCCL on CUDA and gloo otherwise, so it all runs on CPU too.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def launched() -> bool:
    """True under torchrun / accelerate launch with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def init() -> bool:
    """Join the launcher's process group once (no-op when not launched or already joined)."""
    if initialized():
        return True
    if not launched():
        return False
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank())
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return True


def rank() -> int:
    if initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    if initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0 (or not distributed): the one process that writes files and prints tables."""
    return rank() == 0


def local_device(device: str) -> str:
    """'cuda' under a launcher → this process's own GPU ('cuda:LOCAL_RANK'); anything else unchanged."""
    return f"cuda:{local_rank()}" if device == "cuda" and launched() else device


def shard(items: Sequence[T]) -> list[T]:
    """This rank's items: every world_size-th one starting at rank (balanced when items are sorted)."""
    return list(items[rank()::world_size()])


def barrier() -> None:
    if initialized():
        torch.distributed.barrier()


def gather(values: list[R], *, everywhere: bool = True) -> list[R]:
    """Each rank's shard of results (from `shard`) → the full list in the original order.

    everywhere=True: every rank gets the list (all_gather); False: rank 0 gets it, the others []
    (gather, for bulky results only rank 0 writes). Values must be picklable.
    """
    if not initialized() or world_size() == 1:
        return list(values)
    n = world_size()
    parts: list[list[R] | None] = [None] * n
    if everywhere:
        torch.distributed.all_gather_object(parts, values)
    else:
        torch.distributed.gather_object(values, parts if is_main() else None, dst=0)
        if not is_main():
            return []
    out: list[R] = []
    for i in range(max(len(p) for p in parts)):  # undo the strided shard
        out.extend(p[i] for p in parts if i < len(p))
    return out


def map_sharded(fn: Callable[[list[T]], list[R]], items: Sequence[T], *, everywhere: bool = True) -> list[R]:
    """fn(my shard) on every rank, results gathered in the order of `items` (see `gather`).

    fn takes a list and returns one result per element, so it can batch its shard.
    """
    init()
    return gather(fn(shard(items)), everywhere=everywhere)


def main_decides(fn: Callable[[], R]) -> R:
    """fn() on rank 0 only, its (picklable) result sent to every rank: e.g. one new run directory.

    An InterpError on rank 0 (a refusal) is raised on every rank, so none waits for the others.
    """
    from interp.errors import InterpError

    if not init():
        return fn()
    box: list = [None]
    if is_main():
        try:
            box = [("ok", fn())]
        except InterpError as err:
            box = [("error", str(err))]
    torch.distributed.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise InterpError(value)
    return value


def any_rank(flag: bool) -> bool:
    """True on every rank if `flag` is true on any (one collective; every rank must call it)."""
    if not initialized() or world_size() == 1:
        return flag
    backend_cuda = torch.distributed.get_backend() == "nccl"
    value = torch.tensor([int(flag)], device=f"cuda:{torch.cuda.current_device()}" if backend_cuda else "cpu")
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())
