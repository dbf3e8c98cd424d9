"""The analyses' configurations: networks, models, defaults, validation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bnlab.core.noise import NoiseConfig
from bnlab.errors import ConfigError
from bnlab.experiments.analyses import ANALYSES, AnalysisConfig, default_config
from bnlab.experiments.presets import PAPER


@pytest.mark.parametrize(
    ("network", "bn", "norm", "noisy"),
    [
        ("baseline", "none", "bn", False),
        ("bn", "before", "bn", False),
        ("noisy_bn", "before", "bn", True),
        ("baseline_noisy", "none", "bn", True),
        ("lp1", "before", "lp1", False),
        ("lp2", "before", "lp2", False),
        ("lpinf", "before", "lpinf", False),
    ],
)
def test_each_network_is_the_paper_model_with_its_change(network, bn, norm, noisy):
    config = default_config("noisy-bn")
    spec = config.model_spec(network)
    assert (spec.bn, spec.norm, spec.noise == config.noise) == (bn, norm, noisy)
    plain = PAPER.model_spec("baseline" if bn == "none" else "bn")
    assert dataclasses.replace(spec, norm="bn", noise=None) == plain


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_defaults_are_the_paper_preset_at_the_analysis_size(analysis):
    config = default_config(analysis)
    e = config.experiment
    assert (e.preset, e.optimizer, e.lr, e.batch_size) == ("paper", "sgd", 0.5, 60)
    assert {k: getattr(e, k) for k in ANALYSES[analysis][1]} == ANALYSES[analysis][1]
    assert json.loads(json.dumps(config.to_dict()))["analysis"] == analysis


def test_overrides_reach_the_experiment():
    config = default_config("ics", steps=300, seeds=3, lr=0.1)
    assert (config.experiment.steps, config.experiment.seeds, config.experiment.lr) == (300, 3, 0.1)


def test_landscape_multipliers_span_the_range():
    config = dataclasses.replace(default_config("landscape"), landscape_steps=3)
    assert config.multipliers() == [0.5, 2.25, 4.0]
    assert config.to_dict()["landscape"]["multipliers"] == [0.5, 2.25, 4.0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"analysis": "nope"}, "analysis: expected one of noisy-bn, ics"),
        ({"lr_multipliers": ()}, "--multipliers: expected finite numbers > 0"),
        ({"lr_multipliers": (1.0, float("inf"))}, "--multipliers: expected finite numbers > 0"),
        ({"target": 0.0}, "--target: expected a test accuracy in"),
        ({"target": "best"}, "--target: expected a test accuracy in"),
        ({"landscape_steps": 0}, "landscape step count must be >= 1"),
        ({"probe_batches": 0}, "probe_batches: expected at least 1"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(AnalysisConfig("ics", PAPER), **changes).validate()


def test_noise_constants_are_in_the_config():
    noise = NoiseConfig(mean_low=-1.0, mean_high=1.0)
    config = dataclasses.replace(default_config("noisy-bn"), noise=noise)
    assert config.to_dict()["noise"]["mean_low"] == -1.0
    assert config.model_spec("noisy_bn").noise == noise
