"""Every experiment bnlab runs, by name: the one place a name selects an experiment.

Adding an analysis: its file in experiments/santurkar/, its import here and its line in ANALYSES.
"""

from __future__ import annotations

from bnlab.errors import ConfigError
from bnlab.experiments.experiment import Experiment
from bnlab.experiments.figure1 import FIGURE1
from bnlab.experiments.santurkar import Analysis
from bnlab.experiments.santurkar.ics import ICS_ANALYSIS
from bnlab.experiments.santurkar.landscape import LANDSCAPE_ANALYSIS
from bnlab.experiments.santurkar.lp_norm import LP_NORM_ANALYSIS
from bnlab.experiments.santurkar.lr_sweep import CONVNET_LR_ANALYSIS, LR_SWEEP_ANALYSIS
from bnlab.experiments.santurkar.noisy_bn import NOISY_BN_ANALYSIS
from bnlab.experiments.santurkar.placement import PLACEMENT_ANALYSIS
from bnlab.experiments.sweep import SWEEP

# `bnlab analyze NAME`, in the order its help lists them
ANALYSES: tuple[Analysis, ...] = (
    NOISY_BN_ANALYSIS,
    ICS_ANALYSIS,
    LANDSCAPE_ANALYSIS,
    LP_NORM_ANALYSIS,
    LR_SWEEP_ANALYSIS,
    CONVNET_LR_ANALYSIS,
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
