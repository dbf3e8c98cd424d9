"""l_p normalization (Santurkar et al. 2018, Sec. 3.3): BN with the standard deviation replaced by
an average l_p norm, p in {1, 2, inf}.

The paper says only "normalize by the average l_p norm after fixing the mean" (papers.md, Sec. 3.3).
Our reading [inferred], per feature j over the m values of the batch, after centering
c_ij = x_ij - mu_j:

    n_j = ((1/m) sum_i |c_ij|^p + eps)^(1/p)      for p = 1, 2
    n_j = max_i |c_ij| + eps                       for p = inf

i.e. the l_p norm of the centered feature divided by m^(1/p) (its power mean), so that p = 2 is
exactly BN's Algorithm 1 (biased variance, eps inside the root) and every p gives a scale-free
output. The running statistics reuse :class:`BatchNormState`: ``running_var`` holds the running
"p-th moment" (1/m) sum_i |c_ij|^p (for p = inf: max_i |c_ij|), without Bessel's correction, and
inference divides by ``(running + eps)^(1/p)`` (for inf: ``running + eps``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# only names bnlab.core exports, so its internal layout can change
from bnlab.core import (
    BatchNormState,
    feature_axes,
    normalize,
    stats_dtype,
    update_running_stats,
)

SUPPORTED_P = (1.0, 2.0, math.inf)


def _check_p(p: float) -> float:
    p = float(p)
    if p not in SUPPORTED_P:
        raise ValueError(f"Expected p in (1, 2, inf) for l_p normalization, got {p}")
    return p


def lp_stats(x: jax.Array, p: float, axis: int = -1) -> tuple[jax.Array, jax.Array]:
    """Per-feature batch mean and p-th central moment (1/m) sum_i |x_i - mu|^p (p = inf: the
    largest |x_i - mu|), in the statistics' precision."""
    p = _check_p(p)
    axis, reduce = feature_axes(x.ndim, axis)
    x = x.astype(stats_dtype(x.dtype))
    # mu_j = (1/m) sum_i x_ij
    mean = jnp.mean(x, axis=reduce)
    # c_ij = x_ij - mu_j
    dev = jnp.abs(x - jnp.expand_dims(mean, reduce))
    if p == math.inf:
        # max_i |c_ij|
        return mean, jnp.max(dev, axis=reduce)
    # (1/m) sum_i |c_ij|^p
    return mean, jnp.mean(dev if p == 1.0 else jnp.square(dev), axis=reduce)


def lp_normalize(
    x: jax.Array,
    mean: jax.Array,
    moment: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    p: float,
    eps: float,
    axis: int = -1,
) -> jax.Array:
    """y = gamma * (x - mean) / n + beta with n = (moment + eps)^(1/p) (p = inf: moment + eps)."""
    if _check_p(p) == 2.0:
        # n_j = sqrt((1/m) sum_i c_ij^2 + eps): Algorithm 1's normalization exactly
        return normalize(x, mean, moment, gamma, beta, eps, axis)
    # n_j = (1/m) sum_i |c_ij| + eps (p = 1), max_i |c_ij| + eps (p = inf); BN's normalize divides
    # by sqrt(var + 0), so it gets n_j^2
    norm = moment.astype(stats_dtype(x.dtype)) + eps
    return normalize(x, mean, jnp.square(norm), gamma, beta, 0.0, axis)


def lp_norm_train(
    x: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    state: BatchNormState,
    *,
    p: float,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    axis: int = -1,
) -> tuple[jax.Array, BatchNormState]:
    """Normalize a training mini-batch by its own mean and average l_p norm; return the output
    and the running statistics, ``running = (1 - momentum) * running + momentum * batch``
    (``momentum=None``: the cumulative average, as for BN)."""
    mean, moment = lp_stats(x, p, axis)
    y = lp_normalize(x, mean, moment, gamma, beta, p, eps, axis)
    # the running p-th moment is averaged as it is (no m/(m-1) correction): unbiased=False
    return y, update_running_stats(state, mean, moment, 0, momentum, unbiased=False)


def lp_norm_eval(
    x: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    state: BatchNormState,
    *,
    p: float,
    eps: float = 1e-5,
    axis: int = -1,
) -> jax.Array:
    """Inference with the running mean and running p-th moment."""
    return lp_normalize(x, state.running_mean, state.running_var, gamma, beta, p, eps, axis)
