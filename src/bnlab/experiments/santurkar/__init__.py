"""Santurkar et al. (2018)'s analyses of BN, and Ioffe & Szegedy's learning-rate and placement
claims, as experiments on the `paper` preset's MLP; one file each."""

from bnlab.experiments.santurkar.common import Analysis, AnalysisConfig
from bnlab.experiments.santurkar.ics import ICS_ANALYSIS
from bnlab.experiments.santurkar.landscape import LANDSCAPE_ANALYSIS
from bnlab.experiments.santurkar.lp_norm import LP_NORM_ANALYSIS
from bnlab.experiments.santurkar.lr_sweep import LR_SWEEP_ANALYSIS
from bnlab.experiments.santurkar.noisy_bn import NOISY_BN_ANALYSIS
from bnlab.experiments.santurkar.placement import PLACEMENT_ANALYSIS

__all__ = [
    "ICS_ANALYSIS",
    "LANDSCAPE_ANALYSIS",
    "LP_NORM_ANALYSIS",
    "LR_SWEEP_ANALYSIS",
    "NOISY_BN_ANALYSIS",
    "PLACEMENT_ANALYSIS",
    "Analysis",
    "AnalysisConfig",
]
