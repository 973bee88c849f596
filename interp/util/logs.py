"""Terminal hygiene: transformers' warnings and load/save progress bars off for our own output."""

from __future__ import annotations


def quiet_transformers() -> None:
    """Errors only, no "Loading weights"/"Writing model shards" bars (the Trainer's bar stays)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
