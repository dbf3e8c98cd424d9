"""bnlab.keras.recalibrate and evaluate_batch_statistics on the current Keras backend, checked
against numpy: run as a script with KERAS_BACKEND set (torch, tensorflow), it prints the checks
as JSON on stdout; tests/test_keras_tools.py also calls ``main()`` in-process on JAX."""

from __future__ import annotations

import json

import keras
import numpy as np

from bnlab.keras import BatchNormalization, evaluate_batch_statistics, recalibrate


def numpy_of(variables) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def hand_computation() -> float:
    """Dense (identity) -> BN on 6 examples in batches of 3, for both BN classes: the worst
    difference from the means and m/(m-1) variances written out by hand."""
    x = np.asarray([[1, 0], [2, 0], [3, 3], [4, 1], [6, 1], [8, 1]], "float32")
    # column 0: batches (1, 2, 3) and (4, 6, 8): means 2 and 6, biased variances 2/3 and 8/3
    # column 1: batches (0, 0, 3) and (1, 1, 1): means 1 and 1, biased variances 2 and 0
    expected = {
        True: ([4.0, 1.0], [1.5 * 5 / 3, 1.5 * 1.0]),  # m/(m-1) = 3/2
        False: ([4.0, 1.0], [5 / 3, 1.0]),
    }
    worst = 0.0
    for bn in (keras.layers.BatchNormalization, BatchNormalization):
        for unbiased, (mean, var) in expected.items():
            dense = keras.layers.Dense(2, kernel_initializer="identity")
            model = keras.Sequential([keras.Input((2,)), dense, bn(name="bn")])
            stats = recalibrate(model, x, batch_size=3, unbiased=unbiased)
            layer = model.layers[-1]
            got = [*stats["bn"], *numpy_of([layer.moving_mean, layer.moving_variance])]
            want = [mean, var, mean, var]
            worst = max(
                worst, *(float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True))
            )
    return worst


def mixed_model(seed: int = 0) -> keras.Model:
    """Functional: Conv2D, Keras BN, relu, Dropout, Dense, bnlab BN, sigmoid, Dense."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 2))
    h = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="keras_bn")(h)
    h = keras.layers.Activation("relu")(keras.layers.Flatten()(h))
    h = keras.layers.Dense(5, name="dense")(keras.layers.Dropout(0.3)(h))
    h = BatchNormalization(name="bnlab_bn")(h)
    outputs = keras.layers.Dense(3)(keras.layers.Activation("sigmoid")(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="rmsprop", loss=keras.losses.SparseCategoricalCrossentropy(True))
    return model


def data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 2.0, (n, 4, 4, 2)).astype("float32"), rng.integers(0, 3, n)


def mixed_model_checks() -> dict:
    """On ``mixed_model`` after a training step: only the moving statistics change; the conv BN's
    statistics match numpy over (N, H, W) with m = 3 * 4 * 4; evaluate changes nothing."""
    model = mixed_model()
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    state = model.variables + model.optimizer.variables
    before = numpy_of(state)
    ours = evaluate_batch_statistics(model, x, y, batch_sizes=(8, 1))
    unchanged_by_evaluate = all(
        np.array_equal(a, b) for a, b in zip(before, numpy_of(state), strict=True)
    )
    stats = recalibrate(model, x, batch_size=8, num_batches=4)
    moving = {
        v.path
        for layer in model.layers
        if "bn" in layer.name
        for v in (layer.moving_mean, layer.moving_variance)
    }
    changed = sorted(
        v.path
        for v, a in zip(state, before, strict=True)
        if not np.array_equal(a, numpy_of([v])[0])
    )
    conv = keras.ops.convert_to_numpy(model.get_layer("conv")(x[:32]))
    batches = conv.astype("float64").reshape(4, 8 * 4 * 4, 3)
    m = 8 * 4 * 4
    want = batches.mean(1).mean(0), batches.var(1).mean(0) * m / (m - 1)
    conv_diff = max(
        float(np.max(np.abs(g - w) / (np.abs(w) + 1e-3)))
        for g, w in zip(stats["keras_bn"], want, strict=True)
    )
    # accuracy with moving averages, computed the plain Keras way
    predicted = np.argmax(keras.ops.convert_to_numpy(model(x, training=False)), -1)
    return {
        "only_moving_statistics_changed": changed == sorted(moving),
        "changed": changed,
        "unchanged_by_evaluate": unchanged_by_evaluate,
        "conv_bn_relative_diff": conv_diff,
        "evaluate_before_recalibrate": {
            "moving_averages": ours["moving_averages"],
            **{str(k): v for k, v in ours["batch_statistics"].items()},
        },
        "moving_average_accuracy_after": evaluate_batch_statistics(model, x, y, batch_sizes=(8,))[
            "moving_averages"
        ],
        "keras_accuracy_after": float(np.mean(predicted == y)),
        # a test batch of one normalises every unit to beta: one prediction for every example
        "batch_of_one_is_a_class_frequency": any(
            np.isclose(ours["batch_statistics"][1], np.mean(y == k)) for k in range(3)
        ),
    }


def main() -> dict:
    return {
        "backend": keras.backend.backend(),
        "hand_computation": hand_computation(),
        **mixed_model_checks(),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
