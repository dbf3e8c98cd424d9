"""Errors as a user meets them: one line on stderr, exit status 2 for anything the user (or the
system) caused, "internal error" and status 1 for bnlab's own bugs, the traceback only on request;
and an exploding network is an outcome with a report, not a crash."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_fixtures import bnlab_here
from helpers.tensorboard_read import read, steps, text

from bnlab.cli import main
from bnlab.engine import histogram
from bnlab.experiments import FIGURE1, preset, run_experiment
from bnlab.outputs.tags import SKIPPED_TAG
from bnlab.outputs.tensorboard import RunLog


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reproduce", "--steps", "x"], "Invalid value for '--steps'"),
        (["reproduce", "--bogus"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
        (["analyze", "ics", "--seeds", "1.5"], "Invalid value for '--seeds'"),
        (["sweep"], "Missing argument 'config'"),
        (["report", "--out"], "Option '--out' requires an argument"),
    ],
)
def test_command_line_errors_are_one_line_with_a_help_hint(capsys, monkeypatch, args, message):
    code, stderr = bnlab_here(capsys, monkeypatch, *args)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("bnlab: error: ")
    assert message in stderr and "-h')" in stderr


def test_a_path_under_a_file_is_a_user_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "file" / "run"
    code, stderr = bnlab_here(capsys, monkeypatch, "reproduce", "--steps", "20", "--out", str(out))
    assert code == 2
    assert stderr == f"bnlab: error: --out {out}: {out.parent} is a file, expected a directory\n"


def _boom(*args, **kwargs):
    raise RuntimeError("boom")


def test_an_internal_error_is_one_line_and_status_1(capsys, monkeypatch):
    monkeypatch.delenv("BNLAB_DEBUG", raising=False)
    monkeypatch.setattr("bnlab.cli.data.load_mnist", _boom)
    code, stderr = bnlab_here(capsys, monkeypatch, "data", "info")
    assert code == 1
    assert stderr.count("\n") == 1
    assert stderr.startswith("bnlab: internal error: RuntimeError: boom (a bug in bnlab; rerun")


@pytest.mark.parametrize("how", ["env", "flag"])
def test_debug_shows_the_traceback(monkeypatch, how):
    monkeypatch.delenv("BNLAB_DEBUG", raising=False)
    monkeypatch.setattr("bnlab.cli.data.load_mnist", _boom)
    if how == "env":
        monkeypatch.setenv("BNLAB_DEBUG", "1")
    argv = ["bnlab", "data", "info"] if how == "env" else ["bnlab", "--debug", "data", "info"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(RuntimeError, match="boom"):
        main()


def test_histograms_of_values_too_large_to_bin_are_skipped_and_counted(tmp_path):
    log = RunLog(tmp_path)
    for step, values in [(1, [1e30, -1e30, 3e29]), (2, [0.1, 0.2, 0.3])]:
        binned = jax.tree.map(np.asarray, histogram(jnp.array(values)))
        log.evaluation(step, {"accuracy/test": 0.5}, {"layer1/bn_input": binned})
    log.close()
    events = read(tmp_path)
    assert steps(events, "layer1/bn_input") == [2]
    ((_, note),) = text(events, SKIPPED_TAG)
    assert note.startswith("1 histogram(s) not written")


@pytest.mark.slow
def test_an_exploding_network_still_gets_its_figure_report_and_logs(tmp_path):
    """lr 1e28: the BN network's loss is inf at step 2, the other's finite but far above the
    divergence bound (its activations reach ~1e26): both are diverged at step 2."""
    config = preset("paper").replace(lr=1e28, steps=200, eval_every=100, hidden=(32, 32))
    run = run_experiment(FIGURE1, config, tmp_path / "run")
    assert {r["variant"]: r["diverged_at"] for r in run.metrics["runs"]} == {
        "baseline": 2,
        "bn": 2,
    }
    for name in ("report.md", "figure1.png", "figure1.svg", "timing.json"):
        assert (tmp_path / "run" / name).exists()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "without BN, seed 0: diverged at step 2" in report
    assert "with BN, seed 0: diverged at step 2" in report
    logs = tmp_path / "run" / "tensorboard"
    assert sorted(p.name for p in logs.iterdir() if p.is_dir()) == ["baseline-seed0", "bn-seed0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reproduce", "--preset", ""], "--preset: expected one of seed, paper, convnet, got ''"),
        (["reproduce", "--resume"], "--resume: expected --out DIR"),
        (["reproduce", "--first-seed", "99999999999999"], "--first-seed: expected seeds up to"),
        (["reproduce", "--seeds", "3", "--first-seed", "2147483646"], "expected seeds up to"),
        (
            ["reproduce", "--steps", "9223372036854775807"],
            "--steps: expected at most 2,147,483,647",
        ),
        (["summary", "--hidden", "99999999999999999999999"], "--hidden: expected sizes <= 65,536"),
        (["analyze", "noisy-bn", "--noise-mean", "nan,nan"], "--noise-mean: expected finite"),
        (["analyze", "noisy-bn", "--noise-mean", "0,inf"], "--noise-mean: expected finite"),
        (["analyze", "noisy-bn", "--noise-std", "nan"], "--noise-std must be a finite number"),
        (["analyze", "noisy-bn", "--noise-jitter", "inf"], "--noise-jitter must be a finite"),
        (["analyze", "noisy-bn", "--noise-scale", "-1,-0.5"], "--noise-scale LOW must be > 0"),
        (["analyze", "landscape", "--step-range", "0.5,inf"], "--step-range: expected LOW,HIGH"),
        (["analyze", "lr-sweep", "--lr", "10", "--multipliers", "1e308"], "lr 10 x 1e+308"),
        (["analyze", "lr-sweep", "--multipliers", "1,1"], "--multipliers: expected distinct"),
    ],
)
def test_values_that_make_no_sense_are_refused_before_anything_is_written(
    tmp_path, capsys, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    code, stderr = bnlab_here(capsys, monkeypatch, *args)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("bnlab: error: ")
    assert message in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a sweep (fields or a [grid]); the file has none"),
        ("# only a comment\n", "expected a sweep (fields or a [grid]); the file has none"),
        ("seeds = [0, 1]\nfirst_seed = 3\n", "first_seed: a seeds list names its seeds"),
    ],
)
def test_sweep_files_that_say_nothing_or_contradict_themselves(
    tmp_path, capsys, monkeypatch, text, message
):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    code, stderr = bnlab_here(capsys, monkeypatch, "sweep", str(path), "--out", str(tmp_path / "o"))
    assert code == 2
    assert stderr.startswith(f"bnlab: error: {path}: ") and stderr.count("\n") == 1
    assert message in stderr
    assert not (tmp_path / "o").exists()


def test_a_sweep_file_with_a_byte_order_mark_is_read(tmp_path):
    from bnlab.experiments import load_sweep

    path = tmp_path / "sweep.toml"
    path.write_bytes(b"\xef\xbb\xbfsteps = 20\n[grid]\nlr = [0.001, 0.003]\n")
    sweep = load_sweep(path)
    assert sweep.base.steps == 20 and sweep.grid == {"lr": (0.001, 0.003)}


def _step_minus_5(path):
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["step"] = np.asarray(-5)
    np.savez(path.with_suffix(""), **arrays)  # np.savez adds the .npz back


def _nan_weights(path):
    """The first layer's weights of a run that has not diverged set to NaN (leaf g0/0)."""
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["g0/0"] = np.full_like(arrays["g0/0"], np.nan)
    np.savez(path.with_suffix(""), **arrays)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_nan_weights, "state.npz: NaN or inf parameters in a run that has not diverged"),
        (lambda p: p.write_bytes(b""), "state.npz is missing or empty: the run stopped before"),
        (lambda p: p.unlink(), "state.npz is missing or empty: the run stopped before"),
        (lambda p: p.write_bytes(b"PK\x03\x04garbage"), "state.npz: not a readable checkpoint"),
        (_step_minus_5, "state.npz: expected a step in 1..40, got array(-5)"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_on_resume(tmp_path, capsys, monkeypatch, damage, message):
    out = tmp_path / "run"
    args = ("reproduce", "--steps", "40", "--eval-every", "20", "--hidden", "8", "--out", str(out))
    assert bnlab_here(capsys, monkeypatch, *args)[0] == 0
    damage(out / "training_state" / "state.npz")
    code, stderr = bnlab_here(capsys, monkeypatch, "reproduce", "--out", str(out), "--resume")
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("bnlab: error: ")
    assert message in stderr
