"""The checks before a run starts (bnlab.experiments.preflight): the memory and disk estimate,
the run directory's name and writability; and what a run leaves when it stops on an error
(status.json), and how --resume cleans and continues it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bnlab.data import load_mnist
from bnlab.engine import ModelSpec, TrainSpec
from bnlab.engine.devices import cpu_devices
from bnlab.engine.footprint import evaluations, run_footprint
from bnlab.errors import ConfigError
from bnlab.experiments import FIGURE1, SEED, preflight, prepare_experiment, run_experiment
from bnlab.experiments.rundir import remove_partial_outputs

TINY = SEED.replace(steps=20, eval_every=10, hidden=(8,))


@pytest.mark.parametrize(
    ("steps", "eval_every", "expected"), [(50_000, 1000, 50), (20, 10, 2), (25, 10, 3), (5, 10, 1)]
)
def test_evaluations_count_every_eval_every_and_the_last_step(steps, eval_every, expected):
    assert evaluations(TrainSpec(steps=steps, eval_every=eval_every)) == expected


def test_a_runs_footprint_follows_its_shapes():
    """One 784-10-10 network without BN (7,960 parameters), batch 60, one evaluation, 100 test
    images; every term written out. Its histograms: the hidden layer's input, kernel and bias,
    the output layer's kernel, bias and logits, each 64 buckets and its range."""
    model = ModelSpec(hidden=(10,))
    train = TrainSpec(steps=10, eval_every=10, batch_size=60, hist_examples=20)
    params = 784 * 10 + 10 + 10 * 10 + 10 + 2 * 10
    checkpoint = 4 * params * 2
    widths = 10 + 784 + 10
    record = 4 * (6 * (64 + 2) + 8)
    memory = 2 * checkpoint + 4 * 60 * widths * 4 + 4 * 100 * widths * 2 + 2 * record
    disk = 2 * checkpoint + record + 10 * 60 + 6 * 1300
    got = run_footprint(model, train, runs=3, num_test=100)
    assert (got.memory, got.disk) == (3 * memory, 3 * disk)


def _prepare(out, config=TINY, **kwargs):
    return prepare_experiment(FIGURE1, config, out, **kwargs)


def test_a_run_larger_than_the_memory_is_refused_with_the_estimate_and_the_override(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(preflight, "available_memory", lambda: 100 * 2**20)
    out = tmp_path / "a" / "run"
    with pytest.raises(ConfigError) as refused:
        _prepare(out)
    devices = len(cpu_devices(2))
    need = preflight.footprint(FIGURE1, TINY, {None: load_mnist()}, devices).memory
    assert str(refused.value).startswith(f"the run needs about {need / 2**30:.1f} GB of memory")
    assert "0.1 GB is available" in str(refused.value)
    assert str(refused.value).endswith("or pass --skip-resource-check to try anyway")
    assert not (tmp_path / "a").exists()  # the directories the probe made are gone again


def test_skip_resource_check_lets_the_run_start(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "available_memory", lambda: 100 * 2**20)
    prepared = _prepare(tmp_path / "run", check_resources=False)
    assert (prepared.out_dir / "config.json").exists()


def test_a_run_larger_than_the_free_disk_is_refused(tmp_path, monkeypatch):
    class Usage:
        free = 1000

    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(ConfigError, match=r"the run writes about 0\.0 GB .*0\.0 GB is free"):
        _prepare(tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (lambda t: t / ("x" * 300), "--out: a name of 300 bytes (xxxxxxxxxxxxxxxxxxxx...)"),
        (lambda t: t / "file" / "run", "file is a file, expected a directory"),
        (lambda t: Path("/proc/bnlab-run"), "--out /proc/bnlab-run: cannot write there"),
        (lambda t: Path("   "), "--out: expected a directory, got an empty name"),
    ],
    ids=["name-too-long", "under-a-file", "under-proc", "blank"],
)
def test_an_out_dir_that_cannot_be_made_is_one_line(tmp_path, out, message):
    (tmp_path / "file").write_text("a file")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _prepare(out(tmp_path))


