"""TensorBoard logs written while a run trains (bnlab.outputs.live_board): read with TensorBoard's
own event loader before the run ends, after it ends, after a resume; and the board on hand-made
evaluation records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.tensorboard_read import description, every_series, read, scalars, steps, tags, text
from helpers.tensorboard_read import walls as wall_times
from tensorboard.plugins.hparams import api_pb2, metadata

from bnlab.engine import Evaluation, Record, histogram
from bnlab.outputs.live_board import BoardRun, LiveBoard, write_experiment
from bnlab.outputs.tags import FINAL_TAG, SKIPPED_TAG, STATUS_TAG

SRC = str(Path(__file__).resolve().parents[1] / "src")
CURVES = ["accuracy/test", "accuracy/train", "loss/test", "loss/train"]
PERCENTILE_TAGS = ["typical_unit_input/p15", "typical_unit_input/p50", "typical_unit_input/p85"]


def _popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bnlab", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )


def _wait_for(predicate, child: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _points(logdir: Path) -> int:
    if not logdir.is_dir() or not any(logdir.iterdir()):
        return 0
    acc = read(logdir)
    return len(steps(acc, "accuracy/test")) if "accuracy/test" in tags(acc, "scalars") else 0


@pytest.mark.slow
def test_logs_grow_while_the_run_trains(tmp_path):
    out = tmp_path / "run"
    child = _popen(
        "reproduce", "--steps", "6000", "--eval-every", "500", "--hidden", "32", "--out", str(out)
    )
    try:
        logdir = out / "tensorboard" / "bn-seed0"
        _wait_for(lambda: _points(logdir) >= 3, child)
        during = read(logdir)
        running = child.poll() is None
        n = len(steps(during, "accuracy/test"))
        assert running, "the run ended before its logs were read"
        assert not (out / "metrics.json").exists()
        assert steps(during, "accuracy/test") == [500 * (i + 1) for i in range(n)]
        for tag in [*CURVES, *PERCENTILE_TAGS]:
            # every tag of an evaluation is written before the next evaluation's
            assert steps(during, tag)[: n - 1] == steps(during, "accuracy/test")[: n - 1], tag
        walls = wall_times(during, "accuracy/test")
        assert np.all(np.diff(walls) > 0), walls
        assert child.wait(timeout=600) == 0, child.stderr.read().decode()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    evals = list(range(500, 6001, 500))
    for name in ("baseline-seed0", "bn-seed0"):
        acc = read(out / "tensorboard" / name)
        series = every_series(acc)
        for tag in [*CURVES, *PERCENTILE_TAGS, *tags(acc, "histograms")]:
            assert series[tag] == evals, (name, tag)
        walls = wall_times(acc, "accuracy/test")
        assert np.all(np.diff(walls) > 0), walls
        assert walls[-1] - walls[0] > 0.01
        assert series[f"{FINAL_TAG}/text_summary"] == [6000]
    metrics = json.loads((out / "metrics.json").read_text())
    bn = next(r for r in metrics["runs"] if r["variant"] == "bn")
    events = scalars(read(out / "tensorboard" / "bn-seed0"), "accuracy/test")
    assert [v for _, v in events] == pytest.approx(bn["test_accuracy"], rel=1e-6)


@pytest.mark.slow
def test_a_resumed_run_has_each_evaluation_once(tmp_path):
    out = tmp_path / "run"
    args = ("reproduce", "--steps", "4000", "--eval-every", "500", "--hidden", "32,32")
    child = _popen(*args, "--out", str(out))
    _wait_for(lambda: (out / "training_state" / "state.npz").exists(), child)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (out / "metrics.json").exists()
    killed = read(out / "tensorboard" / "bn-seed0")
    assert steps(killed, "accuracy/test")[:2] == [500, 1000]  # the killed part wrote its logs

    resumed = subprocess.run(
        [sys.executable, "-m", "bnlab", "reproduce", "--out", str(out), "--resume"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert resumed.returncode == 0, resumed.stderr
    evals = list(range(500, 4001, 500))
    metrics = json.loads((out / "metrics.json").read_text())
    for run in metrics["runs"]:
        logdir = out / "tensorboard" / f"{run['variant']}-seed0"
        assert len(list(logdir.iterdir())) == 1  # the killed part's file was replaced
        acc = read(logdir)
        series = every_series(acc)
        for tag in [*CURVES, *PERCENTILE_TAGS, *tags(acc, "histograms")]:
            assert series[tag] == evals, (logdir.name, tag)
        values = [v for _, v in scalars(acc, "accuracy/test")]
        assert values == pytest.approx(run["test_accuracy"], rel=1e-6)


# --- the board on hand-made records ------------------------------------------------------------


def _record(k: int, step: int, diverged_at=None, hist=None, measures=None) -> Record:
    """A group's evaluation with ``k`` runs: run j's test accuracy is step / 1000 + j / 100."""
    j = np.arange(k)
    rng = np.random.default_rng(step)
    values = {
        "layer1/bn_input": rng.normal(size=(k, 40)),
        "layer1/sigmoid_input": rng.normal(size=(k, 40)),
    }
    values |= hist or {}
    histograms = {
        tag: jax.tree.map(np.asarray, jax.vmap(histogram)(jnp.asarray(rows, jnp.float32)))
        for tag, rows in values.items()
    }
    evaluation = Evaluation(
        test_accuracy=step / 1000 + j / 100,
        test_loss=1 / step + j,
        train_accuracy=step / 2000 + j / 100,
        percentiles=np.stack([-1.0 - j, 0.0 + j, 1.0 + j], axis=1) * step,
        histograms=histograms,
        measures=measures or {},
    )
    diverged = np.full(k, -1) if diverged_at is None else np.asarray(diverged_at)
    return Record(evaluation, train_loss=2 / step + j, diverged_at=diverged)


def test_every_evaluation_in_step_order_each_file_flushed_as_it_comes(tmp_path):
    board = LiveBoard(tmp_path, [["a-seed0", "a-seed1"], ["b-seed0"]], percentiles=(15, 50, 85))
    units = [np.array([3, 4, 99]), np.array([7, 99])]  # one padded run in each group
    for step in (100, 200):
        # records carry a padded run beyond each group's names: it is ignored
        board.record(step, [_record(3, step), _record(2, step)], units)
        # flushed: the loader sees this evaluation while the files are still open
        assert steps(read(tmp_path / "b-seed0"), "accuracy/test")[-1] == step
        time.sleep(0.01)
    board.finish([{}, {}, {"population_test_accuracy": 0.5}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-seed0", "a-seed1", "b-seed0"]
    acc = read(tmp_path / "a-seed1")
    assert scalars(acc, "accuracy/test") == [
        (100, pytest.approx(0.11)),
        (200, pytest.approx(0.21)),
    ]
    assert [v for _, v in scalars(acc, "typical_unit_input/p85")] == [200.0, 400.0]
    walls = wall_times(acc, "loss/train")
    assert walls[1] - walls[0] >= 0.01
    # the percentiles' description names the run's own typical unit
    assert "unit 4 of the last hidden layer" in description(acc, PERCENTILE_TAGS[0])
    ((step, table),) = text(read(tmp_path / "b-seed0"), FINAL_TAG)
    assert step == 200 and "population statistics, end of training | 0.5000 |" in table


def test_nothing_after_the_divergence_step_and_the_status_once(tmp_path):
    board = LiveBoard(tmp_path, [["a-seed0", "a-seed1"]], percentiles=(15, 50, 85))
    units = [np.array([0, 0])]
    # run 1 diverges at step 150: the evaluations at 200 and 300 are not written
    for step in (100, 200, 300):
        board.record(step, [_record(2, step, diverged_at=[-1, 150 if step >= 150 else -1])], units)
    board.finish([{"population_test_accuracy": 0.9}, {}])
    alive, dead = read(tmp_path / "a-seed0"), read(tmp_path / "a-seed1")
    assert steps(alive, "accuracy/test") == [100, 200, 300]
    assert STATUS_TAG + "/text_summary" not in alive.Tags()["tensors"]
    for tag in [*CURVES, *PERCENTILE_TAGS]:
        assert steps(dead, tag) == [100], tag
    assert steps(dead, "layer1/bn_input") == [100]
    assert text(dead, STATUS_TAG) == [
        (150, "diverged at step 150: the loss became NaN or inf, or exceeded 1,000")
    ]
    ((step, table),) = text(dead, FINAL_TAG)
    assert step == 150 and "diverged at step 150" in table and "step 100 | 0.1100 |" in table


def test_non_finite_and_unbinnable_histograms_are_skipped_and_counted(tmp_path):
    board = LiveBoard(tmp_path, [["a-seed0"]], percentiles=(15, 50, 85))
    bad = {
        100: {"layer2/bn_input": np.array([[0.0, np.nan]])},
        200: {"layer2/bn_input": np.array([[1e30, -1e30]])},
        300: {"layer2/bn_input": np.array([[0.0, 1.0]])},
    }
    for step, hist in bad.items():
        record = _record(1, step, hist=hist)
        if step == 200:  # a non-finite scalar is skipped too
            record = record._replace(evaluation=record.evaluation._replace(test_loss=[np.inf]))
        board.record(step, [record], [np.array([0])])
    board.finish([{}])
    acc = read(tmp_path / "a-seed0")
    assert steps(acc, "layer2/bn_input") == [300]
    assert steps(acc, "layer1/bn_input") == [100, 200, 300]
    notes = text(acc, SKIPPED_TAG)
    assert [(s, t.split(" ")[0]) for s, t in notes] == [(100, "1"), (200, "2")]
    assert notes[-1][1].startswith("2 histogram(s) not written: their values were NaN, inf")
    assert steps(acc, "accuracy/test") == [100, 200, 300]
    assert steps(acc, "loss/test") == [100, 300]


def test_every_tag_is_described(tmp_path):
    measures = {
        "ics": {"distance": {"2": np.array([0.5])}},
        # one value per last-layer unit: only the unit-measure mapping shows it
        "per_unit": {"15": np.array([[1.0, 2.0, 3.0]])},
    }
    board = LiveBoard(
        tmp_path,
        [["a-seed0"]],
        percentiles=(15, 50, 85),
        examples=20,
        unit_measures={"per_unit": ("unit_train/p{key}", "The {key}th, unit {unit}.")},
    )
    board.record(100, [_record(1, 100, measures=measures)], [np.array([2])])
    board.finish([{}])
    acc = read(tmp_path / "a-seed0")
    assert tags(acc, "scalars") == sorted(
        [*CURVES, *PERCENTILE_TAGS, "ics/distance/2", "unit_train/p15"]
    )
    assert [v for _, v in scalars(acc, "unit_train/p15")] == [3.0]  # at the typical unit, 2
    assert description(acc, "unit_train/p15") == "The 15th, unit 2."
    for tag in acc.Tags()["tensors"]:
        assert description(acc, tag), tag
    describes = {t: description(acc, t) for t in tags(acc, "scalars")}
    assert "test set" in describes["accuracy/test"]
    assert "running averages" in describes["loss/test"]
    assert "training mini-batches" in describes["loss/train"]
    assert "unit 2" in describes["typical_unit_input/p50"]
    assert "middle one of the layer's medians" in describes["typical_unit_input/p50"]
    assert "first 20 images" in description(acc, "layer1/bn_input")


def test_a_new_board_replaces_a_runs_old_logs(tmp_path):
    for accuracy_step in (100, 200):
        board = LiveBoard(tmp_path, [["a-seed0"]], percentiles=(15, 50, 85))
        board.record(accuracy_step, [_record(1, accuracy_step)], [np.array([0])])
        board.close()
    logdir = tmp_path / "a-seed0"
    assert len(list(logdir.iterdir())) == 1
    assert steps(read(logdir), "accuracy/test") == [200]


def test_finals_must_match_the_runs(tmp_path):
    board = LiveBoard(tmp_path, [["a-seed0"], ["b-seed0"]], percentiles=(15, 50, 85))
    with pytest.raises(ValueError, match=r"expected one per run \(2\), got 1"):
        board.finish([{}])
    board.close()


def _plugin_data(acc, tag, parse):
    return parse(acc.SummaryMetadata(tag).plugin_data.content)


@pytest.mark.parametrize(
    ("diverged_at", "status"), [(None, "STATUS_SUCCESS"), (150, "STATUS_FAILURE")]
)
def test_a_run_is_an_hparams_session_with_its_constants_logged(tmp_path, diverged_at, status):
    run = BoardRun(
        "bn-lr0.01-seed3",
        {"optimizer/learning_rate": 0.01},
        {"network": "with BN", "lr": 0.01, "hidden": "100-100", "seed": 3},
        "network=with BN, lr=0.01, hidden=100-100",
    )
    board = LiveBoard(tmp_path, [[run]], percentiles=(15, 50, 85))
    for step in (100, 200):
        board.record(step, [_record(1, step, diverged_at=[diverged_at or -1])], [np.array([0])])
    board.finish([{}])
    acc = read(tmp_path / run.name)
    expected = [(100, pytest.approx(0.01))] + (
        [(200, pytest.approx(0.01))] if not diverged_at else []
    )
    assert scalars(acc, "optimizer/learning_rate") == expected
    assert "constant over the run" in description(acc, "optimizer/learning_rate")
    start = _plugin_data(
        acc, "_hparams_/session_start_info", metadata.parse_session_start_info_plugin_data
    )
    assert start.group_name == "network=with BN, lr=0.01, hidden=100-100"
    assert {k: v.WhichOneof("kind") for k, v in start.hparams.items()} == {
        "network": "string_value",
        "lr": "number_value",
        "hidden": "string_value",
        "seed": "number_value",
    }
    assert (start.hparams["network"].string_value, start.hparams["lr"].number_value) == (
        "with BN",
        0.01,
    )
    end = _plugin_data(
        acc, "_hparams_/session_end_info", metadata.parse_session_end_info_plugin_data
    )
    assert api_pb2.Status.Name(end.status) == status


def test_the_experiment_lists_every_value_and_the_curves_as_metrics(tmp_path):
    sessions = [
        {"network": net, "lr": lr, "seed": seed}
        for net in ("without BN", "with BN")
        for lr in (0.001, 0.01)
        for seed in (0, 1)
    ]
    (tmp_path / "events.out.tfevents.1.old").write_bytes(b"")  # an earlier run's: replaced
    write_experiment(tmp_path, sessions)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    experiment = _plugin_data(
        read(tmp_path), "_hparams_/experiment", metadata.parse_experiment_plugin_data
    )
    infos = {
        i.name: (api_pb2.DataType.Name(i.type), list(i.domain_discrete))
        for i in experiment.hparam_infos
    }
    assert infos == {
        "network": ("DATA_TYPE_STRING", ["without BN", "with BN"]),
        "lr": ("DATA_TYPE_FLOAT64", [0.001, 0.01]),
        "seed": ("DATA_TYPE_FLOAT64", [0, 1]),
    }
    assert [m.name.tag for m in experiment.metric_infos] == CURVES
    assert all(m.description for m in experiment.metric_infos)
