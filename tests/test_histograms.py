"""Histograms binned in the compiled evaluation (bnlab.engine.histograms) against numpy's, and
what an evaluation bins: every layer's parameters, running statistics, inputs and the logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.data import load_mnist
from bnlab.engine import BINS, ModelSpec, TrainSpec, histogram, init_params, to_device
from bnlab.engine.evaluate import TRAIN_ACCURACY_EXAMPLES, evaluate
from bnlab.engine.model import forward

RNG = np.random.default_rng(7)
ARRAYS = {
    # one value per bucket, and the maximum, which falls in the last (closed) bucket
    "integers": np.arange(65, dtype=np.float32),
    "normal": RNG.normal(size=(100, 30)).astype(np.float32),
    "skewed": RNG.exponential(size=5000).astype(np.float32) - 3.0,
    "two values": np.array([-1.0, 2.0, 2.0, -1.0, 2.0], np.float32),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_counts_and_moments_equal_numpys(name):
    values = ARRAYS[name]
    h = jax.tree.map(np.asarray, jax.jit(histogram)(values))
    counts, _ = np.histogram(values, BINS)
    assert h.counts.tolist() == counts.tolist()
    assert (float(h.min), float(h.max)) == (values.min(), values.max())


def test_equal_values_fill_the_first_bucket():
    h = histogram(jnp.full((3, 4), 0.5))
    assert (float(h.min), float(h.max)) == (0.5, 0.5)
    assert np.asarray(h.counts).tolist() == [12.0] + [0.0] * (BINS - 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_shows_in_the_range(bad):
    h = histogram(jnp.array([0.0, bad, 1.0]))
    assert not (np.isfinite(float(h.min)) and np.isfinite(float(h.max)))


@pytest.fixture(scope="module")
def data():
    mnist = load_mnist()
    # 12,000 training images: more than the training accuracy's subset
    return to_device(mnist.x_train[:12_000], mnist.y_train[:12_000], mnist.x_test, mnist.y_test)


def _evaluate(spec, data):
    train = TrainSpec(hist_examples=5)
    params, state = init_params(spec, jax.random.key(0))
    out = evaluate(spec, train, params, state, jnp.int32(0), data, {}, jax.random.key(1))
    return params, state, out


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            ModelSpec(hidden=(8,), bn="before", bias_before_bn=False),
            [
                "layer1/bn_input",
                "layer1/sigmoid_input",
                "layer1/kernel",
                "layer1/gamma",
                "layer1/beta",
                "output/kernel",
                "output/bias",
                "layer1/moving_mean",
                "layer1/moving_variance",
                "output/logits",
            ],
        ),
        (
            ModelSpec(hidden=(8, 6), activation="relu"),
            [
                "layer1/relu_input",
                "layer2/relu_input",
                "layer1/kernel",
                "layer1/bias",
                "layer2/kernel",
                "layer2/bias",
                "output/kernel",
                "output/bias",
                "output/logits",
            ],
        ),
    ],
)
def test_an_evaluation_bins_every_parameter_statistic_input_and_the_logits(spec, expected, data):
    assert list(_evaluate(spec, data)[2].histograms) == expected


def test_each_histogram_bins_what_its_tag_names(data):
    spec = ModelSpec(hidden=(8,), bn="before")
    params, state, out = _evaluate(spec, data)
    x = data.x_test.astype(jnp.float32) / 255.0
    ran = forward(spec, params, state, x, "running")
    expected = {
        "layer1/kernel": params[0]["w"],
        "layer1/bias": params[0]["b"],
        "layer1/gamma": params[0]["gamma"],
        "output/kernel": params[1]["w"],
        "layer1/moving_variance": state[0].running_var,
        "output/logits": ran.logits,
        # the first hist_examples test images only
        "layer1/bn_input": ran.taps[0]["bn_input"][:5],
    }
    for tag, values in expected.items():
        got, want = out.histograms[tag], histogram(values)
        assert np.asarray(got.counts).tolist() == np.asarray(want.counts).tolist(), tag
        assert float(got.counts.sum()) == values.size, tag


def test_training_accuracy_is_on_the_first_training_images_in_evaluation_mode(data):
    spec = ModelSpec(hidden=(8,), bn="before")
    params, state, out = _evaluate(spec, data)
    n = min(TRAIN_ACCURACY_EXAMPLES, data.num_train)
    x = data.x_train[:n].astype(jnp.float32) / 255.0
    predicted = jnp.argmax(forward(spec, params, state, x, "running").logits, axis=-1)
    assert float(out.train_accuracy) == float(jnp.mean(predicted == data.y_train[:n]))


def test_the_training_accuracy_tag_names_its_subset():
    # outputs/ cannot import the engine's constant: the description states it, this keeps them one
    from bnlab.outputs.tags import DESCRIPTIONS

    assert f"first {TRAIN_ACCURACY_EXAMPLES:,} training images" in DESCRIPTIONS["accuracy/train"]
