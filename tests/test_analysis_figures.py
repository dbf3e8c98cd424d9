"""The analyses' figures: files written, panels as in Santurkar et al.'s figures, values drawn."""

from __future__ import annotations

import pytest
from analysis_fixtures import ics_metrics, landscape_metrics, noisy_metrics

from bnlab.experiments.analyses import figures as F
from bnlab.outputs.figures import build_figure1


@pytest.mark.parametrize(
    "plot, make, stem",
    [
        (lambda m, d: F.plot_ics(m, ["2", "3"], d), ics_metrics, "ics"),
        (F.plot_landscape, landscape_metrics, "landscape"),
        (F.plot_accuracy, noisy_metrics, "accuracy"),
        (F.plot_accuracy_and_percentiles, noisy_metrics, "accuracy_percentiles"),
    ],
)
def test_writes_png_and_svg(tmp_path, plot, make, stem):
    paths = plot(make(), tmp_path)
    assert paths == [tmp_path / f"{stem}.png", tmp_path / f"{stem}.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()


def test_ics_panels_per_layer_and_mean_over_seeds():
    axes = F.build_ics_figure(ics_metrics(), ["2", "3"]).axes
    assert [ax.get_title() for ax in axes] == [
        "layer 2: ||G - G'||_2",
        "layer 3: ||G - G'||_2",
        "layer 2: cos(G, G')",
        "layer 3: cos(G, G')",
    ]
    baseline, bn = axes[0].get_lines()[:2]
    assert list(baseline.get_ydata()) == [1.0, 1.0, 1.0]
    assert list(bn.get_ydata()) == [2.0, 2.0, 2.0]


def test_landscape_bands_span_the_step_sizes():
    axes = F.build_landscape_figure(landscape_metrics()).axes
    assert [ax.get_title() for ax in axes] == [
        "(a) loss along the gradient (range over step sizes)",
        "(b) gradient predictiveness: ||grad - grad'||_2",
        "(c) effective beta-smoothness",
    ]
    low, high = axes[1].get_lines()[:2]
    assert list(low.get_ydata()) == [50, 5, 5]
    assert list(high.get_ydata()) == [100, 10, 10]


def test_noisy_bn_figure_has_a_percentile_panel_per_network():
    titles = [ax.get_title() for ax in build_figure1(noisy_metrics()).axes]
    assert titles == [
        "(a) test accuracy",
        "(b) without BN",
        "(c) with BN",
        "(d) noisy BN",
        "(e) without BN, noise added",
    ]
