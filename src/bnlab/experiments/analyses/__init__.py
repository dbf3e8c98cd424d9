"""Santurkar et al. (2018)'s measures as pure JAX functions of a loss and parameter pytrees."""

from bnlab.experiments.analyses.ics import ICS, ics_for_optax_step, internal_covariate_shift
from bnlab.experiments.analyses.landscape import Landscape, loss_landscape, step_multipliers

__all__ = [
    "ICS",
    "Landscape",
    "ics_for_optax_step",
    "internal_covariate_shift",
    "loss_landscape",
    "step_multipliers",
]
