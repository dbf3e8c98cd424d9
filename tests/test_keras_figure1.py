"""bnlab.keras.Figure1Callback: its records against a hand computation on the JAX backend, and the
same checks (tests/helpers/keras_figure1_backend.py) on the torch and TensorFlow backends in a
subprocess; its default layers, TensorBoard logs, figures and errors."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import keras_backends
from helpers import tensorboard_read as tb

from bnlab.errors import ConfigError
from bnlab.keras import BatchNormalization, Figure1Callback, figure1

HELPER = Path(__file__).parent / "helpers" / "keras_figure1_backend.py"


def check(result: dict, backend: str) -> None:
    assert result["backend"] == backend
    for network, taps in (("bn", ["sigmoid0", "sigmoid1"]), ("plain", ["dense1.activation"])):
        got = result[network]
        assert got["taps"] == taps
        # 48 examples in batches of 8 for 2 epochs: 12 steps, recorded every 3
        assert got["steps"] == [0, 3, 6, 9, 12]
        assert got["worst_percentile_difference"] <= 1e-6
        assert got["accuracy_matches"]
        assert got["training_unchanged_by_callback"]
        assert got["figure_files"] == ["figure1.json", "figure1.png", "figure1.svg"]


def test_records_match_a_hand_computation_on_jax():
    check(keras_backends.in_process(HELPER), "jax")


@pytest.mark.parametrize("backend", keras_backends.OTHER_BACKENDS)
def test_same_checks_on_other_backends(backend):
    check(keras_backends.on_backend(HELPER, backend), backend)


def softmax_model() -> keras.Model:
    """Dense(relu) -> Dense(tanh) -> Dense(softmax): the output layer's activation is not tapped."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, activation="relu", name="a"),
            keras.layers.Dense(3, activation="tanh", name="b"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )


def fit(model: keras.Model, callback: Figure1Callback, epochs: int = 1) -> None:
    rng = np.random.default_rng(0)
    x, y = (
        rng.normal(size=(12, *model.inputs[0].shape[1:])).astype("float32"),
        rng.integers(0, 2, 12),
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=[callback])


def probe(model: keras.Model) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(10, *model.inputs[0].shape[1:])).astype("float32")


def test_default_tap_is_the_last_hidden_activation_not_the_output():
    model = softmax_model()
    cb = Figure1Callback(probe(model))
    fit(model, cb)
    assert list(cb.log.taps) == ["b.activation"]


def test_named_layer_records_its_input():
    model = softmax_model()
    x = probe(model)
    cb = Figure1Callback(x, layers=["b"], every_n_steps=100)
    fit(model, cb)
    # b's input is a's output, relu(x W + b), read at the last record
    w, b = (keras.ops.convert_to_numpy(v) for v in model.get_layer("a").weights)
    a_out = np.maximum(x.astype(np.float64) @ w + b, 0)
    unit = cb.log.taps["b"].unit
    got = [cb.log.taps["b"].percentiles[q][-1] for q in ("15", "50", "85")]
    np.testing.assert_allclose(got, np.percentile(a_out[:, unit], [15, 50, 85]), atol=1e-6)


def test_steps_count_on_across_fit_calls():
    model = softmax_model()
    cb = Figure1Callback(probe(model), every_n_steps=2)
    fit(model, cb)  # 3 steps: records 0, 2 and the last, 3
    fit(model, cb)  # 3 more: 4, 6
    assert cb.log.steps == [0, 2, 3, 4, 6]


def test_conv_tap_counts_positions_as_examples_of_a_channel():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5, 5, 2)),
            keras.layers.Conv2D(3, 3, padding="same", name="conv"),
            BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    x = probe(model)
    cb = Figure1Callback(x, every_n_steps=100)
    cb.set_model(model)
    cb.record()
    assert list(cb.log.taps) == ["relu"]
    # at initialisation BN's moving statistics are 0 and 1: its output is conv / sqrt(1 + eps)
    conv = keras.ops.convert_to_numpy(model.get_layer("conv")(x)).astype(np.float64)
    values = conv.reshape(-1, 3) / np.sqrt(1 + model.get_layer("bn").epsilon)
    unit = cb.log.taps["relu"].unit
    medians = np.median(values, axis=0)
    assert unit == int(np.argsort(medians)[1])
    got = [cb.log.taps["relu"].percentiles[q][0] for q in ("15", "50", "85")]
    np.testing.assert_allclose(got, np.percentile(values[:, unit], [15, 50, 85]), atol=1e-5)


def test_tensorboard_gets_percentiles_histograms_and_accuracy(tmp_path):
    model = softmax_model()
    x = probe(model)
    y = np.arange(10) % 2
    cb = Figure1Callback(validation_data=(x, y), every_n_steps=1, log_dir=tmp_path / "tb")
    fit(model, cb)
    acc = tb.read(tmp_path / "tb")
    assert tb.tags(acc, "scalars") == [
        "accuracy/validation",
        "b.activation/p15",
        "b.activation/p50",
        "b.activation/p85",
    ]
    assert tb.tags(acc, "histograms") == ["b.activation/input", "b.activation/output"]
    assert tb.steps(acc, "b.activation/p50") == [0, 1, 2, 3]
    assert [v for _, v in tb.scalars(acc, "b.activation/p50")] == pytest.approx(
        cb.log.taps["b.activation"].percentiles["50"], abs=1e-6
    )
    # every probe value of the 3 units is in the input histogram
    counts = tb.values(acc, "b.activation/input")[0][1][:, 2]
    assert counts.sum() == 30


def test_figure1_of_two_models_has_accuracy_and_one_panel_each(tmp_path):
    callbacks = []
    for name in ("first", "second"):
        model = softmax_model()
        x = probe(model)
        cb = Figure1Callback(validation_data=(x, np.arange(10) % 2), name=name)
        fit(model, cb)
        callbacks.append(cb)
    paths = figure1(callbacks, tmp_path)
    assert sorted(p.name for p in paths) == ["figure1.json", "figure1.png", "figure1.svg"]
    runs = json.loads((tmp_path / "figure1.json").read_text())["runs"]
    assert [r["variant"] for r in runs] == [
        "first",
        "first: b.activation",
        "second",
        "second: b.activation",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": ["nope"]}, "layers: expected names of"),
        ({"layers": ["out.activation", "a.activation", "b.activation"]}, None),
        ({"every_n_steps": 0}, "every_n_steps: expected a positive integer, got 0"),
        ({"batch_size": 1.5}, "batch_size: expected a positive integer, got 1.5"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs, message):
    model = softmax_model()
    if message is None:  # named activations, the output's included, are allowed
        cb = Figure1Callback(probe(model), **kwargs)
        fit(model, cb)
        assert list(cb.log.taps) == kwargs["layers"]
        return
    with pytest.raises(ConfigError, match=message):
        fit(model, Figure1Callback(probe(model), **kwargs))


def test_a_layer_without_its_own_activation_cannot_be_tapped_as_one():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    with pytest.raises(ConfigError, match=r"'d\.activation': expected layer 'd' to have its own"):
        fit(model, Figure1Callback(probe(model), layers=["d.activation"]))


def test_neither_probe_nor_validation_data_is_an_error():
    with pytest.raises(ConfigError, match="probe: expected probe inputs or validation_data"):
        Figure1Callback()
