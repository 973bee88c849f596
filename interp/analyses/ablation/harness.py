"""interp as an lm-evaluation-harness model, in every attention mode.

    import interp, lm_eval
    lm_eval.simple_evaluate(model="interp", model_args="pretrained=toy,attention=prefix", tasks=["hellaswag"])

`import interp` registers the name "interp" with lm-eval's model registry (lazily: this module is
imported only when lm-eval asks for the model). model_args: pretrained (hub id, directory or
"toy"), attention (causal | prefix | bidirectional), dtype, device, batch_size, trust_remote_code.

  loglikelihood          the context in the chosen mode, the continuation causal: exactly
                         `interp eval`'s scores (same tokenization, same batching). Requests that
                         share a context are prefilled once and scored from its KV cache.
                         bidirectional lets the continuation see its own future: LEAKY.
  generate_until         greedy: the prompt prefilled in the chosen mode (prefix and
                         bidirectional both make the whole prompt bidirectional), then causal
                         decoding; cut at the first stop sequence, at most max_gen_toks tokens.
  loglikelihood_rolling  perplexity over lm-eval's rolling windows, causal only: a text scored
                         under itself has no context to prefill differently.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

import interp
from interp.analyses.ablation.scoring import (
    LEAK_WARNING,
    LEAKY_MODES,
    encode_requests,
    leading_special_tokens,
    prefix_token,
    score_requests,
)
from interp.engine.masks import check_mode
from interp.errors import InterpError, one_line
from interp.util.distributed import map_sharded
from interp.util.progress import progress_bar

log = logging.getLogger(__name__)
DEFAULT_MAX_LENGTH = 2048  # when the config gives no max_position_embeddings
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")


@register_model("interp")
class InterpLM(LM):
    """An lm-eval model backed by interp's engine; see the module docstring."""

    def __init__(
        self,
        pretrained: str = "toy",
        attention: str = "causal",
        dtype: str = "float32",
        device: str = "cpu",
        batch_size: int | str = 16,
        trust_remote_code: bool | str = False,
        engine: interp.Engine | None = None,
        max_batch_size: Any = None,  # lm-eval passes it for "auto" batch sizes; not used
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise InterpError(f"unknown model_args for the interp model: {', '.join(sorted(unknown))}; known: "
                              "pretrained, attention, dtype, device, batch_size, trust_remote_code")
        check_mode(attention)
        try:
            self.batch_size = int(batch_size)
        except (TypeError, ValueError):
            raise InterpError(f"batch_size must be a whole number for the interp model, not {batch_size!r}") from None
        if self.batch_size < 1:
            raise InterpError(f"batch size must be ≥ 1, not {batch_size}")
        self.attention = attention
        self.engine = engine if engine is not None else interp.load(
            pretrained, dtype=dtype, device=device, trust_remote_code=_flag(trust_remote_code))
        self.pretrained = str(pretrained)
        self.tokenizer = self.engine.tokenizer
        self._device = self.engine.device
        if attention in LEAKY_MODES:
            log.warning(LEAK_WARNING)

    # ----------------------------------------------------------------- what lm-eval reads
    @property
    def leaky(self) -> bool:
        return self.attention in LEAKY_MODES

    @property
    def max_length(self) -> int:
        return self.engine.max_positions or DEFAULT_MAX_LENGTH

    @property
    def eot_token_id(self) -> int | None:
        return self.tokenizer.eos_token_id

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", self.pretrained)).replace("/", "__")

    # ----------------------------------------------------------------- requests
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [tuple(r.args[:2]) for r in requests]
        encoded = encode_requests(self.tokenizer, pairs, self.max_length)
        for (context, continuation), enc in zip(pairs, encoded):
            if enc is None:
                raise InterpError(f"cannot score continuation {continuation[:40]!r}: it is empty or alone fills "
                                  f"the model's {self.max_length} positions")
        label = None if disable_tqdm else f"loglikelihood ({self.attention}{', LEAKY' if self.leaky else ''})"
        scores = score_requests(self.engine, encoded, attention=self.attention, batch_size=self.batch_size,
                                progress=label)
        out = [(s.logprob, s.greedy) for s in scores]
        for pair, result in zip(pairs, out):
            self.cache_hook.add_partial("loglikelihood", pair, result)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        if self.attention != "causal":
            raise InterpError(f"loglikelihood_rolling (perplexity) is causal only: a text scored under itself has no "
                              f"context to prefill in {self.attention} mode; run this task with attention=causal")
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        windows, owner = [], []
        for i, request in enumerate(requests):
            tokens = self.tokenizer(request.args[0], add_special_tokens=False)["input_ids"]
            for window in get_rolling_token_windows(token_list=tokens, prefix_token=prefix_token(self.tokenizer),
                                                    max_seq_len=self.max_length, context_len=1):
                windows.append(make_disjoint_window(window))
                owner.append(i)
        scores = score_requests(self.engine, windows, attention="causal", batch_size=self.batch_size,
                                progress=None if disable_tqdm else "loglikelihood_rolling")
        totals = [0.0] * len(requests)
        for i, s in zip(owner, scores):
            totals[i] += s.logprob
        for request, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", (request.args[0],), total)
        return totals

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        eos = self.tokenizer.decode([self.eot_token_id]) if self.eot_token_id is not None else None
        out: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str), []).append(i)
        with progress_bar(f"generate_until ({self.attention})", len(requests), disable=disable_tqdm) as advance:
            for members in groups.values():
                self._generate_group(requests, members, out, eos, advance)
        for request, text in zip(requests, out):
            self.cache_hook.add_partial("generate_until", request.args, text)
        return out  # type: ignore[return-value]

    def _generate_group(self, requests, members: list[int], out: list, eos: str | None, advance) -> None:
        """Requests sharing generation kwargs, batched by prompt length; texts go to out[i]."""
        from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text

        kwargs = normalize_gen_kwargs(requests[members[0]].args[1], DEFAULT_MAX_GEN_TOKS)
        if kwargs.get("do_sample"):
            raise InterpError("the interp model decodes greedily; this task asks for sampling (do_sample=True)")
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen = int(kwargs.pop("max_gen_toks"))
        if max_gen >= self.max_length:
            raise InterpError(f"max_gen_toks {max_gen} leaves no room for a prompt in {self.max_length} positions")
        prompts = [self._prompt_ids(requests[i].args[0], self.max_length - max_gen) for i in members]
        order = sorted(range(len(members)), key=lambda k: -len(prompts[k]))  # similar lengths batch together
        chunks = [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]

        def run(mine: list[list[int]]) -> list[list[str]]:
            texts = []
            for chunk in mine:
                texts.append(self._generate([prompts[k] for k in chunk], max_gen))
                advance(len(chunk))
            return texts

        # Under torchrun / accelerate launch each rank decodes every world_size-th batch; all ranks get all texts.
        for chunk, texts in zip(chunks, map_sharded(run, chunks)):
            for k, text in zip(chunk, texts):
                out[members[k]] = postprocess_generated_text(text, until, None)

    # ----------------------------------------------------------------- helpers
    def _prompt_ids(self, context: str, room: int) -> list[int]:
        """The prompt's tokens as `interp eval` encodes a context (leading special tokens), left-truncated."""
        ids = leading_special_tokens(self.tokenizer) + self.tokenizer(context, add_special_tokens=False)["input_ids"]
        if not ids:
            ids = [prefix_token(self.tokenizer)]
        return ids[-room:]

    def _generate(self, prompts: Sequence[list[int]], max_gen: int) -> list[str]:
        """Greedy continuations of left-padded prompts: the prompt in the chosen mode, decoding causal."""
        from interp.util.padding import pad

        ids, mask = pad(prompts, "left")  # [B,T]
        # prefix with no prefix_len: the whole prompt is the prefix; bidirectional prefill is the same thing here.
        mode = "prefix" if self.attention in ("prefix", "bidirectional") else "causal"
        generation = self.engine.generate(ids, attention_mask=mask, attention=mode, max_new_tokens=max_gen)
        return generation.texts


