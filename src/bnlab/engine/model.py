"""A multilayer perceptron with optional Batch Normalization, as pure functions over a spec.

``forward`` returns the logits, the new BN state and the *taps*: every hidden layer's BN input and
activation input. Measurements (percentiles, histograms, and the analyses built on this engine)
read the taps instead of re-implementing the network. What the normalization layer computes (BN or
l_p normalization) and the noise after it (noisy BN) are fields of the spec.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp

from bnlab.core import (
    DEFAULT_BACKWARD,
    Backward,
    BatchNormState,
    batch_norm_eval,
    batch_norm_train,
    batch_stats,
    init_state,
    normalize,
)
from bnlab.core.lp_norm import lp_norm_eval, lp_norm_train, lp_normalize, lp_stats
from bnlab.core.noise import NoiseConfig, add_noise
from bnlab.errors import ConfigError, check_choice

BnPlacement = Literal["none", "before", "after"]
BN_PLACEMENTS: tuple[str, ...] = get_args(BnPlacement)
# what the normalization layer computes: BN (Algorithm 1), or Santurkar et al.'s (Sec. 3.3)
# normalization by the average l_p norm, p = 1, 2, inf
NormKind = Literal["bn", "lp1", "lp2", "lpinf"]
LP_ORDER = {"lp1": 1.0, "lp2": 2.0, "lpinf": math.inf}
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
    """An MLP: Dense -> [BN] -> activation -> [BN] per hidden layer, then a Dense to the logits.

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
        if not self.hidden or any(not isinstance(n, int) or n < 1 for n in self.hidden):
            raise ConfigError(f"ModelSpec.hidden: expected sizes >= 1, got {self.hidden!r}")
        if not 0 < self.eps < math.inf:
            raise ConfigError(f"ModelSpec.eps: expected a finite number > 0, got {self.eps!r}")
        if self.momentum is not None and not 0 <= self.momentum <= 1:
            raise ConfigError(f"ModelSpec.momentum: expected None or [0, 1], got {self.momentum!r}")

    @property
    def has_bn(self) -> bool:
        return self.bn != "none"

    def layer_has_bias(self, layer: int) -> bool:
        """The output layer always has a bias; a hidden one loses it only right in front of BN."""
        return layer == len(self.hidden) or self.bn != "before" or self.bias_before_bn


Params = tuple[dict[str, jax.Array], ...]
State = tuple[BatchNormState, ...]


class Forward(NamedTuple):
    logits: jax.Array
    state: State
    # per hidden layer: {"bn_input": ..., "act_input": ...} (bn_input only with BN)
    taps: tuple[dict[str, jax.Array], ...]


def init_params(spec: ModelSpec, key: jax.Array) -> tuple[Params, State]:
    """Weights and biases (and gamma = 1, beta = 0 per BN layer) and fresh running statistics."""
    sizes = (spec.in_features, *spec.hidden, spec.num_classes)
    keys = jax.random.split(key, len(sizes) - 1)
    params = []
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        if spec.init == "glorot_uniform":
            # Keras GlorotUniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = jax.random.uniform(keys[layer], (fan_in, fan_out), jnp.float32, -limit, limit)
        else:
            w = spec.init_std * jax.random.normal(keys[layer], (fan_in, fan_out), jnp.float32)
        p = {"w": w}
        if spec.layer_has_bias(layer):
            p["b"] = jnp.zeros((fan_out,), jnp.float32)
        if spec.has_bn and layer < len(spec.hidden):
            p["gamma"] = jnp.ones((fan_out,), jnp.float32)
            p["beta"] = jnp.zeros((fan_out,), jnp.float32)
        params.append(p)
    return tuple(params), init_bn_state(spec)


def init_bn_state(spec: ModelSpec) -> State:
    """Fresh running statistics for every BN layer (an empty tuple without BN)."""
    return tuple(init_state(n) for n in spec.hidden) if spec.has_bn else ()


