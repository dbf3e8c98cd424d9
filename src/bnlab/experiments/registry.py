"""Every experiment bnlab runs, by name: the one place a name selects an experiment.

Adding an analysis: its file in experiments/santurkar/ and one line in ANALYSES.
"""

from __future__ import annotations

from bnlab.errors import ConfigError
from bnlab.experiments.experiment import Experiment
from bnlab.experiments.figure1 import FIGURE1
from bnlab.experiments.santurkar import (
    ICS_ANALYSIS,
    LANDSCAPE_ANALYSIS,
    LP_NORM_ANALYSIS,
    LR_SWEEP_ANALYSIS,
    NOISY_BN_ANALYSIS,
    PLACEMENT_ANALYSIS,
    Analysis,
)
from bnlab.experiments.sweep import SWEEP

# `bnlab analyze NAME`, in the order its help lists them
ANALYSES: tuple[Analysis, ...] = (
    NOISY_BN_ANALYSIS,
    ICS_ANALYSIS,
    LANDSCAPE_ANALYSIS,
    LP_NORM_ANALYSIS,
    LR_SWEEP_ANALYSIS,
    PLACEMENT_ANALYSIS,
)
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (FIGURE1, SWEEP, *ANALYSES)}


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"experiment: expected one of {', '.join(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


def analysis(name: str) -> Analysis:
    found = EXPERIMENTS.get(name)
    if not isinstance(found, Analysis):
        names = ", ".join(a.name for a in ANALYSES)
        raise ConfigError(f"analysis: expected one of {names}, got {name!r}")
    return found
