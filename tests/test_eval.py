"""The evaluator's scores are exactly the log-likelihoods docs/semantics.md defines, however they are batched."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from interp.analyses.ablation import evaluate as evaluate_module
from interp.analyses.ablation import metrics as ev
from interp.analyses.ablation.eval_table import format_metrics
from interp.results import without_contract
from interp.analyses.ablation.eval_files import EXAMPLE_COLUMNS
from interp.analyses.ablation.evaluate import evaluate
from interp.analyses.ablation.metrics import TASK_METRICS
from interp.analyses.ablation.scoring import Encoded, encode_items, score_encoded
from interp.errors import InterpError

TOL = 1e-4
MODES = ("causal", "prefix", "bidirectional")


def synthetic_encoded(n: int, seed: int = 0) -> list[Encoded]:
    """Items of varied context length (2–17 tokens) with 2–5 choices of 1–9 tokens each."""
    rng = random.Random(seed)
    tok = lambda k: [rng.randrange(4, 320) for _ in range(k)]  # noqa: E731
    return [Encoded([1] + tok(rng.randrange(1, 17)), [tok(rng.randrange(1, 10)) for _ in range(rng.randrange(2, 6))])
            for _ in range(n)]


def continuation_logprob(log_probs: torch.Tensor, tokens: list[int], start: int) -> float:
    """Σ log p(tokens[j]) read from log_probs [T,V] at rows start-1+j."""
    return sum(log_probs[start - 1 + j, t].item() for j, t in enumerate(tokens))


def max_diff(a, b) -> float:
    return max(abs(x - y) for sa, sb in zip(a, b) for x, y in zip(sa.logprobs, sb.logprobs))


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window", "ministral3"])
@pytest.mark.parametrize("mode", ["prefix", "causal"])
def test_scores_equal_prefill_then_token_by_token_decode(engines, variant, mode):
    """prefix = bidirectional prefill of the context, then causal decoding one token at a time."""
    engine = engines(variant)
    items = synthetic_encoded(5, seed=1)
    ours = score_encoded(engine, items, attention=mode, batch_size=3)
    with torch.no_grad():
        for item, scores in zip(items, ours):
            ctx = torch.tensor([item.context])
            for choice, got, n in zip(item.choices, scores.logprobs, scores.n_tokens):
                out = engine.run(ctx, attention=mode, prefix_len=len(item.context), use_cache=True, logits="last")
                total = 0.0
                for token in choice:
                    total += out.logits[0, -1].float().log_softmax(-1)[token].item()
                    out = engine.run(torch.tensor([[token]]), past=out.past, use_cache=True, logits="last")
                assert n == len(choice)
                assert abs(got - total) <= TOL


@pytest.mark.parametrize("mode", MODES)
def test_all_choices_together_equal_one_full_forward_per_choice(engines, mode):
    engine = engines("qwen3_gqa4")
    items = synthetic_encoded(4, seed=2)
    ours = score_encoded(engine, items, attention=mode, batch_size=4)
    with torch.no_grad():
        for item, scores in zip(items, ours):
            for choice, got in zip(item.choices, scores.logprobs):
                full = torch.tensor([item.context + choice])
                logits = engine.run(full, attention=mode, prefix_len=len(item.context)).logits[0]
                assert abs(got - continuation_logprob(logits.float().log_softmax(-1), choice, len(item.context))) <= TOL


def test_causal_scores_equal_the_transformers_model(engines):
    """Independent of the engine: the Hugging Face forward's own log-probs."""
    engine = engines("llama")
    items = synthetic_encoded(4, seed=3)
    ours = score_encoded(engine, items, attention="causal", batch_size=2)
    with torch.no_grad():
        for item, scores in zip(items, ours):
            for choice, got in zip(item.choices, scores.logprobs):
                logits = engine.model(input_ids=torch.tensor([item.context + choice])).logits[0]
                assert abs(got - continuation_logprob(logits.float().log_softmax(-1), choice, len(item.context))) <= TOL


