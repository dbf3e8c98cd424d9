"""The "noisy BN" perturbation of Santurkar et al. (2018, Sec. 2.1): after a BN layer, every
activation of every sample is scaled and shifted by i.i.d. noise whose distribution itself changes
at each step, so that the layer's output distribution is unstable on purpose.

Constants (papers.md, Noisy BN, [secondary]): per layer and step
    mu_t ~ U(-0.5, 0.5),  sigma_t ~ U(1, 1.25);
per element (sample i, unit j)
    m_ij ~ U(mu_t - 0.1, mu_t + 0.1),  s_ij ~ N(sigma_t, 0.1);
and a_ij <- s_ij * a_ij + m_ij. The caller gives one key per layer and step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bnlab.errors import ConfigError


@dataclass(frozen=True)
class NoiseConfig:
    """The noise's constants; frozen (hashable) so it can be a static argument of ``jax.jit``."""

    mean_low: float = -0.5
    mean_high: float = 0.5
    scale_low: float = 1.0
    scale_high: float = 1.25
    mean_jitter: float = 0.1
    scale_std: float = 0.1

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value):
                raise ConfigError(f"noise.{name} must be a finite number, got {value}")
        if self.scale_low <= 0:
            raise ConfigError(f"noise.scale_low must be > 0 (a scale), got {self.scale_low}")
        for low, high in (("mean_low", "mean_high"), ("scale_low", "scale_high")):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(
                    f"noise.{low} must be <= noise.{high}, got "
                    f"{getattr(self, low)} > {getattr(self, high)}"
                )
        for name in ("mean_jitter", "scale_std"):
            if getattr(self, name) < 0:
                raise ConfigError(f"noise.{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class NoiseSample(NamedTuple):
    """One step's noise for one layer: the per-step mean and scale and the per-element draws."""

    mu: jax.Array
    sigma: jax.Array
    shift: jax.Array
    scale: jax.Array


def sample_noise(
    key: jax.Array, shape: tuple[int, ...], config: NoiseConfig = NoiseConfig(), dtype=jnp.float32
) -> NoiseSample:
    """Draw mu_t, sigma_t, then m_ij and s_ij for an activation of ``shape``."""
    k_mu, k_sigma, k_shift, k_scale = jax.random.split(key, 4)
    # mu_t ~ U(mean_low, mean_high)
    mu = jax.random.uniform(k_mu, (), dtype, config.mean_low, config.mean_high)
    # sigma_t ~ U(scale_low, scale_high)
    sigma = jax.random.uniform(k_sigma, (), dtype, config.scale_low, config.scale_high)
    # m_ij ~ U(mu_t - jitter, mu_t + jitter)
    shift = mu + jax.random.uniform(k_shift, shape, dtype, -config.mean_jitter, config.mean_jitter)
    # s_ij ~ N(sigma_t, scale_std)
    scale = sigma + config.scale_std * jax.random.normal(k_scale, shape, dtype)
    return NoiseSample(mu, sigma, shift, scale)


def add_noise(key: jax.Array, a: jax.Array, config: NoiseConfig = NoiseConfig()) -> jax.Array:
    """a_ij <- s_ij * a_ij + m_ij with a fresh draw for this key (one layer, one step)."""
    noise = sample_noise(key, a.shape, config, a.dtype)
    # a_ij <- s_ij * a_ij + m_ij
    return noise.scale * a + noise.shift
