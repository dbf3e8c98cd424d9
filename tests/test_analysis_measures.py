"""The analyses' engine measurements against the same quantities written out by hand."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.core.noise import NoiseConfig
from bnlab.engine import (
    InputSpec,
    ModelSpec,
    OptimizerSpec,
    TrainSpec,
    cross_entropy,
    forward,
    init_params,
    to_device,
)
from bnlab.experiments.santurkar import measures as M

BATCH = 8
TRAIN = TrainSpec(
    optimizer=OptimizerSpec("sgd", lr=0.5), inputs=InputSpec("scale"), batch_size=BATCH
)
SPECS = {
    "baseline": ModelSpec(
        in_features=12, hidden=(6, 5), num_classes=4, init="gaussian", init_std=0.5
    ),
}
SPECS["bn"] = dataclasses.replace(SPECS["baseline"], bn="before", bias_before_bn=False)


def data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 12), dtype=np.uint8)
    y = rng.integers(0, 4, (40,), dtype=np.uint8)
    return to_device(x, y, x[:10], y[:10])


def loss(spec, params, state, x, y):
    return cross_entropy(forward(spec, params, state, x, "train").logits, y)


def key(k: int) -> jax.Array:
    """A measure's key (the runner derives it from the run's seed and the evaluation step)."""
    return jax.random.key(k)


def probe(d):
    return d.x_train[:BATCH].astype(jnp.float32) / 255.0, d.y_train[:BATCH]


@pytest.mark.parametrize("name", ["baseline", "bn"])
def test_ics_measure_is_definition_2_1_with_an_sgd_step(name):
    spec, d = SPECS[name], data()
    params, state = init_params(spec, jax.random.key(1))
    tree = M.ics_measure()(spec, params, state, d, TRAIN, key(0))
    layers = [str(k + 1) for k in range(len(params))]
    assert {name: sorted(v) for name, v in tree.items()} == {
        name: layers for name in ("distance", "cosine", "grad_norm")
    }
    out = np.asarray(
        [[tree[name][k] for k in layers] for name in ("distance", "cosine", "grad_norm")]
    )
    x, y = probe(d)
    grad = jax.grad(lambda p: loss(spec, p, state, x, y))
    g = grad(params)
    stepped = jax.tree.map(lambda w, dw: w - 0.5 * dw, params, g)
    for i in range(len(params)):
        mixed = tuple(stepped[j] if j < i else params[j] for j in range(len(params)))
        gi, gi2 = g[i]["w"].ravel(), grad(mixed)[i]["w"].ravel()
        np.testing.assert_allclose(out[0, i], jnp.linalg.norm(gi - gi2), rtol=1e-4, atol=1e-7)
        cos = jnp.vdot(gi, gi2) / (jnp.linalg.norm(gi) * jnp.linalg.norm(gi2))
        np.testing.assert_allclose(out[1, i], cos, rtol=1e-5)
        np.testing.assert_allclose(out[2, i], jnp.linalg.norm(gi), rtol=1e-5)
    assert out[0, 0] == 0.0


@pytest.mark.parametrize("name", ["baseline", "bn"])
def test_landscape_measure_moves_by_multiples_of_the_lr(name):
    spec, d = SPECS[name], data()
    params, state = init_params(spec, jax.random.key(2))
    multipliers = [0.5, 1.0, 4.0]
    tree = M.landscape_measure(multipliers)(spec, params, state, d, TRAIN, key(0))
    assert sorted(tree) == sorted(M.LANDSCAPE_KEYS)
    out = {k: np.asarray(v) for k, v in tree.items()}
    assert all(v.shape == () for v in out.values())
    x, y = probe(d)
    value_grad = jax.value_and_grad(lambda p: loss(spec, p, state, x, y))
    l0, g = value_grad(params)
    flat = lambda t: jnp.concatenate([a.ravel() for a in jax.tree.leaves(t)])  # noqa: E731
    losses, changes = [], []
    for m in multipliers:
        lm, gm = value_grad(jax.tree.map(lambda w, dw, e=0.5 * m: w - e * dw, params, g))
        losses.append(float(lm))
        changes.append(float(jnp.linalg.norm(flat(g) - flat(gm))))
    gnorm = float(jnp.linalg.norm(flat(g)))
    np.testing.assert_allclose(out["loss_at_x"], l0, rtol=1e-6)
    np.testing.assert_allclose(
        [out["loss_min"], out["loss_max"]], [min(losses), max(losses)], rtol=1e-5
    )
    np.testing.assert_allclose(
        [out["grad_change_min"], out["grad_change_max"]], [min(changes), max(changes)], rtol=1e-4
    )
    ratios = [c / (0.5 * m * gnorm) for c, m in zip(changes, multipliers, strict=True)]
    np.testing.assert_allclose(out["beta_smoothness"], max(ratios), rtol=1e-4)
    np.testing.assert_allclose(out["grad_norm"], gnorm, rtol=1e-5)


def test_training_percentiles_include_the_noise_of_a_training_step():
    spec = dataclasses.replace(SPECS["bn"], noise=NoiseConfig())
    d = data()
    params, state = init_params(spec, jax.random.key(3))
    k = key(7)
    tree = M.training_percentiles_measure(2)(spec, params, state, d, TRAIN, k)
    assert list(tree) == ["15", "50", "85"]
    out = np.stack([np.asarray(tree[q]) for q in ("15", "50", "85")])
    assert out.shape == (3, 5)
    acts = [
        forward(
            spec, params, state, d.x_train[j * BATCH : (j + 1) * BATCH] / 255.0, "train", key=k
        ).taps[-1]["act_input"]
        for j in range(2)
    ]
    expected = np.percentile(np.concatenate([np.asarray(a) for a in acts]), [15, 50, 85], axis=0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # the noise is drawn from the key: another key, other percentiles; the same key, the same
    again = M.training_percentiles_measure(2)(spec, params, state, d, TRAIN, k)
    np.testing.assert_array_equal(np.asarray(again["50"]), out[1])
    other = M.training_percentiles_measure(2)(spec, params, state, d, TRAIN, key(8))
    assert not np.allclose(np.asarray(other["50"]), out[1])
