"""Algorithm 2: population statistics over K training mini-batches and the folded affine map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.core import (
    Moments,
    apply_affine,
    batch_norm_eval,
    batch_norm_train,
    batch_stats,
    inference_affine,
    init_state,
    population_from_moments,
    population_stats,
)
from bnlab.errors import ConfigError

K, M = 5, 8  # mini-batches, examples per mini-batch


def network(params, x):
    """Two BN layers (dense, then convolution-like (N, H, W, C)) in training mode, returning the
    Moments of each: what an engine's network returns to Algorithm 2."""
    h = x @ params["w1"]
    m1 = batch_stats(h)
    h, _ = batch_norm_train(h, None, None, init_state(h.shape[-1], h.dtype))
    h = jnp.tanh(h).reshape(h.shape[0], 2, 2, 3) * params["w2"]
    return {"dense": m1, "conv": batch_stats(h)}


def setup(seed=0):
    rng = np.random.default_rng(seed)
    params = {"w1": jnp.asarray(rng.normal(size=(4, 12))), "w2": jnp.asarray(rng.normal(size=3))}
    batches = jnp.asarray(rng.normal(1.0, 2.0, size=(K, M, 4)))
    return params, batches


def test_population_stats_is_the_papers_average_with_bessel_correction(x64):
    params, batches = setup()
    pop = population_stats(lambda b: network(params, b), batches, batch_size=M)
    per_batch = [network(params, batches[k]) for k in range(K)]
    for layer, m in (("dense", M), ("conv", M * 2 * 2)):
        means = np.stack([np.asarray(p[layer].mean) for p in per_batch])
        vars_ = np.stack([np.asarray(p[layer].var) for p in per_batch])
        np.testing.assert_allclose(np.asarray(pop[layer].running_mean), means.mean(0), atol=1e-13)
        np.testing.assert_allclose(
            np.asarray(pop[layer].running_var), m / (m - 1) * vars_.mean(0), rtol=1e-13
        )
        assert int(pop[layer].num_batches_tracked) == K


def test_population_stats_equal_pytorch_style_cumulative_average(x64):
    # momentum=None over the same K batches from reset statistics gives the same numbers.
    _, batches = setup()
    pop = population_stats(lambda b: {"bn": batch_stats(b)}, batches)["bn"]
    state = init_state(4, jnp.float64)
    for k in range(K):
        _, state = batch_norm_train(batches[k], None, None, state, momentum=None)
    np.testing.assert_allclose(np.asarray(pop.running_mean), np.asarray(state.running_mean))
    np.testing.assert_allclose(np.asarray(pop.running_var), np.asarray(state.running_var))


def test_population_from_moments_accepts_vmapped_stats(x64):
    _, batches = setup()
    stacked = jax.vmap(batch_stats)(batches)
    pop = population_from_moments(stacked)
    x = np.asarray(batches)
    np.testing.assert_allclose(np.asarray(pop.running_mean), x.mean(axis=(0, 1)), atol=1e-13)
    expected = M / (M - 1) * x.var(axis=1).mean(0)
    np.testing.assert_allclose(np.asarray(pop.running_var), expected, rtol=1e-13)


def test_unequal_batch_sizes_raise():
    moments = Moments(jnp.zeros((2, 3)), jnp.ones((2, 3)), jnp.asarray([8, 6]))
    with pytest.raises(ConfigError, match=r"one size m, got values per feature \[8, 6\]"):
        population_from_moments(moments)


def test_batches_of_the_wrong_size_raise():
    with pytest.raises(
        ConfigError, match=r"expected mini-batches of size 60, got shape \(5, 8, 4\)"
    ):
        population_stats(batch_stats, jnp.ones((5, 8, 4)), batch_size=60)


@pytest.mark.parametrize("affine", [True, False])
def test_folded_affine_map_equals_inference(x64, affine):
    rng = np.random.default_rng(3)
    gamma = jnp.asarray(rng.normal(size=3)) if affine else None
    beta = jnp.asarray(rng.normal(size=3)) if affine else None
    mean, var = jnp.asarray(rng.normal(size=3)), jnp.asarray(rng.uniform(0.1, 3, 3))
    a, b = inference_affine(gamma, beta, mean, var, 1e-3)
    x = jnp.asarray(rng.normal(size=(1, 4, 4, 3)))  # a batch of one image
    state = init_state(3, jnp.float64)._replace(running_mean=mean, running_var=var)
    expected = batch_norm_eval(x, gamma, beta, state, eps=1e-3)
    np.testing.assert_allclose(np.asarray(apply_affine(x, a, b)), np.asarray(expected), atol=1e-13)


def test_folded_affine_map_is_the_papers_formula(x64):
    gamma, beta = jnp.asarray([2.0]), jnp.asarray([0.5])
    mean, var, eps = jnp.asarray([3.0]), jnp.asarray([4.0]), 1e-5
    a, b = inference_affine(gamma, beta, mean, var, eps)
    # a = gamma / sqrt(Var + eps), b = beta - gamma E[x] / sqrt(Var + eps)
    assert float(a[0]) == 2.0 / np.sqrt(4.0 + 1e-5)
    assert float(b[0]) == 0.5 - 2.0 * 3.0 / np.sqrt(4.0 + 1e-5)


def test_folded_affine_map_on_channels_first():
    a, b = jnp.asarray([2.0, 3.0]), jnp.asarray([1.0, -1.0])
    y = apply_affine(jnp.ones((1, 2, 3)), a, b, axis=1)
    np.testing.assert_array_equal(np.asarray(y[0, :, 0]), [3.0, 2.0])