def test_a_read_only_out_dir_is_refused_by_the_probe(tmp_path, monkeypatch):
    """Root ignores permission bits: the probe's write is what fails on a read-only mount."""

    def read_only(self, data):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(ConfigError, match=r"cannot write there \(Read-only file system\)"):
        preflight.probe_out_dir(tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists()


def _status(out: Path) -> dict:
    return json.loads((out / "status.json").read_text())


def test_a_finished_run_says_complete(tmp_path):
    run_experiment(FIGURE1, TINY, tmp_path / "run")
    assert _status(tmp_path / "run")["status"] == "complete"


def _fail_figures(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_run_that_fails_writing_its_outputs_says_failed_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patched:
        patched.setattr(type(FIGURE1), "figures", _fail_figures)
        with pytest.raises(OSError):
            run_experiment(FIGURE1, TINY, out)
    status = _status(out)
    assert status["status"] == "failed"
    assert status["error"] == "OSError: [Errno 28] No space left on device"
    assert not (out / "report.md").exists()
    # once space is freed, --resume writes what was missing from the saved state
    resumed = run_experiment(FIGURE1, TINY, out, resume=True)
    assert _status(out)["status"] == "complete"
    whole = run_experiment(FIGURE1, TINY, tmp_path / "whole")
    assert resumed.metrics == whole.metrics
    assert (out / "report.md").exists() and (out / "figure1.png").exists()


def test_resume_removes_what_a_killed_run_left_half_written(tmp_path):
    out = tmp_path / "run"
    run_experiment(FIGURE1, TINY, out)
    left = [
        out / "tensorboard" / ".baseline-seed0.abc123.tmp",
        out / ".metrics.json.x1y2.tmp",
        out / "training_state" / ".state.npz.q9.tmp",
    ]
    left[0].mkdir()
    (left[0] / "events.out.tfevents.1.host").write_bytes(b"half")
    for path in left[1:]:
        path.write_bytes(b"half")
    remove_partial_outputs(out)
    assert not any(p.exists() for p in left)
    # the runs' folders and the HParams experiment's event file
    kept = sorted(p.name for p in (out / "tensorboard").iterdir())
    assert kept[:2] == ["baseline-seed0", "bn-seed0"]
    assert len(kept) == 3 and kept[2].startswith("events.out.tfevents.")


def test_resume_without_a_saved_state_is_refused(tmp_path):
    out = tmp_path / "run"
    run_experiment(FIGURE1, TINY, out)
    os.remove(out / "training_state" / "state.npz")
    with pytest.raises(ConfigError, match=r"state\.npz is missing or empty: the run stopped"):
        _prepare(out, resume=True)


def test_overwrite_removes_the_checkpoint_folder_of_an_older_bnlab(tmp_path):
    """An older bnlab kept the state in checkpoint/ (tests/test_resume_kill.py resumes from it)."""
    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    (out / "config.json").write_text("{}")
    _prepare(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "status.json"]


@pytest.mark.parametrize(
    ("make", "what"), [(lambda p: None, "no such directory"), (Path.mkdir, "an empty directory")]
)
def test_resume_of_a_missing_or_empty_directory_is_refused(tmp_path, make, what):
    out = tmp_path / "mistyped"
    make(out)
    with pytest.raises(ConfigError) as refused:
        _prepare(out, resume=True)
    assert str(refused.value) == (f"--resume: --out {out} is {what}; expected the run to continue")
    assert sorted(tmp_path.iterdir()) == ([out] if out.exists() else [])


def test_a_refused_resume_leaves_the_status_it_found(tmp_path):
    """A finished run whose checkpoint is then damaged stays "complete" (and reportable)."""
    import numpy as np

    from bnlab.engine.checkpoint import CheckpointError

    out = tmp_path / "run"
    run_experiment(FIGURE1, TINY, out)
    before = (out / "status.json").read_bytes()
    state = out / "training_state" / "state.npz"
    arrays = dict(np.load(state, allow_pickle=False))
    arrays["fingerprint"] = np.asarray("another configuration")
    np.savez(state.with_suffix(""), **arrays)
    with pytest.raises(CheckpointError, match="saved by a different configuration"):
        run_experiment(FIGURE1, TINY, out, resume=True)
    assert (out / "status.json").read_bytes() == before
