"""Internal covariate shift (Santurkar Definition 2.1) on nets whose gradients are known by hand."""

from __future__ import annotations

import itertools
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bnlab.measures import ics_for_optax_step, internal_covariate_shift


def linear_loss(params, batch):
    # L = 1/2 (w2 . (W1 x) - y)^2
    x, y = batch
    return 0.5 * (params["l2"] @ (params["l1"] @ x) - y) ** 2


def two_layer(dtype):
    params = {"l1": jnp.eye(2, dtype=dtype), "l2": jnp.asarray([1.0, 2.0], dtype)}
    batch = (jnp.asarray([1.0, 1.0], dtype), jnp.asarray(0.0, dtype))
    return params, batch


def test_two_layer_linear_net_by_hand(x64):
    params, batch = two_layer(jnp.float64)
    sgd = optax.sgd(0.05)
    ics = ics_for_optax_step(linear_loss, sgd, params, sgd.init(params), batch, ["l1", "l2"])
    # r = w2 W1 x - y = 3; G_l2 = r W1 x = [3, 3]; G_l1 = r w2 x^T = 3 [[1, 1], [2, 2]]
    # W1' = I - 0.05 G_l1 = [[0.85, -0.15], [-0.3, 0.7]]; W1' x = [0.7, 0.4]; r' = 1.5
    # G'_l2 = r' W1' x = [1.05, 0.6]; G - G' = [1.95, 2.4]
    np.testing.assert_allclose(np.asarray(ics.distance), [0.0, math.sqrt(9.5625)], rtol=1e-14)
    expected_cos = 4.95 / (math.sqrt(18.0) * math.sqrt(1.4625))
    np.testing.assert_allclose(np.asarray(ics.cosine), [1.0, expected_cos], rtol=1e-14)
    np.testing.assert_allclose(
        np.asarray(ics.grad_norm), [3 * math.sqrt(10.0), math.sqrt(18.0)], rtol=1e-14
    )


def mlp_loss(params, batch):
    x, y = batch
    for name in ("l1", "l2"):
        x = jnp.tanh(x @ params[name]["w"] + params[name]["b"])
    logits = x @ params["l3"]["w"] + params["l3"]["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def mlp(key, sizes=(8, 16, 16, 4), batch_size=32):
    keys = jax.random.split(key, 5)
    params = {
        f"l{i + 1}": {
            "w": jax.random.normal(keys[i], (n_in, n_out)) / math.sqrt(n_in),
            "b": jnp.zeros((n_out,)),
        }
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
    }
    x = jax.random.normal(keys[3], (batch_size, sizes[0]))
    y = jax.random.randint(keys[4], (batch_size,), 0, sizes[-1])
    return params, (x, y)


LAYERS = ["l1", "l2", "l3"]


@pytest.mark.parametrize("optimizer", [optax.sgd(0.5), optax.adam(0.1), optax.rmsprop(0.01)])
def test_first_layer_has_no_shift(optimizer):
    params, batch = mlp(jax.random.PRNGKey(0))
    ics = ics_for_optax_step(mlp_loss, optimizer, params, optimizer.init(params), batch, LAYERS)
    assert float(ics.distance[0]) == 0.0
    assert float(ics.cosine[0]) == pytest.approx(1.0, abs=1e-6)


def test_no_update_means_no_shift_in_any_layer():
    params, batch = mlp(jax.random.PRNGKey(1))
    ics = internal_covariate_shift(mlp_loss, params, params, batch, LAYERS)
    np.testing.assert_array_equal(np.asarray(ics.distance), np.zeros(3))
    np.testing.assert_allclose(np.asarray(ics.cosine), np.ones(3), rtol=1e-6)


def test_only_layers_below_are_moved(x64):
    # moving only l2 leaves l1's and l2's gradients as they were; only l3 sees a shift
    params, batch = mlp(jax.random.PRNGKey(2))
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
    next_params = dict(params, l2={"w": params["l2"]["w"] + 0.3, "b": params["l2"]["b"]})
    ics = internal_covariate_shift(mlp_loss, params, next_params, batch, LAYERS)
    np.testing.assert_array_equal(np.asarray(ics.distance[:2]), [0.0, 0.0])
    g3 = jax.grad(mlp_loss)(params, batch)["l3"]
    g3_moved = jax.grad(mlp_loss)(next_params, batch)["l3"]
    expected = math.sqrt(sum(float(jnp.sum((g3[k] - g3_moved[k]) ** 2)) for k in ("w", "b")))
    np.testing.assert_allclose(float(ics.distance[2]), expected, rtol=1e-12)


def test_jit_and_vmap_over_seeds_match_eager():
    sgd = optax.sgd(0.5)
    runs = [mlp(jax.random.PRNGKey(s)) for s in (3, 4)]
    measure = partial(ics_for_optax_step, mlp_loss, sgd, layers=LAYERS)
    eager = [measure(p, sgd.init(p), b) for p, b in runs]
    params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[p for p, _ in runs])
    batches = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[b for _, b in runs])
    vmapped = jax.jit(jax.vmap(lambda p, b: measure(p, sgd.init(p), b)))(params, batches)
    for s in range(2):
        np.testing.assert_allclose(
            np.asarray(vmapped.distance[s]), np.asarray(eager[s].distance), rtol=1e-5
        )
        np.testing.assert_allclose(
            np.asarray(vmapped.cosine[s]), np.asarray(eager[s].cosine), rtol=1e-5
        )


def test_tuple_params_give_the_same_shift_as_named_ones(x64):
    named, batch = two_layer(jnp.float64)
    sgd = optax.sgd(0.05)

    def tuple_loss(params, batch):
        return linear_loss({"l1": params[0], "l2": params[1]}, batch)

    as_tuple = (named["l1"], named["l2"])
    by_index = ics_for_optax_step(tuple_loss, sgd, as_tuple, sgd.init(as_tuple), batch, [0, 1])
    by_name = ics_for_optax_step(linear_loss, sgd, named, sgd.init(named), batch, ["l1", "l2"])
    np.testing.assert_array_equal(np.asarray(by_index.distance), np.asarray(by_name.distance))
    np.testing.assert_array_equal(np.asarray(by_index.cosine), np.asarray(by_name.cosine))


def test_part_restricts_the_gradient_to_one_entry_of_each_layer(x64):
    # l2 is moved whole (w and b); l3's shift is measured on its weight matrix only
    params, batch = mlp(jax.random.PRNGKey(5))
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
    next_params = jax.tree_util.tree_map(lambda a: a + 0.1, params)
    ics = internal_covariate_shift(mlp_loss, params, next_params, batch, LAYERS, part="w")
    mixed = dict(params, l1=next_params["l1"], l2=next_params["l2"])
    g = jax.grad(mlp_loss)(params, batch)["l3"]["w"]
    g_moved = jax.grad(mlp_loss)(mixed, batch)["l3"]["w"]
    np.testing.assert_allclose(
        float(ics.distance[2]), float(jnp.linalg.norm(g - g_moved)), rtol=1e-12
    )
    assert float(ics.grad_norm[2]) == pytest.approx(float(jnp.linalg.norm(g)), rel=1e-12)
