"""bnlab.core against flax.nnx.BatchNorm (float64). Flax keeps Keras's conventions: its momentum
weighs the old value (bnlab's momentum = 1 - Flax's) and its running variance is biased
(bnlab's ``unbiased=False``); channels-last like bnlab, so no layout change. Tolerance 1e-12
absolute: both compute in float64; Flax's variance is E[x^2] - E[x]^2, ours two-pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from oracle_cases import SHAPE_IDS, SHAPES, check_gradients, check_inference, check_training


class Flax:
    name, atol, eps = "flax", 1e-12, 1e-5

    def core_kwargs(self, momentum):
        return {"momentum": 1 - momentum, "unbiased": False}

    def layer(self, case, momentum):
        c, f64 = case.gamma.shape[0], jnp.float64
        layer = nnx.BatchNorm(
            c, momentum=momentum, epsilon=self.eps, dtype=f64, param_dtype=f64, rngs=nnx.Rngs(0)
        )
        layer.scale = nnx.Param(jnp.asarray(case.gamma))
        layer.bias = nnx.Param(jnp.asarray(case.beta))
        # Flax creates its running statistics in float32 whatever the dtype; keep them in float64
        layer.mean = nnx.BatchStat(jnp.zeros(c, f64))
        layer.var = nnx.BatchStat(jnp.ones(c, f64))
        return layer

    def steps(self, case, layer):
        layer.train()
        steps = []
        for x, w in zip(case.xs, case.ws, strict=True):
            graphdef, state = nnx.split(layer)

            def loss(x, state, graphdef=graphdef, w=w):
                model = nnx.merge(graphdef, state)
                y = model(x)
                return jnp.sum(y * w), (y, nnx.state(model))

            (dx, grads), (y, new_state) = jax.grad(loss, argnums=(0, 1), has_aux=True)(
                jnp.asarray(x), state
            )
            nnx.update(layer, new_state)
            steps.append(
                {"y": y, "dx": dx, "dgamma": grads["scale"][...], "dbeta": grads["bias"][...]}
                | {"running_mean": layer.mean[...], "running_var": layer.var[...]}
            )
        return steps

    def evaluate(self, layer, x):
        layer.eval()
        return layer(jnp.asarray(x))


FLAX = Flax()
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
MOMENTA = pytest.mark.parametrize("flax_momentum", [0.9, 0.99])


@SHAPE
@MOMENTA
def test_training_outputs_and_running_stats_match_flax(x64, shape, flax_momentum):
    check_training(FLAX, shape, flax_momentum)


@SHAPE
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_gradients_match_flax(x64, shape, backward):
    check_gradients(FLAX, shape, 0.9, backward)


@SHAPE
@MOMENTA
def test_inference_after_training_matches_flax(x64, shape, flax_momentum):
    check_inference(FLAX, shape, flax_momentum)
