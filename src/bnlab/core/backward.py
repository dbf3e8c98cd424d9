"""The BN training forward pass with two interchangeable backward passes.

``"autodiff"`` lets JAX differentiate Algorithm 1. ``"paper"`` is Ioffe & Szegedy's Section 3
chain rule, written out before simplification, as a ``jax.custom_vjp``. Both share one forward
pass (so their outputs are bit-identical) and return ``(y, mean, var)``; the gradients flowing
into ``mean`` and ``var`` (zero when they only feed the running statistics, which are under
``stop_gradient``) are added to the paper's dl/dmu_B and dl/dsigma2_B, so the custom rule is exact
for any use of its outputs.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from bnlab.core.equations import per_feature
from bnlab.core.stats import batch_stats, feature_axes, normalize, stats_dtype, values_per_feature

Backward = Literal["paper", "autodiff"]


def forward_autodiff(
    x: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    eps: float,
    axis: int,
    axis_name: str | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Algorithm 1: (y, mu_B, sigma2_B), differentiated by JAX."""
    mean, var, _ = batch_stats(x, axis, axis_name)
    return normalize(x, mean, var, gamma, beta, eps, axis), mean, var


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def forward_paper(
    x: jax.Array,
    gamma: jax.Array,
    beta: jax.Array,
    eps: float,
    axis: int,
    axis_name: str | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Algorithm 1 with the paper's backward pass; ``gamma`` and ``beta`` must be arrays."""
    return forward_autodiff(x, gamma, beta, eps, axis, axis_name)


def _forward_paper_fwd(x, gamma, beta, eps, axis, axis_name):
    y, mean, var = forward_autodiff(x, gamma, beta, eps, axis, axis_name)
    return (y, mean, var), (x, gamma, beta, mean, var)


def _forward_paper_bwd(eps, axis, axis_name, residuals, cotangents):
    x, gamma, beta, mean, var = residuals
    dl_dy, dl_dmean_out, dl_dvar_out = cotangents
    axis, reduce = feature_axes(x.ndim, axis)
    # m counts the whole (cross-device) batch, as the statistics do
    m = values_per_feature(x.shape, axis)
    if axis_name is not None:
        m *= lax.axis_size(axis_name)
    dtype = stats_dtype(x.dtype)

    def b(v):  # a per-feature vector, broadcast against x
        return per_feature(v, x.ndim, axis, jnp)

    def across(v):  # a sum over the batch spans every device's shard
        return v if axis_name is None else lax.psum(v, axis_name)

    def sum_i(v):
        return across(jnp.sum(v, axis=reduce))

    x, dl_dy = x.astype(dtype), dl_dy.astype(dtype)
    gamma, mean, var = gamma.astype(dtype), mean.astype(dtype), var.astype(dtype)
    x_mu = x - b(mean)
    inv_std = 1 / jnp.sqrt(var + eps)
    xhat = x_mu * b(inv_std)

    # dl/dxhat_i = dl/dy_i * gamma
    dl_dxhat = dl_dy * b(gamma)
    # dl/dsigma2_B = sum_i dl/dxhat_i * (x_i - mu_B) * (-1/2) * (sigma2_B + eps)^(-3/2)
    dl_dvar = sum_i(dl_dxhat * x_mu * (-1 / 2) * b((var + eps) ** (-3 / 2)))
    dl_dvar = dl_dvar + across(dl_dvar_out.astype(dtype))
    # dl/dmu_B = sum_i dl/dxhat_i * (-1/sqrt(sigma2_B + eps))
    #            + dl/dsigma2_B * sum_i (-2 (x_i - mu_B)) / m
    dl_dmu = sum_i(dl_dxhat * b(-inv_std)) + dl_dvar * sum_i(-2 * x_mu) / m
    dl_dmu = dl_dmu + across(dl_dmean_out.astype(dtype))
    # dl/dx_i = dl/dxhat_i / sqrt(sigma2_B + eps) + dl/dsigma2_B * 2 (x_i - mu_B) / m
    #           + dl/dmu_B / m
    dl_dx = dl_dxhat * b(inv_std) + b(dl_dvar) * 2 * x_mu / m + b(dl_dmu) / m
    # dl/dgamma = sum_i dl/dy_i * xhat_i   (this shard's share, as autodiff gives it)
    dl_dgamma = jnp.sum(dl_dy * xhat, axis=reduce)
    # dl/dbeta = sum_i dl/dy_i
    dl_dbeta = jnp.sum(dl_dy, axis=reduce)
    x0, gamma0 = residuals[0], residuals[1]
    return dl_dx.astype(x0.dtype), dl_dgamma.astype(gamma0.dtype), dl_dbeta.astype(beta.dtype)


forward_paper.defvjp(_forward_paper_fwd, _forward_paper_bwd)


def train_forward(
    x: jax.Array,
    gamma: jax.Array | None,
    beta: jax.Array | None,
    eps: float,
    axis: int,
    axis_name: str | None,
    backward: Backward,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(y, mu_B, sigma2_B) with the chosen backward pass; affine off (None) works with both."""
    if backward == "autodiff":
        return forward_autodiff(x, gamma, beta, eps, axis, axis_name)
    if backward != "paper":
        raise ValueError(f"backward must be 'paper' or 'autodiff', got {backward!r}")
    features = x.shape[feature_axes(x.ndim, axis)[0]]
    dtype = stats_dtype(x.dtype)
    g = jnp.ones((features,), dtype) if gamma is None else gamma
    b = jnp.zeros((features,), dtype) if beta is None else beta
    return forward_paper(x, g, b, eps, axis, axis_name)
