"""The analyses' figures: files written, panels as in Santurkar et al.'s figures, values drawn."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pytest
from analysis_fixtures import ics_metrics, landscape_metrics, noisy_metrics, placement_metrics

from bnlab.experiments import registry
from bnlab.experiments.santurkar import figures as F
from bnlab.outputs.figures import build_figure1


def labels(name: str) -> dict[str, str]:
    analysis = registry.analysis(name)
    return analysis.labels(analysis.default_config())


@pytest.mark.parametrize(
    "plot, make, analysis, stem",
    [
        (lambda m, n, d: F.plot_ics(m, n, ["2", "3"], d), ics_metrics, "ics", "ics"),
        (F.plot_landscape, landscape_metrics, "landscape", "landscape"),
        (F.plot_accuracy, noisy_metrics, "noisy-bn", "accuracy"),
        (F.plot_accuracy_and_percentiles, noisy_metrics, "noisy-bn", "accuracy_percentiles"),
        (F.plot_accuracy_and_percentiles, placement_metrics, "placement", "accuracy_percentiles"),
    ],
)
def test_writes_png_and_svg(tmp_path, plot, make, analysis, stem):
    paths = plot(make(), labels(analysis), tmp_path)
    assert paths == [tmp_path / f"{stem}.png", tmp_path / f"{stem}.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()


def test_ics_panels_per_layer_and_mean_over_seeds():
    axes = F.build_ics_figure(ics_metrics(), labels("ics"), ["2", "3"]).axes
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
    axes = F.build_landscape_figure(landscape_metrics(), labels("landscape")).axes
    assert [ax.get_title() for ax in axes] == [
        "(a) loss along the gradient (range over step sizes)",
        "(b) gradient predictiveness: ||grad - grad'||_2",
        "(c) effective beta-smoothness",
    ]
    low, high = axes[1].get_lines()[:2]
    assert list(low.get_ydata()) == [50, 5, 5]
    assert list(high.get_ydata()) == [100, 10, 10]


def test_noisy_bn_figure_has_a_percentile_panel_per_network():
    titles = [ax.get_title() for ax in build_figure1(noisy_metrics(), labels("noisy-bn")).axes]
    assert titles == [
        "(a) test accuracy",
        "(b) without BN",
        "(c) with BN",
        "(d) noisy BN",
        "(e) without BN, noise added",
    ]


def test_placement_figure_has_a_percentile_panel_per_network():
    titles = [ax.get_title() for ax in build_figure1(placement_metrics(), labels("placement")).axes]
    assert titles == [
        "(a) test accuracy",
        "(b) without BN",
        "(c) with BN (before the activation)",
        "(d) with BN (after the activation)",
    ]


def _sweep_metrics(variants: list[str]) -> dict:
    return {
        "runs": [
            {
                "variant": v,
                "seed": 0,
                "steps": [10, 20],
                "test_accuracy": [0.1 * k, 0.1 * k + 0.05],
                "diverged_at": None,
            }
            for k, v in enumerate(variants)
        ]
    }


def test_lr_sweep_accuracy_legend_names_each_network_in_its_own_colour():
    names = labels("lr-sweep")
    assert list(names.values()) == [
        "without BN, lr x1",
        "without BN, lr x5",
        "without BN, lr x30",
        "with BN, lr x1",
        "with BN, lr x5",
        "with BN, lr x30",
    ]
    ax = F.build_accuracy_figure(_sweep_metrics(list(names)), names).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{label} (1 seed)" for label in names.values()]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == legend
    assert len({mcolors.to_hex(line.get_color()) for line in lines}) == 6
