"""A hidden layer's normalization as the spec says: BN (Algorithm 1) in training, the stored
statistics or the batch's own at evaluation, or Santurkar et al.'s l_p normalization likewise."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax

from bnlab.core import BatchNormState, batch_norm_eval, batch_norm_train, batch_stats, normalize
from bnlab.core.lp_norm import lp_norm_eval, lp_norm_train, lp_normalize, lp_stats

if TYPE_CHECKING:
    from bnlab.engine.model import ModelSpec, NormMode

# Santurkar et al.'s (Sec. 3.3) normalization by the average l_p norm, p = 1, 2, inf
LP_ORDER = {"lp1": 1.0, "lp2": 2.0, "lpinf": math.inf}


def normalization(
    spec: ModelSpec, h: jax.Array, p: dict, s: BatchNormState, mode: NormMode
) -> tuple[jax.Array, Any]:
    """Algorithm 1 in training, the stored statistics or the batch's own at evaluation (the same
    three for l_p normalization)."""
    if spec.norm != "bn":
        return _lp(spec, h, p, s, mode)
    if mode == "train":
        return batch_norm_train(
            h,
            p["gamma"],
            p["beta"],
            s,
            momentum=spec.momentum,
            eps=spec.eps,
            backward=spec.backward,
        )
    if mode == "running":
        return batch_norm_eval(h, p["gamma"], p["beta"], s, eps=spec.eps), s
    # "batch": the batch's own statistics, returned in place of the state. Built from the core's
    # parts because the notebook's evaluation with batch 1 is wanted here (every output is then
    # beta), which batch_norm_eval refuses as PyTorch does.
    moments = batch_stats(h)
    return normalize(h, moments.mean, moments.var, p["gamma"], p["beta"], spec.eps), moments


def _lp(
    spec: ModelSpec, h: jax.Array, p: dict, s: BatchNormState, mode: NormMode
) -> tuple[jax.Array, Any]:
    order = LP_ORDER[spec.norm]
    if mode == "train":
        return lp_norm_train(
            h, p["gamma"], p["beta"], s, p=order, momentum=spec.momentum, eps=spec.eps
        )
    if mode == "running":
        return lp_norm_eval(h, p["gamma"], p["beta"], s, p=order, eps=spec.eps), s
    mean, moment = lp_stats(h, order)
    return lp_normalize(h, mean, moment, p["gamma"], p["beta"], order, spec.eps), (mean, moment)
