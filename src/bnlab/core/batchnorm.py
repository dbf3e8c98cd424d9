"""Batch Normalization as pure functions (Ioffe & Szegedy 2015, Algorithm 1).

State (the running statistics) goes in and comes out; nothing is hidden. Every function works on
any feature axis: statistics are per feature (channel) over every other axis, so a convolutional
input (N, H, W, C) uses the paper's effective mini-batch m' = m * p * q.

Conventions (PyTorch's, see docs): ``momentum`` weighs the new batch,
``running = (1 - momentum) * running + momentum * batch``, default 0.1; ``momentum=None`` keeps a
cumulative average; the running variance is unbiased (m / (m - 1)), while normalization itself uses
the biased batch variance, as Algorithm 1 does.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class BatchNormState(NamedTuple):
    """Running statistics of one BN layer: per-feature mean and unbiased variance, and the number of
    training batches they have seen (used by ``momentum=None``, the cumulative average)."""

    running_mean: jax.Array
    running_var: jax.Array
    num_batches_tracked: jax.Array


def init_state(num_features: int, dtype: jnp.dtype = jnp.float32) -> BatchNormState:
    """Running mean 0, running variance 1, no batches seen: BN at inference is then the identity
    (up to eps, gamma and beta)."""
    return BatchNormState(
        running_mean=jnp.zeros((num_features,), dtype),
        running_var=jnp.ones((num_features,), dtype),
        num_batches_tracked=jnp.zeros((), jnp.int32),
    )


def feature_axes(ndim: int, axis: int) -> tuple[int, tuple[int, ...]]:
    """Canonicalise the feature axis once: (feature axis >= 0, the axes statistics reduce over)."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an input with {ndim} dimensions")
    axis = axis % ndim
    return axis, tuple(a for a in range(ndim) if a != axis)


def stats_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """float16/bfloat16 inputs get float32 statistics; float32/float64 keep their own precision."""
    return jnp.promote_types(dtype, jnp.float32)


def _broadcast(v: jax.Array, ndim: int, axis: int) -> jax.Array:
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return v.reshape(shape)


def batch_stats(
    x: jax.Array, axis: int = -1, axis_name: str | None = None
) -> tuple[jax.Array, jax.Array, int]:
    """Per-feature batch mean and biased batch variance, and the number m of values per feature.

    Two-pass: the variance is the mean of squared deviations from the mean, never
    E[x^2] - E[x]^2, which cancels catastrophically when |mean| >> std. With ``axis_name`` the
    statistics are averaged over that device/vmap axis (equal-sized shards), as if the shards
    were one batch.
    """
    axis, reduce = feature_axes(x.ndim, axis)
    m = 1
    for a in reduce:
        m *= x.shape[a]
    x = x.astype(stats_dtype(x.dtype))
    # mu_B = (1/m) sum_i x_i
    mean = jnp.mean(x, axis=reduce)
    if axis_name is not None:
        mean = lax.pmean(mean, axis_name)
    # sigma2_B = (1/m) sum_i (x_i - mu_B)^2
    var = jnp.mean(jnp.square(x - _broadcast(mean, x.ndim, axis)), axis=reduce)
    if axis_name is not None:
        var = lax.pmean(var, axis_name)
        m *= lax.psum(1, axis_name)
    return mean, var, m


def normalize(
    x: jax.Array,
    mean: jax.Array,
    var: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    eps: float,
    axis: int = -1,
) -> jax.Array:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per feature, in the statistics' precision,
    returned in the input's dtype. ``gamma``/``beta`` None means affine off (1 and 0)."""
    axis, _ = feature_axes(x.ndim, axis)
    dtype = stats_dtype(x.dtype)
    mean, var = _broadcast(mean, x.ndim, axis), _broadcast(var, x.ndim, axis)
    # xhat_i = (x_i - mu_B) / sqrt(sigma2_B + eps)
    xhat = (x.astype(dtype) - mean) * lax.rsqrt(var.astype(dtype) + eps)
    # y_i = gamma * xhat_i + beta
    y = xhat
    if gamma is not None:
        y = y * _broadcast(gamma.astype(dtype), x.ndim, axis)
    if beta is not None:
        y = y + _broadcast(beta.astype(dtype), x.ndim, axis)
    return y.astype(x.dtype)


def update_running_stats(
    state: BatchNormState, mean: jax.Array, var: jax.Array, m: int, momentum: float | None
) -> BatchNormState:
    """Fold one batch's statistics into the running ones (no gradient flows through them)."""
    mean, var = lax.stop_gradient(mean), lax.stop_gradient(var)
    count = state.num_batches_tracked + 1
    # the running variance is unbiased: Var = m / (m - 1) * sigma2_B
    unbiased = var * (m / (m - 1))
    # momentum=None: cumulative average, weight 1/count for the newest batch
    weight = 1.0 / count if momentum is None else momentum
    dtype = state.running_mean.dtype
    return BatchNormState(
        running_mean=((1 - weight) * state.running_mean + weight * mean).astype(dtype),
        running_var=((1 - weight) * state.running_var + weight * unbiased).astype(dtype),
        num_batches_tracked=count,
    )


def batch_norm_train(
    x: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    state: BatchNormState,
    *,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    axis: int = -1,
    axis_name: str | None = None,
) -> tuple[jax.Array, BatchNormState]:
    """Algorithm 1 on a training mini-batch: normalize with the batch's own statistics and return
    the output together with the updated running statistics."""
    mean, var, m = batch_stats(x, axis, axis_name)
    if isinstance(m, int) and m < 2:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}"
        )
    y = normalize(x, mean, var, gamma, beta, eps, axis)
    return y, update_running_stats(state, mean, var, m, momentum)


def batch_norm_eval(
    x: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    state: BatchNormState,
    *,
    eps: float = 1e-5,
    axis: int = -1,
) -> jax.Array:
    """Inference: normalize with the running (or population) statistics; works on a batch of one."""
    return normalize(x, state.running_mean, state.running_var, gamma, beta, eps, axis)
