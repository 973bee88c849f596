"""Distances between the baseline and the knocked-out readouts — defined everywhere, never NaN.

- l2 = ‖base − masked‖₂.
- cosine = 1 − cos(base, masked), clipped to [0, 2] against rounding. Cosine is undefined for a
  zero vector (a head whose every key was removed writes exactly zero), so we define: both zero
  → 0 (nothing changed); exactly one zero → 1 (as for orthogonal vectors: no shared direction).
- For logits: KL(P_base ‖ P_masked) = Σ_v P_base(v) (log P_base(v) − log P_masked(v)), i.e. the
  information lost when the masked model's next-token distribution stands in for the baseline's;
  clipped at 0 against rounding. top1_prob_delta = P_masked(t) − P_base(t) for the baseline's
  top-1 token t (negative: the knockout made the model less sure of its prediction).

Computed in float64: distances are small differences of large vectors.
"""

from __future__ import annotations

import torch


def l2_distance(base: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """base [..., d] (broadcast) vs masked [..., d] → [...]."""
    return (base.double() - masked.double()).norm(dim=-1)


def cosine_distance(base: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """1 − cos over the last dim; 0 if both vectors are zero, 1 if exactly one is."""
    a, b = torch.broadcast_tensors(base.double(), masked.double())
    norm_a, norm_b = a.norm(dim=-1), b.norm(dim=-1)
    both = (norm_a > 0) & (norm_b > 0)
    cos = (a * b).sum(-1) / torch.where(both, norm_a * norm_b, torch.ones_like(norm_a))
    distance = (1 - cos).clamp(0.0, 2.0)
    one_zero = (norm_a > 0) ^ (norm_b > 0)
    return torch.where(both, distance, one_zero.double())


def kl_from_baseline(base_logits: torch.Tensor, masked_logits: torch.Tensor) -> torch.Tensor:
    """KL(P_base ‖ P_masked): base [V] vs masked [J,V] → [J]."""
    log_p = base_logits.double().log_softmax(-1)
    log_q = masked_logits.double().log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).clamp(min=0.0)


def top1_prob_delta(base_logits: torch.Tensor, masked_logits: torch.Tensor) -> torch.Tensor:
    """P_masked(t) − P_base(t) for the baseline's top-1 token t: base [V], masked [J,V] → [J]."""
    top = int(base_logits.argmax())
    return masked_logits.double().softmax(-1)[:, top] - base_logits.double().softmax(-1)[top]
