"""Zero-shot multiple-choice evaluation: log-likelihood of each choice given the context.

score(choice) = Σ log p(continuation token | context, earlier continuation tokens). As
lm-evaluation-harness defines them: acc picks the choice with the highest sum, acc_norm the
highest sum per character of the choice (its target delimiter left out), and acc_stderr /
acc_norm_stderr are the sample standard error of the mean. acc_token_norm picks the highest
per-token mean (the ministral3 ablation's length normalisation); acc_cc = (acc − chance) /
(1 − chance). Macro = unweighted mean over tasks.

Attention modes:
  causal         the usual causal model.
  prefix         context bidirectional, continuation causal: exactly what a bidirectional prefill
                 of the context followed by causal decoding computes (the ablation).
  bidirectional  one pass over context + continuation with no mask, as the ministral3 ablation's
                 eval code ran: each continuation token sees the tokens after it, so the score is
                 LEAKY. Kept to reproduce those figures and labelled leaky in every output.

Fast and exact: for causal and prefix, each context is run once (prefill, in the chosen mode, with
its KV cache kept) and all its choices are scored together by continuing from that cache
(`KVCache.rows` repeats a context's cache once per choice); examples are batched with left-padded
contexts and right-padded continuations. Padding never changes a real token's result, so batched
scores equal unbatched ones. Requests are grouped by context tokens, so choices with their own
contexts (lm-eval's winogrande) simply form groups of one. bidirectional cannot reuse a cache
(the context sees the choice) and runs one full sequence per choice, batched the same way.

Token boundary (as lm-evaluation-harness `_encode_pair`): whitespace ending the context moves to
the front of the continuation; the context is tokenized alone, and the continuation's tokens are
those of `context + continuation` after the first len(context tokens). Every choice then shares
the very same context tokens (so their cache can be shared); where BPE merges across the boundary,
the scored sequence is context tokens + the tail of the joint tokenization, as in the harness.
Only leading special tokens (e.g. BOS) are added; an empty context gets BOS (or EOS) alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from interp.data.benchmarks import DEFAULT_FORMAT, check_format
from interp.data.tasks import Task, load_task, task_key
from interp.engine import Engine
from interp.engine.masks import LEAKY_MODES, check_layers, check_mode, default_prefix_len
from interp.errors import InterpError
from interp.util.distributed import map_sharded
from interp.util.io import write_json, write_table
from interp.util.progress import progress_bar

LEAK_WARNING = (
    "LEAKY: attention=bidirectional lets every continuation token see the tokens after it (what the "
    "ministral3 ablation's eval code computed); these scores are not a valid zero-shot accuracy"
)
EXAMPLE_COLUMNS = ("task", "index", "label", "pred", "pred_norm", "pred_token_norm", "context", "choices", "logprobs",
                   "n_tokens", "n_chars", "leaky")
TASK_METRICS = ("n", "skipped", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "acc_token_norm", "acc_cc", "chance")
MACRO_METRICS = ("acc", "acc_norm", "acc_token_norm", "acc_cc")
LOGIT_CHUNK = 1 << 24  # elements of fp32 log-softmax held at once


# ------------------------------------------------------------------------------------- tokens
Request = tuple[str, str]  # (context, continuation): one of lm-eval's loglikelihood requests


@dataclass
class Encoded:
    """One context's tokens and the continuations scored after it (they share its KV cache)."""

    context: list[int]
    choices: list[list[int]]


