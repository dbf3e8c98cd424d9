"""Algorithm 2 for a trained Keras model, and the test-time pitfall checked.

:func:`recalibrate` replaces every BN layer's moving averages by the paper's population
statistics, E[x] = E_B[mu_B] and Var[x] = m/(m-1) E_B[sigma2_B], over training mini-batches run
with the weights fixed. :func:`evaluate_batch_statistics` scores a model with its moving averages
beside batch statistics at test time (what the seed notebook's hand-written layer did).

How the batch statistics are read: each pass is ``model.stateless_call(..., training=True)``
(:mod:`bnlab.keras.stream`), which returns the moving statistics a training step would assign
instead of assigning them. With the moving statistics handed in as zeros, a BN layer's update
``momentum * 0 + (1 - momentum) * batch`` is its batch mean and BIASED batch variance (Keras's
``moving_variance`` convention, in both ``keras.layers.BatchNormalization`` and
``bnlab.keras.BatchNormalization``) times ``1 - momentum``: exactly what the layer normalised with
in that pass, for BN layers anywhere in the model (nested models and custom layers included).
"""

from __future__ import annotations

import itertools
from typing import Any

import keras
import numpy as np

from bnlab.errors import ConfigError
from bnlab.keras.layer import BatchNormalization
from bnlab.keras.stream import StatelessForward, labels_of, num_examples, spans, take

BN_TYPES = (keras.layers.BatchNormalization, BatchNormalization)


def bn_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every BN layer of ``model`` (Keras's and bnlab's), nested models and layers included."""
    if hasattr(model, "_flatten_layers"):
        layers = model._flatten_layers(include_self=False, recursive=True)
    else:  # pragma: no cover - older/newer Keras without the helper: walk .layers
        layers, todo = [], list(model.layers)
        while todo:
            layer = todo.pop(0)
            layers.append(layer)
            todo += list(getattr(layer, "layers", []))
    return [layer for layer in layers if isinstance(layer, BN_TYPES)]


def check_model(model: Any) -> None:
    if not isinstance(model, keras.Model) or not model.built:
        raise ConfigError(
            "model: expected a built keras.Model (give it a keras.Input or call it on data), "
            f"got {type(model).__name__}{'' if getattr(model, 'built', True) else ' (not built)'}"
        )


def trainable_bn_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The BN layers Algorithm 2 applies to: those that use batch statistics in training."""
    layers = bn_layers(model)
    if not layers:
        raise ConfigError(
            "model: expected keras.layers.BatchNormalization or bnlab.keras.BatchNormalization "
            f"layers, got none among {len(model.layers)} layers"
        )
    for layer in layers:
        if getattr(layer, "renorm", False) or float(layer.momentum) >= 1.0:
            raise ConfigError(
                f"model: layer {layer.name!r}: expected a BN layer with renorm=False and "
                f"momentum < 1, got renorm={getattr(layer, 'renorm', False)}, "
                f"momentum={layer.momentum}"
            )
    # trainable=False: the layer runs in inference mode even in training, with no batch statistics
    active = [layer for layer in layers if layer.trainable]
    if not active:
        raise ConfigError(
            f"model: expected a trainable BN layer, got {len(layers)} frozen (trainable=False)"
        )
    return active


def values_per_feature(layer: keras.layers.Layer, batch_size: int) -> int:
    """m: the values a BN layer averages per feature in a batch (every axis but its own)."""
    shape = (layer.get_build_config() or {}).get("input_shape")
    if shape is None:
        raise ConfigError(f"model: layer {layer.name!r}: expected a built layer, got no shape")
    axis = int(layer.axis) % len(shape)
    rest = [d for i, d in enumerate(shape) if i not in (0, axis)]
    if any(d is None for d in rest):
        raise ConfigError(
            f"model: layer {layer.name!r}: expected a fixed input shape, got {tuple(shape)}"
        )
    return batch_size * int(np.prod(rest, dtype=np.int64))


