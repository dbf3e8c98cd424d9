"""The engine's convolutional layers: parsing and shapes, the convolution's gradient against
autodiff, pooling against numpy, the convnet preset's weights against Keras, and a whole
convolutional network with BN against torch (BatchNorm2d, BatchNorm1d) in float64."""

from __future__ import annotations

import importlib
import itertools
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from bnlab.engine import count_params, forward, init_params, summary_rows
from bnlab.engine.conv import Conv, Pool, conv2d, output_shapes, parse_layer, pool2d
from bnlab.engine.model import ModelSpec
from bnlab.errors import ConfigError
from bnlab.experiments.network import VARIANTS
from bnlab.experiments.presets import CONVNET


@pytest.mark.parametrize(
    ("text", "layer"),
    [
        ("conv:6:5", Conv(6, 5, 1, "SAME")),
        ("conv:16:3:2", Conv(16, 3, 2, "SAME")),
        ("CONV:8:5:1:valid", Conv(8, 5, 1, "VALID")),
        ("maxpool:2", Pool("max", 2, 2)),
        ("avgpool:3:1", Pool("avg", 3, 1)),
    ],
)
def test_layer_text_parses(text, layer):
    assert parse_layer(text) == layer
    assert parse_layer(str(layer)) == layer


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conv:0:5", "--conv: 'conv:0:5': expected its features >= 1, got 0"),
        ("conv:6:0", "--conv: 'conv:6:0': expected its kernel >= 1, got 0"),
        ("conv:6:5:0", "--conv: 'conv:6:5:0': expected its stride >= 1, got 0"),
        ("maxpool:0", "--conv: 'maxpool:0': expected its window >= 1, got 0"),
        ("maxpool:2:-1", "--conv: 'maxpool:2:-1': expected its stride >= 1, got -1"),
        (
            "dense:10",
            "--conv: expected a layer (conv:FEATURES:KERNEL[:STRIDE[:same|valid]], "
            "maxpool:WINDOW[:STRIDE] or avgpool:...), got 'dense:10'",
        ),
    ],
)
def test_bad_layer_text_is_one_line_naming_the_option(text, message):
    with pytest.raises(ConfigError) as info:
        parse_layer(text)
    assert str(info.value) == message


def test_lenet_shapes():
    layers = tuple(parse_layer(t) for t in CONVNET.conv)
    assert output_shapes((28, 28, 1), layers) == [(24, 24, 6), (12, 12, 6), (8, 8, 16), (4, 4, 16)]


@pytest.mark.parametrize(
    ("text", "shape"),
    [("conv:4:5:2:same", (14, 14, 4)), ("conv:4:3:3:same", (10, 10, 4)), ("maxpool:3", (9, 9, 1))],
)
def test_same_padding_rounds_up_and_valid_pooling_down(text, shape):
    assert output_shapes((28, 28, 1), (parse_layer(text),)) == [shape]