# ------------------------------------------------------------------------------------- a whole run
def run_harness(
    model: str | None,
    tasks: Sequence[str],
    *,
    out_dir: str | Path,
    attention: str = "causal",
    num_fewshot: int | None = None,
    limit: int | float | None = None,
    include_path: str | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    dtype: str = "float32",
    trust_remote_code: bool = False,
    seed: int = 0,
) -> dict:
    """lm_eval.simple_evaluate with the interp model; writes OUT/results.json (lm-eval's results, with
    the run's provenance under "interp") and OUT/samples_<task>.jsonl (lm-eval's logged samples)."""
    import lm_eval
    from lm_eval.utils import handle_non_serializable

    from interp.util.io import write_text
    from interp.util.provenance import provenance

    check_mode(attention)
    if not tasks:
        raise InterpError("no tasks given: pass --tasks NAME,NAME")
    manager = _task_manager(tasks, include_path)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise InterpError(f"lm-eval knows no task {', '.join(map(repr, unknown))} (--include-path adds task YAMLs)")
    lm = InterpLM(pretrained=model or "toy", attention=attention, dtype=dtype, device=device, batch_size=batch_size,
                  trust_remote_code=trust_remote_code)
    try:
        results = lm_eval.simple_evaluate(
            model=lm, tasks=list(tasks), num_fewshot=num_fewshot, limit=limit, task_manager=manager, log_samples=True,
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        )
    except InterpError:
        raise
    except Exception as exc:  # a task's data unreachable, a bad task config: lm-eval's message, on one line
        raise InterpError(f"lm-eval could not run {', '.join(tasks)}: {one_line(exc, 300)}") from None
    if results is None:  # lm-eval returns the results on the main process only (torchrun / accelerate launch)
        return {}
    samples = results.pop("samples", {})
    results["interp"] = {
        "model": lm.engine.name or str(model), "attention": attention, "leaky": lm.leaky,
        **({"warning": LEAK_WARNING} if lm.leaky else {}),
        "provenance": provenance(seed=seed, device=str(lm.engine.device)),
    }
    out = Path(out_dir)
    dump = lambda obj: json.dumps(obj, default=handle_non_serializable, ensure_ascii=False)  # noqa: E731
    write_text(out / "results.json", json.dumps(results, indent=2, default=handle_non_serializable,
                                                  ensure_ascii=False) + "\n")
    for task, rows in samples.items():
        write_text(out / f"samples_{task}.jsonl", "".join(dump(row) + "\n" for row in rows))
    results["samples"] = samples
    return results


def _task_manager(tasks: Sequence[str], include_path: str | None):
    """lm-eval's TaskManager; when --include-path holds every task asked for, without indexing the
    14 000 built-in task configs (tens of seconds)."""
    from lm_eval.tasks import TaskManager

    if include_path is not None:
        local = TaskManager(include_path=include_path, include_defaults=False)
        if all(t in local.all_tasks for t in tasks):
            return local
    return TaskManager(include_path=include_path)


def format_results(results: dict) -> str:
    """lm-eval's own results table (what `lm_eval` prints), after the leak warning when leaky."""
    from lm_eval.utils import make_table

    info = results.get("interp", {})
    head = [f"WARNING: {LEAK_WARNING}"] if info.get("leaky") else []
    head.append(f"model: {info.get('model', '?')}   attention: {info.get('attention', '?')}"
                + (" (LEAKY)" if info.get("leaky") else ""))
    return "\n".join([*head, make_table(results)])