def recalibrate(
    model: keras.Model,
    x: Any,
    *,
    batch_size: int = 60,
    num_batches: int | None = None,
    unbiased: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Algorithm 2: set every BN layer's moving statistics to the population statistics.

    Runs ``model`` in training mode with its weights fixed over ``num_batches`` consecutive
    mini-batches of ``batch_size`` examples of ``x`` (default: all full batches, in order; a
    last, smaller batch is never used), and sets each BN layer's ``moving_mean`` to the average
    of the batch means and its ``moving_variance`` to m/(m-1) times the average (biased) batch
    variance, m the values per feature in a batch (``unbiased=False``: the biased average,
    Keras's own convention). Nothing else changes: weights, other state and the optimizer are
    left as they were. Batches are sliced from ``x`` one at a time, so memory does not grow with
    ``len(x)``; ``x`` is an array (a list/dict of arrays for several inputs), preprocessed as
    for ``fit``. BN layers with ``trainable=False`` run in inference mode in training too and
    are left alone. Works on the JAX, TensorFlow and torch backends.

    Returns ``{layer.name: (mean, variance)}`` in float64 (the layers store them in their own
    dtype).
    """
    check_model(model)
    layers = trainable_bn_layers(model)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ConfigError(
            f"batch_size: expected an integer >= 2 (a batch of one has no variance), "
            f"got {batch_size!r}"
        )
    n = num_examples(x)
    if n < batch_size:
        raise ConfigError(f"x: expected at least batch_size={batch_size} examples, got {n}")
    full = n // batch_size
    if num_batches is None:
        num_batches = full
    if not isinstance(num_batches, (int, np.integer)) or not 1 <= num_batches <= full:
        raise ConfigError(
            f"num_batches: expected an integer from 1 to {full} (the full batches of {n} "
            f"examples at batch_size={batch_size}), got {num_batches!r}"
        )

    # the moving statistics' places in the model's state, handed in as zeros every pass
    index = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    places = [(index[id(layer.moving_mean)], index[id(layer.moving_variance)]) for layer in layers]
    zeros = {}
    for layer, (i, j) in zip(layers, places, strict=True):
        for k, v in ((i, layer.moving_mean), (j, layer.moving_variance)):
            zeros[k] = keras.ops.zeros(v.shape, v.dtype)
    forward = StatelessForward(model, training=True, reset=zeros)

    sums = [(0.0, 0.0)] * len(layers)
    for start, stop in itertools.islice(spans(n, batch_size, keep_last=False), num_batches):
        _, state = forward(take(x, start, stop))
        stats = [keras.ops.convert_to_numpy(state[k]) for pair in places for k in pair]
        for n_layer, layer in enumerate(layers):
            weight = 1.0 - float(layer.momentum)  # the batch's weight in the update from zero
            mean = np.asarray(stats[2 * n_layer], np.float64) / weight
            var = np.asarray(stats[2 * n_layer + 1], np.float64) / weight
            s_mean, s_var = sums[n_layer]
            sums[n_layer] = (s_mean + mean, s_var + var)

    result = {}
    for layer, (s_mean, s_var) in zip(layers, sums, strict=True):
        m = values_per_feature(layer, batch_size)
        # E[x] = E_B[mu_B]
        mean = s_mean / num_batches
        # Var[x] = m / (m - 1) * E_B[sigma2_B]
        var = s_var / num_batches
        if unbiased:
            var = var * m / (m - 1)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(var.astype(layer.moving_variance.dtype))
        result[layer.name] = (mean, var)
    return result


def accuracy_over(forward: StatelessForward, x: Any, labels: np.ndarray, batch_size: int) -> float:
    """Top-1 accuracy of ``forward`` over consecutive batches of ``x`` (the last may be smaller)."""
    correct = 0
    for start, stop in spans(len(labels), batch_size, keep_last=True):
        outputs, _ = forward(take(x, start, stop))
        correct += int(np.sum(np.argmax(outputs, axis=-1) == labels[start:stop]))
    return correct / len(labels)


def evaluate_batch_statistics(
    model: keras.Model, x: Any, y: Any, *, batch_sizes: tuple[int, ...] = (60, 1)
) -> dict[str, Any]:
    """The test-time pitfall, checked: the accuracy of ``model`` on (``x``, ``y``) as inference
    should run it, with BN's moving averages (``model(x, training=False)``; Algorithm 2's
    statistics if :func:`recalibrate` ran), beside the accuracy with batch statistics at test
    time (``training=True``) in consecutive test batches of each size in ``batch_sizes`` (the
    last batch may be smaller), as the seed notebook's hand-written layer did. A test batch of
    one normalises every unit to its beta: the prediction no longer depends on the input.

    Accuracy is the argmax of the model's output against integer labels ``y`` (or one-hot rows).
    Side-effect free: the model's weights, moving statistics and RNG state are unchanged.
    Returns ``{"moving_averages": acc, "batch_statistics": {size: acc, ...}}``.
    """
    check_model(model)
    n = num_examples(x)
    labels = labels_of(y)
    if labels.shape != (n,):
        raise ConfigError(
            f"y: expected {n} integer labels (one per example of x), got shape {np.shape(y)}"
        )
    sizes = tuple(batch_sizes)
    if not sizes or not all(isinstance(b, (int, np.integer)) and 1 <= b for b in sizes):
        raise ConfigError(f"batch_sizes: expected positive integers, got {batch_sizes!r}")
    inference = StatelessForward(model, training=False)
    training = StatelessForward(model, training=True)
    return {
        "moving_averages": accuracy_over(inference, x, labels, min(n, 1000)),
        "batch_statistics": {b: accuracy_over(training, x, labels, b) for b in sizes},
    }
