"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2` (gloo, CPU): one launch,
three distributed jobs, so the process-group start-up is paid once.

argv: MODEL_DIR PROMPTS_YAML INSTRUCTIONS_JSONL OUT_DIR FACTS_JSONL LM_EVAL_TASKS_DIR
  OUT/mask_impact/     `interp mask-impact --config` with each rank on its share of the prompts
  OUT/knockout/        `interp knockout` with each rank on its share of the prompts
  OUT/harness/         `interp harness` (lm-eval driving interp) with each rank on its share of the batches
  OUT/ddp/             DDP finetuning (half the global batch per rank); OUT/ddp_losses.json
  OUT/fsdp/            a checkpoint saved from FSDP-sharded parameters through the Trainer's save path
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from interp.util.logs import quiet_transformers

torch.set_num_threads(1)
quiet_transformers()

FINETUNE = dict(max_steps=5, logging_steps=1, per_device_train_batch_size=2, learning_rate=3e-3, warmup_ratio=0.0,
                eval_limit=4, max_seq_len=64, save_steps=1000, disable_tqdm=True)


def mask_impact_run(model: str, prompts: str, out: Path) -> None:
    from interp.cli.app import app

    app(["mask-impact", "--config", prompts, "--model", model, "--out", str(out)], standalone_mode=False)


def knockout_run(model: str, facts: str, out: Path) -> None:
    from interp.cli.app import app

    app(["knockout", "--prompts", facts, "--model", model, "--window", "3", "--out", str(out)], standalone_mode=False)


def harness_run(model: str, tasks_dir: str, out: Path) -> None:
    from interp.cli.app import app

    app(["harness", "--tasks", "mc", "--include-path", tasks_dir, "--model", model, "--attention", "prefix",
         "--batch-size", "2", "--out", str(out)], standalone_mode=False)


def ddp_finetune(model: str, data: str, out: Path) -> None:
    from interp.analyses.ablation.finetune.trainer import finetune
    from interp.util.distributed import is_main, world_size
    from interp.util.io import write_json

    result = finetune(model, data, "prefix", out, **FINETUNE)
    losses = [h["loss"] for h in result.summary["log_history"] if "loss" in h]
    if is_main():
        write_json(out.parent / "ddp_losses.json", {"world_size": world_size(), "losses": losses})


def fsdp_save(model: str, out: Path) -> None:
    """Shard the parameters with FSDP2, consolidate the full state dict, save as the Trainer does under FSDP.

    (FSDP2 training itself, `finetune --fsdp`, is tested in tests/test_fsdp.py; this is the save path alone.)
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from transformers import TrainingArguments

    import interp
    from interp.analyses.ablation.finetune.trainer import _EngineTrainer
    from interp.analyses.ablation.finetune.training_model import EngineTrainingModel

    engine = interp.load(model)
    with torch.no_grad():  # a change only the saved checkpoint can show
        engine.model.lm_head.weight.mul_(0.5)
    wrapper = EngineTrainingModel(engine, "causal")
    mesh = init_device_mesh("cpu", (torch.distributed.get_world_size(),))
    for layer in engine.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(wrapper, mesh=mesh)
    shard = dict(wrapper.named_parameters())["model.layers.0.self_attn.q_proj.weight"]
    assert type(shard).__name__ == "DTensor", type(shard)
    state = get_model_state_dict(wrapper, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    args = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none")
    trainer = _EngineTrainer(model=wrapper, args=args, processing_class=engine.tokenizer)
    trainer._save(str(out / "final"), state_dict=state)


def main() -> None:
    model, prompts, data, out, facts, tasks_dir = sys.argv[1:7]
    out_dir = Path(out)
    mask_impact_run(model, prompts, out_dir / "mask_impact")
    knockout_run(model, facts, out_dir / "knockout")
    harness_run(model, tasks_dir, out_dir / "harness")
    ddp_finetune(model, data, out_dir / "ddp")
    fsdp_save(model, out_dir / "fsdp")
    torch.distributed.barrier()


if __name__ == "__main__":
    main()
