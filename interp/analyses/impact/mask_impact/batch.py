"""Many prompts × one or more checkpoints: run mask-impact on each, write every result, compare.

A prompts file (YAML) names prompts; each may set num_tokens and enabled:

    prompts:
      eiffel: {prompt: "The Eiffel Tower is in", num_tokens: 3}
      long_one: {prompt: prompts/long.txt, enabled: false}   # a .txt path is read (it must exist)
      short: "Paris is the capital of"                        # just the text

Results go to `<out_dir>/<name>.<fmt>` (+ `.json` sidecar); with several checkpoints to
`<name>_<model>.<fmt>` each, plus `<name>_compare.png` (Full, l2, step 0). Checkpoints are loaded
one at a time. One progress bar counts prompts × steps × layers (× checkpoints).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from interp.errors import InterpError
from interp.util.prompts import read_prompt

_JOB_KEYS = {"prompt", "num_tokens", "enabled"}


@dataclass(frozen=True)
class Job:
    name: str
    prompt: str
    num_tokens: int = 1


def load_jobs(path: str | os.PathLike, default_num_tokens: int = 1) -> list[Job]:
    """The enabled prompts of a prompts.yaml, validated with one-line errors."""
    from interp.util.io import read_yaml

    data = read_yaml(path)
    if isinstance(data, dict) and "prompts" in data:
        data = data["prompts"]
    if not isinstance(data, dict) or not data:
        raise InterpError(f"{path}: expected a mapping of prompt names to prompts (optionally under `prompts:`)")
    jobs = []
    for name, entry in data.items():
        entry = {"prompt": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "prompt" not in entry:
            raise InterpError(f"{path}: prompt {name!r} needs a `prompt:` (text or a .txt path)")
        unknown = set(entry) - _JOB_KEYS
        if unknown:
            raise InterpError(f"{path}: prompt {name!r} has unknown key(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(sorted(_JOB_KEYS))}")
        enabled = entry.get("enabled", True)
        num_tokens = entry.get("num_tokens", default_num_tokens)
        if not isinstance(enabled, bool):
            raise InterpError(f"{path}: prompt {name!r}: enabled must be true or false, not {enabled!r}")
        if not isinstance(num_tokens, int) or isinstance(num_tokens, bool) or num_tokens < 1:
            raise InterpError(f"{path}: prompt {name!r}: num_tokens must be a whole number ≥ 1, not {num_tokens!r}")
        if enabled:
            text = read_prompt(entry["prompt"], bases=[Path(path).parent], where=f"{path}: prompt {name!r}: ")
            jobs.append(Job(name=_file_stem(str(name)), prompt=text, num_tokens=num_tokens))
    if not jobs:
        raise InterpError(f"{path}: no enabled prompts")
    if len({job.name for job in jobs}) < len(jobs):
        raise InterpError(f"{path}: prompt names must stay distinct as file names: {', '.join(j.name for j in jobs)}")
    return jobs


def run_jobs(
    jobs: list[Job],
    models: list[str | None],
    out_dir: str | os.PathLike,
    *,
    load: Callable[[str | None], object],
    fmt: str = "csv",
    settings: dict | None = None,
    labels: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> list[Path]:
    """Run every job on every model (loaded one at a time); write results and comparison figures."""
    from interp.analyses.impact.heatmaps import write_comparison
    from interp.analyses.impact.mask_impact import mask_impact, mask_impact_metadata, parse_layers
    from interp.analyses.impact.mask_impact.io import write_result
    from interp.util.distributed import is_main, map_sharded, shard
    from interp.util.progress import progress_bar

    settings = settings or {}
    labels = labels or [str(i) for i in range(len(models))]
    out_dir = Path(out_dir)
    written: dict[str, list[Path]] = {job.name: [] for job in jobs}
    engine = load(models[0])  # the first checkpoint sizes the progress bar
    n_layers = len(parse_layers(settings.get("layers"), engine.n_layers))
    total = sum(job.num_tokens for job in shard(jobs)) * n_layers * len(models)
    with progress_bar("mask-impact", total) as advance:
        for index, (model, label) in enumerate(zip(models, labels)):
            if index:
                engine = load(model)

            def analyse(mine: list[Job]) -> list[tuple]:
                out = []
                for job in mine:
                    done = 0

                    def tick(k: int = 1) -> None:
                        nonlocal done
                        done += k
                        advance(k)

                    df = mask_impact(engine, job.prompt, num_tokens=job.num_tokens, progress=tick, **settings)
                    advance(job.num_tokens * n_layers - done)  # steps skipped after an early EOS
                    meta = mask_impact_metadata(engine, df, name=job.name, model_label=Path(model).name if model else "toy")
                    out.append((df, meta))
                return out

            # Under torchrun / accelerate launch each rank analyses its share of the prompts; rank 0 writes.
            for job, (df, meta) in zip(jobs, map_sharded(analyse, jobs, everywhere=False)):
                stem = job.name if len(models) == 1 else f"{job.name}_{label}"
                table, _ = write_result(df, meta, out_dir / f"{stem}.{fmt}", fmt)
                written[job.name].append(table)
                echo(f"wrote {table} ({len(df)} rows){_next_tokens(df)}")
    paths = [p for tables in written.values() for p in tables]
    if len(models) > 1 and is_main():
        for job in jobs:
            figure = write_comparison(written[job.name], out_dir / f"{job.name}_compare.png", labels=labels)
            echo(f"wrote {figure}")
            paths.append(figure)
    return paths


def _next_tokens(df) -> str:
    top = df.attrs.get("mask_impact", {}).get("top_next_tokens") or []
    return "; next: " + ", ".join(f"{t['token']!r} {t['prob']:.3f}" for t in top[:3]) if top else ""


def _file_stem(name: str) -> str:
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    if not stem:
        raise InterpError(f"prompt name {name!r} cannot be used as a file name")
    return stem
