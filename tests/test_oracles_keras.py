"""bnlab.core, and the bnlab.keras layer, against keras.layers.BatchNormalization (JAX backend,
float64 inputs). Keras's momentum weighs the old value (bnlab.core's momentum = 1 - Keras's), its
epsilon defaults to 1e-3 and its moving variance is biased (bnlab.core's ``unbiased=False``);
channels-last like bnlab. Keras's layer computes in float32 even for float64 inputs (its
``result_type(float64, "float32")`` is float32) while bnlab computes these float64 inputs in
float64, so the tolerance is float32's: 1e-5 absolute on outputs and gradients of order 1-10."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
import pytest
from oracle_cases import (
    SHAPE_IDS,
    SHAPES,
    assert_close,
    check_gradients,
    check_inference,
    check_training,
    make_case,
)

from bnlab.keras import BatchNormalization


class Keras:
    name, atol, eps = "keras", 1e-5, 1e-3
    cls = keras.layers.BatchNormalization

    def core_kwargs(self, momentum):
        return {"momentum": 1 - momentum, "unbiased": False}

    def layer(self, case, momentum):
        layer = self.cls(momentum=momentum, epsilon=self.eps, dtype="float64")
        layer.build(case.xs.shape[1:])
        layer.gamma.assign(case.gamma)
        layer.beta.assign(case.beta)
        return layer

    def steps(self, case, layer):
        """Training steps through stateless_call, then the moving statistics stored back."""
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
            steps.append(
                {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}
                | {"running_mean": moving[0], "running_var": moving[1]}
            )
        for variable, value in zip(layer.non_trainable_variables, moving, strict=True):
            variable.assign(value)
        return steps

    def evaluate(self, layer, x):
        return layer(jnp.asarray(x), training=False)


KERAS = Keras()
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
MOMENTA = pytest.mark.parametrize("keras_momentum", [0.9, 0.99])


@SHAPE
@MOMENTA
def test_training_outputs_and_moving_stats_match_keras(x64, shape, keras_momentum):
    check_training(KERAS, shape, keras_momentum)


@SHAPE
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_gradients_match_keras(x64, shape, backward):
    check_gradients(KERAS, shape, 0.99, backward)


@SHAPE
@MOMENTA
def test_inference_after_training_matches_keras(x64, shape, keras_momentum):
    check_inference(KERAS, shape, keras_momentum)


@SHAPE
def test_bnlab_keras_layer_matches_keras(x64, shape):
    """The bnlab.keras layer, trained through the same steps: outputs, gradients, moving stats,
    then inference."""
    ours = Keras()
    ours.cls = BatchNormalization
    case = make_case(shape, seed=4)
    layer, reference = ours.layer(case, 0.9), KERAS.layer(case, 0.9)
    steps = zip(ours.steps(case, layer), KERAS.steps(case, reference), strict=True)
    for o, t in steps:
        for name in ("y", "dx", "dgamma", "dbeta", "running_mean", "running_var"):
            assert_close("keras (bnlab.keras layer)", name, o[name], t[name], KERAS.atol)
    y, y_ref = ours.evaluate(layer, case.x_test), KERAS.evaluate(reference, case.x_test)
    assert_close("keras (bnlab.keras layer)", "y (eval)", y, y_ref, KERAS.atol)
