"""Experiments on the engine, one shape for all: Figure 1, Santurkar et al.'s analyses, sweeps.

>>> from bnlab.experiments import FIGURE1, preset, run_experiment
>>> run = run_experiment(FIGURE1, preset("paper").replace(seeds=3), "runs/paper-3seeds")
>>> from bnlab.experiments import registry
>>> ics = registry.analysis("ics")
>>> run = run_experiment(ics, ics.default_config(steps=2000), "runs/ics")
"""

from bnlab.experiments.config import ExperimentConfig
from bnlab.experiments.experiment import Experiment, Phase, Summary
from bnlab.experiments.figure1 import FIGURE1, model_summaries
from bnlab.experiments.network import Network
from bnlab.experiments.presets import PAPER, PRESETS, SEED, preset
from bnlab.experiments.registry import ANALYSES, EXPERIMENTS, analysis, experiment
from bnlab.experiments.run import ExperimentRun, RunStopped, prepare_experiment, run_experiment
from bnlab.experiments.santurkar import AnalysisConfig
from bnlab.experiments.sweep import SWEEP, SweepConfig, load_sweep, parse_sweep

__all__ = [
    "ANALYSES",
    "EXPERIMENTS",
    "FIGURE1",
    "PAPER",
    "PRESETS",
    "SEED",
    "SWEEP",
    "AnalysisConfig",
    "Experiment",
    "ExperimentConfig",
    "ExperimentRun",
    "Network",
    "Phase",
    "RunStopped",
    "Summary",
    "SweepConfig",
    "analysis",
    "experiment",
    "load_sweep",
    "model_summaries",
    "parse_sweep",
    "prepare_experiment",
    "preset",
    "run_experiment",
]
