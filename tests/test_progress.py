"""Training progress: the position line (phase, step, steps/s, ETA), what the run is doing, the bar
at 80 columns, plain lines when piped, and --quiet."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from itertools import count
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bnlab.cli import app, progress
from bnlab.cli.analyze import make_config
from bnlab.cli.progress import Pace, Plan, Tracker, bar_line, position, rows, terminal_bar
from bnlab.experiments import ANALYSES
from bnlab.experiments.registry import analysis

SRC = str(Path(__file__).resolve().parents[1] / "src")
# three phases of 1,500 steps (lr-sweep's), evaluated every 500
PHASES = Plan((1500, 1500, 1500), (500, 500, 500))
# reproduce's networks at their smallest: a few seconds, most of them compiling
TINY = ["--steps", "20", "--eval-every", "10", "--hidden", "16", "--seeds", "1"]


def test_a_phases_last_step_is_its_own():
    assert PHASES.locate(0) == (0, 0)
    assert PHASES.locate(1500) == (0, 1500)
    assert PHASES.locate(1600) == (1, 100)
    assert PHASES.locate(4500) == (2, 1500)


def test_lr_sweep_steps_are_counted_per_phase():
    """`analyze lr-sweep --steps 1500` trains 1,500 steps per multiplier: three phases of
    1,500, not one run of 4,500."""
    lr_sweep = analysis("lr-sweep")
    config = make_config(lr_sweep, {"steps": 1500, "eval_every": 500})
    plan = Plan.of(SimpleNamespace(experiment=lr_sweep, config=config))
    assert plan == PHASES
    assert position(plan, 1500, 4500, None).startswith("phase 1 of 3, step 1,500/1,500")


def test_next_evaluation_is_the_next_multiple_or_the_end():
    plan = Plan((6000,), (2500,))
    assert [plan.next_eval(0, s) for s in (0, 1000, 2500, 5000)] == [2500, 2500, 5000, 6000]


def test_position_lines():
    one = Plan((50_000,), (1000,))
    assert position(one, 12_000, 50_000, 2653.0) == (
        "step 12,000/50,000, 2,653 steps/s, ETA 0:00:14"
    )
    assert position(one, 0, 50_000, None) == "step      0/50,000,     ? steps/s, ETA ?:??:??"
    # the steps are the phase's, the ETA the whole run's
    assert position(PHASES, 2100, 4500, 300.0) == (
        "phase 2 of 3, step   600/1,500,   300 steps/s, ETA 0:00:08"
    )
    assert position(PHASES, 4500, 4500, 300.0).endswith(
        "step 1,500/1,500,   300 steps/s, ETA 0:00:00"
    )
    assert position(one, 10_000, 50_000, 1.0).endswith("ETA 11:06:40")


def test_pace_leaves_out_each_phases_compilation():
    pace = Pace()
    for phase, done, now in [(0, 500, 10.0), (0, 1500, 11.0), (1, 2000, 40.0), (1, 3000, 41.0)]:
        pace.add(phase, done, now)
    assert pace.rate() == 1000.0


def test_tracker_says_what_the_run_is_doing():
    tracker = Tracker(Plan((3000, 3000), (2000, 2000)))
    assert tracker.status == ["compiling"]
    tracker.report(1000, 6000, None, 1.0)
    assert tracker.status == ["training, next evaluation at step 2,000"]
    tracker.report(2000, 6000, {"with BN": {"test_accuracy": 0.91}}, 2.0)
    assert tracker.status == ["with BN acc 0.9100"]
    tracker.report(3000, 6000, {"with BN": {"test_accuracy": 0.92}}, 3.0)
    assert tracker.status == ["compiling phase 2 of 2"]
    tracker.report(4000, 6000, None, 9.0)
    assert tracker.status == ["training, next evaluation at step 2,000"]
    diverged = {"runs": 3, "diverged": 1, "test_accuracy": 0.5}
    tracker.report(5000, 6000, {"a": diverged, "b": {**diverged, "diverged": 3}}, 10.0)
    assert tracker.status == ["a acc 0.5000 (1 of 3 diverged)", "b diverged"]


def test_rows_pack_cells_in_order():
    cells = ["aaaa", "bb", "cccccc", "d"]
    assert rows(cells, 10) == ["aaaa  bb", "cccccc  d"]
    assert rows(["x" * 12, "y"], 10) == ["x" * 12, "y"]


@pytest.fixture
def clock(monkeypatch):
    """Each call of the progress's clock one second later."""
    ticks = count()
    monkeypatch.setattr(progress, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))


