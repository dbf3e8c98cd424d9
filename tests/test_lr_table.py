"""The learning-rate table: steps to a target accuracy, best accuracy, diverged runs."""

from __future__ import annotations

import pytest

from bnlab.experiments.analyses.lr_table import (
    best_accuracy,
    default_target,
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
VARIANTS = {
    "baseline-x1": {"network": "baseline", "multiplier": 1, "lr": 0.5},
    "baseline-x5": {"network": "baseline", "multiplier": 5, "lr": 2.5},
    "bn-x1": {"network": "BN", "multiplier": 1, "lr": 0.5},
    "bn-x5": {"network": "BN", "multiplier": 5, "lr": 2.5},
}


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
    rows = sweep_rows(METRICS, VARIANTS, 0.91)
    assert [r.variant for r in rows] == list(VARIANTS)
    assert [s.steps_to_target for s in rows[0].seeds] == [400, 300]
    assert [s.steps_to_target for s in rows[2].seeds] == [100, 200]
    assert [s.best_accuracy for s in rows[3].seeds] == [0.98, 0.8]
    assert [s.diverged_at for s in rows[1].seeds] == [150, 120]


def test_table_shows_divergence_as_such():
    table = markdown_table(sweep_rows(METRICS, VARIANTS, 0.91), 0.91)
    lines = table.splitlines()
    assert lines[0].startswith("| network | lr multiplier | lr | steps to 0.9100 test accuracy")
    assert lines[2] == "| baseline | x1 | 0.5 | 350 ± 71 | 0.9150 ± 0.0071 | no |"
    assert lines[3] == (
        "| baseline | x5 | 2.5 | diverged | diverged "
        "| diverged: seed 0 at step 150, seed 1 at step 120 |"
    )
    assert lines[4] == "| BN | x1 | 0.5 | 150 ± 71 | 0.9650 ± 0.0071 | no |"
    assert lines[5] == (
        "| BN | x5 | 2.5 | 100 (1 of 2 seeds) | 0.9800 (1 of 2 seeds) "
        "| diverged: seed 1 at step 180 |"
    )
