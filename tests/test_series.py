import numpy as np
import pytest
from outputs_fixtures import diverged_metrics

from bnlab.outputs.series import checkpoint_steps, mean_std, series, variants


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (list(range(1000, 50_001, 1000)), [10_000, 20_000, 30_000, 40_000, 50_000]),
        # a run shorter than 10k steps: fifths of it
        (list(range(100, 501, 100)), [100, 200, 300, 400, 500]),
        # nearest evaluation steps (ties to the earlier), and the last step once
        ([0, 7000, 14_000, 21_000], [7000, 21_000]),
        ([5000, 10_000, 15_000, 25_000], [10_000, 15_000, 25_000]),
        ([], []),
    ],
)
def test_checkpoint_steps(steps, expected):
    assert checkpoint_steps(steps) == expected


@pytest.mark.parametrize(
    "values", [[0.5], [0.25, 0.75], [0.1, 0.2, 0.7, np.nan], [np.nan, np.nan], [1.0, np.nan]]
)
def test_mean_std_matches_numpy_over_finite_values(values):
    finite = np.array([v for v in values if np.isfinite(v)])
    mean, std, n = mean_std(np.array(values))
    assert n == finite.size
    np.testing.assert_equal(mean, finite.mean() if n else np.nan)
    np.testing.assert_equal(std, finite.std(ddof=1) if n > 1 else np.nan)


def test_series_columns_match_numpy_nan_reductions():
    s = series(diverged_metrics(), "bn", "test_accuracy")
    np.testing.assert_array_equal(s.steps, [10_000, 20_000])
    np.testing.assert_array_equal(s.values, [[0.95, 0.97], [0.97, np.nan]])
    np.testing.assert_array_equal(s.mean(), np.nanmean(s.values, axis=0))
    np.testing.assert_array_equal(s.std(), [np.nanstd(s.values[:, 0], ddof=1), np.nan])
    lo, hi = s.bounds()
    np.testing.assert_array_equal(lo, [0.95, 0.97])
    np.testing.assert_array_equal(hi, [0.97, 0.97])


def test_variants_are_in_the_order_their_runs_first_appear():
    # the display order is the experiment's labels now (Experiment.labels); variants() keeps the
    # file's order of first appearance
    m = diverged_metrics()
    m["runs"] = [*m["runs"][2:], *m["runs"][:2], {**m["runs"][0], "variant": "other"}]
    assert variants(m) == ["bn", "baseline", "other"]
