"""Comparable with lm-evaluation-harness: its requests from our converters, its `hf` model's numbers
from ours, and interp as an lm-eval model equal to `interp eval` and `engine.generate`."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

import interp
import lm_eval.tasks
from interp.analyses.ablation.metrics import choice_chars
from interp.analyses.ablation.scoring import item_requests
from interp.data.benchmarks import BENCHMARKS
from interp.errors import InterpError
from interp.analyses.ablation.harness import InterpLM
from lm_eval.api.instance import Instance
from lm_eval.evaluator import evaluate as lm_eval_evaluate
from lm_eval.tasks import TaskManager, get_task_dict

TOL = 1e-4
FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
BUILTIN = Path(lm_eval.tasks.__file__).parent
# task → (lm-eval's own config, the split it evaluates)
CONFIGS = {
    "hellaswag": ("hellaswag/hellaswag.yaml", "validation"),
    "piqa": ("piqa/piqa.yaml", "validation"),
    "arc_easy": ("arc/arc_easy.yaml", "test"),
    "arc_challenge": ("arc/arc_challenge.yaml", "test"),
    "winogrande": ("winogrande/default.yaml", "validation"),
}
# Rows that exercise lm-eval's preprocessing beyond the fixtures: WikiHow brackets, an empty ctx_b.
EXTRA_ROWS = {
    "hellaswag": [
        {"activity_label": "Home and Garden", "ctx_a": "[header] How to prune roses [title] Cut dead wood.",
         "ctx_b": "", "endings": ["[step] Use sharp  shears.", "Water them [substeps] daily."], "label": "0"},
        {"activity_label": "Baking", "ctx_a": "A woman mixes flour.", "ctx_b": "she THEN",
         "endings": ["adds eggs.", " bakes it. "], "label": 1},
    ],
    "winogrande": [{"sentence": "The cup did not fit in the bag because _ was too big.", "option1": "the cup",
                    "option2": "the bag", "answer": "1"}],
}


def fixture_rows(path: Path) -> list:
    """A fixture file's JSON rows (its deliberately broken lines left out)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def write_yaml(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text(text, encoding="utf-8")


def requests_by_doc(task) -> dict[int, list[tuple[str, str]]]:
    task.build_all_requests(limit=None, rank=0, world_size=1)
    out = defaultdict(list)
    for inst in sorted(task.instances, key=lambda i: (i.doc_id, i.idx)):
        out[inst.doc_id].append(tuple(inst.args))
    return out


def test_converters_produce_lm_evals_own_requests(tmp_path):
    """lm-eval's built-in hellaswag, piqa, arc_easy, arc_challenge and winogrande configs (their YAML and
    utils, pointed at local rows) give exactly the (context, continuation) pairs, gold labels and
    acc_norm lengths our lm-eval format gives, row for row."""
    rows = {}
    for name, (config, split) in CONFIGS.items():
        bench = BENCHMARKS[name]
        valid = [r for r in fixture_rows(FIXTURES / name / f"{split}.jsonl") if bench.to_item(r) is not None]
        rows[name] = valid + EXTRA_ROWS.get(name, [])
        data = tmp_path / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows[name]), encoding="utf-8")
        splits = "training_split: null\n" + ("validation_split: null\n" if split == "test" else "")
        write_yaml(tmp_path / "tasks", f"local_{name}", f"include: {BUILTIN / config}\ntask: local_{name}\n"
                   f"dataset_path: json\ndataset_name: null\ndataset_kwargs:\n  data_files:\n    {split}: {data}\n{splits}")
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    tasks = get_task_dict([f"local_{n}" for n in CONFIGS], manager)
    for name in CONFIGS:
        task = tasks[f"local_{name}"]
        theirs = requests_by_doc(task)
        docs = list(task.eval_docs)
        assert len(docs) == len(rows[name]) >= 3
        for doc_id, (row, doc) in enumerate(zip(rows[name], docs)):
            item = BENCHMARKS[name].to_item(row)
            assert item_requests(item) == theirs[doc_id], (name, doc_id)
            gold = task.doc_to_text(doc) if task.multiple_input else task.doc_to_target(doc)
            assert item["label"] == gold
            if not task.multiple_input:  # acc_norm's divisor: lm-eval's len(choice)
                assert choice_chars(item) == [len(c) for c in task.doc_to_choice(doc)]
        assert BENCHMARKS[name].metrics() == tuple(task._metric_fn_list)


