"""Task loaders: rows in the real datasets' schemas become lm-eval's or the ablation's prompts; bad rows are skipped
and counted. (That the lm-eval format equals lm-eval's own requests is proved in test_harness.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from interp.data import tasks as task_module
from interp.data.tasks import load_task, task_key
from interp.errors import InterpError

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def load(name: str, **kwargs):
    """The ministral3 ablation format (format="seed")."""
    return load_task(name, data_dir=FIXTURES, format="seed", **kwargs)


def test_lm_eval_format_is_the_default():
    hellaswag = load_task("hellaswag", data_dir=FIXTURES)
    assert hellaswag.items[0] == {
        "context": "Roof shingle removal: A man is sitting on a roof. He",  # ctx_b capitalised
        "choices": [" is using wrap to wrap a pair of skis.", " is ripping level tiles off.",
                    " is holding a rubik's cube.", " starts pulling up roofing on a roof."],
        "label": 3, "delimiter": " ",
    }
    assert load_task("piqa", data_dir=FIXTURES).items[2]["context"] == "Question: To make a hard shelled taco,\nAnswer:"
    winogrande = load_task("winogrande", data_dir=FIXTURES)
    assert winogrande.items[0] == {
        "context": ["Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"],
        "choices": [" always got the harder cases."] * 2, "label": 0, "delimiter": " ",
    }
    assert winogrande.metrics == ("acc",) and hellaswag.metrics == ("acc", "acc_norm")
    assert load("winogrande").metrics == ("acc", "acc_norm")
    with pytest.raises(InterpError, match="unknown benchmark format 'harness'; choose lm-eval or seed"):
        load_task("piqa", data_dir=FIXTURES, format="harness")


def test_hellaswag():
    task = load("hellaswag")
    assert task.skipped == 4  # empty label, no endings, label out of range, a line cut short
    first, _, canoe = task.items
    assert first == {
        "context": "Roof shingle removal: A man is sitting on a roof. he",
        "choices": [" is using wrap to wrap a pair of skis.", " is ripping level tiles off.",
                    " is holding a rubik's cube.", " starts pulling up roofing on a roof."],
        "label": 3,
    }
    assert canoe["context"].startswith("Canoeing: Two women") and canoe["context"].endswith("background.")
    assert canoe["choices"][0] == " the child and a different man are then shown paddling down a river."
    assert canoe["label"] == 0 and task.chance == 0.25
    assert task.source == str(FIXTURES / "hellaswag" / "validation.jsonl")


def test_piqa():
    task = load("piqa")
    assert task.skipped == 3  # label -1, no sol2, goal null
    assert task.items[2] == {
        "context": "To make a hard shelled taco,\nAnswer:",
        "choices": [" put seasoned beef, cheese, and lettuce onto the hard shell.",
                    " put seasoned beef, cheese, and lettuce into the hard shell."],
        "label": 1,
    }
    assert [it["label"] for it in task.items] == [0, 1, 1] and task.chance == 0.5


def test_arc_easy_and_challenge():
    easy = load("arc_easy")
    assert easy.skipped == 2  # answerKey "E" not among the labels; no choices
    assert easy.items[0]["context"] == "Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:"
    assert easy.items[0]["choices"][0] == " Sunlight is the source of energy for nearly all ecosystems." and easy.items[0]["label"] == 0
    assert easy.items[2] == {
        "context": "A student is going to mix two liquids. Which one should the student wear?\nAnswer:",
        "choices": [" goggles", " mittens", " slippers"], "label": 0,  # numeric labels "1", "2", "3"
    }
    assert easy.chance == pytest.approx((0.25 + 0.25 + 1 / 3) / 3)
    challenge = load("arc_challenge")
    assert challenge.skipped == 1  # three labels for two texts
    assert [it["label"] for it in challenge.items] == [2, 1, 2]
    assert len(challenge.items[2]["choices"]) == 5


def test_winogrande_splits_at_the_blank():
    task = load("winogrande")
    assert task.skipped == 3  # no blank, empty answer, missing option2
    assert task.items[0] == {
        "context": "Sarah was a much better surgeon than Maria so",
        "choices": [" Sarah always got the harder cases.", " Maria always got the harder cases."],
        "label": 0,
    }
    assert task.items[1]["label"] == 1
    assert task.items[2] == {"context": "", "label": 0, "choices": ["Tom liked the cake more than the pie, so Tom ate all of it.",
                                                                      "Ann liked the cake more than the pie, so Tom ate all of it."]}


def test_limit_counts_valid_items_and_the_bad_rows_met_on_the_way():
    task = load("hellaswag", limit=2)
    assert len(task.items) == 2 and task.skipped == 0
    with pytest.raises(InterpError, match="limit must be"):
        load("hellaswag", limit=0)


def test_parquet_files_with_nested_columns(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "arc_easy" / "test.jsonl").read_text().splitlines()[:3]]
    (tmp_path / "arc_easy").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "arc_easy" / "test.parquet")
    task = load_task("arc_easy", data_dir=tmp_path, format="seed")
    assert task.items == load("arc_easy").items


def test_missing_local_file_names_the_expected_path(tmp_path):
    with pytest.raises(InterpError, match=r"no local data for piqa: expected .*piqa/validation.jsonl"):
        load_task("piqa", data_dir=tmp_path)


def test_unreachable_hub_fails_and_says_to_pass_data_dir(monkeypatch):
    monkeypatch.setattr(task_module, "hub_offline_now", lambda: True)
    with pytest.raises(InterpError, match=r"hub is unreachable .*pass --data-dir DIR with DIR/piqa/validation.jsonl"):
        load_task("piqa")


def test_jsonl_items_and_toy_tasks(tmp_path):
    path = tmp_path / "mine.jsonl"
    good = {"context": "2+2=", "choices": [" 4", " 5"], "label": 0}
    path.write_text("\n".join([json.dumps(good), json.dumps({**good, "label": 5}), json.dumps({**good, "choices": "x"}),
                               json.dumps({**good, "label": True}), "{oops", ""]))
    task = load_task(str(path))
    assert (task.name, task.items, task.skipped) == ("mine", [good], 4)
    assert task_key(str(path)) == "mine" and task_key("piqa") == "piqa"
    toy = load_task("toy_arc", limit=7)
    assert len(toy.items) == 7 and toy.skipped == 0 and toy.chance == 0.25
    assert toy.items[0]["context"].endswith("\nAnswer:")


def test_unknown_task():
    with pytest.raises(InterpError, match="unknown task 'nope'; choose from hellaswag, piqa"):
        load_task("nope")
    with pytest.raises(InterpError, match="no such task file"):
        load_task("missing.jsonl")
