"""`bnlab reproduce` and `bnlab summary` end to end, at tiny scale, in a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnlab.experiments import FIGURE1, SEED, ExperimentConfig
from bnlab.experiments.rundir import outputs

SRC = str(Path(__file__).resolve().parents[1] / "src")


def bnlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "bnlab", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def _popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(
        [sys.executable, "-m", "bnlab", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


TINY = ("--steps", "300", "--eval-every", "100", "--hidden", "32,32")


@pytest.mark.slow
def test_reproduce_end_to_end_tiny(tmp_path):
    out = tmp_path / "run"
    proc = bnlab("reproduce", "--preset", "paper", *TINY, "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((out / "config.json").read_text())
    # config.json starts with the experiment's name, then the flat config
    assert next(iter(saved)) == "experiment" and saved.pop("experiment") == "figure1"
    config = ExperimentConfig.from_dict(saved)
    assert config.steps == 300
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(r["variant"], r["seed"]) for r in metrics["runs"]] == [
        ("baseline", 0),
        ("baseline", 1),
        ("bn", 0),
        ("bn", 1),
    ]
    for run in metrics["runs"]:
        assert run["steps"] == [100, 200, 300]
        for key in ("test_accuracy", "test_loss", "train_loss"):
            assert len(run[key]) == 3 and all(isinstance(v, float) for v in run[key])
        assert sorted(run["percentiles"]) == ["15", "50", "85"]
        assert run["diverged_at"] is None
    bn = metrics["runs"][2]
    assert 0.5 < bn["population_test_accuracy"] <= 1
    assert sorted(bn["batch_stats_test_accuracy"]) == ["1", "60"]
    assert "population_test_accuracy" not in metrics["runs"][0]
    assert (out / "training_state" / "state.npz").exists()
    assert f"tensorboard --logdir {out / 'tensorboard'}" in proc.stdout.replace("\n", "")
    # report.md is the experiment's report of the files the run left (as `bnlab report` renders
    # it), and the run wrote nothing but its own outputs
    timing = json.loads((out / "timing.json").read_text())
    assert (out / "report.md").read_text() == FIGURE1.report(config, metrics, timing)
    assert {p.name for p in out.iterdir()} == set(outputs(FIGURE1))


@pytest.mark.slow
def test_reproduce_convnet_tiny(tmp_path):
    """The convnet preset end to end: both networks, Figure 1 on a channel of the last
    convolution, the Keras-style summary of each network in the report."""
    out = tmp_path / "run"
    proc = bnlab(
        "reproduce", "--preset", "convnet", "--steps", "20", "--eval-every", "10", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["variant"] for r in metrics["runs"]] == ["baseline", "bn"]
    for run in metrics["runs"]:
        assert run["steps"] == [10, 20]
        assert run["percentile_input"] == "relu input, last convolution's channel"
        assert 0 <= run["percentile_unit"] < 16
    report = (out / "report.md").read_text()
    assert "| conv2d_2 | (None, 8, 8, 16) | 2,400 |" in report
    assert "Panels (b, c) follow one typical channel of the last convolution" in report
    assert (out / "figure1.png").stat().st_size > 0


@pytest.mark.slow
def test_resume_after_kill_9_is_bit_identical(tmp_path):
    args = ("--steps", "4000", "--eval-every", "500", "--hidden", "32,32")
    whole = bnlab("reproduce", *args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    child = _popen("reproduce", *args, "--out", str(out))
    deadline = time.monotonic() + 300
    while not (out / "training_state" / "state.npz").exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (out / "metrics.json").exists()  # it was killed before the end

    resumed = bnlab("reproduce", "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()


@pytest.mark.slow
def test_diverging_learning_rate_is_reported(tmp_path):
    out = tmp_path / "run"
    proc = bnlab("reproduce", "--preset", "paper", *TINY, "--lr", "1e38", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((out / "metrics.json").read_text())["runs"]
    assert [r["diverged_at"] for r in runs] == [2, 2]
    assert all(r["test_accuracy"] == [None, None, None] for r in runs)
    assert "diverged" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lr", "-1"), "--lr: expected a finite number > 0, got -1.0"),
        (("--steps", "0"), "--steps: expected at least 1, got 0"),
        (("--seeds", "0"), "--seeds: expected at least 1, got 0"),
        (("--batch-size", "1"), "--batch-size: expected at least 2 (BN needs 2), got 1"),
        (("--preset", "nope"), "--preset: expected one of seed, paper, convnet, got 'nope'"),
        (("--hidden", "100,x"), "--hidden: expected comma-separated integers, got '100,x'"),
        (("--epochs", "2", "--steps", "5"), "--epochs and --steps: expected one of them"),
        (("--optimizer", "adam"), "--optimizer: expected one of rmsprop, sgd, got 'adam'"),
        (("--input", "grey"), "--input: expected one of scale, binary, got 'grey'"),
        (("--variants", "bn,bn"), "--variants: expected unique"),
        (("--threshold", "2"), "--threshold: expected in [0, 1], got 2.0"),
        (("--resume", "--overwrite"), "--resume and --overwrite: expected at most one"),
    ],
)
def test_bad_option_is_one_line_and_exit_2(args, message, tmp_path):
    out = tmp_path / "run"
    proc = bnlab("reproduce", *args, "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("bnlab: error: ")
    assert message in proc.stderr
    assert not out.exists()


def test_non_empty_out_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = bnlab("reproduce", *TINY, "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "not empty; pass --resume" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    proc = bnlab("reproduce", *TINY, "--out", str(tmp_path), "--overwrite")
    assert proc.returncode == 2 and "files bnlab did not write (notes.txt)" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_with_different_options_is_refused(tmp_path):
    saved = {"experiment": "figure1", **SEED.replace(steps=300).to_dict()}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    proc = bnlab("reproduce", "--out", str(tmp_path), "--resume", "--lr", "0.01")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "the options differ from" in proc.stderr and "lr 0.001 -> 0.01" in proc.stderr


@pytest.mark.parametrize(
    ("preset", "totals", "bn_layers"),
    [
        ("seed", ["99,710", "99,710", "0", "100,910", "100,310", "600"], 3),
        ("paper", ["99,710", "99,710", "0", "100,610", "100,010", "600"], 3),
        ("convnet", ["44,426", "44,426", "0", "45,104", "44,652", "452"], 4),
    ],
)
def test_summary_prints_both_models(preset, totals, bn_layers):
    """Total, trainable and non-trainable parameters of each network, as Keras counts them."""
    proc = bnlab("summary", "--preset", preset)
    assert proc.returncode == 0, proc.stderr
    assert [
        line.split(": ")[1].split(" ")[0]
        for line in proc.stdout.splitlines()
        if " params: " in line
    ] == totals
    assert proc.stdout.count("batch_norm_") == bn_layers


@pytest.mark.slow
def test_paper_preset_bn_beats_baseline_at_every_10k_checkpoint(tmp_path):
    """The full `paper` preset (50,000 steps of 60, both networks): the BN network's test
    accuracy is higher at 10k, 20k, 30k, 40k and 50k steps, as in the paper's Figure 1(a)."""
    out = tmp_path / "paper"
    proc = bnlab("reproduce", "--preset", "paper", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    runs = {r["variant"]: r for r in json.loads((out / "metrics.json").read_text())["runs"]}
    for step in (10_000, 20_000, 30_000, 40_000, 50_000):
        i = runs["bn"]["steps"].index(step)
        assert runs["bn"]["test_accuracy"][i] > runs["baseline"]["test_accuracy"][i], step
