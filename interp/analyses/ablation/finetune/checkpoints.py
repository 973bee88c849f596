"""Checkpoints a kill cannot corrupt: written under a temporary name, renamed into place when whole.

`checkpoint-N` appears only once every rank has written its part (weights, optimizer, scheduler,
RNG states, trainer_state.json). A save killed midway leaves `.partial/checkpoint-N`, which resume
ignores; a `checkpoint-N` that lacks its weights or trainer state (copied by hand, or written by
an older version) is skipped too, newest complete one first, and the skip is reported.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from interp.errors import InterpError

logger = logging.getLogger(__name__)

STAGING = ".partial"  # out/.partial/checkpoint-N while it is being written
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def missing_parts(path: Path) -> list[str]:
    """What a resumable checkpoint lacks ([] when complete)."""
    missing = [] if any((path / name).exists() for name in WEIGHTS) else ["model.safetensors"]
    return missing + [name for name in ("config.json", "trainer_state.json") if not (path / name).exists()]


def latest_complete(out: Path) -> tuple[Path | None, list[str]]:
    """The newest complete out/checkpoint-N, and a note for each newer one skipped."""
    found = sorted(((int(m.group(1)), p) for p in (out.iterdir() if out.is_dir() else [])
                    if p.is_dir() and (m := _CHECKPOINT.match(p.name))), reverse=True)
    staged = out / STAGING
    skipped = [f"{p} (its save was interrupted)" for p in sorted(staged.iterdir())] if staged.is_dir() else []
    for _, path in found:
        missing = missing_parts(path)
        if not missing:
            return path, skipped
        skipped.append(f"{path} (no {', '.join(missing)})")
    return None, skipped


def resume_point(out: Path, resume: bool | str) -> str | None:
    """The checkpoint to resume from: None, the newest complete out/checkpoint-N, or an explicit path.

    resume=True with no checkpoint yet (a run that stopped before its first save) starts afresh,
    with a notice: the stage runner resumes unfinished runs whatever state they reached.
    """
    if not resume:
        return None
    if resume is True:
        last, skipped = latest_complete(out)
        for note in skipped:
            logger.warning("resume: skipping incomplete checkpoint %s", note)
        if last is None:
            logger.warning("nothing to resume in %s (no complete checkpoint-N yet): training from the start", out)
            return None
        if skipped:
            logger.warning("resume: continuing from %s", last)
        return str(last)
    path = Path(resume)
    if not (path / "trainer_state.json").exists():
        raise InterpError(f"cannot resume from {resume}: not a Trainer checkpoint (no trainer_state.json)")
    missing = missing_parts(path)
    if missing:
        raise InterpError(f"cannot resume from {resume}: incomplete checkpoint (no {', '.join(missing)})")
    return str(path)


def staging_dir(run_dir: str) -> str:
    return str(Path(run_dir) / STAGING)


def clear_staged(run_dir: str, name: str) -> None:
    """Remove what an interrupted save of `name` left behind (rank 0, before saving it again)."""
    shutil.rmtree(Path(run_dir) / STAGING / name, ignore_errors=True)


def publish(run_dir: str, name: str) -> Path:
    """Rename the whole staged checkpoint into place (rank 0, once every rank has written)."""
    staged, final = Path(run_dir) / STAGING / name, Path(run_dir) / name
    if final.exists():  # the same step saved again (a resumed run redoing a step): replace it
        shutil.rmtree(final)
    staged.rename(final)
    try:
        (Path(run_dir) / STAGING).rmdir()
    except OSError:
        pass
    return final
