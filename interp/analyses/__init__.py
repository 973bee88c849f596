"""Analyses built on the engine: mask-impact, evaluation, finetuning, stages.

`interp.analyses.mask_impact(engine, prompt, ...)` is the headline analysis; the others are in
their modules (`evaluate`, `finetune`, `leakage`, `stages`, `report`).
"""

from interp.analyses.mask_impact import mask_impact, mask_impact_metadata

__all__ = ["mask_impact", "mask_impact_metadata"]
