"""A network with optional Batch Normalization, as pure functions over a spec: convolutions and
pooling (NHWC, :mod:`bnlab.engine.conv`), then dense hidden layers, then the logits.

``forward`` returns the logits, the new BN state and the *taps*: every hidden layer's (a
convolution's or a Dense layer's) BN input and activation input. Measurements (percentiles,
histograms, and the analyses built on this engine) read the taps instead of re-implementing the
network. What the normalization layer computes (BN or l_p normalization) and the noise after it
(noisy BN) are fields of the spec.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp

from bnlab.core import (
    DEFAULT_BACKWARD,
    Backward,
    BatchNormState,
    init_state,
)
from bnlab.core.noise import NoiseConfig, add_noise
from bnlab.engine.conv import Conv, Layer, Pool, conv2d, output_shapes, pool2d
from bnlab.engine.normalization import normalization
from bnlab.errors import ConfigError, check_choice

BnPlacement = Literal["none", "before", "after"]
BN_PLACEMENTS: tuple[str, ...] = get_args(BnPlacement)
# what the normalization layer computes: BN (Algorithm 1), or Santurkar et al.'s (Sec. 3.3)
# normalization by the average l_p norm, p = 1, 2, inf
NormKind = Literal["bn", "lp1", "lp2", "lpinf"]
InitScheme = Literal["glorot_uniform", "gaussian"]
INIT_SCHEMES: tuple[str, ...] = get_args(InitScheme)
# "running": the moving averages (or population statistics put in their place); "batch": the
# statistics of the batch being evaluated (the notebook's evaluation); the state returned then holds
# each layer's batch statistics instead of running statistics (Algorithm 2 averages them).
NormMode = Literal["train", "running", "batch"]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
}


@dataclass(frozen=True)
class ModelSpec:
    """``conv`` (convolutions and pooling) on the input seen as an ``image_shape`` image, then the
    ``hidden`` Dense layers, then a Dense to the logits; every convolution and hidden Dense layer
    is followed by [BN] -> activation -> [BN] (BN per channel after a convolution).

    ``bn``: "none", "before" the activation (the paper's z = g(BN(Wu))) or "after" it.
    ``bias_before_bn``: keep the Dense bias in front of BN (the notebook) or drop it (the paper:
    "its effect will be canceled by the subsequent mean subtraction").
    ``init``: "glorot_uniform" (Keras's Dense default, zero biases) or "gaussian" N(0, init_std^2).
    ``momentum`` follows PyTorch's convention (weight of the newest batch in the running stats).
    ``norm``: what the normalization layer computes, "bn" or l_p normalization "lp1"/"lp2"/"lpinf"
    (:mod:`bnlab.core.lp_norm`), with the same gamma, beta and running statistics.
    ``noise``: Santurkar et al.'s noisy BN (:mod:`bnlab.core.noise`): in training, every value
    leaving the normalization layer is scaled and shifted by noise drawn per layer and step;
    without normalization the noise goes where BN would be, in front of the activation.
    ``backward`` chooses BN's gradient in bnlab.core; both give the same values.
    """

    in_features: int = 784
    hidden: tuple[int, ...] = (100, 100, 100)
    conv: tuple[Layer, ...] = ()
    # (height, width, channels) of the input, read in row-major order; used with ``conv`` only
    image_shape: tuple[int, int, int] = (28, 28, 1)
    num_classes: int = 10
    activation: str = "sigmoid"
    bn: BnPlacement = "none"
    bias_before_bn: bool = True
    init: InitScheme = "glorot_uniform"
    init_std: float = 0.01
    eps: float = 1e-5
    momentum: float | None = 0.1
    norm: NormKind = "bn"
    noise: NoiseConfig | None = None
    # BN's gradient: "paper" (Section 3's chain rule as a custom VJP) or "autodiff"
    backward: Backward = DEFAULT_BACKWARD

    def __post_init__(self) -> None:
        check_choice("ModelSpec.activation", self.activation, tuple(ACTIVATIONS))
        check_choice("ModelSpec.bn", self.bn, BN_PLACEMENTS)
        check_choice("ModelSpec.norm", self.norm, tuple(get_args(NormKind)))
        check_choice("ModelSpec.init", self.init, INIT_SCHEMES)
        if any(not isinstance(n, int) or n < 1 for n in self.hidden) or not self.widths:
            raise ConfigError(f"ModelSpec.hidden: expected sizes >= 1, got {self.hidden!r}")
        if self.conv:
            h, w, c = self.image_shape
            if h * w * c != self.in_features:
                raise ConfigError(
                    f"ModelSpec.image_shape: expected {self.in_features} values in all, got "
                    f"{self.image_shape!r}"
                )
            output_shapes(self.image_shape, self.conv, "ModelSpec.conv")
        if not 0 < self.eps < math.inf:
            raise ConfigError(f"ModelSpec.eps: expected a finite number > 0, got {self.eps!r}")
        if self.momentum is not None and not 0 <= self.momentum <= 1:
            raise ConfigError(f"ModelSpec.momentum: expected None or [0, 1], got {self.momentum!r}")

    @property
    def has_bn(self) -> bool:
        return self.bn != "none"

    @property
    def convs(self) -> tuple[Conv, ...]:
        return tuple(layer for layer in self.conv if isinstance(layer, Conv))

    @property
    def widths(self) -> tuple[int, ...]:
        """Every hidden layer's units (a convolution's: its channels), in order: one tap, and
        with BN one BN layer, each."""
        return tuple(c.features for c in self.convs) + self.hidden

    @property
    def flat_features(self) -> int:
        """What the first Dense layer receives: the last convolution's or pooling's output,
        flattened, or the input."""
        if not self.conv:
            return self.in_features
        h, w, c = output_shapes(self.image_shape, self.conv)[-1]
        return h * w * c

    @property
    def figure1_layer(self) -> int:
        """The hidden layer (an index into ``Forward.taps``) that Figure 1 follows: the last
        convolution when there is one (a channel of it), else the last hidden Dense layer."""
        return len(self.convs) - 1 if self.convs else len(self.widths) - 1

    def layer_has_bias(self, layer: int) -> bool:
        """The output layer always has a bias; a hidden one loses it only right in front of BN."""
        return layer == len(self.widths) or self.bn != "before" or self.bias_before_bn


Params = tuple[dict[str, jax.Array], ...]
State = tuple[BatchNormState, ...]


class Forward(NamedTuple):
    logits: jax.Array
    state: State
    # per hidden layer: {"bn_input": ..., "act_input": ...} (bn_input only with BN)
    taps: tuple[dict[str, jax.Array], ...]


def kernel_shapes(spec: ModelSpec) -> list[tuple[int, ...]]:
    """Every layer's kernel: (kh, kw, in channels, out channels) for a convolution (Keras's HWIO),
    (fan_in, fan_out) for a Dense layer."""
    shapes: list[tuple[int, ...]] = []
    channels = spec.image_shape[2]
    for c in spec.convs:
        shapes.append((c.kernel, c.kernel, channels, c.features))
        channels = c.features
    sizes = (spec.flat_features, *spec.hidden, spec.num_classes)
    return shapes + list(itertools.pairwise(sizes))


def init_params(spec: ModelSpec, key: jax.Array) -> tuple[Params, State]:
    """Weights and biases (and gamma = 1, beta = 0 per BN layer) and fresh running statistics."""
    shapes = kernel_shapes(spec)
    keys = jax.random.split(key, len(shapes))
    params = []
    for layer, shape in enumerate(shapes):
        fan_out = shape[-1]
        if spec.init == "glorot_uniform":
            # Keras GlorotUniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)), a
            # convolution's fans counting its receptive field: kh * kw * channels
            receptive = math.prod(shape[:-2])
            limit = math.sqrt(6.0 / (receptive * (shape[-2] + fan_out)))
            w = jax.random.uniform(keys[layer], shape, jnp.float32, -limit, limit)
        else:
            w = spec.init_std * jax.random.normal(keys[layer], shape, jnp.float32)
        p = {"w": w}
        if spec.layer_has_bias(layer):
            p["b"] = jnp.zeros((fan_out,), jnp.float32)
        if spec.has_bn and layer < len(spec.widths):
            p["gamma"] = jnp.ones((fan_out,), jnp.float32)
            p["beta"] = jnp.zeros((fan_out,), jnp.float32)
        params.append(p)
    return tuple(params), init_bn_state(spec)


def init_bn_state(spec: ModelSpec) -> State:
    """Fresh running statistics for every BN layer (an empty tuple without BN)."""
    return tuple(init_state(n) for n in spec.widths) if spec.has_bn else ()


def forward(
    spec: ModelSpec,
    params: Params,
    state: State,
    x: jax.Array,
    mode: NormMode,
    *,
    key: jax.Array | None = None,
) -> Forward:
    """Logits for a batch ``x`` of shape (m, in_features), the new BN state and the taps."""
    act = ACTIVATIONS[spec.activation]
    new_state, taps = [], []

    def hidden(h: jax.Array, layer: int) -> jax.Array:
        """[BN] -> activation -> [BN] after hidden layer ``layer``'s Wu + b."""
        tap = {}

        def norm(h):
            tap["bn_input"] = h
            y, s = normalization(spec, h, params[layer], state[layer], mode)
            new_state.append(s)
            return y

        def noisy(h):
            if spec.noise is None or mode != "train" or key is None:
                return h
            return add_noise(jax.random.fold_in(key, layer), h, spec.noise)

        if spec.bn == "before":
            h = norm(h)
        if spec.bn != "after":
            h = noisy(h)
        tap["act_input"] = h
        h = act(h)
        if spec.bn == "after":
            h = noisy(norm(h))
        taps.append(tap)
        return h

    def bias(h: jax.Array, p: dict) -> jax.Array:
        return h + p["b"] if "b" in p else h

    h, first_dense = x, 0
    if spec.conv:
        h = x.reshape(x.shape[0], *spec.image_shape)
        for item in spec.conv:
            if isinstance(item, Pool):
                h = pool2d(h, item)
                continue
            p = params[first_dense]
            h = hidden(bias(conv2d(h, p["w"], item), p), first_dense)
            first_dense += 1
        h = h.reshape(h.shape[0], -1)
    for layer in range(first_dense, len(params)):
        h = bias(h @ params[layer]["w"], params[layer])
        if layer < len(params) - 1:
            h = hidden(h, layer)
    return Forward(h, tuple(new_state), tuple(taps))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy from logits (Keras's SparseCategoricalCrossentropy(True))."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1))
