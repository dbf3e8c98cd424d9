"""Algorithm 1, running statistics, inference and validation of bnlab.core, against NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.core import (
    BatchNormState,
    batch_norm_eval,
    batch_norm_train,
    batch_stats,
    check_options,
    init_state,
)
from bnlab.errors import ConfigError

# (shape, feature axis): dense, sequence, channels-last and channels-first convolutional input
LAYOUTS = [((7, 3), -1), ((5, 4, 3), -1), ((2, 3, 4, 5), -1), ((2, 5, 3, 4), 1)]
LAYOUT_IDS = ["N,C", "N,L,C", "N,H,W,C", "N,C,H,W"]


def reference_bn(x, gamma, beta, eps, axis):
    """Algorithm 1 in NumPy float64, the oracle for the forward pass."""
    axis = axis % x.ndim
    reduce = tuple(a for a in range(x.ndim) if a != axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    mean = x.mean(axis=reduce, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=reduce, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * gamma.reshape(shape) + beta.reshape(shape), mean.ravel(), var.ravel()


def random_case(shape, axis, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[axis]
    x = rng.normal(2.0, 3.0, shape)
    return x, rng.normal(1.0, 0.5, c), rng.normal(0.0, 0.5, c)


@pytest.mark.parametrize(("shape", "axis"), LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_training_output_equals_algorithm_1(x64, shape, axis, backward):
    x, gamma, beta = random_case(shape, axis)
    state = init_state(shape[axis], jnp.float64)
    y, _ = batch_norm_train(
        jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(beta), state, axis=axis, backward=backward
    )
    expected, _, _ = reference_bn(x, gamma, beta, 1e-5, axis)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("gamma_on", "beta_on"), [(False, False), (True, False), (False, True)])
def test_affine_off_means_gamma_one_beta_zero(x64, gamma_on, beta_on):
    x, gamma, beta = random_case((6, 3), -1)
    g = jnp.asarray(gamma) if gamma_on else None
    b = jnp.asarray(beta) if beta_on else None
    y, _ = batch_norm_train(jnp.asarray(x), g, b, init_state(3, jnp.float64))
    expected, _, _ = reference_bn(
        x, gamma if gamma_on else np.ones(3), beta if beta_on else np.zeros(3), 1e-5, -1
    )
    np.testing.assert_allclose(np.asarray(y), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("shape", "axis"), LAYOUTS, ids=LAYOUT_IDS)
def test_batch_stats_count_is_values_per_feature(shape, axis):
    m = int(np.prod(shape)) // shape[axis]
    assert batch_stats(jnp.ones(shape), axis).count == m


@pytest.mark.parametrize("momentum", [0.1, 0.3, None], ids=["0.1", "0.3", "None"])
@pytest.mark.parametrize(("shape", "axis"), LAYOUTS[::2], ids=LAYOUT_IDS[::2])
def test_running_stats_after_k_steps(x64, momentum, shape, axis):
    c = shape[axis]
    state = init_state(c, jnp.float64)
    mean_ref, var_ref = np.zeros(c), np.ones(c)
    for k in range(1, 5):
        x, gamma, beta = random_case(shape, axis, seed=k)
        _, state = batch_norm_train(
            jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(beta), state, momentum=momentum,
            axis=axis,
        )  # fmt: skip
        _, mean, var = reference_bn(x, gamma, beta, 1e-5, axis)
        m = x.size // c
        w = 1 / k if momentum is None else momentum
        mean_ref = (1 - w) * mean_ref + w * mean
        var_ref = (1 - w) * var_ref + w * var * m / (m - 1)
    np.testing.assert_allclose(np.asarray(state.running_mean), mean_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(state.running_var), var_ref, rtol=0, atol=1e-12)
    assert int(state.num_batches_tracked) == 4


def test_momentum_one_makes_running_stats_the_batch_stats(x64):
    x, gamma, beta = random_case((9, 4), -1)
    _, state = batch_norm_train(
        jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(beta), init_state(4, jnp.float64),
        momentum=1.0,
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(state.running_mean), x.mean(0), rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(state.running_var), x.var(0, ddof=1), rtol=1e-13)


def test_momentum_zero_keeps_running_stats_and_counts_the_batch(x64):
    x, gamma, beta = random_case((9, 4), -1)
    before = BatchNormState(jnp.arange(4.0), jnp.arange(1.0, 5.0), jnp.asarray(3, jnp.int32))
    _, after = batch_norm_train(
        jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(beta), before, momentum=0.0
    )
    np.testing.assert_array_equal(np.asarray(after.running_mean), np.arange(4.0))
    np.testing.assert_array_equal(np.asarray(after.running_var), np.arange(1.0, 5.0))
    assert int(after.num_batches_tracked) == 4


def test_first_cumulative_step_replaces_initial_stats(x64):
    x, _, _ = random_case((9, 4), -1)
    start = BatchNormState(jnp.full(4, 7.0), jnp.full(4, 9.0), jnp.asarray(0, jnp.int32))
    _, state = batch_norm_train(jnp.asarray(x), None, None, start, momentum=None)
    np.testing.assert_allclose(np.asarray(state.running_mean), x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(state.running_var), x.var(0, ddof=1), rtol=1e-13)


@pytest.mark.parametrize(("shape", "axis"), LAYOUTS, ids=LAYOUT_IDS)
def test_inference_uses_running_stats(x64, shape, axis):
    x, gamma, beta = random_case(shape, axis)
    rng = np.random.default_rng(1)
    mean, var = rng.normal(size=shape[axis]), rng.uniform(0.5, 2, shape[axis])
    state = BatchNormState(jnp.asarray(mean), jnp.asarray(var), jnp.asarray(5, jnp.int32))
    y = batch_norm_eval(jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(beta), state, axis=axis)
    bshape = [1] * len(shape)
    bshape[axis] = -1
    r = lambda v: v.reshape(bshape)  # noqa: E731
    expected = (x - r(mean)) / np.sqrt(r(var) + 1e-5) * r(gamma) + r(beta)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=0, atol=1e-12)


def test_inference_on_a_batch_of_one_is_per_example(x64):
    x, gamma, beta = random_case((5, 3), -1)
    _, state = batch_norm_train(
        jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(beta), init_state(3, jnp.float64)
    )
    args = (jnp.asarray(gamma), jnp.asarray(beta), state)
    whole = batch_norm_eval(jnp.asarray(x), *args)
    one = batch_norm_eval(jnp.asarray(x[2:3]), *args)
    np.testing.assert_array_equal(np.asarray(one), np.asarray(whole[2:3]))


def test_zero_training_steps_is_the_identity_up_to_eps(x64):
    x, _, _ = random_case((4, 3), -1)
    y = batch_norm_eval(jnp.asarray(x), None, None, init_state(3, jnp.float64), eps=1e-5)
    np.testing.assert_allclose(np.asarray(y), x / np.sqrt(1 + 1e-5), rtol=1e-15)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_constant_input_gives_beta(x64, dtype):
    beta = jnp.asarray([0.5, -2.0, 3.0], dtype)
    x = jnp.full((8, 3), 4.25, dtype)
    y, _ = batch_norm_train(x, jnp.asarray([2.0, 3.0, 4.0], dtype), beta, init_state(3, dtype))
    np.testing.assert_array_equal(np.asarray(y), np.broadcast_to(np.asarray(beta), (8, 3)))


def test_track_running_stats_false_keeps_state_and_evaluates_on_batch_stats(x64):
    x, gamma, beta = random_case((6, 3), -1)
    args = (jnp.asarray(x), jnp.asarray(gamma), jnp.asarray(beta))
    state = init_state(3, jnp.float64)
    y_train, same = batch_norm_train(*args, state, track_running_stats=False)
    assert same is state
    y_eval = batch_norm_eval(*args, state, track_running_stats=False)
    np.testing.assert_array_equal(np.asarray(y_eval), np.asarray(y_train))
    np.testing.assert_array_equal(np.asarray(batch_norm_eval(*args, None)), np.asarray(y_train))


def test_jit_and_vmap_over_independent_runs(x64):
    x, gamma, _ = random_case((3, 6, 2), -1)  # three runs of a (6, 2) batch each
    states = jax.vmap(lambda _: init_state(2, jnp.float64))(jnp.arange(3))
    step = jax.jit(jax.vmap(lambda x, s: batch_norm_train(x, jnp.asarray(gamma), None, s)))
    ys, new = step(jnp.asarray(x), states)
    for r in range(3):
        y_r, s_r = batch_norm_train(jnp.asarray(x[r]), jnp.asarray(gamma), None, init_state(2))
        np.testing.assert_allclose(np.asarray(ys[r]), np.asarray(y_r), atol=1e-12)
        np.testing.assert_allclose(np.asarray(new.running_var[r]), np.asarray(s_r.running_var))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"momentum": -0.1}, "momentum must be in [0, 1] or None, got momentum=-0.1"),
        ({"momentum": 1.5}, "momentum must be in [0, 1] or None, got momentum=1.5"),
        ({"momentum": float("nan")}, "momentum must be in [0, 1] or None, got momentum=nan"),
        ({"eps": 0.0}, "eps must be > 0, got eps=0.0"),
        ({"eps": -1e-5}, "eps must be > 0, got eps=-1e-05"),
    ],
)
def test_out_of_range_options_raise(kwargs, message):
    with pytest.raises(ConfigError) as err:
        batch_norm_train(jnp.ones((4, 3)), None, None, init_state(3), **kwargs)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


def test_check_options_accepts_the_extremes():
    for momentum in (0.0, 1.0, None):
        check_options(momentum, 1e-12)


@pytest.mark.parametrize(
    ("gamma", "state", "message"),
    [
        (
            jnp.ones(4),
            init_state(3),
            "gamma must have shape (3,), the 3 features on axis 1 of the input of shape (5, 3), "
            "got shape (4,)",
        ),
        (
            None,
            init_state(2),
            "running_mean must have shape (3,), the 3 features on axis 1 of the input of shape "
            "(5, 3), got shape (2,)",
        ),
    ],
)
def test_feature_count_mismatch_raises(gamma, state, message):
    with pytest.raises(ConfigError) as err:
        batch_norm_train(jnp.ones((5, 3)), gamma, None, state)
    assert str(err.value) == message
    with pytest.raises(ConfigError):
        batch_norm_eval(jnp.ones((5, 3)), gamma, None, state)


@pytest.mark.parametrize("shape", [(1, 3), (1, 1, 1, 3)])
def test_one_value_per_channel_in_training_raises_like_pytorch(shape):
    with pytest.raises(ValueError) as err:
        batch_norm_train(jnp.ones(shape), None, None, init_state(3))
    assert str(err.value) == (
        f"Expected more than 1 value per channel when training, got input size {shape}"
    )


def test_batch_of_one_with_spatial_extent_trains():
    # m' = m * p * q = 1 * 2 * 2 values per channel
    x = jnp.arange(12.0).reshape(1, 2, 2, 3)
    y, _ = batch_norm_train(x, None, None, init_state(3))
    assert np.isfinite(np.asarray(y)).all() and y.shape == x.shape


def test_axis_out_of_range_raises():
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 1\].*got axis=2"):
        batch_norm_train(jnp.ones((4, 3)), None, None, init_state(3), axis=2)
