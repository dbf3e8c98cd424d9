"""The learning-rate table: steps to a target accuracy, best accuracy, diverged runs."""

from __future__ import annotations

import pytest

from bnlab.experiments.network import Network
from bnlab.experiments.santurkar.lr_table import (
    best_accuracy,
    default_target,
    describe_steps,
    markdown_table,
    steps_to_target,
    sweep_rows,
)

STEPS = [100, 200, 300, 400]


def run(variant, seed, acc, diverged_at=None):
    return {
        "variant": variant,
        "seed": seed,
        "steps": STEPS,
        "test_accuracy": acc,
        "diverged_at": diverged_at,
    }


METRICS = {
    "runs": [
        run("baseline-x1", 0, [0.5, 0.8, 0.9, 0.92]),
        run("baseline-x1", 1, [0.6, 0.85, 0.91, 0.90]),
        run("baseline-x5", 0, [0.7, None, None, None], diverged_at=150),
        run("baseline-x5", 1, [0.1, None, None, None], diverged_at=120),
        run("bn-x1", 0, [0.92, 0.95, 0.96, 0.96]),
        run("bn-x1", 1, [0.90, 0.93, 0.97, 0.97]),
        run("bn-x5", 0, [0.95, 0.97, 0.98, 0.98]),
        run("bn-x5", 1, [0.8, None, None, None], diverged_at=180),
    ]
}
NETWORKS = [
    Network("none", lr_multiplier=1.0),
    Network("none", lr_multiplier=5.0),
    Network("bn", lr_multiplier=1.0),
    Network("bn", lr_multiplier=5.0),
]
BASE_LR = 0.5


@pytest.mark.parametrize(
    "acc, target, expected",
    [
        ([0.5, 0.8, 0.9, 0.92], 0.9, 300),
        ([0.5, 0.8, 0.9, 0.92], 0.5, 100),
        ([0.5, 0.8, 0.9, 0.92], 0.93, None),
        ([0.5, None, float("nan"), 0.95], 0.9, 400),
    ],
)
def test_steps_to_target(acc, target, expected):
    assert steps_to_target(STEPS, acc, target) == expected


@pytest.mark.parametrize(
    "acc, expected", [([0.5, 0.9, 0.8], 0.9), ([0.3, None, None], 0.3), ([None, None], None)]
)
def test_best_accuracy(acc, expected):
    assert best_accuracy(acc) == expected


def test_default_target_is_what_every_reference_seed_reaches():
    assert default_target(METRICS, "baseline-x1") == 0.91


def test_rows_per_variant_and_seed():
    rows = sweep_rows(METRICS, NETWORKS, BASE_LR, 0.91)
    assert [r.network.variant for r in rows] == ["baseline-x1", "baseline-x5", "bn-x1", "bn-x5"]
    assert [r.network for r in rows] == NETWORKS
    assert [(r.name, r.multiplier, r.lr) for r in rows] == [
        ("without BN", 1.0, 0.5),
        ("without BN", 5.0, 2.5),
        ("with BN", 1.0, 0.5),
        ("with BN", 5.0, 2.5),
    ]
    assert [s.steps_to_target for s in rows[0].seeds] == [400, 300]
    assert [s.steps_to_target for s in rows[2].seeds] == [100, 200]
    assert [s.best_accuracy for s in rows[3].seeds] == [0.98, 0.8]
    assert [s.diverged_at for s in rows[1].seeds] == [150, 120]


def test_table_shows_divergence_as_such():
    table = markdown_table(sweep_rows(METRICS, NETWORKS, BASE_LR, 0.91), 0.91)
    lines = table.splitlines()
    assert lines[0].startswith("| network | lr multiplier | lr | steps to 0.9100 test accuracy")
    # the networks are named by their labels without the multiplier (the column beside it)
    assert lines[2] == "| without BN | x1 | 0.5 | 350 ± 71 | 0.9150 ± 0.0071 | no |"
    assert lines[3] == (
        "| without BN | x5 | 2.5 | diverged | diverged "
        "| diverged: seed 0 at step 150, seed 1 at step 120 |"
    )
    assert lines[4] == "| with BN | x1 | 0.5 | 150 ± 71 | 0.9650 ± 0.0071 | no |"
    assert lines[5] == (
        "| with BN | x5 | 2.5 | 100 (1 of 2 seeds) | 0.9800 (1 of 2 seeds) "
        "| diverged: seed 1 at step 180 |"
    )


def test_steps_say_not_reached_when_no_seed_reaches_the_target():
    rows = sweep_rows(METRICS, NETWORKS, BASE_LR, 0.99)
    assert [describe_steps(r) for r in rows] == [
        "not reached",
        "diverged",
        "not reached",
        "not reached",
    ]
