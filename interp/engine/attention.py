"""The attention step, written out: RoPE, grouped-query scores, fp32 softmax over allowed keys, values.

One function serves every caller: the engine's forward, a recomputed layer, a batch of knockout
variants of one query row (mask-impact's fast method), and variants carried to the logits as
one-token steps over a baseline's keys and values. Keys and values come in blocks along the key
axis; a block with batch 1 is shared by every row and never copied: the batch folds into the rows
of one matmul per kv head, so J variants over T cached keys cost J query rows, not J copies of
the cache. GQA is a reshape of the query heads (head h reads kv head h // group), not a repeat.
"""

from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B,heads,T,dh]; cos/sin [B,T,dh] from the checkpoint's rotary module."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


def grouped_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [B,KH,R,X] @ b [B|1,KH,X,Y] → [B,KH,R,Y]. A b of batch 1 is shared by every row of a:
    (batch, rows) fold into one matmul per kv head instead of expanding b B times."""
    if b.shape[0] == 1 and a.shape[0] > 1:
        rows = rearrange(a, "b k r x -> k (b r) x")  # [KH, B·R, X]
        return rearrange(torch.matmul(rows, b[0]), "k (b r) y -> b k r y", b=a.shape[0])
    return torch.matmul(a, b)


def explicit_attention(
    q: torch.Tensor,  # [B,H,Tq,dh]
    blocks: Sequence[tuple[torch.Tensor, torch.Tensor]],  # (keys, values) [B|1,KH,Tk_i,dh], in key order
    allowed: torch.Tensor,  # [B'|1, 1|H, Tq, ΣTk_i] bool
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """→ z [N,H,Tq,dh], scores [B,H,Tq,Tk] (scaled, unmasked), pattern [N,H,Tq,Tk]; N = max(B, B').

    Masked logits are filled with the fp32 minimum rather than -inf and the probabilities
    multiplied by the mask: identical to -inf where any key is left (exp underflows to 0),
    and an emptied row gives exactly zero output with finite gradients instead of NaN.
    """
    n_kv = blocks[0][0].shape[1]
    group = q.shape[1] // n_kv
    qg = rearrange(q, "b (k g) t d -> b k (g t) d", g=group)  # query heads by the kv head they read
    scores = torch.cat([grouped_matmul(qg, keys.transpose(-1, -2)) for keys, _ in blocks], -1) * scale
    scores = rearrange(scores, "b k (g t) s -> b (k g) t s", g=group)  # [B,H,Tq,Tk]
    logits32 = scores.float().masked_fill(~allowed, torch.finfo(torch.float32).min)
    pattern = (logits32.softmax(-1) * allowed).to(q.dtype)  # [N,H,Tq,Tk]
    pg = rearrange(pattern, "n (k g) t s -> n k (g t) s", g=group)
    z, start = None, 0
    for keys, values in blocks:
        part = grouped_matmul(pg[..., start:start + keys.shape[2]], values)  # [N,KH,g·Tq,dh]
        z = part if z is None else z + part
        start += keys.shape[2]
    return rearrange(z, "n k (g t) d -> n (k g) t d", g=group), scores, pattern
