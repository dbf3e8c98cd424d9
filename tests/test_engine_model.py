"""The engine's MLP: parameter counts, initialisation, and the forward pass against numpy."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.engine import ModelSpec, count_params, forward, init_params, summary_rows
from bnlab.experiments import PAPER, SEED
from bnlab.experiments.network import VARIANTS
from bnlab.outputs.report_tables import param_totals


@pytest.mark.parametrize(
    ("config", "variant", "expected"),
    [
        (SEED, "baseline", 99_710),
        (SEED, "bn", 100_310),
        (PAPER, "baseline", 99_710),
        (PAPER, "bn", 100_010),
    ],
)
def test_parameter_counts(config, variant, expected):
    spec = VARIANTS[variant].model_spec(config)
    params, _ = init_params(spec, jax.random.key(0))
    assert count_params(spec) == expected
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == expected


def _keras_model(spec):
    import keras

    layers = [keras.Input((784,))]
    for n in spec.hidden:
        layers.append(keras.layers.Dense(n))
        if spec.has_bn:
            layers.append(keras.layers.BatchNormalization(epsilon=spec.eps))
        layers.append(keras.layers.Activation("sigmoid"))
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)


def _size(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("variant", ["baseline", "bn"])
def test_summary_rows_match_keras(variant):
    """Per layer, every weight and the trainable ones of the equivalent Keras 3 model (BN's
    moving statistics are Keras's non-trainable weights)."""
    spec = VARIANTS[variant].model_spec(SEED)
    model = _keras_model(spec)
    keras_rows = [
        (layer.output.shape[1], layer.count_params(), _size(layer.trainable_weights))
        for layer in model.layers
    ]
    ours = [
        (int(row.shape.strip("()").split(", ")[1]), row.params, row.trainable)
        for row in summary_rows(spec)
    ]
    assert ours == keras_rows


@pytest.mark.parametrize(
    ("variant", "totals"),
    [("baseline", (99_710, 99_710, 0)), ("bn", (100_910, 100_310, 600))],
)
def test_summary_totals_are_kerass(variant, totals, capsys):
    """The three lines under `bnlab summary`'s table, as keras.Model.summary() prints them."""
    spec = VARIANTS[variant].model_spec(SEED)
    model = _keras_model(spec)
    trainable = _size(model.trainable_weights)
    assert (model.count_params(), trainable, model.count_params() - trainable) == totals
    model.summary()
    printed = [line for line in capsys.readouterr().out.splitlines() if " params: " in line]
    # Keras's lines: " Total params: 100,910 (394.18 KB)" (rich's padding and box aside)
    keras_lines = [" ".join(line.split()) for line in printed]
    assert keras_lines == param_totals(summary_rows(spec))


def test_glorot_uniform_init_is_keras_default():
    """Weights inside +-sqrt(6 / (fan_in + fan_out)) with the uniform's variance, biases 0."""
    spec = SEED.model_spec("before")
    params, state = init_params(spec, jax.random.key(3))
    for p, (fan_in, fan_out) in zip(
        params, [(784, 100), (100, 100), (100, 100), (100, 10)], strict=True
    ):
        limit = np.sqrt(6 / (fan_in + fan_out))
        w = np.asarray(p["w"])
        assert w.shape == (fan_in, fan_out)
        assert np.abs(w).max() <= limit
        # the variance of U(-l, l) is l^2 / 3; the sample variance's relative standard error is
        # sqrt(0.8 / n) for a uniform: allow 5 of them
        assert abs(w.var() / (limit**2 / 3) - 1) < 5 * np.sqrt(0.8 / w.size)
        np.testing.assert_array_equal(np.asarray(p["b"]), 0.0)
    assert [np.asarray(s.running_var).tolist() for s in state] == [[1.0] * 100] * 3


def test_gaussian_init_std_and_no_bias_before_bn():
    spec = PAPER.model_spec("before")
    params, _ = init_params(spec, jax.random.key(1))
    w = np.asarray(params[0]["w"])
    assert abs(w.std() - 0.01) < 0.01 * 0.01  # 78,400 samples: std error 0.25%
    assert [sorted(p) for p in params] == [["beta", "gamma", "w"]] * 3 + [["b", "w"]]


def _numpy_forward(spec: ModelSpec, params, x: np.ndarray, train: bool, state) -> np.ndarray:
    """Plain float64 numpy: Dense, BN (batch statistics or the stored ones), sigmoid."""
    h = x.astype(np.float64)
    for i, p in enumerate(params):
        h = h @ np.asarray(p["w"], np.float64) + (np.asarray(p["b"], np.float64) if "b" in p else 0)
        if i == len(params) - 1:
            return h
        if spec.has_bn:
            if train:
                mean, var = h.mean(0), h.var(0)
            else:
                mean, var = np.asarray(state[i].running_mean), np.asarray(state[i].running_var)
            h = (h - mean) / np.sqrt(var + spec.eps) * np.asarray(p["gamma"]) + np.asarray(
                p["beta"]
            )
        h = 1 / (1 + np.exp(-h))
    return h


@pytest.mark.parametrize("config", [SEED, PAPER], ids=["seed", "paper"])
@pytest.mark.parametrize("variant", ["baseline", "bn"])
@pytest.mark.parametrize("mode", ["train", "running"])
def test_forward_matches_numpy(config, variant, mode):
    spec = VARIANTS[variant].model_spec(config)
    params, state = init_params(spec, jax.random.key(7))
    # non-trivial gamma, beta, biases and running statistics
    rng = np.random.default_rng(0)
    params = jax.tree.map(
        lambda a: a + 0.1 * rng.standard_normal(a.shape).astype(np.float32), params
    )
    state = tuple(
        s._replace(running_mean=s.running_mean + 0.3, running_var=s.running_var * 2.0)
        for s in state
    )
    x = rng.random((60, 784)).astype(np.float32)
    out = forward(spec, params, state, jnp.asarray(x), mode)
    expected = _numpy_forward(spec, params, x, mode == "train", state)
    np.testing.assert_allclose(np.asarray(out.logits), expected, rtol=2e-5, atol=2e-5)


def test_taps_are_the_bn_and_sigmoid_inputs():
    spec = SEED.model_spec("before")
    params, state = init_params(spec, jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(1).random((8, 784)), jnp.float32)
    out = forward(spec, params, state, x, "train")
    pre = x @ params[0]["w"] + params[0]["b"]
    np.testing.assert_array_equal(np.asarray(out.taps[0]["bn_input"]), np.asarray(pre))
    mean, var = pre.mean(0), pre.var(0)
    np.testing.assert_allclose(
        np.asarray(out.taps[0]["act_input"]),
        np.asarray((pre - mean) / jnp.sqrt(var + 1e-5)),
        atol=1e-5,
    )
    assert [sorted(t) for t in out.taps] == [["act_input", "bn_input"]] * 3


def test_bn_after_activation_normalizes_the_sigmoid_output():
    spec = ModelSpec(hidden=(5,), bn="after")
    params, state = init_params(spec, jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(2).random((16, 784)), jnp.float32)
    out = forward(spec, params, state, x, "train")
    np.testing.assert_array_equal(
        np.asarray(out.taps[0]["bn_input"]), np.asarray(jax.nn.sigmoid(out.taps[0]["act_input"]))
    )
