"""A sweep's outputs: TensorBoard logs per run, the per-cell figure and report.md.

The figure shows, per variant, the final test accuracy of every grid cell (mean over seeds, bars
from the lowest to the highest seed); the report gives the same numbers as a table with the
diverged runs counted, the setup, and the time per run and step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs import tensorboard
from bnlab.outputs.figures import COLORS, save_figure
from bnlab.outputs.files import atomic_write_text
from bnlab.outputs.report import machine_info, setup_rows

FIGURE_STEM = "sweep"
REPORT_FILE = "report.md"


def write_outputs(
    out_dir: Path, sweep, metrics: dict[str, Any], entries, rows, timing
) -> dict[str, Path]:
    """TensorBoard logs (tensorboard/<variant>-<cell>-seed<k>/) and sweep.png/.svg."""
    for entry, result in entries:
        name = run_name(entry["variant"], entry["cell"], entry["seed"])
        tensorboard.write_run(out_dir / "tensorboard" / name, entry, result.histograms)
    files = {"tensorboard": out_dir / "tensorboard"}
    for path in save_figure(lambda: build_figure(rows, list(sweep.grid)), out_dir, FIGURE_STEM):
        files[f"{FIGURE_STEM}{path.suffix}"] = path
    return files


def cell_label(cell: dict[str, Any]) -> str:
    """``lr=0.001, hidden=100-100``."""
    return ", ".join(f"{k}={show_value(v)}" for k, v in cell.items()) or "(no grid)"


def show_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "-".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_name(variant: str, cell: dict[str, Any], seed: int) -> str:
    """A run's TensorBoard directory name: bn-lr0.001-seed0."""
    tag = "-".join(f"{k}{show_value(v)}" for k, v in cell.items())
    return re.sub(r"[^A-Za-z0-9._=-]", "_", f"{variant}-{tag + '-' if tag else ''}seed{seed}")


def build_figure(rows: list[dict[str, Any]], axes: list[str]) -> Figure:
    """Final test accuracy per cell (x) and variant (colour): the mean over the seeds that did
    not diverge, with bars from the lowest to the highest of them."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    cells = list(dict.fromkeys(cell_label(r["cell"]) for r in rows))
    fig = Figure(figsize=(max(4.5, 0.6 * len(cells) + 2), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(variants))
    for k, (variant, color) in enumerate(zip(variants, COLORS * len(variants), strict=False)):
        xs, means, lo, hi = [], [], [], []
        for r in rows:
            if r["variant"] != variant or not r["final"]:
                continue
            values = np.asarray(r["final"], float)
            xs.append(cells.index(cell_label(r["cell"])) + (k - (len(variants) - 1) / 2) * width)
            means.append(values.mean())
            lo.append(values.mean() - values.min())
            hi.append(values.max() - values.mean())
        ax.errorbar(
            xs, means, yerr=[lo, hi], fmt="o", color=color, capsize=3, label=S.label(variant)
        )
    ax.set_xticks(range(len(cells)), cells, rotation=30 if len(cells) > 4 else 0, ha="right")
    ax.set_xlabel(", ".join(axes) if axes else "grid cell")
    ax.set_ylabel("final test accuracy")
    ax.set_title("Final test accuracy per grid cell (mean; bars: min–max over seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    return fig


def cell_table(rows: list[dict[str, Any]], axes: list[str]) -> str:
    header = [*axes, "network", "runs", "final test accuracy (mean ± std)", "diverged"]
    body = [
        [
            *(show_value(r["cell"][a]) for a in axes),
            S.label(r["variant"]),
            str(r["seeds"]),
            r["mean_std"],
            f"{len(r['diverged'])} of {r['seeds']}",
        ]
        for r in rows
    ]
    return T.md_table(header, body)


def render_report(sweep, metrics: dict[str, Any], rows, timing: dict[str, Any]) -> str:
    axes = list(sweep.grid)
    n_cells = len(sweep.cells())
    grid = "\n".join(
        f"- `{k}`: {', '.join(show_value(v) for v in vs)}" for k, vs in sweep.grid.items()
    )
    machine = machine_info()
    speed = timing.get("runs_x_steps_per_s")
    parts = [
        f"# bnlab sweep: `{Path(sweep.source).name}`, preset `{sweep.base.preset}`",
        "## Setup",
        "Every run starts from this configuration; the grid below overrides its fields.\n\n"
        + T.md_table(["setting", "value"], setup_rows(sweep.base.to_dict())),
        "## Grid",
        (grid or "No grid axis: one cell.")
        + f"\n\n{n_cells} cell(s) x {len(sweep.base.variants)} network(s) x "
        f"{len(sweep.seeds)} seed(s) ({', '.join(map(str, sweep.seeds))}) = "
        f"{len(metrics['runs'])} runs, trained as {timing['programs']} group(s) of vmapped "
        f"programs sharded over {timing['devices']} device(s) in {timing['processes']} "
        "process(es). Each run in `metrics.json` carries its cell's values.",
        "## Final test accuracy per grid cell",
        "Test accuracy at the last step (BN networks with their moving-average statistics), mean "
        "± sample standard deviation (ddof=1) over the seeds that did not diverge.\n\n"
        + cell_table(rows, axes)
        + f"\n\n![Final test accuracy per grid cell]({FIGURE_STEM}.png)",
        "## Time and machine",
        f"Training {timing['train_s']:.1f} s, compiling {timing['compile_s']:.1f} s, final "
        f"evaluation {timing['final_eval_s']:.1f} s"
        + (f"; {speed:,.0f} run-steps per second while training" if speed else "")
        + f". Devices: {timing['devices']} x {timing['device_kind']}; machine: {machine['cpu']}, "
        f"{machine['cores']} cores; JAX {machine['jax']}.",
    ]
    return "\n\n".join(parts) + "\n"


def write_report(out_dir: Path, sweep, metrics, rows, timing) -> Path:
    path = Path(out_dir) / REPORT_FILE
    atomic_write_text(path, render_report(sweep, metrics, rows, timing))
    return path
