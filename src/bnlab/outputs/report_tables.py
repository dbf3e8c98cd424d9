"""The report tables every experiment shares, as Markdown: test accuracy at checkpoints, models.

Cells show the mean ± sample std (ddof=1) over seeds, a single value for one seed, and say when a
seed is missing because its run diverged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bnlab.outputs import series as S


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mean_std_cell(values: np.ndarray, total: int, diverged_before: list[int]) -> str:
    """``0.9712 ± 0.0012`` over the seeds with a value; says how many are left after divergence."""
    n = S.mean_std(values)[2]
    if n == 0:
        return "diverged" if diverged_before else "—"
    cell = S.show_mean_std(values)
    if n < total:
        cell += f" ({n} of {total} seeds"
        cell += f"; {len(diverged_before)} diverged)" if diverged_before else ")"
    return cell


def diverged_by(metrics: dict[str, Any], variant: str, step: int) -> list[int]:
    return [seed for seed, at in S.diverged(metrics, variant) if at <= step]


def accuracy_table(metrics: dict[str, Any], labels: S.Labels) -> str:
    """Test accuracy at 10k, 20k, ... steps (nearest evaluation steps) for every network."""
    names = list(labels)
    curves = {v: S.series(metrics, v, "test_accuracy") for v in names}
    all_steps = sorted({int(s) for c in curves.values() for s in c.steps})
    rows = []
    for step in S.checkpoint_steps(all_steps):
        row = [f"{step:,}"]
        for v in names:
            cells = curves[v].at(step)
            row.append(mean_std_cell(cells, len(curves[v].seeds), diverged_by(metrics, v, step)))
        rows.append(row)
    return md_table(["steps", *labels.values()], rows)


def memory_size(size: float) -> str:
    """Bytes in the largest binary unit below 1,024 of it, as Keras's summary shows them."""
    units = ("B", "KB", "MB", "GB", "TB")
    power = 0
    while size >= 1024 and power < len(units) - 1:
        size /= 1024
        power += 1
    return f"{size:.2f} {units[power]}"


def param_totals(layers: list[tuple[str, str, int, int]]) -> list[str]:
    """Keras's three lines under a summary: total, trainable and non-trainable weights, each
    with its size in float32 (``layers``: name, shape, weights, trainable weights)."""
    total = sum(row[2] for row in layers)
    trainable = sum(row[3] for row in layers)
    return [
        f"{what} params: {n:,} ({memory_size(4 * n)})"
        for what, n in [
            ("Total", total),
            ("Trainable", trainable),
            ("Non-trainable", total - trainable),
        ]
    ]


def model_table(name: str, layers: list[tuple[str, str, int, int]]) -> str:
    """A Keras-like summary: layer, output shape, parameter count, and the totals."""
    rows = [[layer, shape, f"{params:,}"] for layer, shape, params, _ in layers]
    return (
        f'Model: "{name}"\n\n'
        + md_table(["Layer (type)", "Output Shape", "Param #"], rows)
        + "\n\n"
        + "  \n".join(param_totals(layers))
    )
