"""Next-token predictions: the smallest question one can ask a checkpoint."""

from __future__ import annotations

import torch

from interp.engine import Engine
from interp.engine.masks import default_prefix_len


@torch.no_grad()
def top_next_tokens(engine: Engine, prompt: str, *, attention: str = "causal", k: int = 5) -> list[tuple[str, float]]:
    """The k most likely next tokens and their probabilities (prefix mode: prompt = prefix)."""
    ids, mask = engine.tokenize(prompt)
    prefix = default_prefix_len(attention, mask.sum(-1))
    probs = engine.run(ids, attention=attention, prefix_len=prefix, logits="last").logits[0, -1].float().softmax(-1)
    top = probs.topk(min(k, probs.numel()))
    return [(engine.tokenizer.decode([i]), p) for p, i in zip(top.values.tolist(), top.indices.tolist())]
