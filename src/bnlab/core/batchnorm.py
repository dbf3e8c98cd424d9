"""Batch Normalization as pure functions (Ioffe & Szegedy 2015, Algorithm 1 and inference).

State (the running statistics) goes in and comes out; nothing is hidden. Every function works on
any feature axis: statistics are per feature (channel) over every other axis, so a convolutional
input (N, H, W, C) uses the paper's effective mini-batch m' = m * p * q.

Conventions (PyTorch's; docs/conventions.md compares the frameworks): ``momentum`` weighs the new
batch, ``running = (1 - momentum) * running + momentum * batch``, default 0.1; ``momentum=None``
keeps a cumulative average; the running variance is unbiased (m / (m - 1)), while normalization
itself uses the biased batch variance, as Algorithm 1 does. ``eps`` (default 1e-5) sits inside the
square root. Algorithm 2's exact population statistics are in :mod:`bnlab.core.population`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from bnlab.core import equations as eq
from bnlab.core.backward import Backward, train_forward
from bnlab.core.stats import (
    Moments,
    batch_stats,
    feature_axes,
    normalize,
    stats_dtype,
    values_per_feature,
)
from bnlab.errors import ConfigError

__all__ = [
    "BatchNormState",
    "Moments",
    "batch_norm_eval",
    "batch_norm_train",
    "batch_stats",
    "check_options",
    "feature_axes",
    "init_state",
    "normalize",
    "stats_dtype",
    "update_running_stats",
]

DEFAULT_BACKWARD: Backward = "paper"


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


def _concrete(v: object) -> bool:
    return not isinstance(v, jax.core.Tracer)


def check_options(
    momentum: float | None = 0.1, eps: float = 1e-5, *, eps_name: str = "eps"
) -> None:
    """Raise :class:`ConfigError` (a ValueError) unless momentum is in [0, 1] or None and eps > 0
    (``eps_name`` names it in the message: Keras calls it epsilon). Traced values (an engine
    vmapping over hyperparameters) are not checked."""
    if momentum is not None and _concrete(momentum) and not 0 <= float(momentum) <= 1:
        raise ConfigError(f"momentum must be in [0, 1] or None, got momentum={momentum!r}")
    if _concrete(eps) and not float(eps) > 0:
        raise ConfigError(f"{eps_name} must be > 0, got {eps_name}={eps!r}")


def check_features(
    x: jax.Array,
    axis: int,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    state: BatchNormState | None,
) -> None:
    """Raise :class:`ConfigError` unless every per-feature array has x's feature count."""
    axis, _ = feature_axes(x.ndim, axis)
    n = x.shape[axis]
    named = {"gamma": gamma, "beta": beta}
    if state is not None:
        named |= {"running_mean": state.running_mean, "running_var": state.running_var}
    for name, v in named.items():
        if v is not None and tuple(v.shape) != (n,):
            raise ConfigError(
                f"{name} must have shape ({n},), the {n} features on axis {axis} of the input "
                f"of shape {tuple(x.shape)}, got shape {tuple(v.shape)}"
            )


def check_batch(x: jax.Array, axis: int, axis_name: str | None) -> None:
    """Batch statistics need two values per feature; PyTorch's message, as a ConfigError."""
    if axis_name is None and values_per_feature(x.shape, axis) < 2:
        raise ConfigError(
            f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}"
        )


def update_running_stats(
    state: BatchNormState,
    mean: jax.Array,
    var: jax.Array,
    m: int,
    momentum: float | None,
    *,
    unbiased: bool = True,
) -> BatchNormState:
    """Fold one batch's statistics (biased ``var`` over ``m`` values) into the running ones; no
    gradient flows into the running statistics. ``unbiased=False`` averages the biased variance
    (Keras's and Flax's convention) instead of m/(m-1) times it (PyTorch's and Algorithm 2's)."""
    mean, var = lax.stop_gradient(mean), lax.stop_gradient(var)
    if unbiased:
        var = eq.unbiased_var(var, m)
    count = state.num_batches_tracked + 1
    # momentum=None: cumulative average, weight 1/count for the newest batch
    weight = 1.0 / count if momentum is None else momentum
    dtype = state.running_mean.dtype
    return BatchNormState(
        running_mean=eq.moving_average(state.running_mean, mean, weight).astype(dtype),
        running_var=eq.moving_average(state.running_var, var, weight).astype(dtype),
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
    backward: Backward = DEFAULT_BACKWARD,
    track_running_stats: bool = True,
    unbiased: bool = True,
) -> tuple[jax.Array, BatchNormState]:
    """Algorithm 1 on a training mini-batch: normalize with the batch's own statistics and return
    the output together with the updated running statistics.

    ``gamma``/``beta`` None turns that half of the affine map off. ``axis_name`` averages the
    statistics over a pmap/vmap axis (equal shards): the result equals BN of the concatenated batch.
    ``backward`` picks the gradient: ``"paper"`` (Section 3's chain rule, a custom VJP) or
    ``"autodiff"``; both give the same values. ``track_running_stats=False`` returns ``state``
    untouched (pair it with ``batch_norm_eval(..., track_running_stats=False)``).
    ``unbiased=False`` keeps the biased running variance (Keras/Flax; their momentum is
    ``1 - momentum`` here).
    """
    check_options(momentum, eps)
    check_features(x, axis, gamma, beta, state)
    check_batch(x, axis, axis_name)
    y, mean, var = train_forward(x, gamma, beta, eps, axis, axis_name, backward)
    if not track_running_stats:
        return y, state
    m = values_per_feature(x.shape, axis)
    if axis_name is not None:
        m *= lax.axis_size(axis_name)
    return y, update_running_stats(state, mean, var, m, momentum, unbiased=unbiased)


def batch_norm_eval(
    x: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    state: BatchNormState | None,
    *,
    eps: float = 1e-5,
    axis: int = -1,
    track_running_stats: bool = True,
    axis_name: str | None = None,
) -> jax.Array:
    """Inference: normalize with the running (or Algorithm 2's population) statistics in
    ``state``, per example, so a batch of one works and the result does not depend on the batch.

    ``track_running_stats=False`` (or ``state=None``) normalizes with the batch's own statistics
    instead, like PyTorch with ``track_running_stats=False``. That is what the seed notebook's
    ``BatchNorm1D`` did at test time: each test example's output then depends on the others in its
    batch, which the paper's inference (Algorithm 2) avoids.

    Computed as ``gamma * (x - mean) / sqrt(var + eps) + beta``; the same map folded into the
    paper's ``a * x + b`` is :func:`bnlab.core.population.inference_affine`, equal in exact
    arithmetic but less accurate in float32 when |mean| >> std (a*x and b then cancel).
    """
    check_options(None, eps)
    if state is None or not track_running_stats:
        check_features(x, axis, gamma, beta, None)
        check_batch(x, axis, axis_name)
        mean, var, _ = batch_stats(x, axis, axis_name)
        return normalize(x, mean, var, gamma, beta, eps, axis)
    check_features(x, axis, gamma, beta, state)
    return normalize(x, state.running_mean, state.running_var, gamma, beta, eps, axis)
