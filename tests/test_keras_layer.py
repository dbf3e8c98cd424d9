"""bnlab.keras.BatchNormalization against keras.layers.BatchNormalization (JAX backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from bnlab.data import load_mnist
from bnlab.keras import BatchNormalization

# float32 throughout: outputs of order 1 agree to a few units in the last place
ATOL = 2e-5

LAYOUTS = [((16, 5), -1), ((4, 3, 3, 5), -1), ((4, 5, 3, 3), 1)]
LAYOUT_IDS = ["N,C", "N,H,W,C", "N,C,H,W"]


def pair(shape, axis, **kwargs):
    """The bnlab layer and Keras's own, built on ``shape`` with the same random gamma and beta."""
    ours, theirs = (
        BatchNormalization(axis=axis, **kwargs),
        keras.layers.BatchNormalization(axis=axis, **kwargs),
    )
    rng = np.random.default_rng(0)
    for layer in (ours, theirs):
        layer.build(shape)
    c = shape[axis]
    if ours.gamma is not None:
        gamma = rng.normal(1, 0.3, c).astype("float32")
        ours.gamma.assign(gamma)
        theirs.gamma.assign(gamma)
    if ours.beta is not None:
        beta = rng.normal(0, 0.3, c).astype("float32")
        ours.beta.assign(beta)
        theirs.beta.assign(beta)
    return ours, theirs


def batches(shape, k, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(2.0, 3.0, shape).astype("float32") for _ in range(k)]


@pytest.mark.parametrize(("shape", "axis"), LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("momentum", [0.99, 0.5])
def test_training_steps_match_keras(shape, axis, momentum):
    ours, theirs = pair(shape, axis, momentum=momentum)
    for x in batches(shape, 4):
        np.testing.assert_allclose(
            np.asarray(ours(x, training=True)), np.asarray(theirs(x, training=True)), atol=ATOL
        )
        for name in ("moving_mean", "moving_variance"):
            np.testing.assert_allclose(
                np.asarray(getattr(ours, name)), np.asarray(getattr(theirs, name)), atol=1e-5
            )
    x = batches(shape, 1, seed=9)[0]
    np.testing.assert_allclose(
        np.asarray(ours(x, training=False)), np.asarray(theirs(x, training=False)), atol=ATOL
    )


@pytest.mark.parametrize(("center", "scale"), [(False, True), (True, False), (False, False)])
def test_affine_switches_match_keras_and_drop_the_weights(center, scale):
    ours, theirs = pair((8, 3), -1, center=center, scale=scale)
    x = batches((8, 3), 1)[0]
    np.testing.assert_allclose(
        np.asarray(ours(x, training=True)), np.asarray(theirs(x, training=True)), atol=ATOL
    )
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]


def test_weights_are_named_like_keras():
    ours, _ = pair((8, 3), -1)
    assert [w.name for w in ours.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name for w in ours.trainable_weights] == ["gamma", "beta"]


def test_moving_statistics_follow_keras_momentum_rule():
    layer = BatchNormalization(momentum=0.9)
    x = np.asarray([[1.0, 2.0], [3.0, 6.0]], "float32")
    layer(x, training=True)
    # moving = 0.9 * old + 0.1 * batch, with the BIASED batch variance
    np.testing.assert_allclose(np.asarray(layer.moving_mean), [0.2, 0.4], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), [0.9 + 0.1, 0.9 + 0.4], rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "training"), [({}, False), ({}, None), ({"trainable": False}, True)]
)
def test_inference_mode_leaves_moving_statistics_untouched(kwargs, training):
    layer = BatchNormalization(**kwargs)
    x = batches((8, 3), 1)[0]
    y = layer(x, training=training)
    np.testing.assert_array_equal(np.asarray(layer.moving_mean), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(layer.moving_variance), np.ones(3))
    # zero training steps: the identity up to epsilon
    np.testing.assert_allclose(np.asarray(y), x / np.sqrt(1 + 1e-3), rtol=1e-6)


def test_float16_input_gives_finite_output_close_to_float32():
    layer = BatchNormalization(dtype="mixed_float16")
    x = np.random.default_rng(0).normal(300.0, 50.0, (64, 3))
    y = layer(x.astype("float16"), training=True)
    assert y.dtype == "float16" and np.isfinite(np.asarray(y, "float32")).all()
    reference = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(np.asarray(y, "float32"), reference, atol=5e-3)


def test_large_mean_small_std_keeps_moving_variance_accurate_in_float32():
    rng = np.random.default_rng(0)
    x = (1e4 + 1e-2 * rng.standard_normal((64, 3))).astype("float32")
    layer = BatchNormalization(momentum=0.0)  # the moving variance becomes the batch variance
    y = layer(x, training=True)
    exact = x.astype("float64").var(axis=0)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), exact, rtol=1e-3)
    assert np.isfinite(np.asarray(y)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"momentum": 1.2}, "momentum must be in [0, 1] or None, got momentum=1.2"),
        ({"epsilon": 0.0}, "epsilon must be > 0, got epsilon=0.0"),
    ],
)
def test_out_of_range_arguments_raise(kwargs, message):
    with pytest.raises(ValueError) as err:
        BatchNormalization(**kwargs)
    assert str(err.value) == message


def test_config_round_trip():
    layer = BatchNormalization(axis=1, momentum=0.9, epsilon=1e-4, center=False, name="bn")
    config = layer.get_config()
    clone = BatchNormalization.from_config(config)
    assert clone.get_config() == config
    assert (config["axis"], config["momentum"], config["epsilon"]) == (1, 0.9, 1e-4)
    assert config["center"] is False and config["scale"] is True


def seed_model(bn=BatchNormalization):
    """The seed notebook's network: Dense(100) -> BN -> sigmoid, three times, then Dense(10)."""
    layers = [keras.Input((784,))]
    for _ in range(3):
        layers += [keras.layers.Dense(100), bn(), keras.layers.Activation("sigmoid")]
    return keras.Sequential([*layers, keras.layers.Dense(10)])


def mnist_subset(n=600):
    data = load_mnist()
    return data.x_train[:n].reshape(n, 784).astype("float32") / 255.0, data.y_train[:n]


def test_save_and_load_keeps_configuration_and_state(tmp_path):
    keras.utils.set_random_seed(0)
    model = seed_model()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    x, y = mnist_subset(120)
    model.fit(x, y, batch_size=60, epochs=1, verbose=0)
    path = tmp_path / "seed.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], BatchNormalization)
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    for a, b in zip(model.weights, loaded.weights, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(
        np.asarray(model.predict(x, verbose=0)), np.asarray(loaded.predict(x, verbose=0))
    )


def test_seed_notebook_model_trains():
    keras.utils.set_random_seed(0)
    model = seed_model()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="rmsprop", loss=loss)
    x, y = mnist_subset()

    def training_loss():  # with batch statistics, as the layer trains
        return float(loss(y, model(x, training=True)))

    before = training_loss()
    model.fit(x, y, batch_size=60, epochs=3, verbose=0, shuffle=False)
    after = training_loss()
    # chance level is ln(10) = 2.30; 30 RMSprop steps on 600 digits bring it well below 1
    assert before > 2.0
    assert after < before - 1.5, (before, after)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_layer_matches_keras_on_other_backends(backend):
    """Written with keras.ops only: the same numbers on the torch and numpy backends (numpy runs
    inference only), each in its own process since the backend is fixed at import."""
    helper = Path(__file__).parent / "helpers" / "keras_backend.py"
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = subprocess.run(
        [sys.executable, str(helper)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    for name, diff in result["worst"].items():
        assert diff <= ATOL, (backend, name, diff)
