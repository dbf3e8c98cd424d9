"""What bnlab.keras.Figure1Callback adds to the seed notebook's Keras fit: both models trained
with and without the callback (same seed, alternating, in this one invocation), the fit times,
the final test accuracies, and whether the callback changed any trained weight.

    python benchmarks/keras_figure1_cost.py [--epochs 5] [--every 100] [--log-dir DIR]

Needs the keras extra. The callback records before training and every --every steps over the
10,000 test images (percentiles, TensorBoard histograms when --log-dir is given, validation
accuracy).
"""

from __future__ import annotations

import argparse
import os
import time

from requires import require

require("keras", "keras")
os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import bnlab.keras  # noqa: E402
from bnlab.data import load_mnist  # noqa: E402


def seed_model(with_bn: bool) -> keras.Model:
    """The seed notebook's 784-100-100-100-10 sigmoid network, BN before each sigmoid or none."""
    keras.utils.set_random_seed(0)
    layers: list = [keras.Input((784,))]
    for _ in range(3):
        if with_bn:
            layers += [
                keras.layers.Dense(100),
                bnlab.keras.BatchNormalization(epsilon=1e-5, momentum=0.9),
                keras.layers.Activation("sigmoid"),
            ]
        else:
            layers.append(keras.layers.Dense(100, activation="sigmoid"))
    model = keras.Sequential([*layers, keras.layers.Dense(10)], name="bn" if with_bn else "plain")
    model.compile(
        keras.optimizers.RMSprop(),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args()
    mnist = load_mnist()
    x = mnist.x_train.reshape(-1, 784).astype("float32") / 255
    x_test = mnist.x_test.reshape(-1, 784).astype("float32") / 255
    print(f"Keras {keras.__version__} on {keras.backend.backend()}, {args.epochs} epochs of 1,000")
    print(f"{'model':6} {'callback':9} {'fit s':>7} {'records':>7} {'test acc':>8}")
    for with_bn in (False, True):
        weights = {}
        for use in (False, True):
            model = seed_model(with_bn)
            callbacks = []
            if use:
                log_dir = None
                if args.log_dir is not None:
                    log_dir = os.path.join(args.log_dir, model.name)
                callbacks = [
                    bnlab.keras.Figure1Callback(
                        validation_data=(x_test, mnist.y_test),
                        every_n_steps=args.every,
                        log_dir=log_dir,
                    )
                ]
            start = time.perf_counter()
            model.fit(
                x, mnist.y_train, batch_size=60, epochs=args.epochs, verbose=0, callbacks=callbacks
            )
            seconds = time.perf_counter() - start
            _, accuracy = model.evaluate(x_test, mnist.y_test, batch_size=1000, verbose=0)
            records = len(callbacks[0].log.steps) if use else 0
            weights[use] = [keras.ops.convert_to_numpy(v) for v in model.variables]
            print(
                f"{model.name:6} {'yes' if use else 'no':9} {seconds:7.1f} {records:7d} "
                f"{accuracy:8.4f}"
            )
        same = all(np.array_equal(a, b) for a, b in zip(weights[False], weights[True], strict=True))
        print(f"{model.name}: trained weights identical with and without the callback: {same}")


if __name__ == "__main__":
    main()