@pytest.mark.parametrize("variant", ["qwen3", "mistral_window"])
@pytest.mark.parametrize("mode", MODES)
def test_batched_equals_unbatched(engines, variant, mode):
    engine = engines(variant)
    items = synthetic_encoded(9, seed=4)
    alone = score_encoded(engine, items, attention=mode, batch_size=1)
    for batch_size in (4, 9):
        batched = score_encoded(engine, items, attention=mode, batch_size=batch_size)
        assert [s.n_tokens for s in batched] == [[len(c) for c in it.choices] for it in items]
        assert max_diff(alone, batched) <= TOL


def test_the_three_modes_give_different_scores(engines):
    """A guard for the tests above: if prefix silently ran causally they would still pass."""
    engine = engines("qwen3")
    items = synthetic_encoded(4, seed=5)
    causal, prefix, bidir = (score_encoded(engine, items, attention=m) for m in MODES)
    assert max_diff(causal, prefix) > 0.05
    assert max_diff(prefix, bidir) > 0.05


def test_unknown_mode_and_bad_batch_size(engines):
    with pytest.raises(InterpError, match="unknown attention mode 'sideways'"):
        score_encoded(engines("qwen3"), synthetic_encoded(1), attention="sideways")
    with pytest.raises(InterpError, match="batch size"):
        score_encoded(engines("qwen3"), synthetic_encoded(1), batch_size=0)


