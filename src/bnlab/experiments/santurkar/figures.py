"""Figures of the analyses, drawn from metrics.json like Figure 1 (same style, same saving).

- ICS (Santurkar Fig. 3): per layer, ||G - G'||_2 and cos(G, G') over training.
- Landscape (Santurkar Fig. 4): (a) the range of the loss along the gradient, (b) the range of the
  gradient's l2 change, as bands between the smallest and largest value over the step sizes (each
  the mean over seeds), (c) the effective beta-smoothness (mean over seeds, band min-max).
- Accuracy curves alone (learning-rate sweep) and accuracy with the sigmoid-input percentiles
  (noisy BN: Figure 1's layout, one percentile panel per network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bnlab.outputs import series as S
from bnlab.outputs.figures import (
    build_figure1,
    colors,
    curve_panel,
    save_figure,
    style_steps_axes,
)

PANEL = (4.2, 3.4)


def _legend(ax) -> None:
    ax.legend(loc="best", fontsize=6)


def build_accuracy_figure(metrics: dict[str, Any], labels: S.Labels) -> Figure:
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    curve_panel(ax, metrics, labels, "test_accuracy")
    ax.set_title("test accuracy (line: mean; band: min–max over seeds)")
    ax.set_ylabel("test accuracy")
    _legend(ax)
    style_steps_axes([ax])
    return fig


def build_ics_figure(metrics: dict[str, Any], labels: S.Labels, layers: list[str]) -> Figure:
    """Two rows (||G - G'||, cos) and one column per layer in ``layers`` ("2", "3", ...)."""
    names = labels
    fig = Figure(figsize=(PANEL[0] * len(layers), PANEL[1] * 2), layout="constrained")
    axes = fig.subplots(2, len(layers), squeeze=False)
    for col, layer in enumerate(layers):
        top, bottom = axes[0, col], axes[1, col]
        curve_panel(top, metrics, names, f"ics.distance.{layer}", log=True)
        top.set_title(f"layer {layer}: ||G - G'||_2")
        curve_panel(bottom, metrics, names, f"ics.cosine.{layer}")
        bottom.set_title(f"layer {layer}: cos(G, G')")
        bottom.set_ylim(-1.05, 1.05)
    _legend(axes[0, 0])
    style_steps_axes(axes.ravel())
    return fig


def _range_band(ax, metrics: dict[str, Any], labels: S.Labels, low: str, high: str) -> None:
    for color, variant in zip(colors(len(labels)), labels, strict=True):
        lo, hi = (S.series(metrics, variant, f"landscape.{k}") for k in (low, high))
        ax.fill_between(lo.steps, lo.mean(), hi.mean(), color=color, alpha=0.35, linewidth=0)
        ax.plot(lo.steps, lo.mean(), color=color, linewidth=0.6, label=labels[variant])
        ax.plot(hi.steps, hi.mean(), color=color, linewidth=0.6)


def build_landscape_figure(metrics: dict[str, Any], labels: S.Labels) -> Figure:
    names = labels
    fig = Figure(figsize=(PANEL[0] * 3, PANEL[1]), layout="constrained")
    axes = fig.subplots(1, 3)
    _range_band(axes[0], metrics, names, "loss_min", "loss_max")
    axes[0].set_title("(a) loss along the gradient (range over step sizes)")
    axes[0].set_ylabel("loss")
    _range_band(axes[1], metrics, names, "grad_change_min", "grad_change_max")
    axes[1].set_title("(b) gradient predictiveness: ||grad - grad'||_2")
    axes[1].set_yscale("log")
    curve_panel(axes[2], metrics, names, "landscape.beta_smoothness", log=True)
    axes[2].set_title("(c) effective beta-smoothness")
    for ax in axes:
        _legend(ax)
    style_steps_axes(axes)
    return fig


def plot_accuracy(metrics: dict[str, Any], labels: S.Labels, out_dir: Path) -> list[Path]:
    return save_figure(lambda: build_accuracy_figure(metrics, labels), out_dir, "accuracy")


def plot_accuracy_and_percentiles(
    metrics: dict[str, Any], labels: S.Labels, out_dir: Path
) -> list[Path]:
    return save_figure(lambda: build_figure1(metrics, labels), out_dir, "accuracy_percentiles")


def plot_ics(metrics: dict[str, Any], labels: S.Labels, layers: list[str], out_dir: Path):
    return save_figure(lambda: build_ics_figure(metrics, labels, layers), out_dir, "ics")


def plot_landscape(metrics: dict[str, Any], labels: S.Labels, out_dir: Path) -> list[Path]:
    return save_figure(lambda: build_landscape_figure(metrics, labels), out_dir, "landscape")
