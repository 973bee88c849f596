"""Representation drift: how far each layer's hidden states move when the causal mask is lifted.

The analysis of LLM2Vec (BehnamGhader et al. 2024): Mistral-7B's hidden states barely move when
its causal mask is removed, Llama-2's do. Definition, per model and layer l:

    drift[l] = mean over every real context token t of every item of cos(h_causal[l, t], h_prefix[l, t])

- h[l, t] is resid_post of layer l at token t: the residual stream after layer l's attention and MLP.
- h_causal comes from the usual causal forward; h_prefix from the same forward with prefix attention
  over the whole context (every context token sees every other; with `bidirectional_layers`, only in
  those layers, the others causal).
- The mean is pooled over tokens (an item of 40 tokens weighs 40 times one of 1), padding excluded.
  1 means the states did not move. Cosines are taken in float64.
- A context is a task item's context tokenized as `interp eval` tokenizes it (leading special tokens
  such as BOS, then the text with trailing whitespace removed), or a prompt tokenized the same way.

Both forwards take the same (explicit) attention path, so where the two masks are the same — a
one-token context, or no bidirectional layer — the states are bit-identical and drift is exactly 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
import torch

from interp.engine import Engine
from interp.engine.masks import check_layers
from interp.errors import InterpError
from interp.util.padding import pad

COLUMNS: tuple[str, ...] = ("model", "layer", "cosine", "n_tokens", "n_items")


# ------------------------------------------------------------------------------------- inputs
def read_prompts(path: str | Path) -> tuple[list[str], int]:
    """Prompts from a file → (prompts, rows skipped): .jsonl rows with a "prompt" (or "context")
    string, or any other text file with one prompt per line (blank lines ignored)."""
    from interp.data.jsonl import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise InterpError(f"no such prompts file: {path}")
    if path.suffix == ".jsonl":
        texts = [r.get("prompt", r.get("context")) if isinstance(r, dict) else None for r in read_jsonl(path)]
        kept = [t for t in texts if isinstance(t, str) and t.strip()]
        return kept, len(texts) - len(kept)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines, 0


def task_contexts(tasks: Sequence[str], *, limit: int | None = 100, data_dir: str | Path | None = None) -> list[str]:
    """The contexts of the first `limit` valid items of each task (as `interp eval` loads them)."""
    from interp.analyses.ablation.evaluate import load_tasks

    return [item["context"] for task in load_tasks(tasks, limit=limit, data_dir=data_dir) for item in task.items]


def context_ids(tokenizer, texts: Iterable[str], max_length: int | None = None) -> tuple[list[list[int]], int]:
    """Texts → token ids as `interp eval` tokenizes a context (leading special tokens, trailing
    whitespace dropped, the left cut to `max_length`); → (ids, texts skipped for having no tokens)."""
    from interp.analyses.ablation.scoring import leading_special_tokens

    lead = leading_special_tokens(tokenizer)
    texts = [t.rstrip() for t in texts]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    out = [(lead + ids)[-max_length:] if max_length else lead + ids for ids, text in zip(encoded, texts) if text]
    return out, len(texts) - len(out)


# ------------------------------------------------------------------------------------- the measure
@torch.no_grad()
def representation_drift(
    engine: Engine,
    contexts: Sequence[Sequence[int]],
    *,
    batch_size: int = 8,
    bidirectional_layers: Iterable[int] | None = None,
    advance: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Per layer, the mean cosine between causal and prefix resid_post over all context tokens
    (module docstring). contexts: token-id lists. → columns layer, cosine, n_tokens, n_items."""
    if not contexts:
        raise InterpError("no contexts to measure drift on")
    if batch_size < 1:
        raise InterpError(f"batch size must be ≥ 1, not {batch_size}")
    layers = list(bidirectional_layers) if bidirectional_layers is not None else None
    sums = torch.zeros(engine.n_layers, dtype=torch.float64)
    tokens = 0
    order = sorted(range(len(contexts)), key=lambda i: -len(contexts[i]))  # similar lengths pad little
    for start in range(0, len(order), batch_size):
        rows = [list(contexts[i]) for i in order[start:start + batch_size]]
        ids, mask = pad(rows, "right", device=engine.device)  # [B,T]
        common = dict(attention_mask=mask, capture="resid_post", logits="none", attn_impl="explicit")
        causal = engine.run(ids, **common).cache
        prefix = engine.run(ids, attention="prefix", prefix_len=mask.sum(-1), bidirectional_layers=layers,
                            **common).cache
        for layer in range(engine.n_layers):
            cos = exact_cosine(causal["resid_post", layer], prefix["resid_post", layer])  # [B,T]
            sums[layer] += cos[mask].sum().cpu()
        tokens += int(mask.sum())
        if advance is not None:
            advance(len(rows))
    return pd.DataFrame({
        "layer": range(engine.n_layers), "cosine": (sums / tokens).tolist(),
        "n_tokens": tokens, "n_items": len(contexts),
    })