# ------------------------------------------------------------------------------------- numbers
def mc_rows(n: int, seed: int) -> list[dict]:
    """Multiple-choice docs of varied length (longer than a 5-token sliding window)."""
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "red", "mat", "and", "then", "slept", "Paris", "is"]
    text = lambda k: " ".join(rng.choice(words) for _ in range(k))  # noqa: E731
    return [{"context": text(rng.randrange(2, 9)).capitalize(), "options": [text(rng.randrange(1, 5)) for _ in range(3)],
             "label": rng.randrange(3)} for _ in range(n)]


def json_task(directory: Path, name: str, rows: list[dict]) -> None:
    """A local lm-eval task: dataset_path json, the context as the prompt, options after lm-eval's " "."""
    data = directory / f"{name}.jsonl"
    directory.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    write_yaml(directory, name, f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
               "output_type: multiple_choice\ntest_split: test\ndoc_to_text: \"{{context}}\"\n"
               "doc_to_choice: \"{{options}}\"\ndoc_to_target: label\nmetric_list:\n"
               "  - metric: acc\n  - metric: acc_norm\n")


def run_lm_eval(lm, directory: Path, name: str) -> dict:
    tasks = get_task_dict([name], TaskManager(include_path=str(directory), include_defaults=False))
    return lm_eval_evaluate(lm, tasks, log_samples=True, verbosity="ERROR")


def per_request(results: dict, name: str) -> list[float]:
    return [resp[0][0] for doc in sorted(results["samples"][name], key=lambda d: d["doc_id"]) for resp in doc["resps"]]


@pytest.mark.parametrize("variant", ["toy", "qwen3", "mistral_window"])
def test_causal_interp_equals_lm_evals_hf_model(variant, model_dirs, engines, tmp_path):
    from lm_eval.models.huggingface import HFLM

    path = interp.resolve_model("toy") if variant == "toy" else str(model_dirs(variant))
    engine = interp.load(path) if variant == "toy" else engines(variant)
    json_task(tmp_path, "mc", mc_rows(6, seed=len(variant)))
    hf = run_lm_eval(HFLM(pretrained=path, dtype="float32", device="cpu", batch_size=4), tmp_path, "mc")
    ours = run_lm_eval(InterpLM(engine=engine, batch_size=4), tmp_path, "mc")
    a, b = per_request(hf, "mc"), per_request(ours, "mc")
    assert len(a) == len(b) == 18 and max(abs(x - y) for x, y in zip(a, b)) <= TOL
    greedy = lambda r: [resp[0][1] for d in r["samples"]["mc"] for resp in d["resps"]]  # noqa: E731
    assert greedy(hf) == greedy(ours)
    for metric in ("acc,none", "acc_norm,none", "acc_stderr,none"):
        assert hf["results"]["mc"][metric] == ours["results"]["mc"][metric]


