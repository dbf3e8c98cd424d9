import xml.etree.ElementTree as ET

import matplotlib.image
import pytest
from outputs_fixtures import diverged_metrics, metrics

from bnlab.experiments import FIGURE1, SEED
from bnlab.outputs.figures import build_figure1

LABELS = FIGURE1.labels(SEED)


def plot_figure1(metrics, out_dir):
    """Figure 1's files as a run writes them (figure1.png, figure1.svg)."""
    return FIGURE1.figures(SEED, metrics, out_dir)


def test_labels_are_without_then_with_bn():
    assert LABELS == {"baseline": "without BN", "bn": "with BN"}


@pytest.mark.parametrize("make", [metrics, diverged_metrics])
def test_writes_a_valid_png_and_svg(tmp_path, make):
    png, svg = plot_figure1(make(), tmp_path)
    assert (png, svg) == (tmp_path / "figure1.png", tmp_path / "figure1.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # three panels of 4.2 x 3.6 inches at 150 dpi
    assert matplotlib.image.imread(png).shape[:2] == (540, 1890)
    assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure1.png", "figure1.svg"]


def test_svg_and_png_are_byte_identical_across_renders(tmp_path):
    first = [p.read_bytes() for p in plot_figure1(diverged_metrics(), tmp_path / "a")]
    second = [p.read_bytes() for p in plot_figure1(diverged_metrics(), tmp_path / "b")]
    assert first == second


def test_panels_are_accuracy_then_without_and_with_bn():
    axes = build_figure1(diverged_metrics(), LABELS).axes
    assert [ax.get_title() for ax in axes] == [
        "(a) test accuracy",
        "(b) without BN",
        "(c) with BN",
    ]
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == [
        "without BN (mean of 2 seeds)",
        "with BN (mean of 2 seeds; diverged: seed 1 at step 20000)",
    ]
    # (b) and (c) share one y scale so the drift can be compared by eye
    assert axes[1].get_ylim() == axes[2].get_ylim()


def test_accuracy_line_is_the_mean_over_seeds():
    line = build_figure1(metrics(), LABELS).axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [10_000, 20_000]
    assert list(line.get_ydata()) == pytest.approx([0.91, 0.93], abs=1e-15)


def test_percentile_panels_name_seed_and_unit_when_recorded():
    m = metrics()
    for run in m["runs"]:
        run["percentile_unit"] = 42 if run["variant"] == "bn" else 7
    axes = build_figure1(m, LABELS).axes
    assert [ax.get_ylabel() for ax in axes[1:]] == [
        "input to a last-layer sigmoid (unit 7, seed 0)",
        "input to a last-layer sigmoid (unit 42, seed 0)",
    ]


def test_accuracy_axis_starts_below_the_first_checkpoint_and_says_so():
    m = metrics()
    for run in m["runs"]:
        run["steps"] = [1000, 10_000, 20_000]
        run["test_accuracy"] = [0.1, *run["test_accuracy"]]
        for key in ("test_loss", "train_loss"):
            run[key] = [2.3, *run[key]]
        run["percentiles"] = {q: [0.0, *v] for q, v in run["percentiles"].items()}
    ax = build_figure1(m, LABELS).axes[0]
    # lowest value from 10k steps on: 0.90; highest: 0.99; bottom = 0.90 - 0.1 * 0.09
    assert ax.get_ylim()[0] == pytest.approx(0.891)
    assert ax.get_ylabel() == "test accuracy (axis cut at 0.891)"


def test_accuracy_axis_is_not_cut_when_nothing_lies_below():
    ax = build_figure1(metrics(), LABELS).axes[0]
    assert ax.get_ylabel() == "test accuracy"
    assert ax.get_ylim()[0] < 0.90


def test_networks_are_shown_in_the_labels_order_whatever_the_file_order():
    m = diverged_metrics()
    m["runs"] = [*m["runs"][2:], *m["runs"][:2]]
    axes = build_figure1(m, LABELS).axes
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert [text.split(" (")[0] for text in legend] == ["without BN", "with BN"]
    assert [ax.get_title() for ax in axes[1:]] == ["(b) without BN", "(c) with BN"]