def leading_special_tokens(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (e.g. [BOS]); trailing ones are dropped."""
    with_special = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start:start + len(plain)] == plain:
            return list(with_special[:start])
    return []


def prefix_token(tokenizer) -> int | None:
    """What an empty context becomes: BOS, else EOS (lm-eval's prefix_token_id)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_requests(
    tokenizer, requests: Sequence[Request], max_length: int | None = None
) -> list[tuple[list[int], list[int]] | None]:
    """(context ids, continuation ids) per request at the harness's boundary (module docstring).

    None where nothing can be scored (an empty continuation, or one that alone fills
    `max_length`); a context that would not fit with its continuation loses tokens from the left.
    """
    lead = leading_special_tokens(tokenizer)
    fallback = prefix_token(tokenizer)
    contexts, wholes = [], []
    for context, continuation in requests:
        stripped = context.rstrip()
        contexts.append(stripped)
        wholes.append(stripped + context[len(stripped):] + continuation)
    context_ids = tokenizer(contexts, add_special_tokens=False)["input_ids"] if contexts else []
    whole_ids = tokenizer(wholes, add_special_tokens=False)["input_ids"] if wholes else []
    out: list[tuple[list[int], list[int]] | None] = []
    for ctx, whole in zip(context_ids, whole_ids):
        cont = whole[len(ctx):]
        ctx = lead + ctx
        if not ctx and fallback is not None:
            ctx = [fallback]
        if not ctx or not cont or (max_length is not None and len(cont) >= max_length):
            out.append(None)
            continue
        if max_length is not None and len(ctx) + len(cont) > max_length:
            ctx = ctx[len(ctx) + len(cont) - max_length:]
        out.append((ctx, cont))
    return out


def item_requests(item: dict) -> list[Request]:
    """An item's (context, continuation) pairs: its context (or its per-choice contexts) and each choice."""
    contexts = item["context"] if isinstance(item["context"], list) else [item["context"]] * len(item["choices"])
    return list(zip(contexts, item["choices"]))


def encode_items(
    tokenizer, items: Sequence[dict], max_length: int | None = None
) -> list[list[tuple[list[int], list[int]]] | None]:
    """Each item's encoded requests, or None when any of its choices cannot be scored."""
    shape = [len(item["choices"]) for item in items]
    flat = encode_requests(tokenizer, [r for item in items for r in item_requests(item)], max_length)
    out, offset = [], 0
    for k in shape:
        pairs = flat[offset:offset + k]
        offset += k
        out.append(None if any(p is None for p in pairs) else pairs)
    return out


def group_by_context(pairs: Sequence[tuple[list[int], list[int]]]) -> tuple[list[Encoded], list[tuple[int, int]]]:
    """Requests with the same context tokens become one Encoded (one prefill); → groups and, per
    request, (group, choice) where its score will be."""
    groups: list[Encoded] = []
    index: dict[tuple[int, ...], int] = {}
    where = []
    for ctx, cont in pairs:
        g = index.setdefault(tuple(ctx), len(groups))
        if g == len(groups):
            groups.append(Encoded(list(ctx), []))
        where.append((g, len(groups[g].choices)))
        groups[g].choices.append(list(cont))
    return groups, where


def _pad(rows: Sequence[Sequence[int]], side: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of ids → ids [N,T] (pad 0) and mask [N,T] bool, padded on `side`."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        cols = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, cols] = torch.as_tensor(row, dtype=torch.long)
        mask[i, cols] = True
    return ids.to(device), mask.to(device)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) in fp32: logits [N,T,V], targets [N,T] → [N,T], a few rows at a time."""
    rows_per_chunk = max(1, LOGIT_CHUNK // max(1, logits.shape[1] * logits.shape[2]))
    out = []
    for start in range(0, logits.shape[0], rows_per_chunk):
        chunk = logits[start:start + rows_per_chunk].float().log_softmax(-1)
        out.append(chunk.gather(-1, targets[start:start + rows_per_chunk, :, None])[..., 0])
    return torch.cat(out)


# ------------------------------------------------------------------------------------- scoring
def _score_from_context_cache(engine: Engine, batch: Sequence[Encoded], attention: str, layers=None):
    """Prefill each context once (causal or prefix, in `layers`), then decode all its choices from the cache."""
    ctx_ids, ctx_mask = _pad([e.context for e in batch], "left", engine.device)  # [B,Tc]
    ctx_len = ctx_mask.sum(-1)
    prefill = engine.run(
        ctx_ids, attention_mask=ctx_mask, attention=attention,
        prefix_len=default_prefix_len(attention, ctx_len), use_cache=True, logits="last",
        bidirectional_layers=layers,
    )
    owner = torch.tensor([b for b, e in enumerate(batch) for _ in e.choices], device=engine.device)  # [N]
    cont_ids, cont_mask = _pad([c for e in batch for c in e.choices], "right", engine.device)  # [N,Tk]
    # The context's last logits predict each choice's first token; decoding predicts the rest.
    first = prefill.logits[owner]  # [N,1,V]
    logp, greedy = token_logprobs(first, cont_ids[:, :1]), first.argmax(-1) == cont_ids[:, :1]  # [N,1]
    if cont_ids.shape[1] > 1:
        decode = engine.run(
            cont_ids[:, :-1], attention_mask=cont_mask[:, :-1], past=prefill.past.rows(owner), logits="all"
        )
        logp = torch.cat([logp, token_logprobs(decode.logits, cont_ids[:, 1:])], 1)  # [N,Tk]
        greedy = torch.cat([greedy, decode.logits.argmax(-1) == cont_ids[:, 1:]], 1)
    logp = logp.masked_fill(~cont_mask, 0.0)
    return logp.sum(-1), cont_mask.sum(-1), (greedy | ~cont_mask).all(-1)


def _score_full_sequences(engine: Engine, batch: Sequence[Encoded], attention: str, layers=None):
    """One forward per choice over context + continuation (the only way for bidirectional)."""
    rows = [e.context + c for e in batch for c in e.choices]
    ctx_len = torch.tensor([len(e.context) for e in batch for _ in e.choices], device=engine.device)  # [N]
    cont_len = torch.tensor([len(c) for e in batch for c in e.choices], device=engine.device)
    ids, mask = _pad(rows, "right", engine.device)  # [N,T]
    # Only the positions that predict continuation tokens need logits: keep the last layer's output
    # and apply the final norm and lm_head to those (a [N,T,V] tensor would dwarf the model at 131k vocab).
    top = engine.n_layers - 1
    out = engine.run(ids, attention_mask=mask, attention=attention,
                     prefix_len=default_prefix_len(attention, ctx_len), capture=[("resid_post", top)], logits="none",
                     bidirectional_layers=layers)
    steps = torch.arange(int(cont_len.max()), device=engine.device)  # [Tk]
    last = ids.shape[1] - 1
    predictor = (ctx_len[:, None] - 1 + steps).clamp(max=last)  # [N,Tk] position predicting each token
    target = ids.gather(1, (ctx_len[:, None] + steps).clamp(max=last))  # [N,Tk]
    hidden = out.cache["resid_post", top]  # [N,T,D]
    hidden = hidden.gather(1, predictor[..., None].expand(-1, -1, hidden.shape[-1]))  # [N,Tk,D]
    logits = engine.unembed(hidden)  # [N,Tk,V]
    valid = steps < cont_len[:, None]
    logp = token_logprobs(logits, target).masked_fill(~valid, 0.0)
    return logp.sum(-1), cont_len, ((logits.argmax(-1) == target) | ~valid).all(-1)


@dataclass
class ItemScores:
    """Per continuation of one Encoded: summed log-probability, token count, and whether greedy
    decoding would produce it (lm-eval's is_greedy)."""

    logprobs: list[float]
    n_tokens: list[int]
    greedy: list[bool]


@torch.no_grad()
def score_encoded(
    engine: Engine,
    encoded: Sequence[Encoded],
    *,
    attention: str = "causal",
    batch_size: int = 16,
    advance: Callable[[int], None] | None = None,
    bidirectional_layers: Sequence[int] | None = None,
) -> list[ItemScores]:
    """Score every choice of every item; `batch_size` items (contexts) per forward.

    bidirectional_layers: the layers where `attention` applies (None: all); the others are causal.

    Items are run longest first so a batch pads little; results come back in input order.
    Under torchrun / accelerate launch each rank runs every world_size-th batch (the very batches
    one process would run, so the scores are bit-identical) and every rank gets all results.
    """
    check_mode(attention)
    if batch_size < 1:
        raise InterpError(f"batch size must be ≥ 1, not {batch_size}")
    scorer = _score_full_sequences if attention == "bidirectional" else _score_from_context_cache
    order = sorted(range(len(encoded)), key=lambda i: -(len(encoded[i].context) + max(map(len, encoded[i].choices))))
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

    def run_batches(mine: list[list[int]]) -> list[tuple[list[float], list[int], list[bool]]]:
        out = []
        for idx in mine:
            scores = scorer(engine, [encoded[i] for i in idx], attention, bidirectional_layers)
            out.append(tuple(t.tolist() for t in scores))
            if advance is not None:
                advance(len(idx))
        return out

    results: list[ItemScores | None] = [None] * len(encoded)
    for idx, (sums, counts, greedy) in zip(batches, map_sharded(run_batches, batches)):
        batch = [encoded[i] for i in idx]
        offset = 0
        for i, e in zip(idx, batch):
            k = len(e.choices)
            results[i] = ItemScores(sums[offset:offset + k], [int(c) for c in counts[offset:offset + k]],
                                    [bool(g) for g in greedy[offset:offset + k]])
            offset += k
    return results  # type: ignore[return-value]


def mode_label(attention: str, bidirectional_layers: Sequence[int] | None = None) -> str:
    """"prefix", or "prefix in layers 20-27" when the mode applies to a subset of layers."""
    if bidirectional_layers is None or attention == "causal":
        return attention
    from interp.analyses.interventions.layer_sets import layer_label

    return f"{attention} in layers {layer_label(bidirectional_layers)}"


@dataclass
class RequestScore:
    """One (context, continuation) request's log-likelihood, token count and is_greedy."""

    logprob: float
    n_tokens: int
    greedy: bool


def score_requests(
    engine: Engine,
    pairs: Sequence[tuple[list[int], list[int]]],
    *,
    attention: str = "causal",
    batch_size: int = 16,
    progress: str | None = None,
    bidirectional_layers: Sequence[int] | None = None,
) -> list[RequestScore]:
    """Score encoded requests; those sharing a context are prefilled once (`group_by_context`).

    `progress` names a progress bar over contexts (None: no bar).
    """
    groups, where = group_by_context(pairs)
    with progress_bar(progress or "", len(groups), disable=progress is None) as advance:
        scores = score_encoded(engine, groups, attention=attention, batch_size=batch_size, advance=advance,
                               bidirectional_layers=bidirectional_layers)
    return [RequestScore(scores[g].logprobs[j], scores[g].n_tokens[j], scores[g].greedy[j]) for g, j in where]


# ------------------------------------------------------------------------------------- metrics
def choice_chars(item: dict) -> list[int]:
    """acc_norm's divisor per choice: its characters without the text joining it to the context —
    the item's `delimiter` (lm-eval's target delimiter) or, without one, its leading whitespace.
    This is lm-eval's len(choice) for its own task definitions."""
    delimiter = item.get("delimiter")
    out = []
    for choice in item["choices"]:
        joint = delimiter if delimiter is not None and choice.startswith(delimiter) else ""
        rest = choice[len(joint):]
        out.append(len(rest) if delimiter is not None else len(rest.lstrip()))
    return out


def mean_stderr(values: Sequence[float]) -> float | None:
    """lm-eval's stderr of a mean: sample standard deviation (n − 1) / √n; None below 2 values ("N/A")."""
    n = len(values)
    if n < 2:
        return None
    mu = sum(values) / n
    return math.sqrt(sum((x - mu) ** 2 for x in values) / (n - 1)) / math.sqrt(n)


def chance_corrected(value: float | None, chance: float) -> float | None:
    """(value − chance) / (1 − chance): 0 at chance, 1 at perfect."""
    if value is None or chance is None or math.isnan(value) or chance >= 1:
        return None
    return (value - chance) / (1 - chance)


def metric_or_acc(task_metrics: dict, metric: str) -> float | None:
    """A task's `metric`, or its acc where it does not report one (lm-eval's winogrande has acc only:
    every choice scores the same continuation, so length normalisation changes nothing)."""
    value = task_metrics.get(metric)
    return task_metrics.get("acc") if value is None and metric.startswith("acc") else value


def macro(per_task: dict[str, dict], metric: str) -> float:
    """Unweighted mean over tasks of `metric` (acc standing in where a task has none)."""
    return _mean(v for v in (metric_or_acc(m, metric) for m in per_task.values()) if v is not None)


# ------------------------------------------------------------------------------------- tasks
@dataclass
class TaskResult:
    """A task's metrics (TASK_METRICS, in metrics.json) and its per-example table (EXAMPLE_COLUMNS)."""

    name: str
    source: str
    metrics: dict
    examples: "object"  # pandas DataFrame


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))  # first of equal maxima, as np.argmax


