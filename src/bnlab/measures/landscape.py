"""The loss landscape along the gradient (Santurkar et al. 2018, Sec. 3.1, Fig. 4).

At parameters x with gradient g = grad L(x), step along the descent direction by each eta of a
range (default [1/2, 4] x the learning rate) and measure, over the range:
  (a) loss variation: the losses L(x - eta g), drawn as their range (min, max);
  (b) gradient predictiveness: ||grad L(x) - grad L(x - eta g)||_2, also drawn as a range;
  (c) effective beta-smoothness: max_eta ||grad L(x) - grad L(x - eta g)||_2 / ||eta g||_2.
For a quadratic L(x) = 1/2 x^T A x: grad L(x - eta g) = g - eta A g, so (c) is ||A g|| / ||g|| for
every eta, the curvature along g (the Rayleigh quotient g^T A g / ||g||^2 only when g is an
eigenvector). Pure and generic: any ``loss_fn(params, batch) -> scalar`` on any parameter pytree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from bnlab.errors import ConfigError
from bnlab.measures.ics import flat

DEFAULT_MULTIPLIER_RANGE = (0.5, 4.0)


class Landscape(NamedTuple):
    """Per step size (aligned with ``etas``): the loss and the gradient change; and the summary
    numbers plotted in Fig. 4 (loss range, gradient-change range, effective beta-smoothness)."""

    etas: jax.Array
    loss: jax.Array
    grad_change: jax.Array
    loss_at_x: jax.Array
    grad_norm: jax.Array
    loss_min: jax.Array
    loss_max: jax.Array
    grad_change_min: jax.Array
    grad_change_max: jax.Array
    beta_smoothness: jax.Array


def step_multipliers(low: float, high: float, count: int) -> list[float]:
    """``count`` evenly spaced multipliers of the learning rate from ``low`` to ``high``."""
    if count < 1:
        raise ConfigError(f"landscape step count must be >= 1, got {count}")
    if not 0 < low <= high:
        raise ConfigError(f"landscape step range must satisfy 0 < low <= high, got [{low}, {high}]")
    if count == 1:
        return [float(low)]
    return [low + (high - low) * k / (count - 1) for k in range(count)]


def loss_landscape(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    batch: Any,
    etas: Sequence[float] | jax.Array,
) -> Landscape:
    """Move from ``params`` along -grad by each eta in ``etas`` (vmapped) and measure Fig. 4's
    three quantities on the same ``batch``."""
    loss_and_grad = jax.value_and_grad(loss_fn)
    loss_x, grads = loss_and_grad(params, batch)
    g = flat(grads)
    etas = jnp.asarray(etas, g.dtype)

    def moved(eta: jax.Array) -> tuple[jax.Array, jax.Array]:
        # x - eta g
        point = jax.tree_util.tree_map(lambda w, dw: w - eta * dw, params, grads)
        loss, grads_moved = loss_and_grad(point, batch)
        # ||grad L(x) - grad L(x - eta g)||_2
        return loss, jnp.linalg.norm(g - flat(grads_moved))

    loss, change = jax.vmap(moved)(etas)
    g_norm = jnp.linalg.norm(g)
    # ||grad L(x) - grad L(x - eta g)|| / ||eta g||, largest over eta (0 when g = 0: flat there)
    step_len = etas * g_norm
    ratio = jnp.where(step_len > 0, change / jnp.where(step_len > 0, step_len, 1), 0.0)
    return Landscape(
        etas=etas,
        loss=loss,
        grad_change=change,
        loss_at_x=loss_x,
        grad_norm=g_norm,
        loss_min=jnp.min(loss),
        loss_max=jnp.max(loss),
        grad_change_min=jnp.min(change),
        grad_change_max=jnp.max(change),
        beta_smoothness=jnp.max(ratio),
    )
