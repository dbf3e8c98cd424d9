"""Mixed precision (float16/bfloat16 in, float32 statistics) and catastrophic cancellation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.core import batch_norm_eval, batch_norm_train, batch_stats, init_state

# worst absolute output difference from the float32 result, for outputs of order 1: half a unit
# in the last place of float16 (2^-11) / bfloat16 (2^-8) at |y| < 4, plus the input's rounding
LOW = [(jnp.float16, 5e-3), (jnp.bfloat16, 4e-2)]


@pytest.mark.parametrize(("dtype", "atol"), LOW, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_low_precision_matches_float32_without_overflow(dtype, atol, backward):
    # values around 300: x^2 ~ 9e4 overflows float16 (max 65504) if squared in float16
    rng = np.random.default_rng(0)
    x32 = jnp.asarray(rng.normal(300.0, 50.0, (64, 4)), jnp.float32)
    x = x32.astype(dtype)
    gamma, beta = jnp.asarray([1.0, 2.0, 0.5, 1.5]), jnp.asarray([0.0, 1.0, -1.0, 0.5])

    def loss(x, gamma, beta):
        y, _ = batch_norm_train(x, gamma, beta, init_state(4), backward=backward)
        return jnp.sum(y.astype(jnp.float32) * jnp.arange(4.0)), y

    (_, y), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(x, gamma, beta)
    y_ref, _ = batch_norm_train(x.astype(jnp.float32), gamma, beta, init_state(4))
    assert y.dtype == dtype and grads[0].dtype == dtype and grads[1].dtype == jnp.float32
    assert all(bool(jnp.isfinite(g.astype(jnp.float32)).all()) for g in (y, *grads))
    np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(y_ref), rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_low_precision_statistics_and_state_are_float32(dtype):
    x = jnp.full((4, 2), 250.0, dtype).at[0].set(260.0)
    moments = batch_stats(x)
    assert moments.mean.dtype == jnp.float32 and moments.var.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(moments.var), [18.75, 18.75], rtol=1e-6)
    _, state = batch_norm_train(x, None, None, init_state(2))
    assert state.running_var.dtype == jnp.float32
    y = batch_norm_eval(x, None, None, state)
    assert y.dtype == dtype and bool(jnp.isfinite(y.astype(jnp.float32)).all())


@pytest.mark.parametrize("m", [2, 64, 1000, 20000])
def test_large_mean_small_std_keeps_variance_accurate_in_float32(m):
    rng = np.random.default_rng(m)
    x = (1e4 + 1e-2 * rng.standard_normal((m, 3))).astype(np.float32)
    moments = batch_stats(jnp.asarray(x))
    exact = x.astype(np.float64).var(axis=0)
    np.testing.assert_allclose(np.asarray(moments.var), exact, rtol=1e-3)
    y, _ = batch_norm_train(jnp.asarray(x), None, None, init_state(3))
    assert bool(jnp.isfinite(y).all())
