"""The report's tables, as Markdown: test accuracy at checkpoints, final evaluations, models.

Cells show the mean ± sample std (ddof=1) over seeds, a single value for one seed, and say when a
seed is missing because its run diverged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bnlab.outputs import series as S

CHANCE = 0.10


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mean_std_cell(values: np.ndarray, total: int, diverged_before: list[int]) -> str:
    """``0.9712 ± 0.0012`` over the seeds with a value; says how many are left after divergence."""
    mean, std, n = S.mean_std(values)
    if n == 0:
        return "diverged" if diverged_before else "—"
    cell = f"{mean:.4f}" if n == 1 else f"{mean:.4f} ± {std:.4f}"
    if n < total:
        cell += f" ({n} of {total} seeds"
        cell += f"; {len(diverged_before)} diverged)" if diverged_before else ")"
    return cell


def _diverged_by(metrics: dict[str, Any], variant: str, step: int) -> list[int]:
    return [seed for seed, at in S.diverged(metrics, variant) if at <= step]


def accuracy_table(metrics: dict[str, Any]) -> str:
    """Test accuracy at 10k, 20k, ... steps (nearest evaluation steps) for every variant."""
    names = S.variants(metrics)
    curves = {v: S.series(metrics, v, "test_accuracy") for v in names}
    all_steps = sorted({int(s) for c in curves.values() for s in c.steps})
    rows = []
    for step in S.checkpoint_steps(all_steps):
        row = [f"{step:,}"]
        for v in names:
            cells = curves[v].at(step)
            row.append(mean_std_cell(cells, len(curves[v].seeds), _diverged_by(metrics, v, step)))
        rows.append(row)
    return md_table(["steps", *(S.label(v) for v in names)], rows)


def _final(run: dict[str, Any], key: str) -> float:
    """A final number of a run; ``key`` may be "batch_stats_test_accuracy.60". NaN if absent."""
    value: Any = run
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else np.nan


def _last_accuracy(run: dict[str, Any]) -> float:
    values = [v for v in run.get("test_accuracy") or [] if v is not None]
    return float(values[-1]) if values and run.get("diverged_at") is None else np.nan


BATCH_STATS = "batch_stats_test_accuracy"


def batch_sizes(metrics: dict[str, Any]) -> list[str]:
    """The test batch sizes of the batch-statistics evaluations in the run, largest first."""
    found = {k for r in metrics["runs"] for k in (r.get(BATCH_STATS) or {})}
    return sorted(found, key=lambda k: -int(k) if k.isdigit() else 0)


def finals(metrics: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(row title, dotted key) of each final evaluation in the run; None: the last curve value."""
    rows: list[tuple[str, str | None]] = [
        ("last evaluation during training (moving averages)", None),
        ("Algorithm 2 population statistics", "population_test_accuracy"),
    ]
    for b in batch_sizes(metrics):
        rows.append((f"batch statistics, test batches of {b}", f"{BATCH_STATS}.{b}"))
    return rows


def final_values(metrics: dict[str, Any], variant: str, key: str | None) -> np.ndarray:
    runs = S.runs_of(metrics, variant)
    return np.array([_last_accuracy(r) if key is None else _final(r, key) for r in runs])


def finals_table(metrics: dict[str, Any]) -> str:
    """Final test accuracy of each variant under each evaluation it has numbers for."""
    names = S.variants(metrics)
    rows = []
    for title, key in finals(metrics):
        cells = []
        for v in names:
            values = final_values(metrics, v, key)
            diverged = [seed for seed, _ in S.diverged(metrics, v)]
            has_any = np.isfinite(values).any() or diverged
            cells.append(mean_std_cell(values, len(values), diverged) if has_any else "n/a")
        if any(c != "n/a" for c in cells):
            rows.append([title, *cells])
    return md_table(["test accuracy", *(S.label(v) for v in names)], rows)


def batch_stats_sentence(metrics: dict[str, Any], variant: str) -> str:
    """Why evaluating with batch statistics (as the notebook did) misleads, with this run's numbers;
    empty when the run has no such evaluation at a training-size batch and at batch 1."""
    sizes = [b for b in batch_sizes(metrics) if b != "1"]
    if not sizes or "1" not in batch_sizes(metrics):
        return ""
    big = sizes[0]
    population, at_big, at_one = (
        S.mean_std(final_values(metrics, variant, key))[0]
        for key in ("population_test_accuracy", f"{BATCH_STATS}.{big}", f"{BATCH_STATS}.1")
    )
    if not np.isfinite([population, at_big, at_one]).all():
        return ""
    return (
        f"Evaluated with the batch's own statistics, as the notebook does, a test example's "
        f"prediction depends on the other examples in its batch: in test batches of {big} the BN "
        f"network scores {at_big:.4f} against {population:.4f} with Algorithm 2's population "
        f"statistics, and at batch 1 every normalised value is 0 (each example is its own batch "
        f"mean), so the network outputs one constant and scores {at_one:.4f} "
        f"(chance is {CHANCE:.2f})."
    )


def model_table(name: str, layers: list[tuple[str, str, int]]) -> str:
    """A Keras-like summary: layer, output shape, parameter count, and the total."""
    rows = [[layer, shape, f"{params:,}"] for layer, shape, params in layers]
    total = sum(params for _, _, params in layers)
    return (
        f'Model: "{name}"\n\n'
        + md_table(["Layer (type)", "Output Shape", "Param #"], rows)
        + f"\n\nTotal params: {total:,}"
    )


def measurement_table(metrics: dict[str, Any], m: Any, plain: str, with_bn: str) -> str:
    """Our test accuracy beside an earlier measurement's (``claims.Measurement``), step by step."""
    curves = {v: S.series(metrics, v, "test_accuracy") for v in (plain, with_bn)}
    rows = []
    for step, b0, b1 in zip(m.steps, m.baseline, m.bn, strict=True):
        ours = [
            mean_std_cell(curves[v].at(step), len(curves[v].seeds), _diverged_by(metrics, v, step))
            for v in (plain, with_bn)
        ]
        rows.append([f"{step:,}", f"{b0:.4f}", ours[0], f"{b1:.4f}", ours[1]])
    header = ["steps", "then, without BN", "bnlab, without BN", "then, with BN", "bnlab, with BN"]
    return md_table(header, rows)