def _normalized(logprobs: Sequence[float], lengths: Sequence[int]) -> list[float]:
    return [lp / n if n else float("-inf") for lp, n in zip(logprobs, lengths)]


def task_metrics(examples, chances: Sequence[float], skipped: int, reported: Sequence[str]) -> dict:
    """TASK_METRICS from a task's examples table; metrics lm-eval does not report for it are None."""
    n = len(examples)
    correct = {
        "acc": [float(x) for x in examples.pred == examples.label],
        "acc_norm": [float(x) for x in examples.pred_norm == examples.label],
        "acc_token_norm": [float(x) for x in examples.pred_token_norm == examples.label],
    }
    chance = sum(chances) / n if n else float("nan")
    out: dict = {"n": n, "skipped": skipped}
    shown = {"acc", *(("acc_norm", "acc_token_norm") if "acc_norm" in reported else ())}
    for metric in ("acc", "acc_norm", "acc_token_norm"):
        value = _mean(correct[metric]) if metric in shown else None
        out[metric] = value
        if metric != "acc_token_norm":
            out[f"{metric}_stderr"] = mean_stderr(correct[metric]) if metric in shown else None
    out["acc_cc"] = chance_corrected(out["acc"], chance)
    out["chance"] = chance
    return {k: out[k] for k in TASK_METRICS}


