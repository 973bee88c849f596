"""A stage run's metrics.json: one shape for every stage, written last, read back strictly.

    {"kind": "stage", "stage": "1" | "2" | "3a" | "3b" | "4", "model": ...,
     "evals": [ {"dir": "causal", "checkpoint": null | "3a" | "3b", "checkpoint_path": ..., "attention": "causal",
                 "bidirectional_layers": null | [..], "layers": null | "0-1", "metrics": <eval metrics.json>}, ... ],
     "finetune": null | {"attention", "data", "checkpoint_dir", "summary"}}

Stage 1 and 2 have one eval (RUN/causal/ or RUN/prefix/), a stage 2 layer sweep one per layer group
(RUN/layers-<a-b>/, `layers` set), stage 4 one per checkpoint and mode (RUN/3b-prefix/ …), and the
finetune stages none but a `finetune` record. Each eval's directory is an eval result
(metrics.json + examples.csv + tasks/). Readers (`stage list`, `stage report`) take what they need
from `evals` by checkpoint, attention and layers, and never guess the shape from its keys.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from interp.analyses.ablation.eval_files import check_eval_metrics
from interp.errors import InterpError
from interp.results import read_json
from interp.util.io import write_json

METRICS_FILE = "metrics.json"


@dataclass
class StageEval:
    """One evaluation inside a stage run, and the sub-directory holding its files."""

    dir: str
    attention: str
    metrics: dict
    checkpoint: str | None = None  # "3a" / "3b" in stage 4
    checkpoint_path: str | None = None
    bidirectional_layers: list[int] | None = None
    layers: str | None = None  # a sweep group's label ("0-1")


@dataclass
class StageMetrics:
    """A finished stage run's record (see the module docstring)."""

    stage: str
    model: str
    evals: list[StageEval] = field(default_factory=list)
    finetune: dict | None = None
    path: Path | None = None

    def write(self, run_dir: str | os.PathLike) -> Path:
        """RUN/metrics.json, atomically; written last, so its presence marks a finished run."""
        record = {"kind": "stage", "stage": self.stage, "model": self.model,
                  "evals": [asdict(e) for e in self.evals], "finetune": self.finetune}
        self.path = write_json(Path(run_dir) / METRICS_FILE, record)
        return self.path

    @classmethod
    def read(cls, run_dir: str | os.PathLike) -> "StageMetrics":
        """A run's metrics.json, checked: a damaged or foreign file is a one-line error naming it."""
        path = Path(run_dir)
        path = path / METRICS_FILE if path.is_dir() else path
        data = read_json(path, "stage run record", required=("kind", "stage", "evals"))
        if data["kind"] != "stage" or not isinstance(data["evals"], list):
            raise InterpError(f"{path} is not a stage run record (kind {data.get('kind')!r})")
        evals = []
        for i, record in enumerate(data["evals"]):
            if not isinstance(record, dict) or not {"dir", "attention", "metrics"} <= set(record):
                raise InterpError(f"{path} is damaged: evals[{i}] lacks dir, attention or metrics")
            known = {k: record.get(k) for k in StageEval.__dataclass_fields__}
            check_eval_metrics(known["metrics"], path, where=f"evals[{i}].metrics")
            evals.append(StageEval(**known))
        finetune = data.get("finetune")
        if finetune is not None and not isinstance(finetune, dict):
            raise InterpError(f"{path} is damaged: finetune is {type(finetune).__name__}, not an object")
        return cls(str(data["stage"]), str(data.get("model", "?")), evals, finetune, path)

    def find(self, attention: str, checkpoint: str | None = None, layers: str | None = None) -> StageEval | None:
        """The eval under `attention` (of `checkpoint`, over the `layers` group), if this run has one."""
        return next((e for e in self.evals if e.attention == attention and e.checkpoint == checkpoint
                     and e.layers == layers), None)

    @property
    def is_sweep(self) -> bool:
        return any(e.layers is not None for e in self.evals)

    def headline(self) -> str:
        """`stage list`'s one-line summary."""
        if self.is_sweep:
            return "layer sweep: " + ", ".join(f"{e.layers} {e.metrics['macro_acc']:.4f}" for e in self.evals)
        if self.finetune is not None:
            return f"checkpoint {self.finetune.get('checkpoint_dir')}"
        if len(self.evals) == 1 and self.evals[0].checkpoint is None:
            m = self.evals[0].metrics
            return f"macro acc {m['macro_acc']:.4f}, acc_norm {m['macro_acc_norm']:.4f}"
        return ", ".join(f"{e.checkpoint} {e.attention} macro acc {e.metrics['macro_acc']:.4f}" for e in self.evals)
