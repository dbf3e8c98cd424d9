"""Algorithm 2: population statistics from training mini-batches, and inference as one affine map.

The paper's inference step: "Process multiple training mini-batches B, each of size m, and average
over them", E[x] = E_B[mu_B] and Var[x] = m/(m-1) * E_B[sigma2_B], with the network's parameters
fixed; then replace each BN layer by y = a * x + b. No framework does this by default (they keep
moving averages); it equals PyTorch's ``momentum=None`` cumulative average over the same batches
started from reset statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from bnlab.core import equations as eq
from bnlab.core.batchnorm import BatchNormState
from bnlab.core.stats import Moments, feature_axes, stats_dtype
from bnlab.errors import ConfigError


def _is_moments(t: object) -> bool:
    return isinstance(t, Moments)


def _population(moments: Moments) -> BatchNormState:
    k = moments.mean.shape[0]
    counts = jnp.ravel(jnp.asarray(moments.count))
    if not isinstance(counts, jax.core.Tracer) and bool(jnp.any(counts != counts[0])):
        raise ConfigError(
            "Algorithm 2 needs mini-batches of one size m, got values per feature "
            f"{counts.tolist()}"
        )
    m = counts[0]
    # E[x] = E_B[mu_B]
    mean = jnp.mean(moments.mean, axis=0)
    # Var[x] = m / (m - 1) * E_B[sigma2_B]
    var = eq.unbiased_var(jnp.mean(moments.var, axis=0), m).astype(mean.dtype)
    return BatchNormState(mean, var, jnp.asarray(k, jnp.int32))


def population_from_moments(moments: Any) -> Any:
    """Population statistics from per-batch statistics stacked over K batches.

    ``moments`` is a pytree (one entry per BN layer, any structure) whose leaves are
    :class:`Moments` with a leading axis of K batches, as ``jax.lax.map`` or ``jax.vmap`` of
    :func:`bnlab.core.batch_stats` returns them. The result has the same structure with a
    :class:`BatchNormState` per layer (``num_batches_tracked`` = K), ready for
    :func:`bnlab.core.batch_norm_eval`.
    """
    return jax.tree.map(_population, moments, is_leaf=_is_moments)


def population_stats(
    moments_fn: Callable[[Any], Any], batches: Any, *, batch_size: int | None = None
) -> Any:
    """Algorithm 2 for a whole network: ``moments_fn(batch)`` runs the network in training mode
    with its parameters fixed (closed over) and returns each BN layer's :class:`Moments` for that
    mini-batch; ``batches`` is a pytree of arrays whose leading axis holds the K mini-batches.

    The K forward passes run inside one ``lax.map`` (a scan: one batch in memory at a time, no
    Python loop). ``batch_size`` (optional) is checked against the batches' second axis.
    """
    leaves = jax.tree.leaves(batches)
    if not leaves or leaves[0].ndim < 2 or leaves[0].shape[0] < 1:
        raise ConfigError(
            "batches must stack K >= 1 mini-batches on a leading axis, got shapes "
            f"{[tuple(v.shape) for v in leaves]}"
        )
    if batch_size is not None and leaves[0].shape[1] != batch_size:
        raise ConfigError(
            f"expected mini-batches of size {batch_size}, got shape {tuple(leaves[0].shape)}"
        )
    return population_from_moments(lax.map(moments_fn, batches))


def inference_affine(
    gamma: jax.Array | None, beta: jax.Array | None, mean: jax.Array, var: jax.Array, eps: float
) -> tuple[jax.Array, jax.Array]:
    """The per-feature affine map (a, b) that replaces BN at inference: y = a * x + b.

    ``gamma``/``beta`` None means affine off (1 and 0). Equal to ``batch_norm_eval`` in exact
    arithmetic; in float32 with |mean| >> std prefer ``batch_norm_eval``, which subtracts first.
    """
    dtype = stats_dtype(mean.dtype)
    mean, var = mean.astype(dtype), var.astype(dtype)
    gamma = jnp.ones_like(mean) if gamma is None else gamma.astype(dtype)
    beta = jnp.zeros_like(mean) if beta is None else beta.astype(dtype)
    # y = gamma / sqrt(Var[x] + eps) * x + (beta - gamma * E[x] / sqrt(Var[x] + eps))
    a = gamma / jnp.sqrt(var + eps)
    b = beta - gamma * mean / jnp.sqrt(var + eps)
    return a, b


def apply_affine(x: jax.Array, a: jax.Array, b: jax.Array, *, axis: int = -1) -> jax.Array:
    """y = a * x + b per feature along ``axis``, in float32 or better, returned in x's dtype."""
    axis, _ = feature_axes(x.ndim, axis)
    dtype = jnp.promote_types(stats_dtype(x.dtype), a.dtype)
    y = eq.scale_shift(x.astype(dtype), a.astype(dtype), b.astype(dtype), axis, jnp)
    return y.astype(x.dtype)
