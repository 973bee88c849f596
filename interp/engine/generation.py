"""Greedy generation: prefill the prompt in any mode, then decode causally from the KV cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import torch

from interp.engine import masks

if TYPE_CHECKING:
    from interp.engine.engine import Engine


@torch.no_grad()
def generate(
    engine: "Engine",
    inputs,
    *,
    max_new_tokens: int = 20,
    attention: str = "causal",
    prefix_len: int | Sequence[int] | None = None,
    eos_token_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
    bidirectional_layers: Iterable[int] | None = None,
) -> "Generation":
    """Greedy decoding: prefill the prompt in `attention` mode, then decode causally.

    With attention="prefix" and no prefix_len the whole prompt is the prefix: the prefill is
    bidirectional over the prompt, as in the prefill-mask ablation (in `bidirectional_layers`
    only, when given; the other layers prefill causally).
    """
    ids, mask = engine.tokenize(inputs, attention_mask)
    if prefix_len is None:
        prefix_len = masks.default_prefix_len(attention, mask.sum(-1))
    eos = engine.tokenizer.eos_token_id if eos_token_id is None else eos_token_id
    out = engine.run(ids, attention_mask=mask, attention=attention, prefix_len=prefix_len, use_cache=True, logits="last",
                   bidirectional_layers=bidirectional_layers)
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    new: list[torch.Tensor] = []
    for _ in range(max_new_tokens):
        token = out.logits[:, -1].argmax(-1)  # [B]
        token = torch.where(done, torch.full_like(token, eos if eos is not None else 0), token)
        new.append(token)
        if eos is not None:
            done |= token == eos
        if bool(done.all()) or len(new) == max_new_tokens:
            break
        out = engine.run(token[:, None], past=out.past, use_cache=True, logits="last")
    new_ids = torch.stack(new, 1) if new else ids.new_zeros(ids.shape[0], 0)
    return Generation(ids, mask, new_ids, engine.tokenizer, eos)



@dataclass
class Generation:
    """Greedy output: prompt ids and mask, new ids [B,N] (EOS kept, then padded with EOS)."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    new_ids: torch.Tensor
    tokenizer: object
    eos_token_id: int | None

    @property
    def texts(self) -> list[str]:
        out = []
        for row in self.new_ids.tolist():
            if self.eos_token_id is not None and self.eos_token_id in row:
                row = row[: row.index(self.eos_token_id)]
            out.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return out
