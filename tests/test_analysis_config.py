"""The analyses' configurations: networks, models, defaults, settings, round trips, validation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bnlab.core.noise import NoiseConfig
from bnlab.errors import ConfigError
from bnlab.experiments import registry
from bnlab.experiments.network import WITH_BN, WITHOUT_BN, Network
from bnlab.experiments.presets import PAPER
from bnlab.experiments.rundir import config_dict
from bnlab.experiments.santurkar import AnalysisConfig
from bnlab.experiments.santurkar.landscape import LandscapeSettings
from bnlab.experiments.santurkar.lp_norm import LP_NETWORKS
from bnlab.experiments.santurkar.lr_sweep import ConvnetLrSettings, LrSweepSettings
from bnlab.experiments.santurkar.noisy_bn import NOISY_BASELINE, NOISY_BN, NoisySettings
from bnlab.experiments.santurkar.placement import AFTER, BEFORE
from bnlab.outputs.report import show_value

NOISY = registry.analysis("noisy-bn")
LANDSCAPE = registry.analysis("landscape")
LR_SWEEP = registry.analysis("lr-sweep")
PLACEMENT = registry.analysis("placement")
NAMES = ["noisy-bn", "ics", "landscape", "lp-norm", "lr-sweep", "convnet-lr", "placement"]
# the preset each analysis starts from: (name, optimiser, learning rate, batch size)
PRESETS = {name: ("paper", "sgd", 0.5, 60) for name in NAMES} | {
    "convnet-lr": ("convnet", "rmsprop", 0.001, 60)
}


def test_every_analysis_is_registered_in_order():
    assert [a.name for a in registry.ANALYSES] == NAMES
    assert all(registry.experiment(n) is registry.analysis(n) for n in NAMES)


@pytest.mark.parametrize(
    ("analysis", "network", "bn", "norm", "noisy"),
    [
        ("noisy-bn", WITHOUT_BN, "none", "bn", False),
        ("noisy-bn", WITH_BN, "before", "bn", False),
        ("noisy-bn", NOISY_BN, "before", "bn", True),
        ("noisy-bn", NOISY_BASELINE, "none", "bn", True),
        ("lp-norm", LP_NETWORKS[0], "before", "lp1", False),
        ("lp-norm", LP_NETWORKS[1], "before", "lp2", False),
        ("lp-norm", LP_NETWORKS[2], "before", "lpinf", False),
        ("placement", BEFORE, "before", "bn", False),
        ("placement", AFTER, "after", "bn", False),
    ],
)
def test_each_network_is_the_paper_model_with_its_change(analysis, network, bn, norm, noisy):
    a = registry.analysis(analysis)
    config = a.default_config()
    assert network in a.networks(config)
    spec = a.model_spec(config, network)
    noise = config.settings.noise if analysis == "noisy-bn" else NoiseConfig()
    assert (spec.bn, spec.norm, spec.noise == noise) == (bn, norm, noisy)
    plain = PAPER.model_spec(bn)
    assert dataclasses.replace(spec, norm="bn", noise=None) == plain


@pytest.mark.parametrize("analysis", registry.ANALYSES, ids=NAMES)
def test_defaults_are_the_analysis_preset_at_its_size(analysis):
    config = analysis.default_config()
    e = config.base
    assert (e.preset, e.optimizer, e.lr, e.batch_size) == PRESETS[analysis.name]
    assert {k: getattr(e, k) for k in analysis.defaults} == analysis.defaults
    assert json.loads(json.dumps(analysis.config_to_dict(config)))["analysis"] == analysis.name
    saved = config_dict(analysis, config)
    assert list(saved)[:2] == ["experiment", "analysis"]
    assert saved["experiment"] == analysis.name
    assert set(saved) == {"experiment", "analysis", "networks", "base", "settings"}
    assert saved["networks"] == [n.variant for n in analysis.networks(config)]


def test_overrides_reach_the_experiment():
    config = registry.analysis("ics").default_config(steps=300, seeds=3, lr=0.1)
    assert (config.base.steps, config.base.seeds, config.base.lr) == (300, 3, 0.1)
    again = config.replace(steps=200, lr=None)
    assert (again.base.steps, again.base.seeds, again.base.lr) == (200, 3, 0.1)


def test_landscape_multipliers_span_the_range():
    config = dataclasses.replace(
        LANDSCAPE.default_config(), settings=LandscapeSettings(step_count=3)
    )
    assert config.settings.multipliers() == [0.5, 2.25, 4.0]
    assert LANDSCAPE.config_to_dict(config)["settings"] == {
        "step_range": [0.5, 4.0],
        "step_count": 3,
    }
    assert ["step sizes (x lr)", show_value([0.5, 2.25, 4.0])] in LANDSCAPE.setup_extra(config)


def test_placement_networks_and_labels():
    config = PLACEMENT.default_config()
    assert PLACEMENT.networks(config) == [WITHOUT_BN, Network("bn", placement="before"), AFTER]
    assert PLACEMENT.labels(config) == {
        "baseline": "without BN",
        "bn_before": "with BN (before the activation)",
        "bn_after": "with BN (after the activation)",
    }
    assert config.settings is None
    assert PLACEMENT.config_to_dict(config)["networks"] == ["baseline", "bn_before", "bn_after"]
    assert PLACEMENT.figure_stems == ("accuracy_percentiles",)


def test_placement_config_round_trips():
    config = PLACEMENT.default_config(steps=1200, seeds=3, bn_placement="after")
    data = json.loads(json.dumps(PLACEMENT.config_to_dict(config)))
    assert data["settings"] == {}
    assert PLACEMENT.config_from_dict(data) == config


def test_lr_sweep_networks_each_multiplier_without_and_with_bn():
    config = LR_SWEEP.default_config()
    assert [n.variant for n in LR_SWEEP.networks(config)] == [
        "baseline-x1",
        "baseline-x5",
        "baseline-x30",
        "bn-x1",
        "bn-x5",
        "bn-x30",
    ]
    # one phase per multiplier, at that multiple of the learning rate
    phases = LR_SWEEP.phases(config)
    assert [p.train.optimizer.lr for p in phases] == [0.5, 2.5, 15.0]
    assert [[g.network.variant for g in p.groups] for p in phases] == [
        ["baseline-x1", "bn-x1"],
        ["baseline-x5", "bn-x5"],
        ["baseline-x30", "bn-x30"],
    ]


# each analysis at default and at non-default settings (and base fields)
NON_DEFAULT = {
    "noisy-bn": NoisySettings(NoiseConfig(mean_low=-1.0, mean_high=0.25, scale_std=0.2), 3),
    "ics": None,
    "landscape": LandscapeSettings((0.25, 2.0), 5),
    "lp-norm": LandscapeSettings((1.0, 1.0), 1),
    "lr-sweep": LrSweepSettings((2.0, 0.5, 10.0), "baseline"),
    "convnet-lr": ConvnetLrSettings((1.0, 3.0), 0.99),
    "placement": None,
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("default", [True, False], ids=["default", "non-default"])
def test_every_analysis_config_round_trips(name, default):
    analysis = registry.analysis(name)
    config = analysis.default_config()
    if not default:
        config = AnalysisConfig(
            config.base.replace(steps=700, eval_every=70, seeds=3, first_seed=4, lr=0.2),
            NON_DEFAULT[name],
        )
    data = json.loads(json.dumps(analysis.config_to_dict(config)))
    back = analysis.config_from_dict(data)
    assert back == config
    assert type(back.settings) is type(config.settings)
    assert analysis.config_to_dict(back) == data


def test_lr_sweep_target_as_a_number_round_trips():
    config = dataclasses.replace(
        LR_SWEEP.default_config(), settings=LrSweepSettings((1.0, 5.0), 0.8)
    )
    data = json.loads(json.dumps(LR_SWEEP.config_to_dict(config)))
    assert data["settings"] == {"multipliers": [1.0, 5.0], "target": 0.8}
    assert LR_SWEEP.config_from_dict(data) == config


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: registry.analysis("nope"), "analysis: expected one of noisy-bn, ics"),
        (lambda: registry.analysis("figure1"), "analysis: expected one of noisy-bn, ics"),
        (lambda: LrSweepSettings(()), "--multipliers: expected distinct finite numbers > 0"),
        (
            lambda: LrSweepSettings((1.0, float("inf"))),
            "--multipliers: expected distinct finite numbers > 0",
        ),
        (lambda: LrSweepSettings((1.0, 0.0)), "--multipliers: expected distinct finite"),
        (lambda: LrSweepSettings((1.0, 5.0, 1.0)), "--multipliers: expected distinct finite"),
        (lambda: LrSweepSettings(target=0.0), r"--target: expected a test accuracy in \(0, 1\]"),
        (lambda: LrSweepSettings(target=1.5), r"--target: expected a test accuracy in \(0, 1\]"),
        (lambda: LrSweepSettings(target="best"), "--target: expected a test accuracy in"),
        (lambda: LandscapeSettings(step_count=0), "--step-count: expected 1..1000, got 0"),
        (lambda: LandscapeSettings((4.0, 1.0)), r"--step-range: expected LOW,HIGH with 0 < LOW"),
        (lambda: LandscapeSettings((1.0,)), "--step-range: expected LOW,HIGH"),
        (lambda: NoisySettings(probe_batches=0), "probe_batches: expected at least 1, got 0"),
        (
            lambda: NoisySettings(NoiseConfig(mean_low=1.0, mean_high=-1.0)),
            "noise.mean_low must be <= noise.mean_high",
        ),
    ],
)
def test_bad_settings_are_refused(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("lr-sweep", {"multipliers": "0,5", "target": None}, "--multipliers: expected distinct"),
        ("lr-sweep", {"multipliers": "1,5,1", "target": None}, "--multipliers: expected distinct"),
        ("lr-sweep", {"multipliers": "1,x", "target": None}, "--multipliers: expected comma-"),
        ("lr-sweep", {"multipliers": None, "target": "1.5"}, r"--target: expected a test accu"),
        ("lr-sweep", {"multipliers": None, "target": "high"}, "--target: expected comma-"),
        ("landscape", {"step_range": "4,1", "step_count": None}, "0 < LOW <= HIGH"),
        ("landscape", {"step_range": "4", "step_count": None}, "--step-range: expected LOW,HIGH"),
        ("lp-norm", {"step_range": None, "step_count": 0}, "--step-count: expected 1..1000"),
        (
            "noisy-bn",
            {"noise_mean": "1,-1", "noise_scale": None, "noise_jitter": None, "noise_std": None},
            "--noise-mean: expected finite LOW <= HIGH, got '1,-1'",
        ),
        (
            "noisy-bn",
            {"noise_mean": "1", "noise_scale": None, "noise_jitter": None, "noise_std": None},
            "--noise-mean: expected LOW,HIGH",
        ),
    ],
)
def test_bad_options_are_refused(name, options, message):
    with pytest.raises(ConfigError, match=message):
        registry.analysis(name).settings_from_options(**options)


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("lr-sweep", {"multipliers": None, "target": None}, LrSweepSettings()),
        (
            "lr-sweep",
            {"multipliers": "1,10", "target": "baseline"},
            LrSweepSettings((1.0, 10.0), "baseline"),
        ),
        ("lr-sweep", {"multipliers": None, "target": "0.9"}, LrSweepSettings(target=0.9)),
        ("landscape", {"step_range": None, "step_count": None}, LandscapeSettings()),
        ("landscape", {"step_range": "1,2", "step_count": 3}, LandscapeSettings((1.0, 2.0), 3)),
        (
            "noisy-bn",
            {"noise_mean": "-1,1", "noise_scale": None, "noise_jitter": 0.0, "noise_std": None},
            NoisySettings(NoiseConfig(mean_low=-1.0, mean_high=1.0, mean_jitter=0.0)),
        ),
        ("ics", {}, None),
        ("placement", {}, None),
    ],
)
def test_options_give_the_settings(name, options, expected):
    assert registry.analysis(name).settings_from_options(**options) == expected


def test_noise_constants_are_in_the_config():
    noise = NoiseConfig(mean_low=-1.0, mean_high=1.0)
    config = dataclasses.replace(NOISY.default_config(), settings=NoisySettings(noise))
    assert NOISY.config_to_dict(config)["settings"]["noise"]["mean_low"] == -1.0
    assert NOISY.model_spec(config, NOISY_BN).noise == noise
