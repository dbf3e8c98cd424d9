"""Santurkar et al. (2018)'s measures as pure JAX functions of any loss and parameter pytree:
internal covariate shift through gradients (Definition 2.1) and the loss landscape along the
gradient (Sec. 3.1)."""

from bnlab.measures.ics import ICS, ics_for_optax_step, internal_covariate_shift
from bnlab.measures.landscape import (
    DEFAULT_MULTIPLIER_RANGE,
    Landscape,
    loss_landscape,
    step_multipliers,
)

__all__ = [
    "DEFAULT_MULTIPLIER_RANGE",
    "ICS",
    "Landscape",
    "ics_for_optax_step",
    "internal_covariate_shift",
    "loss_landscape",
    "step_multipliers",
]
