"""Santurkar et al. (2018)'s analyses: the measures as pure JAX functions of a loss and parameter
pytrees (ics, landscape), and the analyses run on the engine (config, run)."""

from bnlab.experiments.analyses.config import ANALYSES, AnalysisConfig, default_config
from bnlab.experiments.analyses.ics import ICS, ics_for_optax_step, internal_covariate_shift
from bnlab.experiments.analyses.landscape import Landscape, loss_landscape, step_multipliers
from bnlab.experiments.analyses.run import AnalysisResult, prepare_analysis, run_analysis

__all__ = [
    "ANALYSES",
    "ICS",
    "AnalysisConfig",
    "AnalysisResult",
    "Landscape",
    "default_config",
    "ics_for_optax_step",
    "internal_covariate_shift",
    "loss_landscape",
    "prepare_analysis",
    "run_analysis",
    "step_multipliers",
]