def noisy_bn_latest() -> dict[str, dict[str, float]]:
    noisy_bn = analysis("noisy-bn")
    labels = noisy_bn.labels(noisy_bn.default_config())
    return {label: {"test_accuracy": 0.9 + k / 100} for k, label in enumerate(labels.values())}


def test_bar_line_shrinks_the_bar_then_cuts_the_description():
    where = "phase 1 of 2, step 1,000/2,000,   149 steps/s, ETA 0:00:11"
    assert bar_line("sweep grid.toml", 0.5, where, 160).plain == (
        "sweep grid.toml " + "━" * 40 + " " + where
    )
    assert bar_line("sweep grid.toml", 0.5, where, 80).plain == "sweep grid.toml ━━━━━ " + where
    assert bar_line("sweep grid.toml: training", 0.5, where, 80).plain == (
        "sweep grid.toml: tra… " + where
    )
    assert len(bar_line("sweep grid.toml: training", 0.5, where, 80).plain) == 80
    assert bar_line("sweep", 0.5, where, 50).plain == where


@pytest.mark.parametrize("width", [80, 160])
def test_bar_keeps_step_count_and_eta_whole(clock, width):
    """noisy-bn's four networks: the bar's line keeps its step count, steps/s and ETA at 80
    columns; every network's accuracy is below it, by its label, on as many lines as needed."""
    console = Console(
        width=width, record=True, force_terminal=True, force_interactive=False, file=io.StringIO()
    )
    latest = noisy_bn_latest()
    with terminal_bar("analyze noisy-bn", Plan((3000,), (1000,)), console) as update:
        update(1000, 3000, latest)
        update(2000, 3000, latest)
    first, *status = console.export_text().strip("\n").splitlines()
    bar = "━" * (18 if width == 80 else 40)
    assert first == f"analyze noisy-bn {bar} step 2,000/3,000, 1,000 steps/s, ETA 0:00:01"
    assert all(len(line) <= width for line in status)
    shown = "  ".join(line.strip() for line in status)
    assert shown == "  ".join(
        f"{label} acc {m['test_accuracy']:.4f}" for label, m in latest.items()
    )
    assert len(status) == (2 if width == 80 else 1)


def test_piped_output_is_one_plain_line_per_evaluation(tmp_path):
    """stderr piped: a flushed line per evaluation with the networks' labels, no control
    characters; the summary on stdout."""
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-m", "bnlab", "reproduce", *TINY, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    lines = done.stderr.splitlines()
    line = (
        r"seed: training: step (\d+)/20, +\S+ steps/s, ETA \S+  without BN acc \S+  with BN acc \S+"
    )
    steps = [m and m[1] for m in (re.fullmatch(line, got) for got in lines)]
    assert steps == ["10", "20"], lines
    assert "Test accuracy after 20 steps" in done.stdout


def test_quiet_prints_only_the_summary(tmp_path):
    result = CliRunner().invoke(app, ["reproduce", *TINY, "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    # not == "": JAX may log a warning of its own there
    assert "seed: training" not in result.stderr
    assert "Test accuracy after 20 steps" in result.stdout


@pytest.mark.parametrize(
    "command", [["reproduce"], ["sweep"], *(["analyze", a.name] for a in ANALYSES)], ids=" ".join
)
def test_every_training_command_takes_quiet(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert "--quiet" in result.stdout
