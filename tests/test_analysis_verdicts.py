"""The analyses' verdicts, computed from hand-made metrics whose answers are known."""

from __future__ import annotations

import dataclasses

import pytest
from analysis_fixtures import (
    ics_metrics,
    landscape_metrics,
    lp_norm_metrics,
    noisy_metrics,
    one_evaluation,
    placement_metrics,
)

from bnlab.experiments import registry
from bnlab.experiments.santurkar.lr_sweep import LrSweepSettings
from bnlab.experiments.santurkar.noisy_bn import instability
from bnlab.outputs.verdicts import CANNOT_JUDGE


def verdicts(name: str, metrics: dict, **settings):
    analysis = registry.analysis(name)
    config = analysis.default_config()
    if settings:
        config = dataclasses.replace(
            config, settings=dataclasses.replace(config.settings, **settings)
        )
    return analysis.verdicts(config, metrics)


def test_noisy_bn_trains_well_and_is_unstable():
    trains, stability = verdicts("noisy-bn", noisy_metrics())
    assert trains.agrees == "yes"
    assert "noisy BN 0.9600" in trains.ours and "without BN 0.9000" in trains.ours
    assert stability.agrees == "yes"
    assert "noisy BN 1.000" in stability.ours and "without BN 0.500" in stability.ours


def test_noisy_bn_instability_cannot_be_judged_from_one_evaluation():
    trains, stability = verdicts("noisy-bn", one_evaluation(noisy_metrics()))
    # final accuracy at the one step: noisy BN 0.9 above standard 0.8, as close to BN's 0.9
    assert trains.agrees == "yes"
    assert stability.agrees == CANNOT_JUDGE
    assert "fewer than two evaluations" in stability.ours


def test_instability_is_the_mean_percentile_move():
    assert instability(noisy_metrics(), "bn") == pytest.approx(0.1)
    assert instability(noisy_metrics(), "baseline_noisy") == pytest.approx(2.0)


def test_ics_per_layer_at_each_point():
    found = verdicts("ics", ics_metrics())
    assert [v.name for v in found] == [
        f"Santurkar 2.2: BN {claim}, {p}"
        for p in ("early", "middle", "late")
        for claim in ("does not reduce ICS (l2)", "does not align G and G'")
    ]
    assert [v.agrees for v in found] == ["partly"] * 6
    distance, cosine = found[:2]
    assert distance.ours == (
        "steps 100-100, BN's mean ‖G - G'‖_2 relative to the standard network's: "
        "layer 2: x2.00, layer 3: x0.50"
    )
    assert cosine.ours == (
        "steps 100-100, cos(G, G') standard vs BN, mean ± std over seeds: "
        "layer 2: 0.900 ± 0.000 vs 0.800 ± 0.000, layer 3: 0.500 ± 0.000 vs 0.900 ± 0.000"
    )


def test_landscape_bn_smoother_at_each_point_and_the_gap():
    *smooth, gap = verdicts("landscape", landscape_metrics())
    assert [v.name for v in smooth] == [
        f"Santurkar 3.1: with BN smooths the landscape, {p}" for p in ("early", "middle", "late")
    ]
    assert [v.agrees for v in smooth] == ["yes"] * 3
    assert smooth[0].ours == (
        "steps 100-100, mean ± std over seeds, without BN vs with BN: loss range 1 vs 0.1; "
        "gradient change 100 vs 1; beta-smoothness 50 vs 5"
    )
    # ratio per step: 100/1, 10/1, 10/2: the largest is 100x at step 100
    assert gap.agrees == "yes"
    assert "100.0x at step 100" in gap.ours


def test_lp_norm_as_well_as_bn_and_partly_smoother():
    as_well, *smooth = verdicts("lp-norm", lp_norm_metrics())
    # 0.965 is within 0.005 of BN's 0.97 (l1, l2 and l-inf alike)
    assert as_well.agrees == "yes"
    assert "with BN 0.9700; l1 normalization 0.9650" in as_well.ours
    # wider loss range, smaller gradient change and beta: 2 of 3, for each of the three
    assert [v.name for v in smooth] == [
        f"Santurkar 3.1: {n} normalization smooths the landscape, {p}"
        for n in ("l1", "l2", "l∞")
        for p in ("early", "middle", "late")
    ]
    assert [v.agrees for v in smooth] == ["partly"] * 9


