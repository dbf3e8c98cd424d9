"""Measurements of one run on the test set, as pure functions (the runner vmaps and jits them).

Three ways to evaluate a BN network, all reported:
- ``running``: the moving averages kept during training ("Using moving averages instead, we can
  track the accuracy of a model as it trains") -- the curves;
- Algorithm 2's population statistics, averaged over the training mini-batches -- at the end;
- the test set's own batch statistics in batches of 60 and of 1 -- what the notebook's layer did.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from bnlab.core import population_stats
from bnlab.engine.data import DeviceData, prepare
from bnlab.engine.histograms import Histogram, histogram
from bnlab.engine.model import ModelSpec, Params, State, cross_entropy, forward, init_bn_state
from bnlab.engine.order_stats import medians
from bnlab.engine.train import TrainSpec

PERCENTILES = (15, 50, 85)
# training images (the first ones, in file order) on which the training accuracy is measured, in
# evaluation mode like the test accuracy: a fixed subset, so that the two curves differ only in
# the data, not in the mode, the noise or the batches seen
TRAIN_ACCURACY_EXAMPLES = 10_000
# a convolutional network's evaluations run over the images this many at a time: its activations
# (~90 KB an image for the convnet preset, times the runs vmapped) would otherwise all be held at
# once (6 GB for 3 seeds of it); an MLP's run whole, as before
CONV_CHUNK = 1_000

# measure(spec, params, bn_state, data, train, key) -> any pytree of arrays: an experiment's own
# measurement of one run at every evaluation point (``key``: from the run's seed and the step)
Measure = Callable[[ModelSpec, Params, State, DeviceData, TrainSpec, jax.Array], Any]


class Evaluation(NamedTuple):
    """One run measured at one evaluation point (the runner adds the interval's training loss and
    the divergence step)."""

    test_accuracy: jax.Array
    test_loss: jax.Array
    # on the first TRAIN_ACCURACY_EXAMPLES training images, in evaluation mode
    train_accuracy: jax.Array
    # the typical unit's activation input at PERCENTILES, over the test set
    percentiles: jax.Array
    # tag -> binned values (:func:`histogram_tags` says which)
    histograms: dict[str, Histogram]
    # the experiment's measures, by name: whatever pytree each returns
    measures: dict[str, Any]


def choose_unit(spec: ModelSpec, train: TrainSpec, params: Params, data: DeviceData) -> jax.Array:
    """The "typical sigmoid" of Figure 1(b, c)'s layer (``ModelSpec.figure1_layer``: the last
    hidden layer, or the last convolution's channels), fixed before training.

    At initialisation, over the test set, take each unit's median pre-activation Wu + b (BN's
    input when BN comes before the sigmoid: after BN every unit is standardized and the medians
    differ only by rounding); the typical unit is the one whose median is the middle one of those
    medians (the lower middle for an even count, so no rounding can make it a tie): neither among
    the most saturated nor an outlier. A channel's values are all its positions in all images.
    """
    x = prepare(data.x_test, train.inputs)
    tap = forward(spec, params, init_bn_state(spec), x, "batch").taps[spec.figure1_layer]
    pre = tap["bn_input"] if spec.bn == "before" else tap["act_input"]
    unit_medians = medians(per_unit(pre))
    return jnp.argsort(unit_medians)[(unit_medians.shape[0] - 1) // 2].astype(jnp.int32)


def per_unit(values: jax.Array) -> jax.Array:
    """A layer's values as (examples, units): a convolution's (N, H, W, C) as (N * H * W, C),
    every position of a channel one more value of that unit (the paper's m' = m * p * q)."""
    return values.reshape(-1, values.shape[-1])


def _scores(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
    return accuracy, cross_entropy(logits, labels)


def histogram_tags(
    spec: ModelSpec,
    params: Params,
    bn_state: State,
    out_taps: tuple[dict, ...],
    logits: jax.Array,
    examples: int,
) -> dict[str, jax.Array]:
    """What goes into the TensorBoard histograms, by tag: per hidden layer k, BN's input and the
    activation's input of every unit on the first ``examples`` test images
    (``layer{k}/bn_input``, ``layer{k}/{activation}_input``), its parameters as Keras names them
    (``layer{k}/kernel``, ``bias``, ``gamma``, ``beta``) and its running statistics
    (``layer{k}/moving_mean``, ``moving_variance``); the output layer's ``output/kernel``,
    ``output/bias`` and the test set's ``output/logits``."""
    hidden = len(params) - 1
    values = {}
    for layer, tap in enumerate(out_taps, start=1):
        for name, taps in tap.items():
            tag = name if name == "bn_input" else f"{spec.activation}_input"
            values[f"layer{layer}/{tag}"] = taps[:examples]
    keras_names = {"w": "kernel", "b": "bias", "gamma": "gamma", "beta": "beta"}
    for layer, p in enumerate(params):
        where = "output" if layer == hidden else f"layer{layer + 1}"
        for name, array in p.items():
            values[f"{where}/{keras_names[name]}"] = array
    for layer, state in enumerate(bn_state, start=1):
        values[f"layer{layer}/moving_mean"] = state.running_mean
        values[f"layer{layer}/moving_variance"] = state.running_var
    values["output/logits"] = logits
    return values