def test_prefix_harness_equals_interp_eval_prefix(model_dirs, tmp_path):
    """`interp harness` (lm-eval driving interp) and `interp eval`, both --attention prefix, same items."""
    from interp.cli.ablation.eval import eval_cmd
    from interp.cli.ablation.harness import harness_cmd

    rows = mc_rows(5, seed=7)
    json_task(tmp_path / "tasks", "mc", rows)
    items = tmp_path / "mc.jsonl"  # the same items in interp's schema
    items.write_text("".join(json.dumps({"context": r["context"], "choices": [" " + o for o in r["options"]],
                                         "label": r["label"], "delimiter": " "}) + "\n" for r in rows))
    model = str(model_dirs("qwen3"))
    app = typer.Typer()
    app.command("harness")(harness_cmd)
    app.command("eval")(eval_cmd)
    common = ["--model", model, "--attention", "prefix", "--batch-size", "2"]
    result = CliRunner().invoke(app, ["harness", "--tasks", "mc", "--include-path", str(tmp_path / "tasks"),
                                      "--out", str(tmp_path / "h"), *common])
    assert result.exit_code == 0, result.output
    assert "acc_norm" in result.stdout and "attention: prefix" in result.stdout
    assert CliRunner().invoke(app, ["eval", "--tasks", str(items), "--out", str(tmp_path / "e"), *common]).exit_code == 0

    results = json.loads((tmp_path / "h" / "results.json").read_text())
    assert results["interp"]["attention"] == "prefix" and results["interp"]["leaky"] is False
    assert "git_commit" in results["interp"]["provenance"]
    samples = [json.loads(line) for line in (tmp_path / "h" / "samples_mc.jsonl").read_text().splitlines()]
    examples = pd.read_csv(tmp_path / "e" / "examples.csv")
    assert len(samples) == len(examples) == 5
    for doc, row in zip(sorted(samples, key=lambda d: d["doc_id"]), examples.itertuples()):
        assert [r[0][0] for r in doc["resps"]] == pytest.approx(json.loads(row.logprobs), abs=TOL)
        assert [a[1] for a in doc["arguments"]] == json.loads(row.choices)
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())["tasks"]["mc"]
    assert results["results"]["mc"]["acc,none"] == metrics["acc"]
    assert results["results"]["mc"]["acc_norm,none"] == metrics["acc_norm"]
    assert results["results"]["mc"]["acc_stderr,none"] == pytest.approx(metrics["acc_stderr"])


def test_prefix_and_causal_differ_through_the_harness(engines):
    """A guard for the test above: were prefix silently causal, it would still pass."""
    pairs = [("The cat sat on", " the mat"), ("A red", " mat and then")]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    causal = InterpLM(engine=engines("qwen3")).loglikelihood(requests, disable_tqdm=True)
    prefix = InterpLM(engine=engines("qwen3"), attention="prefix").loglikelihood(requests, disable_tqdm=True)
    assert max(abs(c[0] - p[0]) for c, p in zip(causal, prefix)) > 0.05


# ------------------------------------------------------------------------------------- generation, perplexity
def test_generate_until_in_prefix_mode_equals_engine_generate(engines):
    engine = engines("qwen3")
    prompts = ["The cat sat on", "A", "Paris is a red mat and then"]
    expected = [engine.generate(p, attention="prefix", max_new_tokens=6).texts[0] for p in prompts]
    causal = [engine.generate(p, max_new_tokens=6).texts[0] for p in prompts]
    assert causal != expected  # the modes differ, so the equality below is about prefix
    lm = InterpLM(engine=engine, attention="prefix", batch_size=2)  # batches prompts of different lengths

    def generate(until):
        return lm.generate_until([Instance("generate_until", {}, (p, {"until": until, "max_gen_toks": 6,
                                                                        "do_sample": False}), i)
                                  for i, p in enumerate(prompts)], disable_tqdm=True)

    assert generate([]) == expected
    stop = expected[2][-2:]  # cuts the third generation before its last two characters
    assert generate([stop]) == [e.split(stop)[0] for e in expected] and len(generate([stop])[2]) < len(expected[2])
    sampling = [Instance("generate_until", {}, ("A", {"do_sample": True, "temperature": 1.0}), 0)]
    with pytest.raises(InterpError, match="decodes greedily"):
        lm.generate_until(sampling)


def test_loglikelihood_rolling_is_causal_only(engines):
    engine = engines("qwen3")
    text = "the cat sat on the mat"
    [total] = InterpLM(engine=engine).loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)],
                                                            disable_tqdm=True)
    ids = [engine.tokenizer.bos_token_id] + engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = engine.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    assert total == pytest.approx(sum(logp[j - 1, t].item() for j, t in enumerate(ids) if j > 0), abs=TOL)
    with pytest.raises(InterpError, match="causal only"):
        InterpLM(engine=engine, attention="prefix").loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])


def test_registered_with_lm_eval_and_bad_model_args(engines):
    from lm_eval.api.registry import get_model

    assert get_model("interp") is InterpLM
    with pytest.raises(InterpError, match="unknown model_args for the interp model: atention"):
        InterpLM(engine=engines("qwen3"), atention="prefix")
    with pytest.raises(InterpError, match="unknown attention mode 'sideways'"):
        InterpLM(engine=engines("qwen3"), attention="sideways")
