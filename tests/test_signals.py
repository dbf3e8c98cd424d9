"""Ctrl-C (SIGINT) and SIGTERM during training: the run stops at the next segment with its state
saved, one line names the step and the command that continues it, the exit status is 128 + the
signal's number, and the command it prints finishes the run with the same metrics.json as a run
that was never stopped."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
ARGS = ("reproduce", "--steps", "6000", "--eval-every", "500", "--hidden", "32,32")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "bnlab", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    proc = _run(*ARGS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_saves_and_says_how_to_resume(whole, tmp_path, signum, status):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC}
    child = subprocess.Popen(
        [sys.executable, "-m", "bnlab", *ARGS, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 300
    while not (out / "training_state" / "state.npz").exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == status
    last = stderr.splitlines()[-1]
    prefix = "bnlab: stopped at step "
    assert last.startswith(prefix) and " of 6,000; continue with: bnlab reproduce --out " in last
    step = int(last.removeprefix(prefix).split(" ")[0].replace(",", ""))
    assert 0 < step < 6000 and step % 500 == 0  # segments end at evaluations and epochs
    assert '"status": "interrupted"' in (out / "status.json").read_text()
    assert not (out / "metrics.json").exists()

    command = shlex.split(last.split("continue with: ")[1])
    assert command[0] == "bnlab"
    resumed = _run(*command[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "metrics.json").read_bytes() == (whole / "metrics.json").read_bytes()


def test_an_interrupt_outside_training_is_one_line_and_130(capsys, monkeypatch):
    """A second Ctrl-C (or one while loading data) stops at once: no traceback."""
    from cli_fixtures import bnlab_here

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bnlab.cli.data.load_mnist", interrupted)
    code, stderr = bnlab_here(capsys, monkeypatch, "data", "info")
    assert code == 130
    assert stderr == (
        "bnlab: interrupted (an interrupted run continues from its last checkpoint: --resume)\n"
    )


def test_a_stopped_sweep_is_continued_with_its_file_and_device_count(tmp_path, capsys, monkeypatch):
    """The sweep's command names its file and --devices (a state resumes only on as many)."""
    from cli_fixtures import bnlab_here

    from bnlab.experiments.run import RunStopped

    def stopped(prepared, **kwargs):
        raise RunStopped(30, 200, True, prepared.out_dir)

    monkeypatch.setattr("bnlab.experiments.run.run_experiment", stopped)
    config, out = tmp_path / "sweep.toml", tmp_path / "out"
    config.write_text("steps = 10\nseeds = [0]\n[grid]\nlr = [0.001]\n", encoding="utf-8")
    code, stderr = bnlab_here(
        capsys, monkeypatch, "sweep", str(config), "--out", str(out), "--devices", "1"
    )
    assert code == 130
    assert stderr.splitlines()[-1] == (
        f"bnlab: stopped at step 30 of 200; continue with: bnlab sweep {config} --devices 1 "
        f"--out {out} --resume"
    )
