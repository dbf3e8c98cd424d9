"""The analyses' measurements as the engine's ``Measure``s: ``measure(spec, params, bn_state, data,
train) -> 1-D array``, run (jitted, vmapped over seeds) at every evaluation point.

ICS and the landscape are measured on a fixed probe batch: the first ``batch_size`` training
images, in training mode (BN with that batch's statistics, as the gradient of a step sees it).
Definition 2.1 uses the step's own batch (x^t, y^t); a fixed batch makes the curves comparable
from one evaluation to the next and between the networks. The optimiser step of ICS is the run's
optimiser from a fresh state, which is the real step for plain SGD without momentum (the analyses'
setting) and only an approximation for stateful optimisers.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from bnlab.engine import PERCENTILES, batch_loss, forward, make_optimizer, prepare
from bnlab.engine.data import DeviceData
from bnlab.engine.evaluate import Measure
from bnlab.engine.model import ModelSpec, Params, State
from bnlab.engine.train import TrainSpec
from bnlab.experiments.analyses.ics import ics_for_optax_step
from bnlab.experiments.analyses.landscape import loss_landscape

# the order of the numbers a landscape measure returns (its metrics.json keys)
LANDSCAPE_KEYS = (
    "loss_min",
    "loss_max",
    "grad_change_min",
    "grad_change_max",
    "beta_smoothness",
    "loss_at_x",
    "grad_norm",
)
# the order of the three per-layer blocks an ICS measure returns
ICS_KEYS = ("distance", "cosine", "grad_norm")


def probe_batch(data: DeviceData, train: TrainSpec) -> tuple[jax.Array, jax.Array]:
    """The first ``batch_size`` training images and labels, as network inputs."""
    b = train.batch_size
    return prepare(data.x_train[:b], train.inputs), data.y_train[:b]


def _loss(spec: ModelSpec, bn_state: State):
    def loss(params: Params, batch) -> jax.Array:
        return batch_loss(spec, params, bn_state, *batch)[0]

    return loss


def ics_measure() -> Measure:
    """Per Dense layer (input to output): ||G - G'||_2, cos(G, G') and ||G||_2 of its weight
    matrix, concatenated in that order (3 x number of layers values)."""

    def measure(spec, params, bn_state, data, train):
        opt = make_optimizer(train.optimizer)
        ics = ics_for_optax_step(
            _loss(spec, bn_state),
            opt,
            params,
            opt.init(params),
            probe_batch(data, train),
            layers=list(range(len(params))),
            part="w",
        )
        return jnp.concatenate([ics.distance, ics.cosine, ics.grad_norm])

    return measure


def landscape_measure(multipliers: Sequence[float]) -> Measure:
    """Fig. 4's numbers along the gradient with step sizes ``multipliers`` x the learning rate,
    in the order of LANDSCAPE_KEYS."""

    def measure(spec, params, bn_state, data, train):
        etas = train.optimizer.lr * jnp.asarray(multipliers, jnp.float32)
        out = loss_landscape(_loss(spec, bn_state), params, probe_batch(data, train), etas)
        return jnp.stack([getattr(out, k) for k in LANDSCAPE_KEYS])

    return measure


def _noise_key(params: Params) -> jax.Array:
    """A key that changes whenever the parameters do, so each evaluation draws the noise afresh
    (the engine passes a measure no step number) and the same run always draws the same."""
    bits = jax.lax.bitcast_convert_type(jnp.sum(params[-1]["w"]), jnp.uint32)
    return jax.random.fold_in(jax.random.key(0), bits)


def training_percentiles_measure(batches: int) -> Measure:
    """The {15, 50, 85}th percentiles of every last-layer unit's activation input in training
    mode: ``batches`` training batches, each normalized with its own statistics, and the noise of
    a noisy network drawn as in a training step. 3 x units values, percentile-major."""

    def measure(spec, params, bn_state, data, train):
        b = train.batch_size
        xs = data.x_train[: batches * b].reshape(batches, b, -1)
        key = _noise_key(params)

        def acts(x):
            out = forward(spec, params, bn_state, prepare(x, train.inputs), "train", key=key)
            return out.taps[-1]["act_input"]

        a = jax.vmap(acts)(xs).reshape(batches * b, -1)
        return jnp.percentile(a, jnp.asarray(PERCENTILES, jnp.float32), axis=0).reshape(-1)

    return measure
