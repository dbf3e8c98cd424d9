"""One training run as pure functions: its state, one step, and a segment of steps as a lax.scan.

The runner vmaps these over the seeds of a group and jits them; nothing here runs Python per step.
A run whose loss becomes NaN/inf or exceeds DIVERGENCE_LOSS records that step in ``diverged_at``
and stops adding to its training loss; its parameters go on (as NaN, or huge: freezing them with a
select costs ~10% of a step, and everything measured after ``diverged_at`` is discarded anyway),
while the other runs of the same program finish undisturbed: vmapped runs share no arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from bnlab.engine.data import DeviceData, InputSpec, prepare
from bnlab.engine.model import ModelSpec, Params, State, cross_entropy, forward
from bnlab.engine.optim import OptimizerSpec, make_optimizer
from bnlab.errors import ConfigError


@dataclass(frozen=True)
class TrainSpec:
    """What is shared by every run of an experiment: optimiser, batching, length, measurements."""

    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    inputs: InputSpec = field(default_factory=InputSpec)
    batch_size: int = 60
    steps: int = 50_000
    eval_every: int = 1000
    # test images whose hidden-layer values go into the TensorBoard histograms (x 100 units)
    hist_examples: int = 20

    def __post_init__(self) -> None:
        for name in ("batch_size", "steps", "eval_every", "hist_examples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (2 if name == "batch_size" else 1):
                least = 2 if name == "batch_size" else 1
                raise ConfigError(
                    f"TrainSpec.{name}: expected an integer >= {least}, got {value!r}"
                )


class RunKeys(NamedTuple):
    """A run's randomness, all derived from its seed: init, data order, per-step noise, and the
    measures' (folded with the evaluation step: each evaluation draws afresh, reruns alike)."""

    init: jax.Array
    data: jax.Array
    noise: jax.Array
    measure: jax.Array


# folded into the seed's key for the measures' stream (apart from the three split keys)
MEASURE_STREAM = 0x6D656173


# A mean batch loss above this is an exploding network, not a slow one: the cross-entropy of a
# uniform guess over 10 classes is ln 10 = 2.3, and a loss of 1,000 needs the right class's logit
# about 1,000 below another's on average. Such a run is marked diverged as if its loss were inf.
DIVERGENCE_LOSS = 1e3


def run_keys(seed: int) -> RunKeys:
    root = jax.random.key(seed)
    return RunKeys(*jax.random.split(root, 3), jax.random.fold_in(root, MEASURE_STREAM))


class RunState(NamedTuple):
    params: Params
    bn_state: State
    opt_state: optax.OptState
    # sum and count of the finite training losses since the last evaluation
    loss_sum: jax.Array
    loss_count: jax.Array
    # step (1-based) at which the loss first became non-finite; -1 while it has not
    diverged_at: jax.Array


def init_run(params: Params, bn_state: State, opt: optax.GradientTransformation) -> RunState:
    return RunState(
        params,
        bn_state,
        opt.init(params),
        jnp.zeros((), jnp.float32),
        jnp.zeros((), jnp.int32),
        jnp.full((), -1, jnp.int32),
    )


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """Full batches per pass over the data; a last partial batch is dropped (none for 60000/60)."""
    return num_train // batch_size


def batch_loss(
    spec: ModelSpec,
    params: Params,
    bn_state: State,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array | None = None,
) -> tuple[jax.Array, State]:
    """Training-mode loss on one batch and the BN state it leaves (for jax.grad with has_aux)."""
    out = forward(spec, params, bn_state, x, "train", key=key)
    return cross_entropy(out.logits, y), out.state


def make_segment(spec: ModelSpec, train: TrainSpec, per_run: tuple[str, ...] = ()):
    """``segment(run, keys, start, data, n) -> run``: ``n`` steps from global step ``start``
    (0-based), all within one epoch, whose data order is a permutation drawn from the run's data
    key folded with the epoch number. ``data`` is an argument, not a closure, so the images are
    not baked into the compiled program as constants. ``per_run``: optimiser fields held in the
    optimiser state, one value per run (:func:`bnlab.engine.optim.make_optimizer`)."""
    opt = make_optimizer(train.optimizer, per_run)
    b = train.batch_size

    def step(data: DeviceData, perm, noise_key, run: RunState, t):
        spe = steps_per_epoch(data.num_train, b)
        idx = lax.dynamic_slice_in_dim(perm, (t % spe) * b, b)
        x = prepare(data.x_train[idx], train.inputs)
        y = data.y_train[idx]
        key = jax.random.fold_in(noise_key, t)
        (loss, bn_state), grads = jax.value_and_grad(
            lambda p: batch_loss(spec, p, run.bn_state, x, y, key=key),
            has_aux=True,
        )(run.params)
        updates, opt_state = opt.update(grads, run.opt_state, run.params)
        params = optax.apply_updates(run.params, updates)
        finite = jnp.isfinite(loss) & (loss <= DIVERGENCE_LOSS)
        live = run.diverged_at < 0
        ok = finite & live
        return RunState(
            params,
            bn_state,
            opt_state,
            run.loss_sum + jnp.where(ok, loss, 0.0),
            run.loss_count + ok.astype(jnp.int32),
            jnp.where(live & ~finite, t + 1, run.diverged_at),
        )

    def segment(run: RunState, keys: RunKeys, start: jax.Array, data: DeviceData, n: int):
        spe = steps_per_epoch(data.num_train, b)
        perm = jax.random.permutation(jax.random.fold_in(keys.data, start // spe), data.num_train)
        steps = start + jnp.arange(n, dtype=jnp.int32)
        return lax.scan(lambda r, t: (step(data, perm, keys.noise, r, t), None), run, steps)[0]

    return segment, opt


def reset_interval(run: RunState) -> tuple[RunState, jax.Array]:
    """The mean training loss of the interval just ended (NaN if no finite step) and a run whose
    interval sums start again from zero."""
    mean = run.loss_sum / run.loss_count
    return run._replace(
        loss_sum=jnp.zeros_like(run.loss_sum), loss_count=jnp.zeros_like(run.loss_count)
    ), mean
