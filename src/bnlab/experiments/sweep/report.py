"""A sweep's outputs: the per-cell table (final test accuracy, mean ± std over seeds, diverged
runs), the per-cell figure and report.md.

The figure shows, per network, the final test accuracy of every grid cell (mean over seeds, bars
from the lowest to the highest seed); the report gives the same numbers as a table with the
diverged runs counted, the setup, and the time per run and step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from bnlab.experiments.fields import setup_rows
from bnlab.experiments.sweep.config import SweepConfig, cell_label, show_cell_value
from bnlab.experiments.sweep.layout import describe
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.figures import colors
from bnlab.outputs.report import machine_info

FIGURE_STEM = "sweep"


def run_name(variant: str, cell: dict[str, Any], seed: int) -> str:
    """A run's TensorBoard directory name: bn-lr0.001-seed0."""
    tag = "-".join(f"{k}{show_cell_value(v)}" for k, v in cell.items())
    return re.sub(r"[^A-Za-z0-9._=-]", "_", f"{variant}-{tag + '-' if tag else ''}seed{seed}")


def cell_rows(metrics: dict[str, Any], axes: list[str]) -> list[dict[str, Any]]:
    """Per grid cell and network: the final test accuracies of the seeds that did not diverge,
    their mean ± std, and the diverged runs."""
    rows: dict[tuple, dict[str, Any]] = {}
    for run in metrics["runs"]:
        key = (tuple(show_cell_value(run["cell"][k]) for k in axes), run["variant"])
        row = rows.setdefault(
            key, {"cell": run["cell"], "variant": run["variant"], "final": [], "diverged": []}
        )
        curve = run["test_accuracy"]
        if run["diverged_at"] is not None:
            row["diverged"].append(run["diverged_at"])
        elif curve and curve[-1] is not None:
            row["final"].append(curve[-1])
        row["seeds"] = row.get("seeds", 0) + 1
    for row in rows.values():
        values = np.asarray(row["final"], dtype=float)
        row["mean_std"] = T.mean_std_cell(values, row["seeds"], row["diverged"])
        row["mean"], row["std"], _ = S.mean_std(values)
    return list(rows.values())


def build_figure(rows: list[dict[str, Any]], axes: list[str], labels: S.Labels) -> Figure:
    """Final test accuracy per cell (x) and variant (colour): the mean over the seeds that did
    not diverge, with bars from the lowest to the highest of them."""
    variants = [v for v in labels if any(r["variant"] == v for r in rows)]
    cells = list(dict.fromkeys(cell_label(r["cell"]) for r in rows))
    fig = Figure(figsize=(max(4.5, 0.6 * len(cells) + 2), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(variants))
    for k, (variant, color) in enumerate(zip(variants, colors(len(variants)), strict=True)):
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
            xs, means, yerr=[lo, hi], fmt="o", color=color, capsize=3, label=labels[variant]
        )
    rotated = len(cells) > 4
    ax.set_xticks(
        range(len(cells)), cells, rotation=30 if rotated else 0, ha="right" if rotated else "center"
    )
    ax.set_xlabel(", ".join(axes) if axes else "grid cell")
    ax.set_ylabel("final test accuracy")
    ax.set_title("Final test accuracy per grid cell\n(mean; bars: min–max over seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    return fig


def cell_table(rows: list[dict[str, Any]], axes: list[str], labels: S.Labels) -> str:
    header = [*axes, "network", "runs", "final test accuracy (mean ± std)", "diverged"]
    body = [
        [
            *(show_cell_value(r["cell"][a]) for a in axes),
            labels[r["variant"]],
            str(r["seeds"]),
            r["mean_std"],
            f"{len(r['diverged'])} of {r['seeds']}",
        ]
        for r in rows
    ]
    return T.md_table(header, body)


def render_report(
    sweep: SweepConfig, metrics: dict[str, Any], labels: S.Labels, timing: dict[str, Any]
) -> str:
    rows = cell_rows(metrics, list(sweep.grid))
    axes = list(sweep.grid)
    n_cells = len(sweep.cells())
    grid = "\n".join(
        f"- `{k}`: {', '.join(show_cell_value(v) for v in vs)}" for k, vs in sweep.grid.items()
    )
    machine = machine_info()
    parts = [
        f"# bnlab sweep: `{Path(sweep.source).name}`, preset `{sweep.base.preset}`",
        "## Setup",
        "Every run starts from this configuration; the grid below overrides its fields.\n\n"
        + T.md_table(["setting", "value"], setup_rows(sweep.base.to_dict())),
        "## Grid",
        (grid or "No grid axis: one cell.")
        + f"\n\n{n_cells} cell(s) x {len(sweep.base.variants)} network(s) x "
        f"{len(sweep.seeds)} seed(s) ({', '.join(map(str, sweep.seeds))}) = "
        f"{len(metrics['runs'])} runs"
        + (
            f", trained as {timing['programs']} group(s) of {_programs(timing)} sharded over "
            f"{timing['devices']} device(s) in {timing['processes']} process(es)"
            if "programs" in timing
            else ""
        )
        + ". Each run in `metrics.json` carries its cell's values.",
        "## Final test accuracy per grid cell",
        "Test accuracy at the last step (BN networks with their moving-average statistics), mean "
        "± sample standard deviation (ddof=1) over the seeds that did not diverge.\n\n"
        + cell_table(rows, axes, labels)
        + f"\n\n![Final test accuracy per grid cell]({FIGURE_STEM}.png)",
        "## Time and machine",
        _time_and_machine(timing, machine),
    ]
    return "\n\n".join(parts) + "\n"


def _time_and_machine(timing: dict[str, Any], machine: dict[str, Any]) -> str:
    where = f"machine: {machine['cpu']}, {machine['cores']} cores; JAX {machine['jax']}."
    if "train_s" not in timing:
        return f"No timing.json: the sweep did not finish writing its directory. This {where}"
    speed = timing.get("runs_x_steps_per_s")
    return (
        f"Training {timing['train_s']:.1f} s, compiling {timing['compile_s']:.1f} s, final "
        f"evaluation {timing['final_eval_s']:.1f} s"
        + (f"; {speed:,.0f} run-steps per second while training" if speed else "")
        + f". Devices: {timing['devices']} x {timing.get('device_kind', '?')}; {where}"
        + _layouts(timing)
    )


def _programs(timing: dict[str, Any]) -> str:
    """What the programs are: "vmapped programs", "sequential programs (each device trains its
    runs one after another)", or both with their counts."""
    if "layout" not in timing:  # a sweep from before the layouts: vmapped
        return "vmapped programs"
    layouts = [c["layout"] for c in timing["layout"]["programs"]]
    if set(layouts) == {"vmapped"}:
        return "vmapped programs"
    if set(layouts) == {"sequential"}:
        return "sequential programs (each device trains its runs one after another)"
    n = {v: layouts.count(v) for v in ("vmapped", "sequential")}
    return f"programs ({n['vmapped']} vmapped, {n['sequential']} sequential)"


def _layouts(timing: dict[str, Any]) -> str:
    """Each program's layout and the measurement behind it (once when all say the same)."""
    if "layout" not in timing:
        return ""
    said = [describe(c) for c in timing["layout"]["programs"]]
    if len(set(said)) == 1:
        return f" Layout: {said[0]}."
    return " Layouts: " + "; ".join(f"program {i + 1}, {d}" for i, d in enumerate(said)) + "."
