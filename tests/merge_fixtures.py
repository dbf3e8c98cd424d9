"""Run directories as bnlab writes them, made by hand, for the `bnlab report` tests."""

from __future__ import annotations

import json

from analysis_fixtures import ics_metrics as ics_runs
from outputs_fixtures import metrics as reproduce_runs

from bnlab.experiments import PAPER, parse_sweep, registry
from bnlab.experiments.rundir import config_dict

ICS = registry.analysis("ics")


def write_run(directory, config, metrics, timing=None):
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "metrics.json").write_text(json.dumps(metrics))
    if timing is not None:
        (directory / "timing.json").write_text(json.dumps(timing))
    return directory


def figure1_config(config=PAPER):
    """A reproduction's config.json: its experiment's name, then the flat ExperimentConfig."""
    return {"experiment": "figure1", **config.to_dict()}


def ics_config():
    """An analysis's config.json: experiment, analysis, networks, base config and settings."""
    config = ICS.default_config()
    saved = {
        "experiment": "ics",
        "analysis": "ics",
        "networks": ["baseline", "bn"],
        "base": config.base.to_dict(),
        "settings": {},
    }
    assert saved == config_dict(ICS, config)  # what a real run writes
    return saved


def reproduce_metrics(preset="paper"):
    """A reproduction's metrics.json: its header (the preset), then the runs."""
    return {"preset": preset, **reproduce_runs()}


def ics_metrics():
    """An analysis's metrics.json: its header (the analysis), then the runs."""
    return {"analysis": "ics", **ics_runs()}


SWEEP_FILE = {"steps": 20, "eval_every": 10, "seeds": [0, 1], "grid": {"lr": [0.001, 0.003]}}
# hand-made final test accuracies per (lr, variant), seeds 0 and 1: each cell's mean differs from
# the mean over both learning rates
HAND_MADE = {
    (0.001, "baseline"): (0.90, 0.92),
    (0.001, "bn"): (0.95, 0.97),
    (0.003, "baseline"): (0.80, 0.82),
    (0.003, "bn"): (0.85, 0.87),
}


def hand_made_sweep(directory):
    sweep = parse_sweep(SWEEP_FILE, "t.toml")
    runs = []
    for (lr, variant), finals in HAND_MADE.items():
        for seed, final in zip(sweep.seeds, finals, strict=True):
            acc = [round(final - 0.1, 4), final]
            runs.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "lr": lr,
                    "cell": {"lr": lr},
                    "steps": [10, 20],
                    "test_accuracy": acc,
                    "test_loss": [1.0 - a for a in acc],
                    "train_loss": [1.0 - a for a in acc],
                    "percentiles": {"15": [-1.0, -1.0], "50": [0.0, 0.0], "85": [1.0, 1.0]},
                    "diverged_at": None,
                }
            )
    metrics = {"preset": "seed", "grid": {"lr": [0.001, 0.003]}, "runs": runs}
    timing = {
        "setup_s": 0.5,
        "compile_s": 2.0,
        "train_s": 3.0,
        "final_eval_s": 1.0,
        "devices": 2,
        "runs": 8,
        "programs": 1,
        "processes": 1,
        "device_kind": "cpu",
        "runs_x_steps_per_s": 53.3,
    }
    return write_run(directory, {"experiment": "sweep", **sweep.to_dict()}, metrics, timing)
