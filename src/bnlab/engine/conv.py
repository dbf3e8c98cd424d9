"""Convolutional layers for the engine: their specs (from the config's text), output shapes checked
before anything compiles, and the two operations, NHWC throughout.

A layer is written ``conv:FEATURES:KERNEL[:STRIDE[:same|valid]]`` (a square kernel, stride 1 and
SAME padding by default), ``maxpool:WINDOW[:STRIDE]`` or ``avgpool:WINDOW[:STRIDE]`` (VALID,
stride = window by default, as Keras's MaxPooling2D). BN after a convolution normalizes each
channel over N, H and W: the paper's effective mini-batch m' = m * p * q (Section 3.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from bnlab.errors import ConfigError

Padding = Literal["SAME", "VALID"]
# (height, width, channels)
Shape = tuple[int, int, int]
NHWC = ("NHWC", "HWIO", "NHWC")
GRAMMAR = "conv:FEATURES:KERNEL[:STRIDE[:same|valid]], maxpool:WINDOW[:STRIDE] or avgpool:..."


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution with ``features`` output channels and a ``kernel`` x ``kernel`` kernel."""

    features: int
    kernel: int
    stride: int = 1
    padding: Padding = "SAME"

    def __str__(self) -> str:
        return f"conv:{self.features}:{self.kernel}:{self.stride}:{self.padding.lower()}"


@dataclass(frozen=True)
class Pool:
    """Max or average pooling over ``window`` x ``window``, VALID padding."""

    kind: Literal["max", "avg"]
    window: int
    stride: int

    def __str__(self) -> str:
        return f"{self.kind}pool:{self.window}:{self.stride}"


Layer = Conv | Pool
_INT = r"(-?\d+)"
_CONV = re.compile(rf"conv:{_INT}:{_INT}(?::{_INT}(?::(same|valid))?)?")
_POOL = re.compile(rf"(max|avg)pool:{_INT}(?::{_INT})?")


def parse_layer(text: str, field: str = "--conv") -> Layer:
    """One layer from its text; a ConfigError naming ``field`` for anything else."""
    if not isinstance(text, str):
        raise ConfigError(f"{field}: expected a layer ({GRAMMAR}), got {text!r}")
    spec = text.strip().lower()
    if m := _CONV.fullmatch(spec):
        features, kernel, stride = int(m[1]), int(m[2]), int(m[3] or 1)
        layer: Layer = Conv(features, kernel, stride, (m[4] or "same").upper())  # type: ignore[arg-type]
        sizes = {"features": features, "kernel": kernel, "stride": stride}
    elif m := _POOL.fullmatch(spec):
        window = int(m[2])
        layer = Pool(m[1], window, int(m[3]) if m[3] else window)  # type: ignore[arg-type]
        sizes = {"window": layer.window, "stride": layer.stride}
    else:
        raise ConfigError(f"{field}: expected a layer ({GRAMMAR}), got {text!r}")
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{field}: {text!r}: expected its {name} >= 1, got {value}")
    return layer


def output_shape(layer: Layer, shape: Shape, field: str = "--conv") -> Shape:
    """The layer's output (height, width, channels) for an input of ``shape``; a ConfigError
    naming the layer when its kernel or window does not fit in a VALID input."""
    h, w, c = shape
    if isinstance(layer, Conv):
        size, stride, padding, channels = layer.kernel, layer.stride, layer.padding, layer.features
    else:
        size, stride, padding, channels = layer.window, layer.stride, "VALID", c
    if padding == "SAME":
        # SAME: out = ceil(in / stride), whatever the kernel
        return -(-h // stride), -(-w // stride), channels
    if size > min(h, w):
        what = "kernel" if isinstance(layer, Conv) else "window"
        raise ConfigError(
            f"{field}: {layer}: expected a {what} of at most {min(h, w)} for its "
            f"{h}x{w}x{c} input, got {size}"
        )
    # VALID: out = floor((in - size) / stride) + 1
    return (h - size) // stride + 1, (w - size) // stride + 1, channels


def output_shapes(image: Shape, layers: tuple[Layer, ...], field: str = "--conv") -> list[Shape]:
    """Every layer's output shape, from the image's (height, width, channels)."""
    shapes, shape = [], image
    for layer in layers:
        shape = output_shape(layer, shape, field)
        shapes.append(shape)
    return shapes


def _conv(x: jax.Array, w: jax.Array, stride: int, padding: Padding) -> jax.Array:
    return lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=NHWC)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_vjp(x: jax.Array, w: jax.Array, stride: int, padding: Padding) -> jax.Array:
    return _conv(x, w, stride, padding)


