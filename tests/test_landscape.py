"""The loss landscape along the gradient (Santurkar Fig. 4) on losses known in closed form."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.errors import ConfigError
from bnlab.measures import loss_landscape, step_multipliers

A = np.diag([1.0, 4.0])
ETAS = [0.1, 0.2, 0.4]


def quadratic(x, batch):
    # L(x) = 1/2 x^T A x
    return 0.5 * x @ batch @ x


def test_quadratic_by_hand(x64):
    x = jnp.asarray([1.0, 1.0])
    out = loss_landscape(quadratic, x, jnp.asarray(A), ETAS)
    # g = A x = [1, 4]; ||g||^2 = 17; g^T A g = 65; A g = [1, 16], ||A g||^2 = 257
    # L(x - eta g) = L(x) - eta ||g||^2 + eta^2 / 2 g^T A g; grad change = eta ||A g||
    etas = np.asarray(ETAS)
    losses = 2.5 - 17 * etas + 0.5 * 65 * etas**2
    np.testing.assert_allclose(np.asarray(out.loss), losses, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(out.grad_change), etas * math.sqrt(257), rtol=1e-14)
    assert float(out.loss_min) == pytest.approx(losses.min(), rel=1e-14)
    assert float(out.loss_max) == pytest.approx(losses.max(), rel=1e-14)
    assert float(out.loss_at_x) == 2.5
    assert float(out.grad_norm) == pytest.approx(math.sqrt(17), rel=1e-14)


def test_quadratic_smoothness_is_curvature_along_the_gradient(x64):
    x = jnp.asarray([1.0, 1.0])
    beta = float(loss_landscape(quadratic, x, jnp.asarray(A), ETAS).beta_smoothness)
    # ||A eta g|| / ||eta g|| = ||A g|| / ||g||, not the Rayleigh quotient 65/17
    assert beta == pytest.approx(math.sqrt(257 / 17), rel=1e-14)
    assert abs(beta - 65 / 17) > 0.05


def test_along_an_eigenvector_smoothness_is_its_eigenvalue(x64):
    x = jnp.asarray([0.0, 1.0])
    beta = float(loss_landscape(quadratic, x, jnp.asarray(A), ETAS).beta_smoothness)
    assert beta == pytest.approx(4.0, rel=1e-14)


def quartic(params, batch):
    # L = sum x^4 / 4 over a pytree; grad = x^3
    return sum(jnp.sum(leaf**4) / 4 for leaf in jax.tree_util.tree_leaves(params))


def test_non_quadratic_pytree_by_hand(x64):
    params = {"a": jnp.asarray([1.0]), "b": jnp.asarray([[-2.0]])}
    out = loss_landscape(quartic, params, None, ETAS)
    x = np.asarray([1.0, -2.0])
    g = x**3
    moved = [x - eta * g for eta in ETAS]
    np.testing.assert_allclose(np.asarray(out.loss), [np.sum(m**4) / 4 for m in moved])
    changes = [np.linalg.norm(g - m**3) for m in moved]
    np.testing.assert_allclose(np.asarray(out.grad_change), changes, rtol=1e-13)
    ratios = [c / (eta * np.linalg.norm(g)) for c, eta in zip(changes, ETAS, strict=True)]
    assert float(out.beta_smoothness) == pytest.approx(max(ratios), rel=1e-13)


def test_zero_gradient_is_flat():
    out = loss_landscape(quadratic, jnp.zeros(2), jnp.asarray(A, jnp.float32), ETAS)
    assert float(out.beta_smoothness) == 0.0
    np.testing.assert_array_equal(np.asarray(out.grad_change), np.zeros(3))


def test_jit_matches_eager():
    x = jnp.asarray([1.0, 1.0])
    eager = loss_landscape(quadratic, x, jnp.asarray(A, jnp.float32), ETAS)
    jitted = jax.jit(loss_landscape, static_argnums=0)(
        quadratic, x, jnp.asarray(A, jnp.float32), jnp.asarray(ETAS)
    )
    np.testing.assert_allclose(np.asarray(jitted.loss), np.asarray(eager.loss), rtol=1e-6)


@pytest.mark.parametrize(
    "low, high, count, expected",
    [
        (0.5, 4.0, 8, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),
        (0.5, 4.0, 1, [0.5]),
        (1, 1, 2, [1, 1]),
    ],
)
def test_step_multipliers(low, high, count, expected):
    assert step_multipliers(low, high, count) == pytest.approx(expected)


@pytest.mark.parametrize(
    "low, high, count, message",
    [
        (0.5, 4.0, 0, "step count must be >= 1, got 0"),
        (0.0, 4.0, 3, "0 < low <= high"),
        (4.0, 0.5, 3, "0 < low <= high"),
    ],
)
def test_bad_step_ranges_are_refused(low, high, count, message):
    with pytest.raises(ConfigError, match=message):
        step_multipliers(low, high, count)