def evaluate_task(
    engine: Engine,
    task: Task,
    *,
    attention: str = "causal",
    batch_size: int = 16,
    show_progress: bool = True,
    bidirectional_layers: Sequence[int] | None = None,
) -> TaskResult:
    """Score a loaded task; items whose tokens cannot be scored (too long) count as skipped."""
    import pandas as pd

    check_mode(attention)
    encoded = encode_items(engine.tokenizer, task.items, engine.max_positions)
    keep = [i for i, e in enumerate(encoded) if e is not None]
    label = f"{task.name} ({mode_label(attention, bidirectional_layers)}{', LEAKY' if attention in LEAKY_MODES else ''})"
    scores = iter(score_requests(engine, [pair for i in keep for pair in encoded[i]], attention=attention,
                                 batch_size=batch_size, progress=label if show_progress else None,
                                 bidirectional_layers=bidirectional_layers))
    rows = []
    for i in keep:
        item = task.items[i]
        s = [next(scores) for _ in item["choices"]]
        logprobs, n_tokens, n_chars = [x.logprob for x in s], [x.n_tokens for x in s], choice_chars(item)
        rows.append({
            "task": task.name, "index": i, "label": item["label"], "pred": _argmax(logprobs),
            "pred_norm": _argmax(_normalized(logprobs, n_chars)),
            "pred_token_norm": _argmax(_normalized(logprobs, n_tokens)),
            "context": item["context"] if isinstance(item["context"], str) else json.dumps(item["context"]),
            "choices": json.dumps(item["choices"]), "logprobs": json.dumps(logprobs),
            "n_tokens": json.dumps(n_tokens), "n_chars": json.dumps(n_chars), "leaky": attention in LEAKY_MODES,
        })
    examples = pd.DataFrame(rows, columns=list(EXAMPLE_COLUMNS))
    chances = [1 / len(task.items[i]["choices"]) for i in keep]
    metrics = task_metrics(examples, chances, task.skipped + len(encoded) - len(rows), task.metrics)
    return TaskResult(task.name, task.source, metrics, examples)


