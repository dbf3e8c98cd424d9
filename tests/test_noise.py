"""The noisy-BN perturbation (Santurkar 2.1): the formula, and the moments of its draws."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.core.noise import NoiseConfig, add_noise, sample_noise
from bnlab.errors import ConfigError

KEY = jax.random.PRNGKey(7)


def test_noise_is_scale_times_activation_plus_shift():
    a = jax.random.normal(jax.random.PRNGKey(1), (60, 100))
    noise = sample_noise(KEY, a.shape)
    np.testing.assert_array_equal(
        np.asarray(add_noise(KEY, a)), np.asarray(noise.scale * a + noise.shift)
    )


def test_without_per_element_jitter_every_element_gets_the_step_mean_and_scale():
    config = NoiseConfig(mean_jitter=0.0, scale_std=0.0)
    noise = sample_noise(KEY, (3, 4), config)
    np.testing.assert_array_equal(np.asarray(noise.shift), np.full((3, 4), float(noise.mu)))
    np.testing.assert_array_equal(np.asarray(noise.scale), np.full((3, 4), float(noise.sigma)))


def within_sigmas(value: float, expected: float, sd: float, k: float = 5.0) -> None:
    assert abs(value - expected) <= k * sd, (value, expected, sd)


def test_per_element_draws_have_the_configured_moments():
    n = 200_000
    noise = sample_noise(KEY, (n,))
    mu, sigma = float(noise.mu), float(noise.sigma)
    jitter = np.asarray(noise.shift, np.float64) - mu
    # m_ij - mu_t ~ U(-0.1, 0.1): within the bounds, mean 0, variance 0.2^2 / 12
    assert jitter.min() >= -0.1 - 1e-6 and jitter.max() <= 0.1 + 1e-6
    within_sigmas(jitter.mean(), 0.0, math.sqrt(0.04 / 12 / n))
    within_sigmas(jitter.var(), 0.04 / 12, 0.04 / 12 * math.sqrt(0.8 / n))
    # s_ij ~ N(sigma_t, 0.1): mean sigma_t, variance 0.01
    scale = np.asarray(noise.scale, np.float64)
    within_sigmas(scale.mean(), sigma, 0.1 / math.sqrt(n))
    within_sigmas(scale.var(), 0.01, 0.01 * math.sqrt(2 / n))


def test_per_step_mean_and_scale_are_uniform_on_their_ranges():
    n = 20_000
    keys = jax.random.split(KEY, n)
    draws = jax.vmap(lambda k: sample_noise(k, (1,)))(keys)
    mu, sigma = np.asarray(draws.mu, np.float64), np.asarray(draws.sigma, np.float64)
    assert mu.min() >= -0.5 and mu.max() <= 0.5
    assert sigma.min() >= 1.0 and sigma.max() <= 1.25
    # U(a, b): mean (a + b) / 2, variance (b - a)^2 / 12
    within_sigmas(mu.mean(), 0.0, math.sqrt(1 / 12 / n))
    within_sigmas(mu.var(), 1 / 12, 1 / 12 * math.sqrt(0.8 / n))
    within_sigmas(sigma.mean(), 1.125, math.sqrt(0.0625 / 12 / n))


def test_custom_constants_are_used():
    config = NoiseConfig(
        mean_low=2.0, mean_high=2.0, scale_low=3.0, scale_high=3.0, mean_jitter=0, scale_std=0
    )
    a = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(
        np.asarray(add_noise(KEY, a, config)), 3.0 * np.arange(6.0).reshape(2, 3) + 2.0
    )


def test_same_key_same_noise():
    a = jnp.ones((5, 5))
    np.testing.assert_array_equal(np.asarray(add_noise(KEY, a)), np.asarray(add_noise(KEY, a)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mean_low": 1.0, "mean_high": 0.0}, "noise.mean_low must be <= noise.mean_high"),
        ({"scale_low": 2.0, "scale_high": 1.0}, "noise.scale_low must be <= noise.scale_high"),
        ({"mean_jitter": -0.1}, "noise.mean_jitter must be >= 0"),
        ({"scale_std": -1.0}, "noise.scale_std must be >= 0"),
    ],
)
def test_bad_constants_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        NoiseConfig(**kwargs)
