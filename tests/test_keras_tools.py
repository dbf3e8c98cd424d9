"""bnlab.keras.recalibrate (Algorithm 2) and evaluate_batch_statistics: against bnlab.core's
population_stats and a hand computation on the JAX backend, and the same checks
(tests/helpers/keras_tools_backend.py) on the torch and TensorFlow backends in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from helpers import keras_backends

from bnlab.core import batch_stats, normalize, population_stats
from bnlab.data import load_mnist
from bnlab.errors import ConfigError
from bnlab.keras import BatchNormalization, evaluate_batch_statistics, recalibrate

HELPER = Path(__file__).parent / "helpers" / "keras_tools_backend.py"


def check(result: dict, backend: str) -> None:
    assert result["backend"] == backend
    assert result["hand_computation"] <= 1e-6
    assert result["only_moving_statistics_changed"], result["changed"]
    assert result["unchanged_by_evaluate"]
    assert result["conv_bn_relative_diff"] <= 1e-5
    assert result["moving_average_accuracy_after"] == result["keras_accuracy_after"]
    assert result["batch_of_one_is_a_class_frequency"]


def test_hand_computation_and_only_moving_statistics_change_on_jax():
    check(keras_backends.in_process(HELPER), "jax")


@pytest.mark.parametrize("backend", keras_backends.OTHER_BACKENDS)
def test_same_checks_on_other_backends(backend):
    check(keras_backends.on_backend(HELPER, backend), backend)


def seed_like_model() -> keras.Model:
    """784-16-16-10 sigmoids, Dense -> BN -> sigmoid, one Keras BN and one bnlab BN."""
    keras.utils.set_random_seed(1)
    layers = [keras.Input((784,))]
    for bn in (keras.layers.BatchNormalization, BatchNormalization):
        layers += [keras.layers.Dense(16), bn(), keras.layers.Activation("sigmoid")]
    return keras.Sequential([*layers, keras.layers.Dense(10)])


def test_matches_core_population_stats_and_streams_only_the_batches_asked_for():
    data = load_mnist()
    x = data.x_train[:600].reshape(600, 784).astype("float32") / 255.0
    model = seed_like_model()
    for layer in model.layers:  # random gamma, beta so that both matter
        if "batch_normalization" in layer.name:
            layer.gamma.assign(np.linspace(0.5, 1.5, 16, dtype="float32"))
            layer.beta.assign(np.linspace(-0.5, 0.5, 16, dtype="float32"))
    w = [jnp.asarray(keras.ops.convert_to_numpy(v)) for v in model.weights]
    # (kernel, bias, gamma, beta, moving_mean, moving_variance) per hidden layer
    hidden = [w[0:6], w[6:12]]

    def moments_fn(batch):  # the network in training mode, with bnlab.core's BN
        h, out = batch, []
        for kernel, bias, gamma, beta, _, _ in hidden:
            z = h @ kernel + bias
            moments = batch_stats(z)
            h = jax.nn.sigmoid(normalize(z, moments.mean, moments.var, gamma, beta, 1e-3))
            out.append(moments)
        return out

    expected = population_stats(moments_fn, jnp.asarray(x[:180]).reshape(3, 60, 784))
    got = recalibrate(model, x, batch_size=60, num_batches=3)
    bns = [layer for layer in model.layers if "batch_normalization" in layer.name]
    for layer, state in zip(bns, expected, strict=True):
        mean, var = got[layer.name]
        np.testing.assert_allclose(mean, state.running_mean, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(var, state.running_var, rtol=2e-4, atol=1e-7)
        np.testing.assert_allclose(np.asarray(layer.moving_variance), state.running_var, rtol=2e-4)
    # the first 180 examples alone give the same statistics: the rest of x was never used
    again = recalibrate(model, x[:180])
    for name, (mean, var) in got.items():
        np.testing.assert_array_equal(again[name][0], mean)
        np.testing.assert_array_equal(again[name][1], var)
    # biased: the unbiased variance divided by m / (m - 1)
    biased = recalibrate(model, x, num_batches=3, unbiased=False)
    for name, (_, var) in got.items():
        np.testing.assert_allclose(biased[name][1] * 60 / 59, var, rtol=1e-12)


def test_evaluate_batch_statistics_scores_moving_averages_and_test_batches():
    data = load_mnist()
    x = data.x_test[:130].reshape(130, 784).astype("float32") / 255.0
    y = data.y_test[:130]
    model = seed_like_model()
    result = evaluate_batch_statistics(model, x, y, batch_sizes=(60, 1))
    predicted = np.argmax(np.asarray(model(x, training=False)), -1)
    assert result["moving_averages"] == np.mean(predicted == y)
    # batches of 60, 60 and 10, each normalised with its own statistics
    correct = 0
    for start in (0, 60, 120):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        out = clone(x[start : start + 60], training=True)
        correct += int(np.sum(np.argmax(np.asarray(out), -1) == y[start : start + 60]))
    assert result["batch_statistics"][60] == correct / 130
    assert set(result["batch_statistics"]) == {60, 1}


def no_bn_model() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])


def bn_model() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2), BatchNormalization()])


X = np.zeros((10, 4), "float32")


@pytest.mark.parametrize(
    ("model", "x", "kwargs", "message"),
    [
        (no_bn_model, X, {}, "model: expected keras.layers.BatchNormalization or "),
        (bn_model, X, {}, "x: expected at least batch_size=60 examples, got 10"),
        (bn_model, X, {"batch_size": 1}, "batch_size: expected an integer >= 2"),
        (
            bn_model,
            X,
            {"batch_size": 4, "num_batches": 3},
            "num_batches: expected an integer from 1 to 2 (the full batches of 10 examples "
            "at batch_size=4), got 3",
        ),
    ],
    ids=["no BN layers", "x too small", "batch_size 1", "num_batches too many"],
)
def test_errors_name_the_argument(model, x, kwargs, message):
    with pytest.raises(ConfigError) as err:
        recalibrate(model(), x, **kwargs)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_import_without_keras_names_the_extra():
    code = "import sys; sys.modules['keras'] = None; import bnlab.keras"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last == "ImportError: bnlab.keras needs Keras 3: pip install 'bnlab[keras]'"
