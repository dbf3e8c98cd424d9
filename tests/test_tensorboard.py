import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import (
    HISTOGRAMS,
    SCALARS,
    TENSORS,
    EventAccumulator,
)

from bnlab.outputs.tensorboard import FINAL_TAG, write_run


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


def _read(logdir):
    acc = EventAccumulator(str(logdir), size_guidance={SCALARS: 0, HISTOGRAMS: 0, TENSORS: 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _text(acc, tag):
    return [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors(tag)]


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
    assert _scalars(_read(tmp_path / "bn-seed0"), tag) == expected


@pytest.mark.parametrize("tag", ["layer1/bn_input", "layer3/sigmoid_input"])
def test_histograms_read_back_with_counts_and_ranges(tmp_path, tag):
    hists = _histograms()
    write_run(tmp_path / "bn-seed0", _run(), hists)
    events = _read(tmp_path / "bn-seed0").Histograms(tag)
    assert [e.step for e in events] == [100, 200, 300]
    for event, row in zip(events, hists[tag], strict=True):
        h = event.histogram_value
        assert h.num == row.size
        assert sum(h.bucket) == row.size
        assert (h.min, h.max) == (float(row.min()), float(row.max()))
        assert h.sum == pytest.approx(float(row.astype(np.float64).sum()), rel=1e-12)


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
    acc = _read(tmp_path / "bn-seed0")
    assert _scalars(acc, "accuracy/test") == [(100, 0.5)]
    assert [e.step for e in acc.Histograms("layer1/bn_input")] == [100]
    assert _text(acc, "run/status/text_summary") == [
        (200, "diverged at step 200: the loss became NaN or inf, or exceeded 1,000")
    ]
    # the histograms after the divergence step are not written, nor counted as skipped
    assert "run/skipped_histograms/text_summary" not in acc.Tags()["tensors"]
    ((step, table),) = _text(acc, f"{FINAL_TAG}/text_summary")
    assert step == 200 and "diverged at step 200" in table and "population" not in table


def test_rewrite_replaces_the_event_file(tmp_path):
    logdir = tmp_path / "bn-seed0"
    write_run(logdir, _run(), _histograms())
    write_run(logdir, _run(test_accuracy=[0.25, 0.5, 1.0]), _histograms())
    assert len(list(logdir.iterdir())) == 1
    assert _scalars(_read(logdir), "accuracy/test") == [(100, 0.25), (200, 0.5), (300, 1.0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bn-seed0"]


def test_histogram_with_wrong_row_count_is_refused_and_nothing_is_left(tmp_path):
    with pytest.raises(ValueError, match=r"expected shape \(3, n_values\).*got \(2, 5\)"):
        write_run(tmp_path / "bn-seed0", _run(), {"layer1/bn_input": np.zeros((2, 5))})
    assert list(tmp_path.iterdir()) == []


def test_scalar_tags_are_exactly_curves_and_percentiles_finals_are_text(tmp_path):
    # percentile_unit is an index, not a measurement: it gets no scalar; the final numbers are
    # one table, not single-point scalar cards
    write_run(tmp_path / "bn-seed0", _run(percentile_unit=42), _histograms(), finals=FINALS)
    acc = _read(tmp_path / "bn-seed0")
    assert sorted(acc.Tags()["scalars"]) == [
        "accuracy/test",
        "loss/test",
        "loss/train",
        "typical_unit_input/p15",
        "typical_unit_input/p50",
        "typical_unit_input/p85",
    ]
    ((step, table),) = _text(acc, f"{FINAL_TAG}/text_summary")
    assert step == 300
    assert table.splitlines()[:2] == ["| measurement | value |", "|---|---|"]
    assert "| test accuracy, BN with its running averages, step 300 | 0.8750 |" in table
    assert "Algorithm 2's population statistics, end of training | 0.9375 |" in table
    # population first, then the batch statistics from the largest batch to the smallest
    assert table.index("population") < table.index("batches of 60") < table.index("batches of 1 ")


def test_final_numbers_come_from_finals_not_from_the_entry(tmp_path):
    # the entry still holds population_test_accuracy etc., but only ``finals`` is written
    write_run(tmp_path / "bn-seed0", _run(), _histograms())
    ((_, table),) = _text(_read(tmp_path / "bn-seed0"), f"{FINAL_TAG}/text_summary")
    assert "population" not in table and "batches of" not in table


def test_every_tag_has_a_description(tmp_path):
    write_run(tmp_path / "bn-seed0", _run(), _histograms(), finals=FINALS)
    acc = _read(tmp_path / "bn-seed0")
    tags = acc.Tags()
    for tag in [*tags["scalars"], *tags["histograms"], *tags["tensors"]]:
        assert len(acc.SummaryMetadata(tag).summary_description) > 40, tag
    assert "running averages" in acc.SummaryMetadata("accuracy/test").summary_description


def test_further_scalars_are_written_and_none_skipped(tmp_path):
    scalars = {"ics/distance/2": [0.5, None, 0.25], "landscape/loss_max": [2.0, 1.0, 0.5]}
    write_run(tmp_path / "bn-seed0", _run(), _histograms(), scalars=scalars)
    acc = _read(tmp_path / "bn-seed0")
    assert _scalars(acc, "ics/distance/2") == [(100, 0.5), (300, 0.25)]
    assert _scalars(acc, "landscape/loss_max") == [(100, 2.0), (200, 1.0), (300, 0.5)]
