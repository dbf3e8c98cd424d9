"""kill -9 in the middle of `bnlab analyze` and `bnlab sweep`, then --resume: the run ends with the
metrics.json of a run that was never interrupted, byte for byte. Each test starts the real
command in a child process, waits for its first saved state, kills it there and resumes it.
(`bnlab reproduce`: tests/test_reproduce.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.bad_inputs import STEMS, idx

from bnlab.data import load_mnist

SRC = str(Path(__file__).resolve().parents[1] / "src")
# an analysis trains on the whole MNIST: an epoch (one saved state) is 1,000 steps of 60
ANALYZE = ("--seeds", "1", "--steps", "1250", "--eval-every", "250")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """The tests' own compile cache: the killed and the resumed runs compile nothing."""
    cache = tmp_path_factory.mktemp("xla")
    return {**os.environ, "PYTHONPATH": SRC, "BNLAB_COMPILE_CACHE": str(cache)}


def _start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bnlab", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(child: subprocess.Popen) -> None:
    _, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr[-2000:]


def _kill_at_first_state(child: subprocess.Popen, state: Path, steps: int) -> None:
    """SIGKILL ``child`` as soon as ``state`` is saved (before the run's ``steps``-th step)."""
    deadline = time.monotonic() + 300
    while not state.exists():
        assert child.poll() is None, child.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with np.load(state) as saved:
        assert 0 < int(saved["step"]) < steps


def _whole_and_killed(env, tmp_path, args, state: str, steps: int) -> tuple[Path, Path]:
    """Train ``args`` whole, then again killed at ``state`` (relative to the run directory)."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _finish(_start(env, *args, "--out", str(whole)))
    _kill_at_first_state(_start(env, *args, "--out", str(killed)), killed / state, steps)
    assert not (killed / "metrics.json").exists()
    assert '"status": "running"' in (killed / "status.json").read_text()
    return whole, killed


def _resume_and_compare(env, whole: Path, killed: Path, *args: str) -> None:
    _finish(_start(env, *args, "--out", str(killed), "--resume"))
    assert (killed / "metrics.json").read_bytes() == (whole / "metrics.json").read_bytes()


@pytest.mark.slow
def test_analysis_of_one_phase_resumes_after_kill_9_bit_identical(env, tmp_path):
    """noisy BN: its noise is drawn from the step, so a resumed run draws what the whole one did."""
    args = ("analyze", "noisy-bn", *ANALYZE)
    whole, killed = _whole_and_killed(env, tmp_path, args, "training_state/state.npz", 1250)
    _resume_and_compare(env, whole, killed, *args[:2])


@pytest.mark.slow
def test_analysis_of_several_phases_resumes_after_kill_9_from_the_old_folder(env, tmp_path):
    """lr-sweep trains one phase per multiplier, each with its own state: killed in its second
    phase (the first one finished), it resumes there. Its state folder is first given the name
    an older bnlab wrote (checkpoint/), which --resume still reads."""
    args = ("analyze", "lr-sweep", "--multipliers", "1,5", *ANALYZE)
    state = "training_state/phase1/state.npz"
    whole, killed = _whole_and_killed(env, tmp_path, args, state, 1250)
    (killed / "training_state").rename(killed / "checkpoint")
    _resume_and_compare(env, whole, killed, *args[:2])
    assert not (killed / "training_state").exists()


SWEEP = """\
preset = "seed"
steps = 200
eval_every = 50
hist_examples = 2
data_dir = "{data}"
seeds = [0, 1]
[grid]
lr = [0.001, 0.003]
hidden = [[32, 32], [16, 16]]
"""


def _small_mnist(directory: Path) -> Path:
    """The first 600 training and 500 test images of MNIST: an epoch is 10 steps of 60."""
    mnist = load_mnist()
    directory.mkdir()
    for key, stem in STEMS.items():
        (directory / stem).write_bytes(idx(getattr(mnist, key)[: 600 if "train" in key else 500]))
    return directory


@pytest.mark.slow
def test_sweep_resumes_after_kill_9_bit_identical_on_two_devices(env, tmp_path):
    """Two programs (one per hidden size), each a phase, 8 runs sharded over two CPU devices:
    killed in the second phase, the sweep resumes there and restores each device's runs."""
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP.format(data=_small_mnist(tmp_path / "data")), encoding="utf-8")
    env = {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    args = ("sweep", str(config), "--devices", "2")
    whole, killed = _whole_and_killed(env, tmp_path, args, "training_state/phase1/state.npz", 200)
    _resume_and_compare(env, whole, killed, *args)