def load_tasks(
    names: Sequence[str], *, limit: int | None = 500, data_dir: str | Path | None = None, format: str = DEFAULT_FORMAT
) -> list[Task]:
    """Load tasks up front (before a big model is loaded) and refuse any without a valid item."""
    out = []
    for name in names:
        task = load_task(name, limit=limit, data_dir=data_dir, format=format)
        if not task.items:
            raise InterpError(f"{task.name}: no valid items in {task.source} ({task.skipped} rows skipped for missing "
                              "or malformed fields)")
        out.append(task)
    return out


def evaluate(
    engine: Engine,
    tasks: Sequence[str | Task],
    *,
    attention: str = "causal",
    limit: int | None = 500,
    batch_size: int = 16,
    data_dir: str | Path | None = None,
    format: str = DEFAULT_FORMAT,
    out_dir: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    show_progress: bool = True,
    bidirectional_layers: Sequence[int] | None = None,
) -> dict:
    """Evaluate `tasks` (names, or Tasks from `load_tasks`) and return metrics.json's content.

    `format` picks the benchmarks' prompt format: "lm-eval" (lm-evaluation-harness's task
    definitions) or "seed" (the ministral3 ablation format); toy tasks and JSONL files have their own.
    With `out_dir`, each task's results are written as soon as it finishes
    (out_dir/tasks/<task>.json and .csv); with `resume`, tasks already finished there under the
    same model, mode, limit and format are read back instead of run again. At the end out_dir gets
    metrics.json and examples.csv (atomically). bidirectional_layers: the layers where `attention`
    applies (None: all), the others causal; recorded in metrics.json.
    """
    import pandas as pd

    check_mode(attention)
    check_format(format)
    if not tasks:
        raise InterpError("no tasks given")
    log = log or (lambda message: None)
    layers = sorted(check_layers(bidirectional_layers, engine.n_layers)) if bidirectional_layers is not None else None
    settings = {"model": engine.name, "attention": attention, "limit": limit, "format": format}
    if layers is not None:
        settings["bidirectional_layers"] = layers
    shown = mode_label(attention, layers)
    if attention in LEAKY_MODES:
        log(LEAK_WARNING)
    per_task, sources, tables = {}, {}, []
    for spec in tasks:
        name = spec.name if isinstance(spec, Task) else task_key(spec)
        done = _finished_task(out_dir, name, settings) if (out_dir is not None and resume) else None
        if done is not None:
            metrics, source, examples = done
            log(f"{name} ({shown}): already finished in {out_dir}, skipped (--resume)")
        else:
            task = spec if isinstance(spec, Task) else load_tasks([spec], limit=limit, data_dir=data_dir, format=format)[0]
            log(f"{name} ({shown}): {len(task.items)} items ({task.skipped} skipped) from {task.source}")
            result = evaluate_task(engine, task, attention=attention, batch_size=batch_size, show_progress=show_progress,
                                   bidirectional_layers=layers)
            metrics, source, examples = result.metrics, result.source, result.examples
            if out_dir is not None:
                _write_task(out_dir, name, metrics, source, examples, settings)
        log(f"{name} ({shown}): n={metrics['n']} " + " ".join(
            f"{k}={_fmt(metrics[k])}" for k in ("acc", "acc_norm", "acc_cc", "chance")))
        per_task[name], sources[name] = metrics, source
        tables.append(examples)
    out = {
        "model": engine.name,
        "attention": attention,
        **({"bidirectional_layers": layers} if layers is not None else {}),  # the mode's layers, when not all
        "leaky": attention in LEAKY_MODES,
        **({"warning": LEAK_WARNING} if attention in LEAKY_MODES else {}),
        "limit": limit,
        "format": format,
        "tasks": per_task,
        **{f"macro_{metric}": macro(per_task, metric) for metric in MACRO_METRICS},
        "sources": sources,
    }
    if out_dir is not None:
        write_table(pd.concat(tables, ignore_index=True), Path(out_dir) / "examples.csv")
        write_json(Path(out_dir) / "metrics.json", out)
    return out


