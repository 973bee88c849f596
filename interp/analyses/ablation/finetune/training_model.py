"""The engine's forward as a trainable nn.Module, and the response-only next-token loss.

Finetuning must train exactly the forward the experiments measure (the engine's masks), so the
transformers Trainer drives a thin module whose forward is `engine.run`. The module adopts the
Hugging Face model's own children (`model`, `lm_head`, ...) under the same names, so its
state_dict keys are the checkpoint's keys: Trainer checkpoints resume into it directly, and DDP
wraps it like any model.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from interp.data.instructions import IGNORE_INDEX, InstructionCollator, pad_token_id
from interp.engine import Engine


def response_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy over labelled positions, and how many there were.

    logits [B,T,V] at position t predict token t+1; labels [B,T] are aligned with input_ids
    (-100 where nothing is learned: prompt and padding).
    """
    targets = labels[:, 1:]  # [B,T-1]: the token each position t < T-1 predicts
    keep = targets != IGNORE_INDEX
    chosen = logits[:, :-1][keep].float()  # [N,V], only the labelled rows are upcast
    total = F.cross_entropy(chosen, targets[keep], reduction="sum")
    return total, keep.sum()


class EngineTrainingModel(nn.Module):
    """`engine.run(attention=mode, prefix_len=prompt lengths)` + the response loss, for the Trainer.

    `accepts_loss_kwargs` tells the Trainer to pass `num_items_in_batch` (labelled tokens across
    all gradient-accumulation micro-batches and devices), so the loss is the exact token mean
    of the whole optimizer step, as the transformers causal-LM models compute it.
    """

    accepts_loss_kwargs = True

    def __init__(self, engine: Engine, attention: str, bidirectional_layers: Sequence[int] | None = None):
        super().__init__()
        for name, child in engine.model.named_children():
            self.add_module(name, child)  # same modules, same state_dict keys as the HF model
        self.engine = engine
        self.attention = attention
        self.bidirectional_layers = bidirectional_layers  # layers under `attention` (None: all)
        self.nonfinite_losses: torch.Tensor | None = None  # count kept on device: no sync per step

    @property
    def hf_model(self) -> nn.Module:
        return self.engine.model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        prefix_len: torch.Tensor,
        num_items_in_batch: torch.Tensor | int | None = None,
        **_: object,
    ) -> dict[str, torch.Tensor]:
        out = self.engine.run(
            input_ids, attention=self.attention, prefix_len=prefix_len, attention_mask=attention_mask,
            bidirectional_layers=self.bidirectional_layers,
        )
        total, count = response_loss_sum(out.logits, labels)
        loss = total / (num_items_in_batch if num_items_in_batch is not None else count.clamp(min=1))
        if self.training:
            bad = (~torch.isfinite(loss.detach())).long()
            self.nonfinite_losses = bad if self.nonfinite_losses is None else self.nonfinite_losses + bad
        return {"loss": loss}


@torch.no_grad()
def mean_response_loss(
    engine: Engine, examples: list[dict], attention: str, *, batch_size: int = 8
) -> float:
    """Token-weighted mean response loss of `examples` under `attention` (no training)."""
    collate = InstructionCollator(pad_token_id(engine.tokenizer))
    total, count = 0.0, 0
    for batch in _batches(examples, batch_size):
        inputs = collate(batch)
        out = engine.run(
            inputs["input_ids"], attention=attention, prefix_len=inputs["prefix_len"],
            attention_mask=inputs["attention_mask"],
        )
        batch_total, batch_count = response_loss_sum(out.logits, inputs["labels"].to(out.logits.device))
        total += float(batch_total)
        count += int(batch_count)
    return total / max(count, 1)


def _batches(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
