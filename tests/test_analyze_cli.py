"""`bnlab analyze ...` and `bnlab report` end to end at tiny scale, and their user errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.colors as mcolors
import pytest
from cli_fixtures import bnlab_here
from helpers.tensorboard_read import read, scalars
from typer.testing import CliRunner

from bnlab.cli import app
from bnlab.experiments import registry
from bnlab.experiments.santurkar.figures import build_accuracy_figure
from bnlab.outputs.rundir import load_run_dir

TINY = ["--steps", "20", "--eval-every", "10", "--seeds", "2"]
COMMANDS = {
    "noisy-bn": [],
    "ics": [],
    "landscape": ["--step-count", "3"],
    "lp-norm": ["--step-count", "2"],
    "lr-sweep": ["--multipliers", "1,30"],
    "convnet-lr": ["--multipliers", "1,30"],
    "placement": [],
}
NETWORKS = {
    "noisy-bn": ["baseline", "bn", "noisy_bn", "baseline_noisy"],
    "ics": ["baseline", "bn"],
    "landscape": ["baseline", "bn"],
    "lp-norm": ["baseline", "bn", "lp1", "lp2", "lpinf"],
    "lr-sweep": ["baseline-x1", "bn-x1", "baseline-x30", "bn-x30"],
    "convnet-lr": ["baseline-x1", "bn-x1", "baseline-x30", "bn-x30"],
    "placement": ["baseline", "bn_before", "bn_after"],
}
FIGURES = {
    "noisy-bn": ["accuracy_percentiles"],
    "ics": ["accuracy", "ics"],
    "landscape": ["accuracy", "landscape"],
    "lp-norm": ["accuracy", "landscape"],
    "lr-sweep": ["accuracy"],
    "convnet-lr": ["accuracy"],
    "placement": ["accuracy_percentiles"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    out = {}
    for name, extra in COMMANDS.items():
        result = CliRunner().invoke(
            app, ["analyze", name, "--out", str(root / name), *TINY, *extra]
        )
        assert result.exit_code == 0, result.output
        out[name] = root / name
    return out


def loaded(run_dir: Path):
    """The run directory, its analysis and its config object (as `bnlab report` reads them)."""
    run = load_run_dir(run_dir)
    analysis = registry.analysis(run.config["experiment"])
    data = {k: v for k, v in run.config.items() if k != "experiment"}
    return run, analysis, analysis.config_from_dict(data, run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COMMANDS))
def test_run_directory_is_complete(runs, name):
    d = runs[name]
    run = load_run_dir(d)
    assert sorted({r["variant"] for r in run.metrics["runs"]}) == sorted(NETWORKS[name])
    assert sorted({r["seed"] for r in run.metrics["runs"]}) == [0, 1]
    assert all(r["steps"] == [10, 20] for r in run.metrics["runs"])
    assert run.metrics["analysis"] == name
    assert list(run.config)[:2] == ["experiment", "analysis"]
    assert (run.config["experiment"], run.config["analysis"]) == (name, name)
    assert sorted(run.config["networks"]) == sorted(NETWORKS[name])
    for stem in FIGURES[name]:
        for ext in ("png", "svg"):
            assert (d / f"{stem}.{ext}").stat().st_size > 0
    logs = sorted(p.name for p in (d / "tensorboard").iterdir() if p.is_dir())
    assert logs == sorted(f"{v}-seed{s}" for v in NETWORKS[name] for s in (0, 1))
    timing = json.loads((d / "timing.json").read_text())
    assert timing["total_s"] > timing["train_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COMMANDS))
def test_report_states_each_claim_with_a_verdict(runs, name):
    run, analysis, config = loaded(runs[name])
    report = (runs[name] / "report.md").read_text()
    found = analysis.verdicts(config, run.metrics)
    assert found
    for v in found:
        assert f"| {v.name} | {v.theirs} | {v.ours} |" in report
    assert "## Time and machine" in report and "| total |" in report


@pytest.mark.slow
def test_ics_of_the_first_layer_is_zero_over_training(runs):
    for r in load_run_dir(runs["ics"]).metrics["runs"]:
        assert r["ics"]["distance"]["1"] == [0.0, 0.0]
        assert r["ics"]["cosine"]["1"] == pytest.approx([1.0, 1.0], abs=1e-6)
        assert sorted(r["ics"]["distance"], key=int) == ["1", "2", "3", "4"]


@pytest.mark.slow
def test_ics_curves_are_in_tensorboard(runs):
    run = next(r for r in load_run_dir(runs["ics"]).metrics["runs"] if r["variant"] == "bn")
    acc = read(runs["ics"] / "tensorboard" / "bn-seed0")
    # the tags are the measure's pytree path: ics/<quantity>/<layer>
    assert scalars(acc, "ics/distance/3") == [
        (10, pytest.approx(run["ics"]["distance"]["3"][0])),
        (20, pytest.approx(run["ics"]["distance"]["3"][1])),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["landscape", "lp-norm"])
def test_landscape_ranges_are_ordered(runs, name):
    for r in load_run_dir(runs[name]).metrics["runs"]:
        land = r["landscape"]
        for lo, hi in zip(land["loss_min"], land["loss_max"], strict=True):
            assert lo <= hi
        for lo, hi in zip(land["grad_change_min"], land["grad_change_max"], strict=True):
            assert lo <= hi


@pytest.mark.slow
def test_noisy_bn_percentiles_are_of_the_training_distribution(runs):
    for r in load_run_dir(runs["noisy-bn"]).metrics["runs"]:
        p = r["percentiles"]
        assert all(a <= b <= c for a, b, c in zip(p["15"], p["50"], p["85"], strict=True))
        assert set(r["eval_percentiles"]) == {"15", "50", "85"}


@pytest.mark.slow
def test_lr_sweep_table_lists_every_network_and_multiplier(runs):
    report = (runs["lr-sweep"] / "report.md").read_text()
    for row in (
        "| without BN | x1 | 0.5 |",
        "| without BN | x30 | 15 |",
        "| with BN | x1 | 0.5 |",
        "| with BN | x30 | 15 |",
    ):
        assert row in report


@pytest.mark.slow
def test_placement_report_names_each_placement(runs):
    report = (runs["placement"] / "report.md").read_text()
    assert report.startswith("# bnlab analyze placement: BN before or after the activation")
    for variant, label in (
        ("baseline", "without BN"),
        ("bn_before", "with BN (before the activation)"),
        ("bn_after", "with BN (after the activation)"),
    ):
        assert f"| {variant} | {label} |" in report
    assert "![accuracy_percentiles](accuracy_percentiles.png)" in report


@pytest.mark.slow
def test_report_merges_run_directories(runs, tmp_path):
    out = tmp_path / "merged.md"
    result = CliRunner().invoke(
        app, ["report", str(runs["ics"]), str(runs["lr-sweep"]), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# bnlab report: 2 run directories")
    assert "## 1. `" in text and "` (ics)" in text and "` (lr-sweep)" in text
    assert "### bnlab analyze ics:" in text
    # figures linked relative to the merged report
    rel = os.path.relpath(runs["ics"].resolve(), tmp_path.resolve())
    assert f"![ics]({rel}/ics.png)" in text
    overview = [line for line in text.splitlines() if line.startswith("| 2 | `")]
    assert len(overview) == 4


SIZE_30 = ["--steps", "30", "--eval-every", "10", "--seeds", "1"]


@pytest.mark.slow
def test_lr_sweep_figure_shows_every_network_at_the_default_multipliers(tmp_path):
    # regression: with the default multipliers 1, 5, 30 the six networks each need a legend entry
    # and a colour of their own
    out = tmp_path / "lr"
    result = CliRunner().invoke(
        app,
        ["analyze", "lr-sweep", "--out", str(out), *SIZE_30],
    )
    assert result.exit_code == 0, result.output
    run, analysis, config = loaded(out)
    labels = analysis.labels(config)
    expected = [f"{net}, lr x{m}" for net in ("without BN", "with BN") for m in (1, 5, 30)]
    assert list(labels.values()) == expected
    # matplotlib writes SVG text as paths, each after a comment holding the text
    comments = re.findall(r"<!-- (.*?) -->", (out / "accuracy.svg").read_text())
    for label in expected:
        assert f"{label} (1 seed)" in comments
    ax = build_accuracy_figure(run.metrics, labels).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{label} (1 seed)" for label in expected]
    colours = [mcolors.to_hex(line.get_color()) for line in ax.get_lines()]
    assert len(colours) == 6 and len(set(colours)) == 6


def bnlab(*args):
    """The installed console script, in a process of its own."""
    script = Path(sys.executable).with_name("bnlab")
    return subprocess.run([str(script), *args], capture_output=True, text=True, check=False)


USER_ERRORS = [
    (["analyze", "ics", "--steps", "0"], "--steps: expected at least 1, got 0"),
    (
        ["analyze", "lr-sweep", "--multipliers", "1,x"],
        "--multipliers: expected comma-separated",
    ),
    (
        ["analyze", "lr-sweep", "--multipliers", "1,-5"],
        "--multipliers: expected distinct finite numbers > 0",
    ),
    (
        ["analyze", "lr-sweep", "--multipliers", "0,5"],
        "--multipliers: expected distinct finite numbers > 0",
    ),
    (
        ["analyze", "lr-sweep", "--multipliers", "1,5,1"],
        "--multipliers: expected distinct finite numbers > 0",
    ),
    (
        ["analyze", "lr-sweep", "--target", "1.5"],
        "--target: expected a test accuracy in (0, 1]",
    ),
    (["analyze", "landscape", "--step-range", "4,0.5"], "--step-range: expected LOW,HIGH with"),
    (["analyze", "landscape", "--step-range", "4,1"], "0 < LOW <= HIGH, got [4.0, 1.0]"),
    (["analyze", "lp-norm", "--step-count", "0"], "--step-count: expected 1..1000, got 0"),
    (["analyze", "noisy-bn", "--noise-scale", "2,1"], "--noise-scale: expected finite LOW <= HIGH"),
    (["analyze", "noisy-bn", "--noise-mean", "1,-1"], "--noise-mean: expected finite LOW <= HIGH"),
    (["report", "no-such-dir"], "no-such-dir: not a directory"),
]


def _with_out(args, tmp_path):
    return [*args, *(["--out", str(tmp_path / "out")] if args[0] == "analyze" else [])]


@pytest.mark.parametrize(("args", "message"), USER_ERRORS)
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, message):
    code, stderr = bnlab_here(capsys, monkeypatch, *_with_out(args, tmp_path))
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("bnlab: error: ")
    assert message in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "message"), [USER_ERRORS[4], USER_ERRORS[5]])
def test_user_errors_of_the_console_script(tmp_path, args, message):
    result = bnlab(*_with_out(args, tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("bnlab: error: ")
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_non_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    code, stderr = bnlab_here(capsys, monkeypatch, "analyze", "ics", "--out", str(tmp_path), *TINY)
    assert code == 2
    assert "pass --resume to continue that run or --overwrite to replace it" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