def _fmt(value, width: int = 0) -> str:
    return f"{'—':>{width}}" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:>{width}.4f}"


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _task_file(out_dir: str | Path, name: str, suffix: str) -> Path:
    return Path(out_dir) / "tasks" / f"{name}{suffix}"


def _write_task(out_dir, name: str, metrics: dict, source: str, examples, settings: dict) -> None:
    write_table(examples, _task_file(out_dir, name, ".csv"))
    write_json(_task_file(out_dir, name, ".json"), {"metrics": metrics, "source": source, **settings})


def _finished_task(out_dir, name: str, settings: dict):
    """(metrics, source, examples) of a task finished in out_dir under the same settings, else None."""
    import pandas as pd

    meta_path, table_path = _task_file(out_dir, name, ".json"), _task_file(out_dir, name, ".csv")
    if not (meta_path.exists() and table_path.exists()):
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    differs = {k: (meta.get(k), v) for k, v in settings.items() if meta.get(k) != v}
    if differs:
        what = ", ".join(f"{k} {old!r} there vs {new!r} now" for k, (old, new) in differs.items())
        raise InterpError(f"cannot resume {name} in {out_dir}: it was run with other settings ({what})")
    return meta["metrics"], meta.get("source", ""), pd.read_csv(table_path)


def format_metrics(metrics: dict) -> str:
    """metrics.json as a small text table (with the leak warning first when leaky)."""
    lines = [f"WARNING: {LEAK_WARNING}"] if metrics.get("leaky") else []
    mode = mode_label(metrics["attention"], metrics.get("bidirectional_layers")) + (" (LEAKY)" if metrics.get("leaky") else "")
    lines.append(f"model: {metrics.get('model', '?')}   attention: {mode}   format: {metrics.get('format', '?')}")
    lines.append(f"{'task':<18}{'n':>6}{'skipped':>9}{'acc':>9}{'±':>8}{'acc_norm':>10}{'±':>8}{'tok_norm':>10}"
                 f"{'acc_cc':>9}{'chance':>9}")
    for name, m in metrics["tasks"].items():
        lines.append(f"{name:<18}{m['n']:>6}{m['skipped']:>9}{_fmt(m['acc'], 9)}{_fmt(m.get('acc_stderr'), 8)}"
                     f"{_fmt(m.get('acc_norm'), 10)}{_fmt(m.get('acc_norm_stderr'), 8)}"
                     f"{_fmt(m.get('acc_token_norm'), 10)}{_fmt(m.get('acc_cc'), 9)}{_fmt(m['chance'], 9)}")
    lines.append(f"{'macro':<18}{'':>6}{'':>9}{_fmt(metrics['macro_acc'], 9)}{'':>8}"
                 f"{_fmt(metrics['macro_acc_norm'], 10)}{'':>8}{_fmt(metrics.get('macro_acc_token_norm'), 10)}"
                 f"{_fmt(metrics.get('macro_acc_cc'), 9)}")
    return "\n".join(lines)
