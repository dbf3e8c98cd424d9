"""bnlab.core against flax.nnx.BatchNorm (float64). Flax keeps Keras's conventions: its momentum
weighs the old value (bnlab's momentum = 1 - Flax's) and its running variance is biased
(bnlab's ``unbiased=False``); channels-last like bnlab, so no layout change. Tolerance 1e-12
absolute: both compute in float64; Flax's variance is E[x^2] - E[x]^2, ours two-pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from oracle_cases import SHAPE_IDS, SHAPES, assert_close, eval_core, make_case, run_core

EPS = 1e-5
ATOL = 1e-12
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
FLAX_MOMENTA = pytest.mark.parametrize("flax_momentum", [0.9, 0.99])


def flax_layer(case, momentum):
    c = case.gamma.shape[0]
    f64 = jnp.float64
    layer = nnx.BatchNorm(
        c, momentum=momentum, epsilon=EPS, dtype=f64, param_dtype=f64, rngs=nnx.Rngs(0)
    )
    layer.scale = nnx.Param(jnp.asarray(case.gamma))
    layer.bias = nnx.Param(jnp.asarray(case.beta))
    # Flax creates its running statistics in float32 whatever the dtype; keep them in float64
    layer.mean = nnx.BatchStat(jnp.zeros(c, f64))
    layer.var = nnx.BatchStat(jnp.ones(c, f64))
    return layer


def flax_steps(case, layer):
    steps = []
    for x, w in zip(case.xs, case.ws, strict=True):
        graphdef, state = nnx.split(layer)

        def loss(x, state, graphdef=graphdef, w=w):
            model = nnx.merge(graphdef, state)
            y = model(x)
            return jnp.sum(y * w), (y, nnx.state(model))

        (dx, dstate), (y, new_state) = jax.grad(loss, argnums=(0, 1), has_aux=True)(
            jnp.asarray(x), state
        )
        nnx.update(layer, new_state)
        steps.append(
            {
                "y": y,
                "dx": dx,
                "dgamma": dstate["scale"][...],
                "dbeta": dstate["bias"][...],
                "running_mean": layer.mean[...],
                "running_var": layer.var[...],
            }
        )
    return steps


@SHAPE
@FLAX_MOMENTA
def test_training_outputs_and_running_stats_match_flax(x64, shape, flax_momentum):
    case = make_case(shape)
    ours = run_core(case, momentum=1 - flax_momentum, eps=EPS, unbiased=False)
    for o, t in zip(ours, flax_steps(case, flax_layer(case, flax_momentum)), strict=True):
        assert_close("flax", "y (train)", o.y, t["y"], ATOL)
        assert_close("flax", "running_mean", o.state.running_mean, t["running_mean"], ATOL)
        assert_close("flax", "running_var", o.state.running_var, t["running_var"], ATOL)


@SHAPE
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_gradients_match_flax(x64, shape, backward):
    case = make_case(shape, seed=1)
    ours = run_core(case, momentum=0.1, eps=EPS, unbiased=False, backward=backward)
    for o, t in zip(ours, flax_steps(case, flax_layer(case, 0.9)), strict=True):
        for name in ("dx", "dgamma", "dbeta"):
            assert_close("flax", name, getattr(o, name), t[name], ATOL)


@SHAPE
@FLAX_MOMENTA
def test_inference_after_training_matches_flax(x64, shape, flax_momentum):
    case = make_case(shape, seed=2)
    ours = run_core(case, momentum=1 - flax_momentum, eps=EPS, unbiased=False)
    layer = flax_layer(case, flax_momentum)
    flax_steps(case, layer)
    layer.eval()
    expected = layer(jnp.asarray(case.x_test))
    assert_close("flax", "y (eval)", eval_core(case, ours[-1].state, eps=EPS), expected, ATOL)