def exact_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine over the last dim in float64, written so that identical vectors give exactly 1.0
    (x·x / sqrt(x·x · x·x) is exact in IEEE arithmetic; a product of two norms need not be)."""
    a, b = a.double(), b.double()
    dot = (a * b).sum(-1)
    denominator = ((a * a).sum(-1) * (b * b).sum(-1)).sqrt()
    return (dot / denominator.clamp(min=torch.finfo(torch.float64).tiny)).clamp(-1.0, 1.0)


def drift(
    models: Sequence[str | Engine],
    texts: Sequence[str],
    *,
    batch_size: int = 8,
    bidirectional_layers: Iterable[int] | None = None,
    load: Callable[[str], Engine] | None = None,
    show_progress: bool = True,
) -> pd.DataFrame:
    """`representation_drift` of each model (names, paths or Engines, one at a time) on the same
    texts → one table (COLUMNS); table.attrs["skipped"] counts texts with no tokens."""
    from interp.util.progress import progress_bar

    if not models:
        raise InterpError("no model given: pass --model (repeatable)")
    if load is None:
        import interp

        load = interp.load
    layers = list(bidirectional_layers) if bidirectional_layers is not None else None
    tables, skipped = [], 0
    for model in models:
        engine = model if isinstance(model, Engine) else load(model)
        label = engine.name if isinstance(model, Engine) else str(model)
        check_layers(layers, engine.n_layers)  # before the progress bar: a bad layer is a one-line error
        contexts, skipped = context_ids(engine.tokenizer, texts, engine.max_positions)
        with progress_bar(f"drift {label}", len(contexts), disable=not show_progress) as advance:
            table = representation_drift(engine, contexts, batch_size=batch_size, bidirectional_layers=layers,
                                         advance=advance)
        tables.append(table.assign(model=label))
        if not isinstance(model, Engine):
            del engine
    out = pd.concat(tables, ignore_index=True)[list(COLUMNS)]
    out.attrs["skipped"] = skipped
    return out


# ------------------------------------------------------------------------------------- output
def drift_figure(table: pd.DataFrame):
    """Mean cosine per layer, one line per model (checkpoints on one plot)."""
    import seaborn as sns
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    sns.lineplot(data=table, x="layer", y="cosine", hue="model", marker="o", ax=ax, palette="deep")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
    low = float(table["cosine"].min())
    ax.set_ylim(min(0.0, low - 0.05), 1.02)
    ax.set_xticks(sorted(table["layer"].unique()))
    ax.set_xlabel("layer (resid_post)")
    ax.set_ylabel("mean cos(causal, prefix)")
    ax.set_title("representation drift when the context attends bidirectionally")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="model")
    fig.tight_layout()
    return fig


def write_drift(table: pd.DataFrame, out_dir: str | Path, settings: dict) -> tuple[Path, Path, Path]:
    """OUT/drift.csv, OUT/drift.png and OUT/drift.json (settings + provenance), atomically."""
    from interp.util.io import save_figure, write_json, write_table
    from interp.util.provenance import provenance

    out = Path(out_dir)
    files = out / "drift.csv", out / "drift.png", out / "drift.json"
    write_table(table, files[0])
    save_figure(drift_figure(table), files[1], dpi=120, bbox_inches="tight")
    write_json(files[2], {**settings, "skipped": table.attrs.get("skipped", 0),
                          "hidden_state": "resid_post", "provenance": provenance()})
    return files