def _conv_fwd(x, w, stride, padding):
    return _conv(x, w, stride, padding), (x, w)


def _conv_bwd(stride, padding, residuals, g):
    x, w = residuals
    kh, kw, c_in, c_out = w.shape
    # dL/dW as one matmul of the input's patches with the output's gradient: XLA:CPU's own
    # kernel-gradient convolution runs ~25x slower inside a while loop (lax.scan) than outside
    # it (measured: 27 ms against 1.1 ms for the 6 -> 16 channel 5x5 layer of `convnet`)
    patches = lax.conv_general_dilated_patches(
        x, (kh, kw), (stride, stride), padding, dimension_numbers=NHWC
    )
    # the patches' last axis is ordered (c_in, kh, kw)
    dw = patches.reshape(-1, c_in * kh * kw).T @ g.reshape(-1, c_out)
    dw = dw.reshape(c_in, kh, kw, c_out).transpose(1, 2, 0, 3)
    if stride != 1:
        _, input_vjp = jax.vjp(lambda x: _conv(x, w, stride, padding), x)
        return _like_input(input_vjp(g)[0], x), dw
    # dL/dx = g * W flipped in space with its channel axes swapped, g padded by k - 1 less the
    # forward padding on each side: the same values as XLA's transposed convolution (measured
    # equal), ~3x faster inside lax.scan for the 6 -> 16 channel layer
    forward_pads = zip((kh, kw), _pads(padding, kh, kw), strict=True)
    pads = [(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in forward_pads]
    flipped = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
    dx = lax.conv_general_dilated(g, flipped, (1, 1), pads, dimension_numbers=NHWC)
    return _like_input(dx, x), dw


def _like_input(dx: jax.Array, x: jax.Array) -> jax.Array:
    """Under shard_map a cotangent varies over the mesh axes its input varies over, no others:
    an input that is the same on every device (the shared images, when a sweep trains its runs
    one after another) gets the sum over them, as autodiff's own transpose does."""
    extra = jax.typeof(dx).manual_axis_type.varying - jax.typeof(x).manual_axis_type.varying
    return lax.psum(dx, tuple(sorted(extra))) if extra else dx


def _pads(padding: Padding, kh: int, kw: int) -> list[tuple[int, int]]:
    """The forward convolution's (low, high) padding per spatial axis, at stride 1."""
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    # SAME at stride 1: k - 1 in all, the smaller half in front (XLA's and TensorFlow's rule)
    return [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in (kh, kw)]


_conv_vjp.defvjp(_conv_fwd, _conv_bwd)


def conv2d(x: jax.Array, w: jax.Array, layer: Conv) -> jax.Array:
    """y = x * W, NHWC input, HWIO kernel (Keras's layout)."""
    return _conv_vjp(x, w, layer.stride, layer.padding)


def pool2d(x: jax.Array, layer: Pool) -> jax.Array:
    """Max or mean of every ``window`` x ``window`` patch, ``stride`` apart (VALID)."""
    window = (1, layer.window, layer.window, 1)
    strides = (1, layer.stride, layer.stride, 1)
    if layer.kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, "VALID")
    total = lax.reduce_window(x, 0.0, lax.add, window, strides, "VALID")
    return total / (layer.window * layer.window)
