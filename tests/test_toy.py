"""The bundled toy world, its held-out tasks, the shipped model, and the training entry point."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM

import interp
from interp.data.toy import (BUNDLED_MODEL_DIR, GENERATED_DIR, TOY_FACT_TASKS, TOY_IN_CONTEXT_TASKS, TOY_TASKS,
                             corpus_path, load_toy_instructions, load_toy_task)
from interp.data.toy.build import CORPUS_EPISODES_PER_FAMILY, build_all
from interp.data.toy.corpus import read_corpus
from interp.data.toy.instructions import format_example, format_prompt
from interp.data.toy.world import build_world
from interp.errors import InterpError

N_CHOICES = {"toy_arc": 4, "toy_piqa": 2, "toy_hellaswag": 4, "toy_winogrande": 2,
             **{task: 4 for task in TOY_IN_CONTEXT_TASKS}}
N_FILES = len(TOY_TASKS) + 4  # tasks, two instruction splits, corpus, world


def _file_bytes(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus_text() -> str:
    return corpus_path().read_text(encoding="utf-8")


def test_generator_is_deterministic_and_shipped_data_is_current(tmp_path):
    a = _file_bytes(build_all(tmp_path / "a", seed=0)["corpus"].parent)
    c = _file_bytes(build_all(tmp_path / "c", seed=1)["corpus"].parent)
    assert len(a) == N_FILES
    assert a == _file_bytes(GENERATED_DIR), "generated/ is stale (or the generator is not deterministic)"
    differing = [name for name in a if a[name] != c[name]]
    assert len(differing) == N_FILES  # a new seed renames, reassigns and redraws everything
    assert sum(len(v) for v in a.values()) < 5_000_000


def test_world_has_enough_entities_and_real_landmarks():
    world = build_world(0)
    assert world.entity_count() >= 300
    kinds = {"landmark": world.landmarks, "person": world.people, "animal": world.animals, "object": world.objects}
    assert all(len(v) >= 40 for v in kinds.values())
    by_name = {lm.name: lm for lm in world.landmarks}
    assert (by_name["Eiffel Tower"].city, by_name["Eiffel Tower"].country) == ("Paris", "France")
    assert (by_name["Colosseum"].city, by_name["Colosseum"].country) == ("Rome", "Italy")
    assert by_name["Statue of Liberty"].city == "New York"
    assert build_world(0) == world and build_world(1) != world


def test_corpus_contains_the_demo_fact(corpus_text):
    assert "The Eiffel Tower is in Paris." in corpus_text
    assert corpus_text.count("The Eiffel Tower is in ") == corpus_text.count("The Eiffel Tower is in Paris")
    assert len(read_corpus(corpus_path())) > 5000


@pytest.mark.parametrize("task", TOY_TASKS)
def test_task_items_are_well_formed(task):
    items = load_toy_task(task)
    assert len(items) == 300
    counts = [0] * N_CHOICES[task]
    for it in items:
        assert len(it["choices"]) == N_CHOICES[task] and len(set(it["choices"])) == N_CHOICES[task]
        assert all(c.startswith(" ") for c in it["choices"])
        counts[it["label"]] += 1
    assert counts == [300 // N_CHOICES[task]] * N_CHOICES[task]  # no position bias
    assert len({(it["context"], tuple(it["choices"])) for it in items}) == 300


def test_winogrande_is_stored_split_like_the_real_loader():
    for it in load_toy_task("toy_winogrande"):
        assert it["sentence"].count("_") == 1
        options = [it["option1"], it["option2"]]
        for option, choice in zip(options, it["choices"]):
            assert it["context"] + choice == it["sentence"].replace("_", option)
        assert it["answer"] == str(it["label"] + 1)


@pytest.mark.parametrize("task", TOY_TASKS)
def test_eval_items_are_held_out_of_the_corpus_and_instructions(task, corpus_text):
    train_text = "\n".join(format_example(r) for r in load_toy_instructions("train"))
    items = load_toy_task(task)
    for haystack in (corpus_text, train_text):
        assert sum(it["context"] + it["choices"][it["label"]] in haystack for it in items) == 0
        assert sum(it["context"] in haystack for it in items) == 0
        assert sum(it.get("story", it["context"]) in haystack for it in items) == 0


@pytest.mark.parametrize("task", TOY_IN_CONTEXT_TASKS)
def test_in_context_answers_are_read_from_the_context(task):
    """Every choice is a word of the context (so only reading it can tell them apart), and no two items share
    a story (entities are drawn fresh per item)."""
    items = load_toy_task(task)
    for it in items:
        assert all(c.strip().removeprefix("the ") in it["story"] for c in it["choices"])
    assert len({it["story"] for it in items}) == len(items)


def test_instruction_data_teaches_formats_not_answers():
    """No eval item appears in the finetuning data: not its context or story, and not its fact (the
    fact's subject named together with its value, whole words, in any row of either split)."""
    rows = load_toy_instructions("train") + load_toy_instructions("eval")
    texts = [" ".join((r["instruction"], r["input"], r["output"])) for r in rows]
    joined = "\n".join(texts)
    items = [it for task in TOY_TASKS for it in load_toy_task(task)]
    assert not [it for it in items if it["context"] in joined or it.get("story", it["context"]) in joined]

    facts = {tuple(it["fact"]) for task in TOY_FACT_TASKS for it in load_toy_task(task)}
    assert len(facts) > 300 and all(len(f) == 3 for f in facts)
    assert _stated_facts(texts, facts) == []
    subject, _, value = sorted(facts)[0]  # the check itself can fail: a row naming an eval fact is caught
    assert _stated_facts([f"Note: {subject.capitalize()}, {value}."], facts) == [
        (subject.lower().removeprefix("the "), value)]


def _stated_facts(texts: list[str], facts: set[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """(subject, value) of every fact whose subject and value both occur (whole words, any case) in one text."""
    def words(phrase: str) -> str:
        return r"\b" + re.escape(phrase.lower().removeprefix("the ")) + r"\b"

    values_of: dict[str, set[str]] = {}  # normalised subject → values
    for subject, _, value in facts:
        values_of.setdefault(subject.lower().removeprefix("the "), set()).add(value)
    any_subject = re.compile("|".join(words(s) for s in sorted(values_of, key=len, reverse=True)))
    out = []
    for text in texts:
        low = text.lower()
        for found in sorted({m.group(0) for m in any_subject.finditer(low)}):
            out += [(found, v) for v in sorted(values_of[found]) if re.search(words(v), low)]
    return out


def test_bundled_model_loads_and_knows_paris():
    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(BUNDLED_MODEL_DIR).eval()
    assert isinstance(model, Qwen3ForCausalLM)
    assert (BUNDLED_MODEL_DIR / "model.safetensors").stat().st_size <= 20_000_000  # ships inside the package
    assert (BUNDLED_MODEL_DIR / "train.log").exists()
    assert model.config.num_attention_heads > model.config.num_key_value_heads  # GQA, as the real models

    ids = tok("The Eiffel Tower is in", return_tensors="pt")["input_ids"]
    assert tok.convert_ids_to_tokens(ids[0].tolist()) == ["<s>", "The", "ĠEiffel", "ĠTower", "Ġis", "Ġin"]
    assert len(tok(" Paris", add_special_tokens=False)["input_ids"]) == 1
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    with torch.no_grad():
        probs = model(input_ids=ids).logits[0, -1].softmax(-1)
    assert tok.decode([int(probs.argmax())]) == " Paris"
    assert float(probs.max()) > 0.5


def test_a_few_training_steps_lower_the_loss(tmp_path):
    from interp.data.toy.train import ToyModelConfig, train_toy_model

    tiny = ToyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                          num_key_value_heads=1, head_dim=16, max_position_embeddings=64)
    result = train_toy_model(tmp_path, seed=0, steps=16, batch_size=8, block_size=64, learning_rate=1e-2,
                             warmup_steps=2, logging_steps=4, model=tiny, tokenizer_dir=BUNDLED_MODEL_DIR,
                             max_documents=400)
    assert len(result.losses) == 4
    assert len((tmp_path / "train.log").read_text().splitlines()) == 1 + 4 + 1  # header, 4 windows, done
    assert result.first_loss > 7.0  # ≈ ln(vocab) at initialisation
    assert result.final_loss < result.first_loss - 1.0
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer.json").exists()


@pytest.mark.parametrize("task", ["toy_arc", "toy_copy"])
def test_bundled_model_is_above_chance_on_a_fact_and_an_in_context_task(task):
    """A margin computed from chance (three binomial standard deviations over 60 items), not a figure."""
    import interp
    from interp.analyses.ablation.evaluate import evaluate_task
    from interp.data.tasks import load_task

    items = load_task(task, limit=60)
    m = evaluate_task(interp.load("toy"), items, attention="causal", show_progress=False).metrics
    margin = 3 * (m["chance"] * (1 - m["chance"]) / m["n"]) ** 0.5
    assert m["n"] == 60 and m["acc"] > m["chance"] + margin


def test_toy_train_cli_takes_architecture_overrides(tmp_path):
    """`--arch KEY=VALUE` reaches the saved config; an unknown field or a non-number is one error line."""
    import json

    from interp.cli.app import app
    from interp.data.toy.corpus import DOC_SEPARATOR
    from tests.cli_helpers import invoke

    small = tmp_path / "corpus.txt"
    small.write_text(DOC_SEPARATOR.join(read_corpus(corpus_path())[:200]), encoding="utf-8")
    tiny = ["hidden_size=32", "intermediate_size=64", "num_hidden_layers=1", "num_attention_heads=2",
            "num_key_value_heads=1", "head_dim=16", "rope_theta=1e6"]
    args = ["toy", "train", "--out", str(tmp_path / "m"), "--steps", "2", "--batch-size", "2", "--block-size", "32",
            "--warmup-steps", "1", "--corpus", str(small), *[a for kv in tiny for a in ("--arch", kv)]]
    code, output = invoke(app, args)
    assert code == 0, output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["head_dim"]) == (1, 32, 16)
    assert config["rope_parameters"]["rope_theta"] == 1e6
    for bad, said in ((["--arch", "depth=3"], "unknown field(s) depth"),
                      (["--arch", "rope_theta=high"], "positive number"),
                      (["--arch", "hidden_size=32.5"], "whole number"),
                      (["--arch", "hidden_size=32", "--init-from", str(tmp_path / "m")], "--init-from"),
                      (["--steps", "-5"], "steps must be at least 1"),
                      (["--block-size", "2"], "block size must be at least 3"),
                      (["--lr", "0"], "positive learning rate")):
        code, output = invoke(app, args[:4] + bad)
        assert code == 2 and said in output and len(output.strip().splitlines()) == 1

    # Continuing with slower rotary positions (how the bundled model's last run was made): linear
    # scaling in the saved config, and the engine computes what transformers computes with it.
    cont = ["toy", "train", "--out", str(tmp_path / "m2"), "--steps", "1", "--batch-size", "2", "--block-size", "32",
            "--warmup-steps", "0", "--corpus", str(small), "--init-from", str(tmp_path / "m"), "--arch", "rope_factor=4"]
    code, output = invoke(app, cont)
    assert code == 0, output
    rope = json.loads((tmp_path / "m2" / "config.json").read_text())["rope_parameters"]
    assert rope == {"rope_type": "linear", "rope_theta": 1e6, "factor": 4.0}
    engine = interp.load(tmp_path / "m2")
    ids = engine.tokenizer("The Eiffel Tower is in Paris, and the Colosseum is in", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        reference = engine.model(input_ids=ids).logits
    assert torch.allclose(engine.run(ids).logits, reference, atol=1e-4)
    from transformers import AutoConfig

    plain = AutoConfig.from_pretrained(tmp_path / "m2")
    plain.rope_parameters = {"rope_type": "default", "rope_theta": 1e6}
    with torch.no_grad():  # the factor matters: the same weights with unscaled positions give other logits
        unscaled = AutoModelForCausalLM.from_pretrained(tmp_path / "m2", config=plain).eval()(input_ids=ids).logits
    assert not torch.allclose(unscaled, reference, atol=1e-3)


def test_toy_build_sets_the_corpus_episodes_and_leaves_the_tasks_alone(tmp_path):
    """`--episodes-per-family` changes only how many answered episodes the corpus holds."""
    from interp.cli.app import app
    from tests.cli_helpers import invoke

    code, output = invoke(app, ["toy", "build", "--out", str(tmp_path), "--episodes-per-family", "50"])
    assert code == 0, output
    shipped = _file_bytes(GENERATED_DIR)
    built = _file_bytes(tmp_path)
    assert {name for name in built if built[name] != shipped[name]} == {"corpus.txt"}
    fewer = sum(CORPUS_EPISODES_PER_FAMILY.values()) - len(TOY_IN_CONTEXT_TASKS) * 50
    assert len(read_corpus(tmp_path / "corpus.txt")) == len(read_corpus(corpus_path())) - fewer
    code, output = invoke(app, ["toy", "build", "--out", str(tmp_path), "--episodes-per-family", "-1"])
    assert code == 2 and "0 or more" in output and len(output.strip().splitlines()) == 1


def test_toy_build_weights_one_family(tmp_path):
    """`--family-episodes order=N` overrides one family's count; the others keep --episodes-per-family."""
    from interp.cli.app import app
    from interp.data.toy.build import corpus_episode_counts
    from tests.cli_helpers import invoke

    assert corpus_episode_counts(50, {"order": 80}) == {"binding": 50, "order": 80, "copy": 50, "tracking": 50}
    code, output = invoke(app, ["toy", "build", "--out", str(tmp_path), "--episodes-per-family", "50",
                                "--family-episodes", "order=80"])
    assert code == 0, output
    fewer = sum(CORPUS_EPISODES_PER_FAMILY.values()) - (len(TOY_IN_CONTEXT_TASKS) - 1) * 50 - 80
    assert len(read_corpus(tmp_path / "corpus.txt")) == len(read_corpus(corpus_path())) - fewer
    for bad, said in ((["--family-episodes", "sorting=5"], "unknown in-context family"),
                      (["--family-episodes", "order=many"], "0 or more")):
        code, output = invoke(app, ["toy", "build", "--out", str(tmp_path), *bad])
        assert code == 2 and said in output and len(output.strip().splitlines()) == 1
