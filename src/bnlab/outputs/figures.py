"""Figure panels drawn from a run's metrics, for every experiment's figures.

``curve_panel``: any recorded curve against training steps, one colour per network, the mean over
seeds with the band between the lowest and highest seed. ``build_figure1``: Figure 1's layout of
Ioffe & Szegedy (2015): (a) test accuracy, then per network the {15, 50, 85}th percentiles of the
input to one typical sigmoid of the last hidden layer (first seed). Figures are built on a bare
``matplotlib.figure.Figure`` (no pyplot state, no GUI backend) and saved with fixed SVG ids and no
date, so the same metrics always give the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bnlab.files import atomic_write_bytes
from bnlab.outputs import series as S

PERCENTILE_STYLE = {"15": ":", "50": "-", "85": "--"}
# the first colours in Figure 1's order (blue without BN, red with BN), then the rest of tab10;
# colors() goes on past them, so every network of a figure has its own colour
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
# Fixed so the SVG's generated ids (and so its bytes) do not change between renders.
RC = {"svg.hashsalt": "bnlab-figure1", "svg.fonttype": "path", "font.size": 9}


def colors(n: int) -> list[str]:
    """``n`` distinct colours: COLORS, then the rest of tab10, then evenly spaced hues."""
    tab10 = [mpl.colors.to_hex(c) for c in mpl.colormaps["tab10"].colors]
    palette = list(COLORS) + [c for c in tab10 if c not in COLORS]
    extra = max(0, n - len(palette))
    palette += [mpl.colors.to_hex(mpl.colormaps["hsv"](k / extra)) for k in range(extra)]
    return palette[:n]


def _steps_formatter(value: float, _pos: int) -> str:
    return f"{value / 1000:g}K" if value >= 1000 else f"{value:g}"


def _diverged_note(metrics: dict[str, Any], variant: str) -> str:
    runs = S.diverged(metrics, variant)
    if not runs:
        return ""
    where = ", ".join(f"seed {seed} at step {step}" for seed, step in runs)
    return f"; diverged: {where}"


def curve_panel(
    ax, metrics: dict[str, Any], labels: S.Labels, key: str, *, log: bool = False
) -> None:
    """``key`` against steps for each network of ``labels``: the mean over seeds, with the band
    between the lowest and highest seed."""
    for color, variant in zip(colors(len(labels)), labels, strict=True):
        curve = S.series(metrics, variant, key)
        n = len(curve.seeds)
        seeds = f"mean of {n} seeds" if n > 1 else "1 seed"
        ax.plot(
            curve.steps,
            curve.mean(),
            color=color,
            label=f"{labels[variant]} ({seeds}{_diverged_note(metrics, variant)})",
        )
        if n > 1:
            lo, hi = curve.bounds()
            ax.fill_between(curve.steps, lo, hi, color=color, alpha=0.2, linewidth=0)
    if log:
        ax.set_yscale("log")


def _zoom_from_first_checkpoint(ax, metrics: dict[str, Any], names: S.Labels) -> str:
    """Start the y axis just below the lowest accuracy (any seed) from the first checkpoint on,
    as the paper's Fig. 1(a) starts at 10K steps, so that the late gap between the networks is
    visible; returns the note for the axis label, or "" when nothing is cut off."""
    curves = [S.series(metrics, v, "test_accuracy") for v in names]
    first = S.checkpoint_steps(sorted({int(s) for c in curves for s in c.steps}))[:1]
    if not first:
        return ""
    values = np.concatenate([c.values.ravel() for c in curves])
    late = np.concatenate([c.values[:, c.steps >= first[0]].ravel() for c in curves])
    if not np.isfinite(late).any():
        return ""
    low, high = np.nanmin(late), np.nanmax(values)
    bottom = low - 0.1 * max(high - low, 1e-3)
    if np.nanmin(values) >= bottom:
        return ""
    ax.set_ylim(bottom, high + 0.05 * max(high - low, 1e-3))
    return f" (axis cut at {bottom:.3f})"


def _accuracy_panel(ax, metrics: dict[str, Any], labels: S.Labels) -> None:
    curve_panel(ax, metrics, labels, "test_accuracy")
    ax.set_title("(a) test accuracy")
    ax.set_ylabel("test accuracy" + _zoom_from_first_checkpoint(ax, metrics, labels))
    several = any(len(S.runs_of(metrics, v)) > 1 for v in labels)
    title = "line: mean; band: min–max over seeds" if several else None
    ax.legend(loc="best", fontsize=7, title=title, title_fontsize=7)


def _percentile_panel(ax, metrics: dict[str, Any], variant: str, label: str, letter: str) -> None:
    first = S.runs_of(metrics, variant)[0]
    seed = first["seed"]
    unit = f"unit {first['percentile_unit']}, " if "percentile_unit" in first else ""
    curves = {q: S.series(metrics, variant, f"percentiles.{q}") for q in PERCENTILE_STYLE}
    for q, style in PERCENTILE_STYLE.items():
        c = curves[q]
        ax.plot(c.steps, c.values[0], linestyle=style, color="black", label=f"{q}th percentile")
    ax.fill_between(
        curves["15"].steps, curves["15"].values[0], curves["85"].values[0], color="0.85"
    )
    ax.set_title(f"({letter}) {label}")
    what = first.get("percentile_input", "input to a last-layer sigmoid")
    ax.set_ylabel(f"{what} ({unit}seed {seed})")
    ax.legend(loc="best", fontsize=7)


def build_figure1(
    metrics: dict[str, Any], labels: S.Labels, percentile_labels: S.Labels | None = None
) -> Figure:
    """Figure 1's layout: (a) test accuracy of the networks of ``labels`` (no panel when it is
    empty), then (b), (c), ... a percentile panel for each network of ``percentile_labels``
    (default: ``labels``) that recorded percentiles."""
    candidates = labels if percentile_labels is None else percentile_labels
    with_percentiles = [
        v for v in candidates if any(r.get("percentiles") for r in S.runs_of(metrics, v))
    ]
    first = 1 if labels else 0
    n_panels = first + len(with_percentiles)
    fig = Figure(figsize=(4.2 * n_panels, 3.6), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    if labels:
        _accuracy_panel(axes[0], metrics, labels)
    for k, (ax, variant) in enumerate(zip(axes[first:], with_percentiles, strict=True), start=1):
        _percentile_panel(ax, metrics, variant, candidates[variant], _letter(k))
    # One scale for (b) and (c): the paper's point is that one drifts and the other does not.
    for ax in axes[first + 1 :]:
        ax.sharey(axes[first])
    style_steps_axes(axes)
    return fig


def _letter(k: int) -> str:
    """Panel letters a, b, ..., z, then aa, ab, ..."""
    return _letter(k // 26 - 1) + chr(ord("a") + k % 26) if k >= 26 else chr(ord("a") + k)


def style_steps_axes(axes) -> None:
    """Training steps on x (10K, 20K, ...) and a light grid, on every panel."""
    for ax in axes:
        ax.set_xlabel("training steps")
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
        ax.grid(True, alpha=0.3)


def save_figure(build, out_dir: Path, stem: str) -> list[Path]:
    """Render ``build()`` (a Figure) under fixed settings and write ``stem``.png and .svg into
    ``out_dir`` with no date or software stamp, so the same input gives the same bytes."""
    out_dir = Path(out_dir)
    paths = []
    with mpl.rc_context(RC):
        fig = build()
        for fmt, metadata in (("png", {"Software": None}), ("svg", {"Date": None})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=150, metadata=metadata)
            path = out_dir / f"{stem}.{fmt}"
            atomic_write_bytes(path, buffer.getvalue())
            paths.append(path)
    return paths
