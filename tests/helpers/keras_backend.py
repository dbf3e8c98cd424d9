"""Run with KERAS_BACKEND set to another backend (torch, numpy): bnlab.keras.BatchNormalization
against keras.layers.BatchNormalization for a few training steps and at inference. Prints the
worst absolute difference of outputs and moving statistics as JSON on stdout."""

from __future__ import annotations

import json

import keras
import numpy as np

from bnlab.keras import BatchNormalization


def main() -> dict:
    rng = np.random.default_rng(0)
    ours, theirs = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    worst = {"y (train)": 0.0, "moving_mean": 0.0, "moving_variance": 0.0, "y (eval)": 0.0}

    def record(name, a, b):
        a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        worst[name] = max(worst[name], float(np.max(np.abs(a - b))))

    training = keras.backend.backend() != "numpy"  # the numpy backend only runs inference
    for _ in range(3 if training else 0):
        x = rng.normal(2.0, 3.0, (16, 4, 4, 5)).astype("float32")
        record("y (train)", ours(x, training=True), theirs(x, training=True))
        record("moving_mean", ours.moving_mean, theirs.moving_mean)
        record("moving_variance", ours.moving_variance, theirs.moving_variance)
    x = rng.normal(2.0, 3.0, (1, 4, 4, 5)).astype("float32")
    record("y (eval)", ours(x, training=False), theirs(x, training=False))
    return {"backend": keras.backend.backend(), "worst": worst}


if __name__ == "__main__":
    print(json.dumps(main()))