# ------------------------------------------------------------------------------------- tokens
@pytest.fixture(scope="module")
def merging_tokenizer():
    """Byte-level BPE with merges Ġ·a → Ġa, Ġa·b → Ġab, a·b → ab; no BOS (like Qwen)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>"] + alphabet + ["ab", "Ġa", "Ġab"])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("Ġ", "a"), ("Ġa", "b"), ("a", "b")]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def test_trailing_space_moves_to_the_continuation(merging_tokenizer):
    ids = merging_tokenizer.convert_tokens_to_ids
    [enc] = encode_items(merging_tokenizer, [{"context": "ab ", "choices": ["ab", "x"], "label": 0}])
    assert enc == [([ids("ab")], [ids("Ġab")]), ([ids("ab")], [ids("Ġ"), ids("x")])]


def test_continuation_is_the_joint_tokenization_after_the_context(merging_tokenizer):
    """"xa" + "b": the joint text merges a·b across the boundary; like the harness, the context keeps
    its own tokens [x, a] and the continuation is the joint tokens after the first two."""
    ids = merging_tokenizer.convert_tokens_to_ids
    [enc] = encode_items(merging_tokenizer, [{"context": "xa", "choices": ["b c", "c"], "label": 0}])
    assert enc == [([ids("x"), ids("a")], [ids("Ġ"), ids("c")]), ([ids("x"), ids("a")], [ids("c")])]


def test_leading_bos_is_kept_and_an_empty_context_gets_one(engines, merging_tokenizer):
    tok = engines("qwen3").tokenizer  # adds <s> (id 1) in front of every text
    [enc] = encode_items(tok, [{"context": "hi", "choices": [" a", " b"], "label": 0}])
    assert enc[0][0] == enc[1][0] == [1] + tok("hi", add_special_tokens=False)["input_ids"]
    [empty] = encode_items(merging_tokenizer, [{"context": "", "choices": ["x", "ab"], "label": 0}])
    assert empty[0][0] == [merging_tokenizer.bos_token_id]


def test_long_contexts_lose_tokens_from_the_left(engines):
    tok = engines("qwen3").tokenizer  # byte-level: one token per character
    [enc, too_long] = encode_items(tok, [{"context": "x" * 300, "choices": ["ab", "abcd"], "label": 0},
                                         {"context": "x", "choices": ["y" * 300, "z"], "label": 0}], max_length=256)
    assert len(enc[1][0]) + 4 == 256 and enc[1][1] == tok("abcd", add_special_tokens=False)["input_ids"]
    assert len(enc[0][0]) + 2 == 256
    assert too_long is None


# ------------------------------------------------------------------------------------- outputs
def write_items(path, items, malformed=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in [*items, *malformed]) + "not json\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def argmax_task(engines, tmp_path):
    """Single-character choices, the right one being the model's most likely next token: acc must be 1."""
    engine = engines("qwen3")
    rng = random.Random(0)
    items = []
    for i in range(6):
        context = "".join(rng.choice("abcdefgh ") for _ in range(8 + i)).strip() or "a"
        ids, _ = engine.tokenize(context)
        with torch.no_grad():
            log_probs = engine.run(ids, logits="last").logits[0, -1].log_softmax(-1)
        chars = [c for c in map(chr, range(33, 127)) if len(engine.tokenizer(c, add_special_tokens=False)["input_ids"]) == 1]
        scores = {c: log_probs[engine.tokenizer(c, add_special_tokens=False)["input_ids"][0]].item() for c in chars}
        ranked = sorted(scores, key=scores.get, reverse=True)
        choices = [ranked[-1], ranked[0], ranked[len(ranked) // 2]][: 2 + i % 2]
        items.append({"context": context, "choices": choices, "label": 1})
    malformed = [{"context": "x", "choices": ["a"], "label": 0}, {"context": "x", "choices": ["a", "b"], "label": 2},
                 {"choices": ["a", "b"], "label": 0}]
    return write_items(tmp_path / "argmax.jsonl", items, malformed)


def test_metrics_json_and_examples_csv_have_the_documented_shape(engines, argmax_task, tmp_path):
    engine = engines("qwen3")
    out = tmp_path / "out"
    metrics = evaluate(engine, [argmax_task], attention="causal", limit=500, batch_size=4, out_dir=out, show_progress=False)
    assert without_contract(json.loads((out / "metrics.json").read_text())) == metrics
    assert set(metrics) == {"model", "attention", "leaky", "limit", "format", "tasks", "macro_acc", "macro_acc_norm",
                            "macro_acc_token_norm", "macro_acc_cc", "truncated", "sources"}
    assert metrics["attention"] == "causal" and metrics["leaky"] is False and metrics["limit"] == 500
    task = metrics["tasks"]["argmax"]
    assert list(task) == list(TASK_METRICS)
    assert task["n"] == 6 and task["skipped"] == 4  # three malformed rows and a line that is not JSON
    assert task["acc"] == 1.0 and task["chance"] == pytest.approx((3 * 1 / 2 + 3 * 1 / 3) / 6)
    assert task["acc_cc"] == 1.0 and task["acc_stderr"] == 0.0
    assert metrics["macro_acc"] == task["acc"] and metrics["macro_acc_norm"] == task["acc_norm"]
    examples = pd.read_csv(out / "examples.csv")
    assert tuple(examples.columns) == EXAMPLE_COLUMNS
    assert list(examples["index"]) == list(range(6)) and set(examples.task) == {"argmax"}
    items = [json.loads(line) for line in open(argmax_task).read().splitlines()[:6]]
    for row, item in zip(examples.itertuples(), items):
        logprobs, n_tokens, n_chars = json.loads(row.logprobs), json.loads(row.n_tokens), json.loads(row.n_chars)
        assert len(logprobs) == len(n_tokens) == (2 if row.index % 2 == 0 else 3) and set(n_tokens) == set(n_chars) == {1}
        assert row.context == item["context"] and json.loads(row.choices) == item["choices"]
        assert row.pred == max(range(len(logprobs)), key=logprobs.__getitem__) == row.label
        assert row.pred_norm == row.pred_token_norm == row.pred and not row.leaky  # one token each


def test_bidirectional_is_labelled_leaky_everywhere(engines, argmax_task, tmp_path):
    metrics = evaluate(engines("qwen3"), [argmax_task], attention="bidirectional", out_dir=tmp_path, show_progress=False)
    assert metrics["leaky"] is True and "LEAKY" in metrics["warning"]
    assert pd.read_csv(tmp_path / "examples.csv").leaky.all()
    assert format_metrics(metrics).startswith("WARNING: LEAKY")


def test_limit_and_macro_over_tasks(engines, argmax_task, tmp_path):
    second = write_items(tmp_path / "second.jsonl", [{"context": "ab", "choices": ["c", "d"], "label": 0}] * 3)
    metrics = evaluate(engines("qwen3"), [argmax_task, second], limit=2, show_progress=False)
    assert [m["n"] for m in metrics["tasks"].values()] == [2, 2]
    accs = [m["acc"] for m in metrics["tasks"].values()]
    assert metrics["macro_acc"] == pytest.approx(sum(accs) / 2)


def test_resume_skips_finished_tasks_and_refuses_other_settings(engines, argmax_task, tmp_path, monkeypatch):
    engine = engines("qwen3")
    first = evaluate(engine, [argmax_task], out_dir=tmp_path, show_progress=False)
    monkeypatch.setattr(evaluate_module, "evaluate_task", lambda *a, **k: pytest.fail("a finished task was run again"))
    assert evaluate(engine, [argmax_task], out_dir=tmp_path, resume=True, show_progress=False) == first
    with pytest.raises(InterpError, match="cannot resume argmax.*attention 'causal' there vs 'prefix' now"):
        evaluate(engine, [argmax_task], attention="prefix", out_dir=tmp_path, resume=True, show_progress=False)


def test_eval_command(model_dirs, argmax_task, tmp_path):
    from interp.cli.ablation.eval import eval_cmd

    app = typer.Typer()
    app.command()(eval_cmd)
    args = ["--model", str(model_dirs("qwen3")), "--tasks", argmax_task, "--out", str(tmp_path), "--batch-size", "2"]
    result = CliRunner().invoke(app, [*args, "--attention", "bidirectional"])
    assert result.exit_code == 0, result.output
    assert "LEAKY" in result.stdout and "argmax" in result.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["leaky"] is True
    bad = CliRunner().invoke(app, [*args, "--attention", "sideways"])
    assert isinstance(bad.exception, InterpError)


def test_a_task_without_valid_items_is_refused(engines, tmp_path):
    path = write_items(tmp_path / "empty.jsonl", [], [{"context": "x", "choices": ["a"], "label": 0}])
    with pytest.raises(InterpError, match=r"empty: no valid items in .*empty.jsonl \(2 rows skipped"):
        evaluate(engines("qwen3"), [path], show_progress=False)


# ------------------------------------------------------------------------------------- metrics
def test_acc_norm_divides_by_characters_and_can_disagree_with_acc(engines, tmp_path):
    """A one-character choice against two-character ones: some pair has the higher sum on the one
    and the higher per-character score on the other. acc_norm (characters, delimiter left out) and
    acc_token_norm (tokens, the delimiter's token included) then pick as recomputed here."""
    engine = engines("qwen3")  # byte-level: one token per character
    tok = engine.tokenizer
    context = "q: hello"
    with torch.no_grad():
        def score(text):
            ids = tok(context + text)["input_ids"]
            start = len(tok(context)["input_ids"])
            logp = engine.run(torch.tensor([ids])).logits[0].float().log_softmax(-1)
            return sum(logp[start - 1 + j, t].item() for j, t in enumerate(ids[start:]))
        singles = {c: score(" " + c) for c in "abcdefgh"}
        doubles = {c + d: score(" " + c + d) for c in "abcd" for d in "abcd"}
    short, long = next((s, d) for s in singles for d in doubles
                       if singles[s] > doubles[d] and doubles[d] / 2 > singles[s] / 1)
    item = {"context": context, "choices": [" " + short, " " + long], "label": 1, "delimiter": " "}
    path = write_items(tmp_path / "norm.jsonl", [item] * 3)
    metrics = evaluate(engine, [path], out_dir=tmp_path / "out", show_progress=False)
    row = pd.read_csv(tmp_path / "out" / "examples.csv").iloc[0]
    assert json.loads(row.n_chars) == [1, 2] and json.loads(row.n_tokens) == [2, 3]
    assert json.loads(row.logprobs) == pytest.approx([singles[short], doubles[long]], abs=TOL)
    token_means = [singles[short] / 2, doubles[long] / 3]
    assert (row.pred, row.pred_norm, row.pred_token_norm) == (0, 1, int(token_means[1] > token_means[0]))
    task = metrics["tasks"]["norm"]
    assert (task["acc"], task["acc_norm"], task["acc_cc"]) == (0.0, 1.0, -1.0)
    assert task["acc_stderr"] == 0.0 and task["chance"] == 0.5


def test_stderr_chance_correction_and_macro_follow_lm_eval():
    from lm_eval.api.metrics import mean_stderr

    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert ev.mean_stderr(values) == pytest.approx(mean_stderr(values))
    assert ev.mean_stderr([1.0]) is None  # lm-eval: "N/A"
    assert ev.chance_corrected(0.25, 0.25) == 0.0 and ev.chance_corrected(0.625, 0.25) == 0.5
    assert ev.choice_chars({"choices": [" ab", "  c", "xy"]}) == [2, 1, 2]
    assert ev.choice_chars({"choices": ["  ab", " c"], "delimiter": " "}) == [3, 1]
    per_task = {"a": {"acc": 0.5, "acc_norm": 0.7}, "winogrande": {"acc": 0.6, "acc_norm": None}}
    assert ev.macro(per_task, "acc_norm") == pytest.approx(0.65) and ev.macro(per_task, "acc") == pytest.approx(0.55)


def _jsonl(path, items):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    return str(path)


def test_same_name_tasks_are_refused_in_one_line(engines, tmp_path):
    items = [{"context": "a b", "choices": ["c", "d"], "label": 0}]
    a, b = _jsonl(tmp_path / "a" / "mut.jsonl", items), _jsonl(tmp_path / "b" / "mut.jsonl", items)
    with pytest.raises(InterpError, match=r"tasks .*a/mut.jsonl and .*b/mut.jsonl would both be reported as 'mut'"):
        evaluate(engines("qwen3"), [a, b], out_dir=tmp_path / "E", show_progress=False)
    assert not (tmp_path / "E").exists()  # refused before any work


def test_resume_reruns_a_task_whose_items_changed(engines, tmp_path):
    engine = engines("qwen3")
    path = tmp_path / "t.jsonl"
    _jsonl(path, [{"context": "a b", "choices": ["c", "d"], "label": 0}] * 2)
    first = evaluate(engine, [str(path)], out_dir=tmp_path / "E", show_progress=False)
    assert first["tasks"]["t"]["n"] == 2
    _jsonl(path, [{"context": "a b", "choices": ["c", "d"], "label": 0}] * 3)
    lines = []
    again = evaluate(engine, [str(path)], out_dir=tmp_path / "E", resume=True, log=lines.append, show_progress=False)
    assert again["tasks"]["t"]["n"] == 3 and any("items changed" in line for line in lines)


def test_resume_refuses_a_damaged_task_file(engines, argmax_task, tmp_path):
    engine = engines("qwen3")
    evaluate(engine, [argmax_task], out_dir=tmp_path, show_progress=False)
    (tmp_path / "tasks" / "argmax.json").write_text("{broken")
    with pytest.raises(InterpError, match=r"argmax.json is damaged: not valid JSON"):
        evaluate(engine, [argmax_task], out_dir=tmp_path, resume=True, show_progress=False)


def test_contexts_longer_than_the_model_are_counted_warned_and_shown_as_scored(engines, tmp_path):
    engine = engines("qwen3")
    long_context = " ".join(["word"] * (engine.max_positions + 20))
    path = _jsonl(tmp_path / "long.jsonl", [{"context": long_context, "choices": [" a", " b"], "label": 0},
                                            {"context": "short", "choices": [" a", " b"], "label": 1}])
    lines = []
    metrics = evaluate(engine, [path], out_dir=tmp_path / "E", log=lines.append, show_progress=False)
    assert metrics["tasks"]["long"]["truncated"] == 1 and metrics["truncated"] == 1 and metrics["tasks"]["long"]["n"] == 2
    assert any("WARNING: long: 1 item(s) longer than" in line for line in lines)
    examples = pd.read_csv(tmp_path / "E" / "examples.csv", keep_default_na=False)
    scored, short = examples["context"].tolist()
    assert scored.startswith("…") and len(scored) < len(long_context) and long_context.endswith(scored[1:].strip())
    assert short == "short"
