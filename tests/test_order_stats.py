"""Medians by selection (bnlab.engine.order_stats) against jnp.median, bit for bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.engine.order_stats import kth_smallest, medians


def _case(name: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(51, 4)).astype(np.float32)
    if name == "ties":
        x = np.round(x, 1)
    elif name == "signed zeros":
        x[:20], x[20:30] = 0.0, -0.0
    elif name == "infinities and a NaN column":
        x[3, 1], x[5, 2], x[6, 3] = np.nan, np.inf, -np.inf
    elif name == "even count":
        x = x[:50]
    elif name == "one row":
        x = x[:1]
    elif name == "huge and tiny":
        x = x * np.float32(1e37)
        x[0] = np.float32(1e-45)
    return x


@pytest.mark.parametrize(
    "name",
    [
        "odd count",
        "even count",
        "one row",
        "ties",
        "signed zeros",
        "infinities and a NaN column",
        "huge and tiny",
    ],
)
def test_medians_equal_jnp_median(name):
    x = _case(name)
    np.testing.assert_array_equal(jax.jit(medians)(x), jnp.median(x, axis=0))


def test_kth_smallest_is_the_sorted_column_at_each_rank():
    x = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    ranks = np.array([0, 7, 39], np.int32)
    np.testing.assert_array_equal(
        kth_smallest(jnp.asarray(x), jnp.asarray(ranks)), np.sort(x, axis=0)[ranks]
    )
