"""After `import interp`, lm-eval's own models still resolve and score, in every import order.

Each order runs in a fresh interpreter: the registry is process state, and pytest's own process
has imported both long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ORDERS = {
    "interp": "import interp",
    "lm_eval_then_interp": "import lm_eval; import interp",
    "registry_then_interp": "import lm_eval.api.registry; import interp",
}

SCRIPT = """
{imports}
import json, sys
from lm_eval import simple_evaluate
from lm_eval.api.registry import get_model
from lm_eval.tasks import TaskManager

model_dir, task_dir, scored = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
resolved = {{name: get_model(name).__name__ for name in ("hf", "hf-auto", "interp")}}
print("RESOLVED " + json.dumps(resolved))
scores = {{}}
for name in scored:
    out = simple_evaluate(model=name, model_args=f"pretrained={{model_dir}},dtype=float32,device=cpu", tasks=["mc"],
                          task_manager=TaskManager(include_path=task_dir, include_defaults=False), batch_size=4,
                          log_samples=True, verbosity="ERROR")
    scores[name] = [resp[0][0] for doc in sorted(out["samples"]["mc"], key=lambda d: d["doc_id"]) for resp in doc["resps"]]
print("SCORES " + json.dumps(scores))
"""


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lm_eval_tasks")
    rows = [{"context": f"Item {i} is", "options": ["red", "a blue cat", "green"], "label": i % 3} for i in range(4)]
    data = directory / "mc.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (directory / "mc.yaml").write_text(
        f"task: mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\noutput_type: multiple_choice\n"
        "test_split: test\ndoc_to_text: \"{{context}}\"\ndoc_to_choice: \"{{options}}\"\ndoc_to_target: label\n"
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    return directory


def test_lm_evals_own_models_resolve_and_score_after_import_interp(model_dirs, task_dir):
    """Issue example 3: after `import interp`, model="hf" failed with "Supported model names: interp".

    Every order resolves hf, hf-auto and interp and scores hf; the first also scores hf-auto and
    interp, which must give hf's numbers (the same model through lm-eval's HFLM and interp's engine).
    The three interpreters run side by side: most of their time is importing.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    model_dir = str(model_dirs("llama"))
    runs = {order: subprocess.Popen([sys.executable, "-c", SCRIPT.format(imports=imports), model_dir, str(task_dir),
                                     "hf,hf-auto,interp" if order == "interp" else "hf"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for order, imports in ORDERS.items()}
    outputs = {order: run.communicate(timeout=600) for order, run in runs.items()}
    for order, (stdout, stderr) in outputs.items():
        found = dict(line.split(" ", 1) for line in stdout.splitlines() if line.startswith(("RESOLVED ", "SCORES ")))
        assert runs[order].returncode == 0 and "SCORES" in found, f"{order}: {stderr[-2000:]}"
        assert json.loads(found["RESOLVED"]) == {"hf": "HFLM", "hf-auto": "HFLM", "interp": "InterpLM"}, order
        scores = json.loads(found["SCORES"])
        assert len(scores["hf"]) == 12 and all(s < 0 for s in scores["hf"]), order
        for name in set(scores) - {"hf"}:
            assert max(abs(a - b) for a, b in zip(scores["hf"], scores[name])) < 1e-4, (order, name)
    assert set(json.loads(dict(line.split(" ", 1) for line in outputs["interp"][0].splitlines()
                               if line.startswith("SCORES "))["SCORES"])) == {"hf", "hf-auto", "interp"}
