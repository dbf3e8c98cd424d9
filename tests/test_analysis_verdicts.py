"""The analyses' verdicts, computed from hand-made metrics whose answers are known."""

from __future__ import annotations

import pytest
from analysis_fixtures import ics_metrics, landscape_metrics, noisy_metrics

from bnlab.experiments.analyses import verdicts as V
from bnlab.experiments.analyses.lr_table import sweep_rows


def test_noisy_bn_trains_well_and_is_unstable():
    trains, stability = V.noisy_bn_verdicts(noisy_metrics())
    assert trains.agrees == "yes"
    assert "noisy BN 0.9600" in trains.ours and "without BN 0.9000" in trains.ours
    assert stability.agrees == "yes"
    assert "noisy BN 1.000" in stability.ours and "without BN 0.500" in stability.ours


def test_instability_is_the_mean_percentile_move():
    assert V.instability(noisy_metrics(), "bn") == pytest.approx(0.1)
    assert V.instability(noisy_metrics(), "baseline_noisy") == pytest.approx(2.0)


def test_ics_per_layer():
    distance, cosine = V.ics_verdicts(ics_metrics(), ["2", "3"])
    assert distance.agrees == "partly"
    assert "layer 2: x2.00, layer 3: x0.50" in distance.ours
    assert cosine.agrees == "partly"
    assert "layer 2: 0.900 vs 0.800, layer 3: 0.500 vs 0.900" in cosine.ours


def test_landscape_bn_smoother_on_all_three_and_the_gap():
    smooth, gap = V.landscape_verdicts(landscape_metrics(), ["bn"])
    assert smooth.agrees == "yes"
    assert "loss range 1 vs 0.1" in smooth.ours
    # ratio per step: 100/1, 10/1, 10/2: the largest is 100x at step 100
    assert gap.agrees == "yes"
    assert "100.0x at step 100" in gap.ours


def test_lp_norm_as_well_as_bn_and_partly_smoother():
    as_well, smooth = V.lp_norm_verdicts(landscape_metrics(), ["lp1"])
    # 0.965 is within 0.005 of BN's 0.97
    assert as_well.agrees == "yes"
    # wider loss range, smaller gradient change and beta: 2 of 3
    assert smooth.agrees == "partly"


def _sweep(acc: dict[str, list[float]], diverged: dict[str, int]) -> dict:
    return {
        "runs": [
            {
                "variant": v,
                "seed": 0,
                "steps": [100, 200, 300],
                "test_accuracy": a,
                "diverged_at": diverged.get(v),
            }
            for v, a in acc.items()
        ]
    }


VARIANTS = {
    f"{net}-x{m}": {"network": "baseline" if net == "baseline" else "BN", "multiplier": m, "lr": m}
    for net in ("baseline", "bn")
    for m in (1, 5, 30)
}


def test_lr_sweep_verdicts():
    metrics = _sweep(
        {
            "baseline-x1": [0.5, 0.8, 0.9],
            "baseline-x5": [0.1, None, None],
            "baseline-x30": [0.1, None, None],
            "bn-x1": [0.8, 0.9, 0.95],
            "bn-x5": [0.9, 0.95, 0.97],
            "bn-x30": [0.7, 0.8, 0.85],
        },
        {"baseline-x5": 150, "baseline-x30": 110},
    )
    found = V.lr_sweep_verdicts(sweep_rows(metrics, VARIANTS, 0.9), 0.9)
    assert [(v.name, v.agrees) for v in found] == [
        ("BN reaches the target sooner at the same learning rate", "yes"),
        ("BN with a 5x learning rate trains faster", "yes"),
        ("the baseline cannot take a 5x learning rate", "yes"),
        ("BN with a 30x learning rate trains faster", "no"),
    ]
