"""Batch statistics and normalization (Algorithm 1) in JAX, on any feature axis.

Statistics are per feature (channel) over every other axis, so a convolutional input (N, H, W, C)
uses the paper's effective mini-batch m' = m * p * q. float16/bfloat16 inputs are normalized with
float32 statistics and returned in their own dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from bnlab.core import equations as eq


class Moments(NamedTuple):
    """One BN layer's statistics of one mini-batch: per-feature mean, BIASED variance, and the
    number of values each was computed from (m, or m * p * q for a convolution, times the number
    of devices with ``axis_name``)."""

    mean: jax.Array
    var: jax.Array
    count: int | jax.Array


def feature_axes(ndim: int, axis: int) -> tuple[int, tuple[int, ...]]:
    """Canonicalise the feature axis once: (feature axis >= 0, the axes statistics reduce over)."""
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis must be in [{-ndim}, {ndim - 1}] for an input with {ndim} dimensions, "
            f"got axis={axis}"
        )
    axis = axis % ndim
    return axis, tuple(a for a in range(ndim) if a != axis)


def stats_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """float16/bfloat16 inputs get float32 statistics; float32/float64 keep their own precision."""
    return jnp.promote_types(dtype, jnp.float32)


def values_per_feature(shape: tuple[int, ...], axis: int) -> int:
    """m: how many values each feature's statistics average over on this device."""
    axis, reduce = feature_axes(len(shape), axis)
    m = 1
    for a in reduce:
        m *= shape[a]
    return m


def batch_stats(x: jax.Array, axis: int = -1, axis_name: str | None = None) -> Moments:
    """Per-feature batch mean and biased batch variance (corrected two-pass), and m.

    With ``axis_name`` the statistics are averaged over that pmap/vmap axis (equal-sized shards),
    so they equal the statistics of the concatenated batch: the mean is averaged first, and each
    shard's squared deviations are taken from that global mean.
    """
    axis, reduce = feature_axes(x.ndim, axis)
    m = values_per_feature(x.shape, axis)
    x = x.astype(stats_dtype(x.dtype))
    mean = eq.batch_mean(x, reduce, jnp)
    if axis_name is not None:
        mean = lax.pmean(mean, axis_name)
    mean_dev, mean_sq_dev = eq.centered_moments(x, mean, axis, reduce, jnp)
    if axis_name is not None:
        mean_dev, mean_sq_dev = lax.pmean((mean_dev, mean_sq_dev), axis_name)
        m *= lax.axis_size(axis_name)
    var = eq.corrected_var(mean_dev, mean_sq_dev)
    return Moments(mean, var, m)


def normalize(
    x: jax.Array,
    mean: jax.Array,
    var: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    eps: float,
    axis: int = -1,
) -> jax.Array:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta per feature, computed in the statistics'
    precision and returned in the input's dtype. ``gamma``/``beta`` None means affine off."""
    axis, _ = feature_axes(x.ndim, axis)
    dtype = stats_dtype(x.dtype)
    xhat = eq.standardize(x.astype(dtype), mean.astype(dtype), var.astype(dtype), eps, axis, jnp)
    gamma = None if gamma is None else gamma.astype(dtype)
    beta = None if beta is None else beta.astype(dtype)
    return eq.scale_shift(xhat, gamma, beta, axis, jnp).astype(x.dtype)
