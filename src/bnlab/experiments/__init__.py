"""Experiments on the engine: presets and configs, the reproduction, Santurkar et al.'s analyses."""

from bnlab.experiments.presets import PAPER, PRESETS, SEED, ExperimentConfig, preset
from bnlab.experiments.reproduce import ReproduceResult, model_summaries, run_reproduce

__all__ = [
    "PAPER",
    "PRESETS",
    "SEED",
    "ExperimentConfig",
    "ReproduceResult",
    "model_summaries",
    "preset",
    "run_reproduce",
]
