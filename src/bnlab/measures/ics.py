"""Internal covariate shift measured through gradients (Santurkar et al. 2018, Definition 2.1).

    G_{t,i}  = grad_{W_i} L(W_1^t, ..., W_k^t; x^t, y^t)
    G'_{t,i} = grad_{W_i} L(W_1^{t+1}, ..., W_{i-1}^{t+1}, W_i^t, ..., W_k^t; x^t, y^t)

ICS of layer i is ||G_i - G'_i||_2, reported with cos(G_i, G'_i) (ideal: 0 and 1): how much layer
i's gradient changes when only the layers below it take the optimiser's step. Pure and generic:
parameters are a mapping from layer name (or a tuple/list indexed by layer number) to any pytree,
the layers listed from input to output, the loss any ``loss_fn(params, batch) -> scalar``; jit- and
vmap-friendly (the layer loop is static).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Layered = Mapping[str, Any] | Sequence[Any]
LossFn = Callable[[Layered, Any], jax.Array]


class ICS(NamedTuple):
    """Per layer, in the order of ``layers``: ||G - G'||_2, cos(G, G') and ||G||_2."""

    distance: jax.Array
    cosine: jax.Array
    grad_norm: jax.Array


def flat(tree: Any) -> jax.Array:
    """All leaves of a pytree as one vector (the "W_i" of a layer with several arrays)."""
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree_util.tree_leaves(tree)])


def cosine(u: jax.Array, v: jax.Array) -> jax.Array:
    """cos(u, v) = u.v / (||u|| ||v||); 0 when either vector is zero (no direction to compare)."""
    denom = jnp.linalg.norm(u) * jnp.linalg.norm(v)
    return jnp.where(denom > 0, jnp.vdot(u, v) / jnp.where(denom > 0, denom, 1), 0.0)


def pick(layer: Any, part: str | None) -> Any:
    return layer if part is None else layer[part]


def with_layers(params: Layered, source: Layered, layers: Sequence[str | int]) -> Layered:
    """``params`` with the entries ``layers`` taken from ``source``, of the same container type."""
    if isinstance(params, Mapping):
        return {**params, **{name: source[name] for name in layers}}
    mixed = list(params)
    for index in layers:
        mixed[index] = source[index]
    return type(params)(mixed)


def internal_covariate_shift(
    loss_fn: LossFn,
    params: Layered,
    next_params: Layered,
    batch: Any,
    layers: Sequence[str | int],
    part: str | None = None,
) -> ICS:
    """Definition 2.1 for each layer in ``layers`` (input to output), given the parameters before
    (W^t) and after (W^{t+1}) one optimiser step; ``batch`` is (x^t, y^t), the step's own batch.
    Parameters outside ``layers`` stay at W^t in every G'. The layers below are moved whole (BN's
    gamma and beta too); G and G' are taken over the whole layer, or over its entry ``part`` only
    (e.g. "w", the weight matrix W_i of the definition)."""
    grad_fn = jax.grad(loss_fn)
    # G_{t,i} for every i at once
    grads = grad_fn(params, batch)
    distance, cos, norm = [], [], []
    for i, name in enumerate(layers):
        # (W_1^{t+1}, ..., W_{i-1}^{t+1}, W_i^t, ..., W_k^t)
        mixed = with_layers(params, next_params, layers[:i])
        g = flat(pick(grads[name], part))
        # G'_{t,i}
        g_prime = flat(pick(grad_fn(mixed, batch)[name], part))
        distance.append(jnp.linalg.norm(g - g_prime))
        cos.append(cosine(g, g_prime))
        norm.append(jnp.linalg.norm(g))
    return ICS(jnp.stack(distance), jnp.stack(cos), jnp.stack(norm))


def ics_for_optax_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    params: Layered,
    opt_state: Any,
    batch: Any,
    layers: Sequence[str | int],
    part: str | None = None,
) -> ICS:
    """ICS at one training step of ``optimizer``: W^{t+1} is the step its own gradient G gives."""
    grads = jax.grad(loss_fn)(params, batch)
    updates, _ = optimizer.update(grads, opt_state, params)
    next_params = optax.apply_updates(params, updates)
    return internal_covariate_shift(loss_fn, params, next_params, batch, layers, part)
