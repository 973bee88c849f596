"""Run by tests/test_fsdp.py under `torchrun --nproc_per_node 2` (gloo, CPU): the FSDP2 jobs that
need Python rather than the CLI, in one launch so the process-group start-up is paid once.

argv: TOY_RUN MINISTRAL3_DIR DATA_JSONL OUT_DIR
  OUT/toy_resumed/   TOY_RUN's checkpoint-2 (+ run_settings.json) resumed to its last step under FSDP2
  OUT/m3_straight/   4 steps on a tiny tied-embedding Ministral 3 (Mistral3ForConditionalGeneration),
                     gradient checkpointing on, a checkpoint at step 2
  OUT/m3_resumed/    that checkpoint-2 resumed to step 4
  OUT/leaky_rank{R}.txt  the refusal each rank raised for a leaky mode (the guard runs on rank 0 only)
  OUT/m3_stopped/    a stop rule that fires at the first logged loss: every rank stops there
  OUT/m3_bf16/       2 steps with --bf16: FSDP2's MixedPrecisionPolicy (bf16 compute, fp32 reduce)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from interp.util.logs import quiet_transformers

torch.set_num_threads(1)
quiet_transformers()

COMMON = dict(logging_steps=1, learning_rate=3e-4, warmup_ratio=0.0, save_steps=2, disable_tqdm=True)
TOY = COMMON | dict(max_steps=4, per_device_train_batch_size=2, eval_limit=4, max_seq_len=64)
M3 = COMMON | dict(max_steps=4, per_device_train_batch_size=2, eval_limit=0, max_seq_len=64,
                   gradient_checkpointing=True)


def resume_copy(run: Path, out: Path, step: int = 2) -> None:
    """What a run killed after its step-`step` save leaves behind."""
    from interp.util.distributed import barrier, is_main

    if is_main():
        out.mkdir(parents=True)
        shutil.copytree(run / f"checkpoint-{step}", out / f"checkpoint-{step}")
        shutil.copy(run / "run_settings.json", out / "run_settings.json")
    barrier()


def refused(model: str, data: str, out: Path) -> None:
    from interp.analyses.ablation.finetune.trainer import finetune
    from interp.errors import InterpError
    from interp.util.distributed import rank

    try:
        finetune(model, data, "bidirectional", out / "leaky", fsdp=True, **M3)
        message = "trained"
    except InterpError as err:
        message = str(err)
    (out / f"leaky_rank{rank()}.txt").write_text(message, encoding="utf-8")


def main() -> None:
    from interp.analyses.ablation.finetune.trainer import finetune

    toy_run, m3_dir, data, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    resume_copy(toy_run, out / "toy_resumed")
    finetune("toy", "toy", "prefix", out / "toy_resumed", resume=True, fsdp=True, **TOY)
    finetune(m3_dir, data, "prefix", out / "m3_straight", fsdp=True, **M3)
    resume_copy(out / "m3_straight", out / "m3_resumed")
    finetune(m3_dir, data, "prefix", out / "m3_resumed", resume=True, fsdp=True, **M3)
    refused(m3_dir, data, out)
    finetune(m3_dir, data, "prefix", out / "m3_stopped", fsdp=True,
             **M3 | dict(kill_after_steps=1, min_loss_improvement=100.0))
    finetune(m3_dir, data, "prefix", out / "m3_bf16", fsdp=True, **M3 | dict(max_steps=2, bf16=True))
    torch.distributed.barrier()


if __name__ == "__main__":
    main()
