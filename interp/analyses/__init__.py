"""Analyses built on the engine: mask-impact, evaluation, finetuning, stages.

`interp.analyses.impact.mask_impact(engine, prompt, ...)` is the headline analysis and
`interp.analyses.impact.knockout(engine, prompts, window=...)` Geva et al.'s attention knockout; the others are in
their modules (`evaluate`, `finetune`, `leakage`, `stages`, `report`).
"""

from interp.analyses.impact.mask_impact import mask_impact, mask_impact_metadata
from interp.analyses.impact.knockout import knockout, knockout_summary

__all__ = ["knockout", "knockout_summary", "mask_impact", "mask_impact_metadata"]
