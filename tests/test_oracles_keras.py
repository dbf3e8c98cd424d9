"""bnlab.core, and the bnlab.keras layer, against keras.layers.BatchNormalization (JAX backend,
float64). Keras's momentum weighs the old value (bnlab.core's momentum = 1 - Keras's), its
epsilon defaults to 1e-3 and its moving variance is biased (bnlab.core's ``unbiased=False``);
channels-last like bnlab. Keras's layer computes in float32 even for float64 inputs (its
``result_type(float64, "float32")`` is float32) while bnlab computes these float64 inputs in
float64, so the tolerance is float32's: 1e-5 absolute on outputs and gradients of order 1-10."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import pytest
from oracle_cases import SHAPE_IDS, SHAPES, assert_close, eval_core, make_case, run_core

from bnlab.keras import BatchNormalization

EPS = 1e-3
ATOL = 1e-5
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
KERAS_MOMENTA = pytest.mark.parametrize("keras_momentum", [0.9, 0.99])


def keras_layer(case, momentum, cls=keras.layers.BatchNormalization):
    layer = cls(momentum=momentum, epsilon=EPS, dtype="float64")
    layer.build(case.xs.shape[1:])
    layer.gamma.assign(case.gamma)
    layer.beta.assign(case.beta)
    return layer


def keras_steps(case, layer):
    """Training steps through stateless_call: outputs, gradients of sum(y * w), moving stats."""
    steps = []
    trainable = [v.value for v in layer.trainable_variables]  # gamma, beta
    moving = [v.value for v in layer.non_trainable_variables]  # moving_mean, moving_variance
    for x, w in zip(case.xs, case.ws, strict=True):

        def loss(x, trainable, moving=moving, w=w):
            y, new = layer.stateless_call(trainable, moving, x, training=True)
            return jnp.sum(y * w), (y, new)

        (dx, (dgamma, dbeta)), (y, moving) = jax.grad(loss, argnums=(0, 1), has_aux=True)(
            jnp.asarray(x), trainable
        )
        steps.append({"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta, "moving": moving})
    for variable, value in zip(layer.non_trainable_variables, moving, strict=True):
        variable.assign(value)
    return steps


@SHAPE
@KERAS_MOMENTA
def test_training_outputs_and_moving_stats_match_keras(x64, shape, keras_momentum):
    case = make_case(shape)
    ours = run_core(case, momentum=1 - keras_momentum, eps=EPS, unbiased=False)
    for o, t in zip(ours, keras_steps(case, keras_layer(case, keras_momentum)), strict=True):
        assert_close("keras", "y (train)", o.y, t["y"], ATOL)
        assert_close("keras", "running_mean", o.state.running_mean, t["moving"][0], ATOL)
        assert_close("keras", "running_var", o.state.running_var, t["moving"][1], ATOL)


@SHAPE
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_gradients_match_keras(x64, shape, backward):
    case = make_case(shape, seed=1)
    ours = run_core(case, momentum=0.01, eps=EPS, unbiased=False, backward=backward)
    for o, t in zip(ours, keras_steps(case, keras_layer(case, 0.99)), strict=True):
        for name in ("dx", "dgamma", "dbeta"):
            assert_close("keras", name, getattr(o, name), t[name], ATOL)


@SHAPE
@KERAS_MOMENTA
def test_inference_after_training_matches_keras(x64, shape, keras_momentum):
    case = make_case(shape, seed=2)
    ours = run_core(case, momentum=1 - keras_momentum, eps=EPS, unbiased=False)
    layer = keras_layer(case, keras_momentum)
    keras_steps(case, layer)
    expected = layer(case.x_test, training=False)
    assert_close("keras", "y (eval)", eval_core(case, ours[-1].state, eps=EPS), expected, ATOL)


@SHAPE
def test_bnlab_keras_layer_matches_keras(x64, shape):
    """The bnlab.keras layer, trained through the same steps: outputs, gradients, moving stats."""
    case = make_case(shape, seed=4)
    ours = keras_steps(case, layer := keras_layer(case, 0.9, BatchNormalization))
    theirs = keras_steps(case, reference := keras_layer(case, 0.9))
    for o, t in zip(ours, theirs, strict=True):
        for name in ("y", "dx", "dgamma", "dbeta"):
            assert_close("keras (bnlab.keras layer)", name, o[name], t[name], ATOL)
        for i, name in enumerate(("moving_mean", "moving_variance")):
            assert_close("keras (bnlab.keras layer)", name, o["moving"][i], t["moving"][i], ATOL)
    y, y_ref = layer(case.x_test, training=False), reference(case.x_test, training=False)
    assert_close("keras (bnlab.keras layer)", "y (eval)", y, y_ref, ATOL)
