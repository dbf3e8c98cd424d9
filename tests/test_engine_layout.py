"""The engine's two training layouts (RunGroup.layout): the option's check, and what they give
for the same runs on XLA:CPU in float32 (bnlab.experiments.sweep.layout relies on it)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import numpy as np
import pytest

from bnlab.data import MNIST, load_mnist
from bnlab.engine import ModelSpec, RunGroup, TrainSpec, train_groups
from bnlab.engine.devices import run_mesh
from bnlab.errors import ConfigError

SMALL_BN = ModelSpec(hidden=(16, 12), bn="before", bias_before_bn=False)
# 3 seeds x 3 learning rates, as a sweep's program holds them (cell-major, seed-minor)
SEEDS = (0, 1, 2) * 3
LRS = tuple(lr for lr in (1e-3, 3e-3, 1e-2) for _ in range(3))


@pytest.fixture(scope="module")
def mnist_small() -> MNIST:
    m = load_mnist()
    return MNIST(
        m.x_train[:600], m.y_train[:600], m.x_test[:300], m.y_test[:300], "first 600", False
    )


@pytest.mark.parametrize("layout", ["vmap", "Sequential", None])
def test_layout_must_be_one_of_the_two(layout):
    with pytest.raises(ConfigError) as info:
        RunGroup("bn", SMALL_BN, (0,), layout=layout)
    assert str(info.value) == (
        f"RunGroup.layout: expected 'vmapped' or 'sequential', got {layout!r}"
    )


def _leaves(results) -> list[np.ndarray]:
    """Every number a run reports: curves, percentiles and final evaluations."""
    return [
        np.asarray(leaf, dtype=float)
        for r in results
        for leaf in jax.tree.leaves((r.curves, r.percentiles, r.finals))
    ]


def _trained(data: MNIST, layout: str, seeds=SEEDS, lrs=LRS):
    train = TrainSpec(steps=30, eval_every=10, batch_size=60, hist_examples=2)
    group = RunGroup("bn", SMALL_BN, seeds, hyper={"lr": lrs}, layout=layout)
    return train_groups([group], train, data, mesh=run_mesh(jax.devices()[:1]))[0]


def test_layouts_agree_to_rounding_and_sequential_runs_do_not_depend_on_their_group(
    mnist_small,
):
    """Not bit-identical. Vmapped, XLA:CPU fuses the per-run reductions (the batch mean of the
    loss, BN's moments) of the runs a device holds, and their float32 rounding depends on how
    many it holds: about one ulp per step. Measured here: at most 1.3e-6 (abs) after 30 steps;
    3e-6 for 9 runs of the 784-100-100-100-10 network after 100 steps (on 2 devices, 5 runs
    each, the two happened to agree bit for bit). The bound is the sweep's one-against-two-
    devices tolerance (tests/test_sweep.py). Sequential, a run is trained unbatched whatever
    its group holds: bit for bit the run trained alone."""
    vmapped, sequential = _trained(mnist_small, "vmapped"), _trained(mnist_small, "sequential")
    assert [(r.seed, r.hyper) for r in vmapped] == [(r.seed, r.hyper) for r in sequential]
    for a, b in zip(_leaves(vmapped), _leaves(sequential), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=5e-6)
    alone = _trained(mnist_small, "sequential", seeds=(2,), lrs=(1e-2,))
    for a, b in zip(_leaves(alone), _leaves(sequential[-1:]), strict=True):
        np.testing.assert_array_equal(a, b)
