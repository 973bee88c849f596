"""Analyses built on the engine: mask-impact, evaluation, finetuning, stages."""
