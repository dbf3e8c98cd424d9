"""One run's TensorBoard event file (bnlab.outputs.tensorboard.RunLog), read back with
TensorBoard's own loader."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.tensorboard_read import description, read, scalars, steps, tags, text, values

from bnlab.engine import histogram
from bnlab.outputs.tags import CURVE_TAGS, FINAL_TAG, PERCENTILE_TAG, describe
from bnlab.outputs.tensorboard import RunLog


def _binned(values):
    return jax.tree.map(np.asarray, histogram(jnp.asarray(values)))


def write_run(logdir, run, histograms, scalars=None, finals=None):
    """``run`` (a metrics.json entry) and ``histograms`` (tag -> one row of values per step)
    through a RunLog, evaluation by evaluation, as the live board feeds it."""
    curves = {tag: run.get(key) or [] for key, tag in CURVE_TAGS.items()}
    for q, series in (run.get("percentiles") or {}).items():
        curves[PERCENTILE_TAG.format(q=q)] = series
    curves |= scalars or {}
    logdir.mkdir(parents=True)
    log = RunLog(logdir, lambda tag: describe(tag, run.get("percentile_unit")))
    diverged = run.get("diverged_at")
    for i, step in enumerate(run["steps"]):
        point = {tag: v[i] for tag, v in curves.items() if i < len(v)}
        hists = {tag: _binned(rows[i]) for tag, rows in histograms.items()}
        log.evaluation(step, point, hists, diverged)
    log.finish(finals or {})
    log.close()


def _run(**extra):
    run = {
        "variant": "bn",
        "seed": 0,
        "steps": [100, 200, 300],
        "test_accuracy": [0.5, 0.75, 0.875],
        "test_loss": [1.5, 0.5, 0.25],
        "train_loss": [2.0, 1.0, 0.125],
        "percentiles": {"15": [-1.0, -0.5, -0.25], "50": [0.0, 0.5, 1.0], "85": [1.0, 2.0, 4.0]},
        "diverged_at": None,
        "population_test_accuracy": 0.9375,
        "batch_stats_test_accuracy": {"60": 0.875, "1": 0.125},
    }
    run.update(extra)
    return run


# the final evaluations, passed explicitly (the engine's RunResult.finals), not read from the entry
FINALS = {
    "population_test_accuracy": 0.9375,
    "batch_stats_test_accuracy/60": 0.875,
    "batch_stats_test_accuracy/1": 0.125,
}


def _histograms():
    rng = np.random.default_rng(0)
    return {
        "layer1/bn_input": rng.normal(size=(3, 50)).astype(np.float32),
        "layer3/sigmoid_input": rng.normal(size=(3, 20)).astype(np.float32),
    }


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("accuracy/test", [(100, 0.5), (200, 0.75), (300, 0.875)]),
        ("loss/test", [(100, 1.5), (200, 0.5), (300, 0.25)]),
        ("loss/train", [(100, 2.0), (200, 1.0), (300, 0.125)]),
        ("typical_unit_input/p15", [(100, -1.0), (200, -0.5), (300, -0.25)]),
        ("typical_unit_input/p50", [(100, 0.0), (200, 0.5), (300, 1.0)]),
        ("typical_unit_input/p85", [(100, 1.0), (200, 2.0), (300, 4.0)]),
    ],
)
def test_scalars_read_back_exactly(tmp_path, tag, expected):
    write_run(tmp_path / "bn-seed0", _run(), _histograms(), finals=FINALS)
    assert scalars(read(tmp_path / "bn-seed0"), tag) == expected


@pytest.mark.parametrize("tag", ["layer1/bn_input", "layer3/sigmoid_input"])
def test_histograms_read_back_with_counts_and_ranges(tmp_path, tag):
    hists = _histograms()
    write_run(tmp_path / "bn-seed0", _run(), hists)
    events = values(read(tmp_path / "bn-seed0"), tag)
    assert [step for step, _ in events] == [100, 200, 300]
    for (_, buckets), row in zip(events, hists[tag], strict=True):
        counts, edges = np.histogram(row, 64)
        assert buckets[:, 2].tolist() == counts.tolist()
        assert buckets[:, 0] == pytest.approx(edges[:-1], abs=1e-6)
        assert buckets[:, 1] == pytest.approx(edges[1:], abs=1e-6)
        assert (buckets[0, 0], buckets[-1, 1]) == (float(row.min()), float(row.max()))


def test_diverged_run_keeps_steps_before_divergence_only(tmp_path):
    run = _run(
        diverged_at=200,
        test_accuracy=[0.5, None, None],
        test_loss=[1.5, None, None],
        train_loss=[2.0, None, None],
        percentiles={"15": [-1.0, None, None], "50": [0.0, None, None], "85": [1.0, None, None]},
        population_test_accuracy=None,
        batch_stats_test_accuracy={"60": None, "1": None},
    )
    hists = {"layer1/bn_input": np.array([[0.0, 1.0], [np.nan, 1.0], [np.inf, 0.0]])}
    finals = {
        "population_test_accuracy": None,
        "batch_stats_test_accuracy/60": None,
        "batch_stats_test_accuracy/1": float("nan"),
    }
    write_run(tmp_path / "bn-seed0", run, hists, finals=finals)
    acc = read(tmp_path / "bn-seed0")
    assert scalars(acc, "accuracy/test") == [(100, 0.5)]
    assert steps(acc, "layer1/bn_input") == [100]
    assert text(acc, "run/status") == [
        (200, "diverged at step 200: the loss became NaN or inf, or exceeded 1,000")
    ]
    # the histograms after the divergence step are not written, nor counted as skipped
    assert "run/skipped_histograms/text_summary" not in acc.Tags()["tensors"]
    ((step, table),) = text(acc, FINAL_TAG)
    assert step == 200 and "diverged at step 200" in table and "population" not in table


def test_scalar_tags_are_exactly_curves_and_percentiles_finals_are_text(tmp_path):
    # percentile_unit is an index, not a measurement: it gets no scalar; the final numbers are
    # one table, not single-point scalar cards
    write_run(tmp_path / "bn-seed0", _run(percentile_unit=42), _histograms(), finals=FINALS)
    acc = read(tmp_path / "bn-seed0")
    assert tags(acc, "scalars") == [
        "accuracy/test",
        "loss/test",
        "loss/train",
        "typical_unit_input/p15",
        "typical_unit_input/p50",
        "typical_unit_input/p85",
    ]
    ((step, table),) = text(acc, FINAL_TAG)
    assert step == 300
    assert table.splitlines()[:2] == ["| measurement | value |", "|---|---|"]
    assert "| test accuracy, BN with its running averages, step 300 | 0.8750 |" in table
    assert "Algorithm 2's population statistics, end of training | 0.9375 |" in table
    # population first, then the batch statistics from the largest batch to the smallest
    assert table.index("population") < table.index("batches of 60") < table.index("batches of 1 ")


def test_final_numbers_come_from_finals_not_from_the_entry(tmp_path):
    # the entry still holds population_test_accuracy etc., but only ``finals`` is written
    write_run(tmp_path / "bn-seed0", _run(), _histograms())
    ((_, table),) = text(read(tmp_path / "bn-seed0"), FINAL_TAG)
    assert "population" not in table and "batches of" not in table


def test_every_tag_has_a_description(tmp_path):
    write_run(tmp_path / "bn-seed0", _run(), _histograms(), finals=FINALS)
    acc = read(tmp_path / "bn-seed0")
    for tag in acc.Tags()["tensors"]:
        assert len(description(acc, tag)) > 40, tag
    assert "running averages" in description(acc, "accuracy/test")


def test_further_scalars_are_written_and_none_skipped(tmp_path):
    further = {"ics/distance/2": [0.5, None, 0.25], "landscape/loss_max": [2.0, 1.0, 0.5]}
    write_run(tmp_path / "bn-seed0", _run(), _histograms(), scalars=further)
    acc = read(tmp_path / "bn-seed0")
    assert scalars(acc, "ics/distance/2") == [(100, 0.5), (300, 0.25)]
    assert scalars(acc, "landscape/loss_max") == [(100, 2.0), (200, 1.0), (300, 0.5)]