def evaluate(
    spec: ModelSpec,
    train: TrainSpec,
    params: Params,
    bn_state: State,
    unit: jax.Array,
    data: DeviceData,
    measures: Mapping[str, Measure],
    key: jax.Array,
) -> Evaluation:
    """Test accuracy and loss with the running statistics, the training accuracy on a fixed
    subset, the {15, 50, 85}th percentiles of the typical unit's activation input over the test
    set, the histograms (:func:`histogram_tags`) and ``measures``."""
    x = prepare(data.x_test, train.inputs)
    logits, unit_values, taps = _test_pass(spec, params, bn_state, x, unit, train.hist_examples)
    accuracy, loss = _scores(logits, data.y_test)
    n = min(TRAIN_ACCURACY_EXAMPLES, data.num_train)
    x_train = prepare(data.x_train[:n], train.inputs)
    train_logits = _in_chunks(spec, lambda x: forward(spec, params, bn_state, x, "running").logits)
    train_accuracy, _ = _scores(train_logits(x_train), data.y_train[:n])
    tags = histogram_tags(spec, params, bn_state, taps, logits, train.hist_examples)
    return Evaluation(
        test_accuracy=accuracy,
        test_loss=loss,
        train_accuracy=train_accuracy,
        percentiles=jnp.percentile(unit_values, jnp.array(PERCENTILES, jnp.float32)),
        histograms={tag: histogram(values) for tag, values in tags.items()},
        # each measure's own stream, by its name: adding a measure changes no other's draws
        measures={
            name: measure(spec, params, bn_state, data, train, jax.random.fold_in(key, _tag(name)))
            for name, measure in measures.items()
        },
    )


def _test_pass(
    spec: ModelSpec, params: Params, bn_state: State, x: jax.Array, unit: jax.Array, examples: int
) -> tuple[jax.Array, jax.Array, tuple[dict, ...]]:
    """The logits, the typical unit's activation inputs and the taps (the first ``examples`` of
    them at least) of the test images ``x``, in evaluation mode."""
    if not spec.conv:
        out = forward(spec, params, bn_state, x, "running")
        return out.logits, per_unit(out.taps[spec.figure1_layer]["act_input"])[:, unit], out.taps

    def chunk(x):
        out = forward(spec, params, bn_state, x, "running")
        return out.logits, per_unit(out.taps[spec.figure1_layer]["act_input"])[:, unit]

    logits, values = _in_chunks(spec, chunk)(x)
    return logits, values, forward(spec, params, bn_state, x[:examples], "running").taps


def _in_chunks(spec: ModelSpec, f: Callable) -> Callable:
    """``f`` over a convolutional network's images CONV_CHUNK at a time (``lax.map``), its
    outputs concatenated; an MLP's ``f`` unchanged."""
    if not spec.conv:
        return f

    def chunked(x):
        n = x.shape[0]
        size = min(CONV_CHUNK, n)
        whole = n // size * size
        out = lax.map(f, x[:whole].reshape(-1, size, *x.shape[1:]))
        out = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), out)
        if whole == n:
            return out
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, f(x[whole:]))

    return chunked


def _tag(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def population_state(spec: ModelSpec, train: TrainSpec, params: Params, data: DeviceData) -> State:
    """Algorithm 2: run the trained network in training mode over the training set's mini-batches
    (in file order, ``batch_size`` each) and average their statistics per BN layer,
    E[x] = E_B[mu_B] and Var[x] = m/(m-1) E_B[sigma2_B] (bnlab.core.population_stats)."""
    b = train.batch_size
    n = data.num_train // b

    def moments(x):
        # in "batch" mode the state returned is each layer's batch statistics
        return forward(spec, params, init_bn_state(spec), prepare(x, train.inputs), "batch").state

    return population_stats(moments, data.x_train[: n * b].reshape(n, b, -1), batch_size=b)


def batch_stats_accuracy(
    spec: ModelSpec, train: TrainSpec, params: Params, data: DeviceData, batch_size: int
) -> jax.Array:
    """Test accuracy when every test batch is normalized with its own statistics, in file order
    (the last batch smaller when the batch size does not divide the test set, as tf.data does)."""
    x = prepare(data.x_test, train.inputs)
    n = x.shape[0] // batch_size * batch_size

    def predict(xb):
        return jnp.argmax(forward(spec, params, init_bn_state(spec), xb, "batch").logits, axis=-1)

    batches = x[:n].reshape(-1, batch_size, x.shape[1])
    if spec.conv:
        # a few batches at a time (CONV_CHUNK images), as the evaluations go
        preds = lax.map(predict, batches, batch_size=max(1, CONV_CHUNK // batch_size))
    else:
        preds = jax.vmap(predict)(batches)
    preds = preds.reshape(-1)
    if n < x.shape[0]:
        preds = jnp.concatenate([preds, predict(x[n:])])
    return jnp.mean((preds == data.y_test).astype(jnp.float32))


def final_evaluation(
    spec: ModelSpec, train: TrainSpec, params: Params, data: DeviceData
) -> dict[str, jax.Array]:
    """For a BN network: test accuracy and loss with Algorithm 2's population statistics, and
    with batch statistics in test batches of 60 and of 1."""
    state = population_state(spec, train, params, data)
    x = prepare(data.x_test, train.inputs)
    logits = _in_chunks(spec, lambda x: forward(spec, params, state, x, "running").logits)(x)
    accuracy, loss = _scores(logits, data.y_test)
    return {
        "population_test_accuracy": accuracy,
        "population_test_loss": loss,
        f"batch_stats_test_accuracy/{train.batch_size}": batch_stats_accuracy(
            spec, train, params, data, train.batch_size
        ),
        "batch_stats_test_accuracy/1": batch_stats_accuracy(spec, train, params, data, 1),
    }