def _bn(
    spec: ModelSpec, h: jax.Array, p: dict, s: BatchNormState, mode: NormMode
) -> tuple[jax.Array, Any]:
    """Algorithm 1 in training, the stored statistics or the batch's own at evaluation (the same
    three for l_p normalization)."""
    if spec.norm != "bn":
        return _lp(spec, h, p, s, mode)
    if mode == "train":
        return batch_norm_train(
            h,
            p["gamma"],
            p["beta"],
            s,
            momentum=spec.momentum,
            eps=spec.eps,
            backward=spec.backward,
        )
    if mode == "running":
        return batch_norm_eval(h, p["gamma"], p["beta"], s, eps=spec.eps), s
    # "batch": the batch's own statistics, returned in place of the state. Built from the core's
    # parts because the notebook's evaluation with batch 1 is wanted here (every output is then
    # beta), which batch_norm_eval refuses as PyTorch does.
    moments = batch_stats(h)
    return normalize(h, moments.mean, moments.var, p["gamma"], p["beta"], spec.eps), moments


def _lp(
    spec: ModelSpec, h: jax.Array, p: dict, s: BatchNormState, mode: NormMode
) -> tuple[jax.Array, Any]:
    order = LP_ORDER[spec.norm]
    if mode == "train":
        return lp_norm_train(
            h, p["gamma"], p["beta"], s, p=order, momentum=spec.momentum, eps=spec.eps
        )
    if mode == "running":
        return lp_norm_eval(h, p["gamma"], p["beta"], s, p=order, eps=spec.eps), s
    mean, moment = lp_stats(h, order)
    return lp_normalize(h, mean, moment, p["gamma"], p["beta"], order, spec.eps), (mean, moment)


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
    h = x
    for layer, p in enumerate(params):
        h = h @ p["w"]
        if "b" in p:
            h = h + p["b"]
        if layer == len(params) - 1:
            break
        tap = {}

        def norm(h, layer=layer, p=p, tap=tap):
            tap["bn_input"] = h
            y, s = _bn(spec, h, p, state[layer], mode)
            new_state.append(s)
            return y

        def noisy(h, layer=layer):
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
    return Forward(h, tuple(new_state), tuple(taps))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy from logits (Keras's SparseCategoricalCrossentropy(True))."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1))


class SummaryRow(NamedTuple):
    """One layer as ``keras.Model.summary()`` lists it: its weights (``params``) counted as Keras
    counts them, BN's moving mean and variance included; ``trainable``: those a step updates."""

    name: str
    shape: str
    params: int
    trainable: int


def summary_rows(spec: ModelSpec) -> list[SummaryRow]:
    """The Keras summary of ``spec``'s network, layer by layer (Dense, BN, activation)."""
    rows: list[SummaryRow] = []
    sizes = (spec.in_features, *spec.hidden, spec.num_classes)
    for layer in range(len(sizes) - 1):
        fan_in, fan_out = sizes[layer], sizes[layer + 1]
        shape = f"(None, {fan_out})"
        dense = fan_in * fan_out + (fan_out if spec.layer_has_bias(layer) else 0)
        rows.append(SummaryRow(f"dense_{layer + 1}", shape, dense, dense))
        if layer == len(spec.hidden):
            break
        # gamma and beta, trained; the moving mean and variance, Keras's non-trainable weights
        bn_row = SummaryRow(f"batch_norm_{layer + 1}", shape, 4 * fan_out, 2 * fan_out)
        if spec.bn == "before":
            rows.append(bn_row)
        rows.append(SummaryRow(f"{spec.activation}_{layer + 1}", shape, 0, 0))
        if spec.bn == "after":
            rows.append(bn_row)
    return rows


def count_params(spec: ModelSpec) -> int:
    """The trainable parameters (what ``init_params`` returns; BN's running statistics are
    state, kept apart)."""
    return sum(row.trainable for row in summary_rows(spec))
