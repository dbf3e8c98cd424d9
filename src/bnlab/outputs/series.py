"""Curves of a metrics.json gathered per variant, as float arrays with NaN where a run has no value.

Shared by the figure and the report so both show the same numbers. A run that diverged has null
values from the step it diverged at (or a shorter steps list); both become NaN here and are left out
of means, never read as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CHECKPOINT_INTERVAL = 10_000
SMALL_RUN_CHECKPOINTS = 5
PCTS = ("15", "50", "85")


# variant name -> how figures and reports call it, in the order they show the networks (an
# experiment derives it from its typed networks: bnlab.experiments.network.Network.label)
Labels = dict[str, str]


def variants(metrics: dict[str, Any]) -> list[str]:
    """Variant names in the order their runs first appear in metrics.json."""
    return list(dict.fromkeys(run["variant"] for run in metrics["runs"]))


def runs_of(metrics: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    return sorted((r for r in metrics["runs"] if r["variant"] == variant), key=lambda r: r["seed"])


@dataclass(frozen=True)
class Series:
    """One curve for every seed of a variant: ``values[i, j]`` is seed i at ``steps[j]``."""

    steps: np.ndarray
    values: np.ndarray
    seeds: list[int]

    def finite_count(self) -> np.ndarray:
        return np.isfinite(self.values).sum(axis=0)

    def mean(self) -> np.ndarray:
        """Mean over the seeds that have a value (:func:`mean_std`); NaN where none has."""
        return np.array([mean_std(column)[0] for column in self.values.T])

    def std(self) -> np.ndarray:
        """Sample standard deviation (ddof=1) over the seeds with a value; NaN below two."""
        return np.array([mean_std(column)[1] for column in self.values.T])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Minimum and maximum over the seeds that have a value; NaN where none has."""
        finite = np.isfinite(self.values)
        lo = np.where(finite, self.values, np.inf).min(axis=0)
        hi = np.where(finite, self.values, -np.inf).max(axis=0)
        none = ~finite.any(axis=0)
        return np.where(none, np.nan, lo), np.where(none, np.nan, hi)

    def at(self, step: int) -> np.ndarray:
        """The seeds' values at ``step`` (NaN for a seed without one)."""
        hits = np.flatnonzero(self.steps == step)
        if hits.size == 0:
            return np.full(len(self.seeds), np.nan)
        return self.values[:, hits[0]]


def mean_std(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, sample std (ddof=1; NaN below two values) and count of the finite ``values``."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    n = int(finite.size)
    mean = float(finite.mean()) if n else float("nan")
    std = float(finite.std(ddof=1)) if n > 1 else float("nan")
    return mean, std, n


def show_mean_std(values, fmt: str = ".4f", none: str = "—") -> str:
    """``0.9712 ± 0.0012`` over the finite ``values`` (:func:`mean_std`), the value alone for one,
    ``none`` for none."""
    mean, std, n = mean_std(np.asarray(values, dtype=np.float64))
    if n == 0:
        return none
    return format(mean, fmt) if n == 1 else f"{format(mean, fmt)} ± {format(std, fmt)}"


def _curve(run: dict[str, Any], key: str) -> list[Any] | None:
    """The list at a dotted path: "test_accuracy", "percentiles.50", "ics.distance.2"."""
    value: Any = run
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, list) else None


def series(metrics: dict[str, Any], variant: str, key: str) -> Series:
    """``key`` ("test_accuracy", "percentiles.50", any dotted path to a list aligned with the run's
    steps) for every seed of ``variant``."""
    runs = runs_of(metrics, variant)
    steps = sorted({s for r in runs for s in r["steps"]})
    column = {s: j for j, s in enumerate(steps)}
    values = np.full((len(runs), len(steps)), np.nan)
    for i, run in enumerate(runs):
        curve = _curve(run, key)
        if curve is None:
            continue
        for s, v in zip(run["steps"], curve, strict=False):
            if v is not None:
                values[i, column[s]] = v
    return Series(np.asarray(steps, dtype=np.int64), values, [r["seed"] for r in runs])


def checkpoint_steps(steps: list[int] | np.ndarray) -> list[int]:
    """Evaluation steps nearest to 10k, 20k, ... (to fifths of the run when it is shorter), and
    the last step; each once, in order."""
    steps = sorted(int(s) for s in steps)
    if not steps:
        return []
    last = steps[-1]
    interval = CHECKPOINT_INTERVAL if last >= CHECKPOINT_INTERVAL else last / SMALL_RUN_CHECKPOINTS
    targets = [interval * k for k in range(1, int(last // interval) + 1)] if interval > 0 else []
    chosen = [min(steps, key=lambda s, t=t: (abs(s - t), s)) for t in targets] + [last]
    return sorted(set(chosen))


def final_accuracy(metrics: dict[str, Any], variant: str) -> float:
    """Mean over seeds of the test accuracy at the last evaluation step (NaN if all diverged)."""
    curve = series(metrics, variant, "test_accuracy")
    return mean_std(curve.values[:, -1])[0] if curve.steps.size else float("nan")


def overall_mean(metrics: dict[str, Any], variant: str, key: str) -> float:
    """Mean of ``key`` over every evaluation step and seed with a finite value."""
    return mean_std(series(metrics, variant, key).values.ravel())[0]


def percentile_drift(metrics: dict[str, Any], variant: str) -> tuple[float, float] | None:
    """Mean over seeds of how far the median and the 15-85 spread of the sigmoid input move
    (maximum minus minimum over the evaluation steps)."""
    p15, p50, p85 = (series(metrics, variant, f"percentiles.{q}").values for q in PCTS)
    spread = p85 - p15
    keep = np.isfinite(p50).any(axis=1) & np.isfinite(spread).any(axis=1)
    if not keep.any():
        return None
    p50, spread = p50[keep], spread[keep]
    median_moves = np.nanmax(p50, axis=1) - np.nanmin(p50, axis=1)
    spread_moves = np.nanmax(spread, axis=1) - np.nanmin(spread, axis=1)
    return float(median_moves.mean()), float(spread_moves.mean())


# why the engine marks a run diverged (bnlab.engine.train.DIVERGENCE_LOSS; a test keeps them equal)
DIVERGED_WHY = "the loss became NaN or inf, or exceeded 1,000"
# a network whose best test accuracy stays below twice a uniform guess over 10 classes has not
# learned anything a comparison could rest on
CHANCE_LEVEL = 0.2


def at_chance(metrics: dict[str, Any], variant: str) -> list[tuple[int, float]]:
    """(seed, best test accuracy) of each run of ``variant`` that did not diverge and whose every
    test accuracy stayed below CHANCE_LEVEL."""
    out = []
    for r in runs_of(metrics, variant):
        values = [a for a in r.get("test_accuracy") or [] if a is not None]
        if r.get("diverged_at") is None and values and max(values) < CHANCE_LEVEL:
            out.append((r["seed"], float(max(values))))
    return out


def diverged(metrics: dict[str, Any], variant: str) -> list[tuple[int, int]]:
    """(seed, step) of each run of ``variant`` that diverged."""
    return [
        (r["seed"], r["diverged_at"])
        for r in runs_of(metrics, variant)
        if r.get("diverged_at") is not None
    ]