@pytest.mark.parametrize(
    ("conv", "message"),
    [
        (
            ("conv:6:30:1:valid",),
            "--conv: conv:6:30:1:valid: expected a kernel of at most 28 for its 28x28x1 input, "
            "got 30",
        ),
        (
            ("conv:6:5:1:valid", "maxpool:2", "conv:16:5:1:valid", "maxpool:2", "maxpool:8"),
            "--conv: maxpool:8:8: expected a window of at most 4 for its 4x4x16 input, got 8",
        ),
    ],
)
def test_a_layer_larger_than_its_input_is_refused_by_the_config(conv, message):
    with pytest.raises(ConfigError) as info:
        CONVNET.replace(conv=conv)
    assert str(info.value) == message


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 4])
def test_convolution_gradients_equal_autodiff(x64, padding, stride, kernel):
    """The custom backward (dW as one matmul of patches, dx as a convolution with the flipped
    kernel) against JAX's autodiff of XLA's convolution, float64."""
    layer = Conv(5, kernel, stride, padding)
    kx, kw, kg = jax.random.split(jax.random.key(7), 3)
    x = jax.random.normal(kx, (3, 11, 10, 2), jnp.float64)
    w = jax.random.normal(kw, (kernel, kernel, 2, 5), jnp.float64)

    def reference(x, w):
        return lax.conv_general_dilated(
            x, w, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    y, pullback = jax.vjp(lambda x, w: conv2d(x, w, layer), x, w)
    y_ref, pullback_ref = jax.vjp(reference, x, w)
    g = jax.random.normal(kg, y.shape, jnp.float64)
    np.testing.assert_array_equal(y, y_ref)
    for ours, theirs in zip(pullback(g), pullback_ref(g), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("kind", "reduce"), [("max", np.max), ("avg", np.mean)])
def test_pooling_matches_numpy(kind, reduce):
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype(np.float32)
    y = np.asarray(pool2d(jnp.asarray(x), Pool(kind, 3, 2)))  # type: ignore[arg-type]
    expected = np.stack(
        [
            np.stack([reduce(x[:, i : i + 3, j : j + 3], axis=(1, 2)) for j in (0, 2)], axis=1)
            for i in (0, 2, 4)
        ],
        axis=1,
    )
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize(("variant", "expected"), [("baseline", 44_426), ("bn", 44_652)])
def test_convnet_parameter_counts(variant, expected):
    spec = VARIANTS[variant].model_spec(CONVNET)
    params, state = init_params(spec, jax.random.key(0))
    assert count_params(spec) == expected
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == expected
    assert [s.running_mean.shape for s in state] == (
        [(6,), (16,), (120,), (84,)] if spec.has_bn else []
    )


def _keras_convnet(spec: ModelSpec):
    import keras

    layers: list = [keras.Input((28, 28, 1))]
    bias = not spec.has_bn or spec.bias_before_bn

    def normalized(layer):
        layers.append(layer)
        if spec.has_bn:
            layers.append(keras.layers.BatchNormalization(epsilon=spec.eps))
        layers.append(keras.layers.Activation(spec.activation))

    for item in spec.conv:
        if isinstance(item, Conv):
            normalized(
                keras.layers.Conv2D(
                    item.features,
                    item.kernel,
                    item.stride,
                    padding=item.padding.lower(),
                    use_bias=bias,
                )
            )
        else:
            layers.append(keras.layers.MaxPooling2D(item.window, item.stride))
    layers.append(keras.layers.Flatten())
    for units in spec.hidden:
        normalized(keras.layers.Dense(units, use_bias=bias))
    layers.append(keras.layers.Dense(spec.num_classes))
    return keras.Sequential(layers)


@pytest.mark.parametrize("variant", ["baseline", "bn"])
def test_convnet_summary_matches_keras(variant):
    """Per layer: the output shape, every weight and the trainable ones of the same network
    built in Keras 3 (BN's moving statistics are its non-trainable weights)."""
    spec = VARIANTS[variant].model_spec(CONVNET)
    model = _keras_convnet(spec)
    keras_rows = [
        (str(tuple(layer.output.shape)), layer.count_params(), layer.count_params())
        if not layer.non_trainable_weights
        else (
            str(tuple(layer.output.shape)),
            layer.count_params(),
            sum(int(np.prod(w.shape)) for w in layer.trainable_weights),
        )
        for layer in model.layers
    ]
    ours = [(row.shape, row.params, row.trainable) for row in summary_rows(spec)]
    assert ours == keras_rows
    assert [row.name for row in summary_rows(spec)][:5] == (
        ["conv2d_1", "batch_norm_1", "relu_1", "max_pooling2d_1", "conv2d_2"]
        if spec.has_bn
        else ["conv2d_1", "relu_1", "max_pooling2d_1", "conv2d_2", "relu_2"]
    )


def _torch_convnet(spec: ModelSpec, params, momentum: float):
    """The same network in torch, float64, its weights copied from ``params``; flattening in
    NHWC order as the engine does (torch's own is NCHW)."""
    import torch
    from torch import nn

    modules: list[nn.Module] = []
    weights = iter(params)

    def weighted(make, features, bn, to_torch):
        p = next(weights)
        layer = make("b" in p)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(to_torch(np.asarray(p["w"], np.float64))))
            if "b" in p:
                layer.bias.copy_(torch.from_numpy(np.array(p["b"], np.float64)))
        modules.append(layer)
        if bn is None:
            return
        if spec.has_bn:
            norm = bn(features, eps=spec.eps, momentum=momentum, dtype=torch.float64)
            with torch.no_grad():
                norm.weight.copy_(torch.from_numpy(np.array(p["gamma"], np.float64)))
                norm.bias.copy_(torch.from_numpy(np.array(p["beta"], np.float64)))
            modules.append(norm)
        modules.append(nn.ReLU())

    class NhwcFlatten(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    channels, flat = 1, spec.flat_features
    for item in spec.conv:
        if isinstance(item, Conv):
            c_in, c_out, k, stride = channels, item.features, item.kernel, item.stride

            def conv(bias, c_in=c_in, c_out=c_out, k=k, stride=stride):
                return nn.Conv2d(c_in, c_out, k, stride, bias=bias, dtype=torch.float64)

            # HWIO -> torch's OIHW
            weighted(conv, c_out, nn.BatchNorm2d, lambda w: w.transpose(3, 2, 0, 1).copy())
            channels = item.features
        else:
            modules.append(nn.MaxPool2d(item.window, item.stride))
    modules.append(NhwcFlatten())
    sizes = (flat, *spec.hidden, spec.num_classes)
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        last = layer == len(spec.hidden)

        def linear(bias, fan_in=fan_in, fan_out=fan_out):
            return nn.Linear(fan_in, fan_out, bias=bias, dtype=torch.float64)

        weighted(linear, fan_out, None if last else nn.BatchNorm1d, lambda w: w.T.copy())
    return nn.Sequential(*modules)


def test_convnet_with_bn_matches_torch_forward_and_backward(x64):
    """One training step's logits, loss gradients (every weight, gamma, beta) and BN running
    statistics of the convnet preset's BN network (conv -> BatchNorm2d -> ReLU -> max pool, twice,
    then Dense -> BatchNorm1d -> ReLU, twice, then the logits), and its inference logits with
    those statistics, against the same network in torch, all in float64."""
    import torch

    from bnlab.engine.model import cross_entropy

    spec = VARIANTS["bn"].model_spec(CONVNET)
    params, state = init_params(spec, jax.random.key(3))
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    state = jax.tree.map(lambda a: a.astype(jnp.float64), state)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(12, 784))
    labels = rng.integers(0, 10, size=12)
    # gamma and beta away from 1 and 0 so that they matter
    params = tuple(
        {
            **p,
            **({"gamma": p["gamma"] * 1.5 + 0.1, "beta": p["beta"] + 0.2} if "gamma" in p else {}),
        }
        for p in params
    )

    def loss(params):
        out = forward(spec, params, state, jnp.asarray(x), "train")
        return cross_entropy(out.logits, jnp.asarray(labels)), out

    (value, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
    net = _torch_convnet(spec, params, spec.momentum)
    net.train()
    xt = torch.from_numpy(x.reshape(12, 28, 28, 1).transpose(0, 3, 1, 2).copy())
    logits = net(xt)
    torch_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
    torch_loss.backward()
    np.testing.assert_allclose(out.logits, logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(value, torch_loss.item(), rtol=1e-12)

    weighted = [
        m
        for m in net
        if hasattr(m, "weight") and not isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    norms = [m for m in net if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for g, layer in zip(grads, weighted, strict=True):
        w = layer.weight.grad.numpy()
        expected = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T
        np.testing.assert_allclose(g["w"], expected, rtol=1e-8, atol=1e-12)
    for g, norm in zip(grads, norms, strict=False):
        np.testing.assert_allclose(g["gamma"], norm.weight.grad.numpy(), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(g["beta"], norm.bias.grad.numpy(), rtol=1e-8, atol=1e-12)
    for s, norm in zip(out.state, norms, strict=True):
        np.testing.assert_allclose(s.running_mean, norm.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(s.running_var, norm.running_var.numpy(), rtol=1e-12)

    net.eval()
    with torch.no_grad():
        expected = net(xt).numpy()
    ours = forward(spec, params, out.state, jnp.asarray(x), "running").logits
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)


def test_figure1_follows_a_channel_of_the_last_convolution():
    """Figure 1's tap is the last convolution's (8x8 positions x 16 channels in LeNet-5); its
    per-unit values are every position of every image."""
    from bnlab.engine.evaluate import per_unit

    spec = VARIANTS["bn"].model_spec(CONVNET)
    assert spec.figure1_layer == 1
    params, state = init_params(spec, jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(5, 784)), jnp.float32)
    tap = forward(spec, params, state, x, "train").taps[spec.figure1_layer]
    assert tap["act_input"].shape == (5, 8, 8, 16)
    assert per_unit(tap["act_input"]).shape == (320, 16)
    np.testing.assert_array_equal(
        per_unit(tap["act_input"])[:, 3], tap["act_input"][..., 3].ravel()
    )


def test_without_convolutions_the_first_dense_layer_reads_the_input():
    spec = VARIANTS["bn"].model_spec(CONVNET.replace(conv=()))
    assert spec.conv == () and spec.flat_features == 784
    params, _ = init_params(spec, jax.random.key(0))
    assert [p["w"].shape for p in params] == [(784, 120), (120, 84), (84, 10)]


@pytest.mark.parametrize("chunk", [300, 10**9])
def test_convnet_evaluation_in_chunks_agrees_with_the_whole_test_set(monkeypatch, chunk):
    """The evaluation (test and training accuracy, loss, percentiles, histograms) of 1,000
    images at a time agrees with chunks of 300 (the last one smaller) and with the whole set at
    once, within float32 rounding (a convolution's sums round by batch size: measured 3e-8)."""
    from bnlab.data import load_mnist
    from bnlab.engine import evaluate, to_device

    m = load_mnist()
    data = to_device(m.x_train, m.y_train, m.x_test, m.y_test)
    spec = VARIANTS["bn"].model_spec(CONVNET)
    params, state = init_params(spec, jax.random.key(0))

    def run():
        return jax.jit(
            lambda: evaluate(
                spec, CONVNET.train_spec(), params, state, jnp.int32(3), data, {}, jax.random.key(0)
            )
        )()

    default = run()
    # the module (bnlab.engine's own `evaluate` is the function)
    monkeypatch.setattr(importlib.import_module("bnlab.engine.evaluate"), "CONV_CHUNK", chunk)
    other = run()
    for a, b in zip(jax.tree.leaves(default), jax.tree.leaves(other), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
