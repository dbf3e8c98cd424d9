"""bnlab.outputs.probe_log: the framework-free half of Figure 1 for a user's model."""

from __future__ import annotations

import numpy as np
import pytest

from bnlab.errors import ConfigError
from bnlab.outputs.figures import build_figure1
from bnlab.outputs.probe_log import BINS, ProbeLog, by_unit, host_histogram, typical_unit


@pytest.mark.parametrize("shape", [(50,), (10, 5), (2, 3, 4, 5)])
def test_histogram_counts_as_numpy_does(shape):
    values = np.random.default_rng(0).normal(size=shape)
    h = host_histogram(values)
    counts, edges = np.histogram(values, BINS)
    assert (h.min, h.max) == (edges[0], edges[-1])
    np.testing.assert_array_equal(h.counts, counts)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_histogram_of_non_finite_values_has_non_finite_ends(bad):
    h = host_histogram(np.array([1.0, bad]))
    assert np.isnan(h.min) and np.isnan(h.max)


def test_histogram_of_equal_values_is_one_full_bucket():
    h = host_histogram(np.full(7, 2.5))
    assert (h.min, h.max, h.counts[0], h.counts[1:].sum()) == (2.5, 2.5, 7, 0)


def test_typical_unit_has_the_lower_middle_median():
    # unit medians 3, 1, 4, 2: sorted 1 (unit 1), 2 (unit 3), 3, 4: the lower middle is unit 3
    values = np.array([[3, 1, 4, 2], [3, 1, 4, 2], [3, 1, 4, 2]], float)
    assert typical_unit(values) == 3


def test_convolution_positions_are_examples_of_their_channel():
    values = np.arange(2 * 3 * 3 * 4).reshape(2, 3, 3, 4)
    units = by_unit(values, "conv")
    assert units.shape == (18, 4)
    np.testing.assert_array_equal(units[:, 1], values[..., 1].ravel())


def test_a_tap_without_a_units_axis_is_an_error():
    with pytest.raises(ConfigError, match=r"layer 'x': expected .* got shape \(5,\)"):
        ProbeLog("m").record(0, {"x": np.zeros(5)})


def test_steps_must_increase():
    log = ProbeLog("m")
    log.record(3, {"x": np.zeros((4, 2))})
    with pytest.raises(ConfigError, match="step: expected a step after 3, got 3"):
        log.record(3, {"x": np.zeros((4, 2))})


def test_the_layers_cannot_change_between_records():
    log = ProbeLog("m")
    log.record(0, {"x": np.zeros((4, 2))})
    with pytest.raises(ConfigError, match=r"inputs: expected the layers \['x'\], got \['y'\]"):
        log.record(1, {"y": np.zeros((4, 2))})


def test_percentiles_are_of_the_unit_chosen_at_the_first_record():
    rng = np.random.default_rng(0)
    first, later = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    log = ProbeLog("m")
    log.record(0, {"x": first})
    log.record(10, {"x": later})
    unit = typical_unit(first)
    curves = log.taps["x"]
    assert curves.unit == unit
    want = np.percentile(later[:, unit], [15, 50, 85])
    assert [curves.percentiles[q][1] for q in ("15", "50", "85")] == list(want)


def test_non_finite_values_become_null_as_in_metrics_json():
    log = ProbeLog("m")
    log.record(0, {"x": np.ones((4, 2))}, accuracy=0.5)
    log.record(1, {"x": np.full((4, 2), np.nan)}, accuracy=float("nan"))
    assert log.taps["x"].percentiles["50"] == [1.0, None]
    assert log.accuracy == [0.5, None]


def test_figure_without_validation_data_has_only_percentile_panels(tmp_path):
    log = ProbeLog("m")
    for step in (0, 5):
        log.record(step, {"x": np.arange(8.0).reshape(4, 2), "y": np.ones((4, 3))})
    metrics = {"runs": log.runs()}
    taps = {"m: x": "m: x", "m: y": "m: y"}
    titles = [ax.get_title() for ax in build_figure1(metrics, {}, taps).axes]
    assert titles == ["(b) m: x", "(c) m: y"]
