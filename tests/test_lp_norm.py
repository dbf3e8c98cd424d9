"""l_p normalization (Santurkar 3.3) on vectors whose answer is computed by hand, and p = 2 against
BN's Algorithm 1."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.core import batch_norm_train, init_state
from bnlab.core.lp_norm import lp_norm_eval, lp_norm_train, lp_stats

# one feature, m = 4: mean 3, centered c = [-2, -1, 0, 3]
X = [1.0, 2.0, 3.0, 6.0]
C = np.array([-2.0, -1.0, 0.0, 3.0])
# the average l_p norms: mean |c| = 6/4; sqrt(mean c^2) = sqrt(14/4); max |c| = 3
NORMS = {1.0: 1.5, 2.0: math.sqrt(3.5), math.inf: 3.0}
MOMENTS = {1.0: 1.5, 2.0: 3.5, math.inf: 3.0}


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_known_vector(x64, p):
    x = jnp.asarray(X, jnp.float64)[:, None]
    y, _ = lp_norm_train(x, None, None, init_state(1, jnp.float64), p=p, eps=0.0)
    np.testing.assert_allclose(np.asarray(y[:, 0]), C / NORMS[p], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_gamma_beta_applied_after_normalizing(x64, p):
    x = jnp.asarray(X, jnp.float64)[:, None]
    gamma, beta = jnp.asarray([2.0], jnp.float64), jnp.asarray([-0.5], jnp.float64)
    y, _ = lp_norm_train(x, gamma, beta, init_state(1, jnp.float64), p=p, eps=0.0)
    np.testing.assert_allclose(np.asarray(y[:, 0]), 2.0 * C / NORMS[p] - 0.5, rtol=1e-15)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_eps_enters_the_moment(x64, p):
    x = jnp.asarray(X, jnp.float64)[:, None]
    y, _ = lp_norm_train(x, None, None, init_state(1, jnp.float64), p=p, eps=0.25)
    norm = math.sqrt(3.5 + 0.25) if p == 2.0 else MOMENTS[p] + 0.25
    np.testing.assert_allclose(np.asarray(y[:, 0]), C / norm, rtol=1e-15)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_features_are_normalized_independently(x64, p):
    x = jnp.stack([jnp.asarray(X), 10.0 * jnp.asarray(X) + 7.0], axis=1).astype(jnp.float64)
    mean, moment = lp_stats(x, p)
    np.testing.assert_allclose(np.asarray(mean), [3.0, 37.0], rtol=1e-15)
    scale = 10.0 if p != 2.0 else 100.0
    np.testing.assert_allclose(np.asarray(moment), [MOMENTS[p], scale * MOMENTS[p]], rtol=1e-14)
    y, _ = lp_norm_train(x, None, None, init_state(2, jnp.float64), p=p, eps=0.0)
    np.testing.assert_allclose(np.asarray(y[:, 1]), np.asarray(y[:, 0]), rtol=1e-14)


@pytest.mark.parametrize("shape", [(60, 100), (8, 5, 5, 3)])
def test_l2_is_batch_norm(shape):
    key = jax.random.PRNGKey(0)
    x = 3.0 * jax.random.normal(key, shape) + 1.5
    c = shape[-1]
    gamma = jax.random.normal(jax.random.PRNGKey(1), (c,))
    beta = jax.random.normal(jax.random.PRNGKey(2), (c,))
    y_lp, _ = lp_norm_train(x, gamma, beta, init_state(c), p=2, eps=1e-5)
    y_bn, _ = batch_norm_train(x, gamma, beta, init_state(c), eps=1e-5)
    np.testing.assert_allclose(np.asarray(y_lp), np.asarray(y_bn), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_running_statistics_follow_momentum(x64, p):
    x = jnp.asarray(X, jnp.float64)[:, None]
    _, state = lp_norm_train(x, None, None, init_state(1, jnp.float64), p=p, momentum=0.25)
    # running = 0.75 * initial (mean 0, "var" 1) + 0.25 * batch
    np.testing.assert_allclose(np.asarray(state.running_mean), [0.25 * 3.0], rtol=1e-15)
    np.testing.assert_allclose(np.asarray(state.running_var), [0.75 + 0.25 * MOMENTS[p]])
    assert int(state.num_batches_tracked) == 1


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_eval_with_running_stats_of_that_batch_equals_train(x64, p):
    x = jnp.asarray(X, jnp.float64)[:, None]
    y, state = lp_norm_train(x, None, None, init_state(1, jnp.float64), p=p, momentum=1.0)
    np.testing.assert_allclose(np.asarray(lp_norm_eval(x, None, None, state, p=p)), np.asarray(y))


@pytest.mark.parametrize("p", [0.5, 3.0, -1.0])
def test_unsupported_p_is_refused(p):
    with pytest.raises(ValueError, match=r"Expected p in \(1, 2, inf\)"):
        lp_stats(jnp.ones((4, 2)), p)


def test_momentum_none_is_the_cumulative_average(x64):
    state = init_state(1, jnp.float64)
    for batch in ([1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 2.0, 2.0]):
        x = jnp.asarray(batch, jnp.float64)[:, None]
        _, state = lp_norm_train(x, None, None, state, p=1, momentum=None)
    # means 3 and 1; mean absolute deviations 1.5 and 1
    np.testing.assert_allclose(np.asarray(state.running_mean), [2.0], rtol=1e-15)
    np.testing.assert_allclose(np.asarray(state.running_var), [1.25], rtol=1e-15)
    assert int(state.num_batches_tracked) == 2
