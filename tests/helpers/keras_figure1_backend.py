"""bnlab.keras.Figure1Callback on the current Keras backend, checked against numpy: run as a
script with KERAS_BACKEND set (torch, tensorflow), it prints the checks as JSON on stdout;
tests/test_keras_figure1.py also calls ``main()`` in-process on JAX."""

from __future__ import annotations

import json
import tempfile

import keras
import numpy as np

from bnlab.keras import BatchNormalization, Figure1Callback

EVERY = 3


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.5, 1.5, (n, 6)).astype("float32"), rng.integers(0, 3, n)


def model(bn: bool) -> keras.Model:
    """6-5-5-3: Dense -> BN -> sigmoid twice (one Keras BN, one bnlab BN), or Dense(sigmoid)."""
    keras.utils.set_random_seed(3)
    layers: list = [keras.Input((6,))]
    for k, bn_class in enumerate((keras.layers.BatchNormalization, BatchNormalization)):
        if bn:
            layers += [
                keras.layers.Dense(5, name=f"dense{k}"),
                bn_class(name=f"bn{k}"),
                keras.layers.Activation("sigmoid", name=f"sigmoid{k}"),
            ]
        else:
            layers.append(keras.layers.Dense(5, activation="sigmoid", name=f"dense{k}"))
    m = keras.Sequential([*layers, keras.layers.Dense(3, name="out")], name="bn" if bn else "plain")
    m.compile(optimizer="rmsprop", loss=keras.losses.SparseCategoricalCrossentropy(True))
    return m


def numpy_of(variables) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def sigmoid_inputs(m: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    """Each hidden layer's sigmoid input, by hand in float64 with BN's moving statistics."""
    h, out = x.astype(np.float64), []
    for k in range(2):
        w, b = numpy_of(m.get_layer(f"dense{k}").weights)
        h = h @ w + b
        if m.name == "bn":
            gamma, beta, mean, var = numpy_of(m.get_layer(f"bn{k}").weights)
            eps = m.get_layer(f"bn{k}").epsilon
            h = gamma * (h - mean) / np.sqrt(var + eps) + beta
        out.append(h)
        h = 1 / (1 + np.exp(-h))
    return out


def run(bn: bool, callback: bool) -> tuple[keras.Model, Figure1Callback | None, dict]:
    x, y = data(48, 0)
    x_val, y_val = data(20, 1)
    m = model(bn)
    cb = None
    hand = {}
    if callback:
        cb = Figure1Callback(validation_data=(x_val, y_val), every_n_steps=EVERY, batch_size=7)
        original = cb.record

        def record_and_check() -> None:
            # the hand computation at the moment the callback records, from the same weights
            original()
            step = cb.log.steps[-1]
            hand[step] = (sigmoid_inputs(cb.model, x_val), m.predict(x_val, verbose=0))

        cb.record = record_and_check
    m.fit(x, y, batch_size=8, epochs=2, shuffle=False, callbacks=[cb] if cb else [], verbose=0)
    return m, cb, hand


def check_network(bn: bool) -> dict:
    m, cb, hand = run(bn, callback=True)
    plain, _, _ = run(bn, callback=False)
    # 48 examples in batches of 8: 6 steps an epoch, 12 in all
    worst_percentile = 0.0
    accuracy_ok = True
    _, y_val = data(20, 1)
    for i, step in enumerate(cb.log.steps):
        inputs, logits = hand[step]
        for tap, values in zip(cb.log.taps, inputs[-len(cb.log.taps) :], strict=True):
            unit = cb.log.taps[tap].unit
            want = np.percentile(values[:, unit], [15, 50, 85])
            got = [cb.log.taps[tap].percentiles[q][i] for q in ("15", "50", "85")]
            worst_percentile = max(worst_percentile, float(np.max(np.abs(np.subtract(got, want)))))
        accuracy_ok &= cb.log.accuracy[i] == float(np.mean(np.argmax(logits, -1) == y_val))
    with tempfile.TemporaryDirectory() as out:
        written = sorted(p.name for p in cb.figure(out))
    return {
        "taps": list(cb.log.taps),
        "steps": cb.log.steps,
        "worst_percentile_difference": worst_percentile,
        "accuracy_matches": bool(accuracy_ok),
        "training_unchanged_by_callback": all(
            np.array_equal(a, b)
            for a, b in zip(numpy_of(m.variables), numpy_of(plain.variables), strict=True)
        ),
        "figure_files": written,
    }


def main() -> dict:
    return {
        "backend": keras.backend.backend(),
        "bn": check_network(True),
        "plain": check_network(False),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