def test_landscape_is_not_judged_where_the_baseline_is_on_its_plateau():
    """The paper preset's case: the network without BN at chance early on; only the points
    where it trains are judged, the others say why not."""
    metrics = landscape_metrics()
    metrics["runs"][0]["test_accuracy"] = [0.11, 0.5, 0.9]
    *smooth, gap = verdicts("landscape", metrics)
    assert [v.agrees for v in smooth] == [CANNOT_JUDGE, CANNOT_JUDGE, "yes"]
    # the gap only where the baseline trains: 10 / 2 at step 300
    assert gap.ours == "largest ratio standard / BN of the gradient change: 5.0x at step 300"
    assert smooth[0].ours == (
        "the network without BN has not left its plateau by step 100 (test accuracy 0.110 < 0.8)"
    )


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
    found = verdicts("lr-sweep", metrics, target=0.9)
    # the BN-x5 and BN-x30 verdicts now come together, before the baseline's
    assert [(v.name, v.agrees) for v in found] == [
        ("BN reaches the target sooner at the same learning rate", "yes"),
        ("BN with a 5x learning rate trains faster", "yes"),
        ("BN with a 30x learning rate trains faster", "no"),
        ("the baseline cannot take a 5x learning rate", "yes"),
    ]


def test_lr_sweep_verdicts_cannot_be_judged_when_neither_reaches_the_target():
    # nothing reaches the default target 0.93
    metrics = _sweep(
        {
            "baseline-x1": [0.1, 0.3, 0.47],
            "baseline-x5": [0.1, None, None],
            "baseline-x30": [0.1, None, None],
            "bn-x1": [0.8, 0.9, 0.92],
            "bn-x5": [0.85, 0.9, 0.91],
            "bn-x30": [0.7, 0.8, 0.85],
        },
        {"baseline-x5": 150, "baseline-x30": 110},
    )
    assert LrSweepSettings().target == 0.93
    found = verdicts("lr-sweep", metrics)
    assert [(v.name, v.agrees) for v in found] == [
        ("BN reaches the target sooner at the same learning rate", CANNOT_JUDGE),
        ("BN with a 5x learning rate trains faster", CANNOT_JUDGE),
        ("BN with a 30x learning rate trains faster", CANNOT_JUDGE),
        ("the baseline cannot take a 5x learning rate", "yes"),
    ]
    assert all(v.agrees != "no" for v in found)
    assert found[0].ours.startswith("neither reached the target (steps to 0.9300:")


def test_lr_sweep_baseline_target_without_a_baseline_gives_no_verdict():
    metrics = _sweep(
        {"baseline-x1": [None, None, None], "bn-x1": [0.9, 0.95, 0.97]}, {"baseline-x1": 50}
    )
    assert verdicts("lr-sweep", metrics, multipliers=(1.0,), target="baseline") == []


def test_placement_bn_before_drifts_less_and_trains_better():
    stable, trains = verdicts("placement", placement_metrics())
    assert stable.agrees == "yes"
    assert "median moves over 0.20 before vs 1.00 after" in stable.ours
    assert "15-85 spread over 0.00 vs 2.00" in stable.ours
    assert trains.agrees == "yes"
    assert "with BN (before the activation) 0.9700" in trains.ours
    assert "with BN (after the activation) 0.9500" in trains.ours


def test_placement_bn_after_better_disagrees():
    swapped = placement_metrics()
    for r in swapped["runs"]:
        r["variant"] = {"bn_before": "bn_after", "bn_after": "bn_before"}.get(
            r["variant"], r["variant"]
        )
    stable, trains = verdicts("placement", swapped)
    assert (stable.agrees, trains.agrees) == ("no", "no")


def test_placement_stability_cannot_be_judged_from_one_evaluation():
    stable, trains = verdicts("placement", one_evaluation(placement_metrics()))
    assert stable.agrees == CANNOT_JUDGE
    # at the one step both BN networks have 0.9: before >= after holds
    assert trains.agrees == "yes"
