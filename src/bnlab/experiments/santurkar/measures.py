"""The analyses' measurements as the engine's ``Measure``s: ``measure(spec, params, bn_state, data,
train, key) -> pytree``, run (jitted, vmapped over seeds) at every evaluation point; each pytree's
leaves become curves in metrics.json under the same keys.

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
from bnlab.measures import ics_for_optax_step, loss_landscape

# what a landscape measure records, from bnlab.measures.Landscape
LANDSCAPE_KEYS = (
    "loss_min",
    "loss_max",
    "grad_change_min",
    "grad_change_max",
    "beta_smoothness",
    "loss_at_x",
    "grad_norm",
)


def probe_batch(data: DeviceData, train: TrainSpec) -> tuple[jax.Array, jax.Array]:
    """The first ``batch_size`` training images and labels, as network inputs."""
    b = train.batch_size
    return prepare(data.x_train[:b], train.inputs), data.y_train[:b]


def _loss(spec: ModelSpec, bn_state: State):
    def loss(params: Params, batch) -> jax.Array:
        return batch_loss(spec, params, bn_state, *batch)[0]

    return loss


def ics_measure() -> Measure:
    """Per Dense layer ("1" = input side): {"distance": ||G - G'||_2, "cosine": cos(G, G'),
    "grad_norm": ||G||_2} of its weight matrix."""

    def measure(spec, params, bn_state, data, train, key):
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
        return {
            name: {str(k + 1): values[k] for k in range(len(params))}
            for name, values in ics._asdict().items()
        }

    return measure


def landscape_measure(multipliers: Sequence[float]) -> Measure:
    """Fig. 4's numbers along the gradient with step sizes ``multipliers`` x the learning rate:
    {name: value} for the names of LANDSCAPE_KEYS."""

    def measure(spec, params, bn_state, data, train, key):
        etas = train.optimizer.lr * jnp.asarray(multipliers, jnp.float32)
        out = loss_landscape(_loss(spec, bn_state), params, probe_batch(data, train), etas)
        return {k: getattr(out, k) for k in LANDSCAPE_KEYS}

    return measure


def training_percentiles_measure(batches: int) -> Measure:
    """The {15, 50, 85}th percentiles of every last-layer unit's activation input in training
    mode: ``batches`` training batches, each normalized with its own statistics, and the noise of
    a noisy network drawn as in a training step (from ``key``). {"15": per unit, ...}."""

    def measure(spec, params, bn_state, data, train, key):
        b = train.batch_size
        xs = data.x_train[: batches * b].reshape(batches, b, -1)

        def acts(x):
            out = forward(spec, params, bn_state, prepare(x, train.inputs), "train", key=key)
            return out.taps[-1]["act_input"]

        a = jax.vmap(acts)(xs).reshape(batches * b, -1)
        q = jnp.percentile(a, jnp.asarray(PERCENTILES, jnp.float32), axis=0)
        return {str(p): q[i] for i, p in enumerate(PERCENTILES)}

    return measure
