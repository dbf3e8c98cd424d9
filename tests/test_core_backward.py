"""The paper's Section 3 backward pass against autodiff and finite differences, and BN's
invariances as hypothesis properties (float64)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jax.test_util import check_grads

from bnlab.core import batch_norm_train, init_state
from bnlab.core.backward import forward_autodiff, forward_paper

LAYOUTS = [((7, 3), -1), ((2, 3, 4, 5), -1), ((2, 5, 3, 4), 1)]
LAYOUT_IDS = ["N,C", "N,H,W,C", "N,C,H,W"]


def case(shape, axis, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[axis]
    x = jnp.asarray(rng.normal(1.0, 2.0, shape))
    weights = jnp.asarray(rng.normal(size=shape))
    return x, jnp.asarray(rng.normal(1, 0.5, c)), jnp.asarray(rng.normal(0, 0.5, c)), weights


def loss_fn(backward, axis, weights):
    """A loss that weighs every output differently and passes through a nonlinearity."""

    def loss(x, gamma, beta):
        state = init_state(x.shape[axis], jnp.float64)
        y, _ = batch_norm_train(x, gamma, beta, state, axis=axis, backward=backward)
        return jnp.sum(jnp.tanh(y) * weights)

    return loss


@pytest.mark.parametrize(("shape", "axis"), LAYOUTS, ids=LAYOUT_IDS)
def test_paper_backward_equals_autodiff(x64, shape, axis):
    x, gamma, beta, w = case(shape, axis)
    paper = jax.grad(loss_fn("paper", axis, w), argnums=(0, 1, 2))(x, gamma, beta)
    auto = jax.grad(loss_fn("autodiff", axis, w), argnums=(0, 1, 2))(x, gamma, beta)
    for p, a in zip(paper, auto, strict=True):
        np.testing.assert_allclose(np.asarray(p), np.asarray(a), rtol=0, atol=1e-10)


def test_paper_backward_with_affine_off_equals_autodiff(x64):
    x, _, _, w = case((6, 4), -1)

    def loss(backward):
        return lambda x: jnp.sum(
            jnp.tanh(batch_norm_train(x, None, None, init_state(4), backward=backward)[0]) * w
        )

    np.testing.assert_allclose(
        np.asarray(jax.grad(loss("paper"))(x)),
        np.asarray(jax.grad(loss("autodiff"))(x)),
        atol=1e-10,
    )


def test_paper_backward_carries_gradients_through_the_returned_statistics(x64):
    # mu_B and sigma2_B are outputs too: a loss that uses them must still get exact gradients.
    x, gamma, beta, w = case((2, 3, 4, 5), -1)

    def loss(fn):
        def f(x, gamma, beta):
            y, mean, var = fn(x, gamma, beta, 1e-5, -1, None)
            return jnp.sum(jnp.tanh(y) * w) + jnp.sum(jnp.sin(mean)) + jnp.sum(jnp.sqrt(var))

        return f

    paper = jax.grad(loss(forward_paper), argnums=(0, 1, 2))(x, gamma, beta)
    auto = jax.grad(loss(forward_autodiff), argnums=(0, 1, 2))(x, gamma, beta)
    for p, a in zip(paper, auto, strict=True):
        np.testing.assert_allclose(np.asarray(p), np.asarray(a), rtol=0, atol=1e-10)


@pytest.mark.parametrize("backward", ["paper", "autodiff"])
@pytest.mark.parametrize(("shape", "axis"), LAYOUTS[:2], ids=LAYOUT_IDS[:2])
def test_gradients_match_finite_differences(x64, backward, shape, axis):
    x, gamma, beta, w = case(shape, axis)
    check_grads(loss_fn(backward, axis, w), (x, gamma, beta), order=1, modes=["rev"], eps=1e-6)


def test_no_gradient_flows_through_the_running_statistics(x64):
    x, gamma, beta, _ = case((6, 3), -1)

    def running(x):
        _, state = batch_norm_train(x, gamma, beta, init_state(3, jnp.float64))
        return jnp.sum(state.running_mean) + jnp.sum(state.running_var)

    np.testing.assert_array_equal(np.asarray(jax.grad(running)(x)), np.zeros((6, 3)))


def test_unknown_backward_raises():
    with pytest.raises(ValueError, match="backward must be 'paper' or 'autodiff', got 'fast'"):
        batch_norm_train(jnp.ones((4, 2)), None, None, init_state(2), backward="fast")


# ---- hypothesis properties -------------------------------------------------------------------

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def batches(draw):
    # a few shapes (each compiles once), from the smallest batch up
    m = draw(st.sampled_from([2, 3, 8, 13]))
    c = draw(st.sampled_from([1, 4]))
    x = draw(arrays(np.float64, (m, c), elements=finite))
    assume(x.std(axis=0).min() > 1e-2)
    return x


def in_x64(test):
    """Enable float64 inside each generated example (hypothesis reuses fixtures across them)."""

    @functools.wraps(test)
    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            return test(*args, **kwargs)

    return wrapped


def bn(x, gamma=None, beta=None, eps=1e-5, backward="paper"):
    state = init_state(x.shape[-1], jnp.float64)
    return batch_norm_train(x, gamma, beta, state, eps=eps, backward=backward)[0]


@functools.partial(jax.jit, static_argnames="backward")
def input_gradient(x, gamma, w, backward):
    """dl/dx for the cotangent dl/dy = w * (1 - tanh(y)^2), and that cotangent."""
    y, vjp = jax.vjp(lambda x: bn(x, gamma, eps=1e-5, backward=backward), x)
    dl_dy = w * (1 - jnp.tanh(y) ** 2)
    return vjp(dl_dy)[0], dl_dy


@settings(max_examples=40, deadline=None)
@given(x=batches(), seed=st.integers(0, 2**16), backward=st.sampled_from(["paper", "autodiff"]))
@in_x64
def test_input_gradient_is_orthogonal_to_ones_and_xhat(x, seed, backward):
    """Santurkar et al. Thm 4.1: per channel, dl/dx has no component along 1 and none along xhat.
    The theorem has eps = 0; with eps > 0 the xhat component is exactly
    eps / (sigma2 + eps) * sum_i dl/dxhat_i * xhat_i / sqrt(sigma2 + eps), checked here."""
    rng = np.random.default_rng(seed)
    gamma = jnp.asarray(rng.uniform(0.5, 2.0, x.shape[1]))
    w = jnp.asarray(rng.normal(size=x.shape))
    x = jnp.asarray(x)
    eps = 1e-5
    dx, dl_dy = input_gradient(x, gamma, w, backward)
    var = x.var(0)
    xhat = (x - x.mean(0)) / jnp.sqrt(var + eps)
    # the size of the terms that must cancel, per channel
    scale = np.asarray(gamma / jnp.sqrt(var + eps) * jnp.linalg.norm(dl_dy, axis=0) * x.shape[0])
    along_ones = np.asarray(dx.sum(0))
    along_xhat = np.asarray((dx * xhat).sum(0))
    eps_term = np.asarray(eps / (var + eps) * (dl_dy * gamma * xhat).sum(0) / jnp.sqrt(var + eps))
    np.testing.assert_array_less(np.abs(along_ones), 1e-12 * scale + 1e-300)
    np.testing.assert_array_less(np.abs(along_xhat - eps_term), 1e-12 * scale + 1e-300)


@settings(max_examples=40, deadline=None)
@given(x=batches())
@in_x64
def test_unit_affine_output_has_mean_zero_and_variance_one(x):
    y = np.asarray(bn(jnp.asarray(x), eps=1e-5))
    var = x.var(axis=0)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    # the biased output variance is sigma2 / (sigma2 + eps): 1 up to eps
    np.testing.assert_allclose(y.var(axis=0), var / (var + 1e-5), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(x=batches(), a=st.floats(1e-2, 1e2), b=finite)
@in_x64
def test_invariant_to_positive_scale_and_shift(x, a, b):
    """BN(a*x + b) == BN(x) for a > 0; exact when eps scales with the variance (a^2 eps)."""
    y = bn(jnp.asarray(x), eps=1e-5)
    y_ab = bn(jnp.asarray(a * x + b), eps=1e-5 * a * a)
    np.testing.assert_allclose(np.asarray(y_ab), np.asarray(y), rtol=0, atol=1e-9)
