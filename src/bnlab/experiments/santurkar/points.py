"""Points along training at which an analysis judges a claim: Santurkar et al. compare networks
along the trajectory, not once. The evaluations are split into thirds (early, middle, late); a
point is judged only where the network without normalization has left its plateau there, since
measures of a network that has not started to learn describe that plateau, not training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bnlab.outputs import series as S

NAMES = ("early", "middle", "late")
# a network is training at a point once its mean test accuracy there reaches this (MNIST: chance
# is 0.1; the sigmoid baseline's plateau sits at 0.1-0.6)
TRAINING = 0.8


@dataclass(frozen=True)
class Point:
    name: str
    # indices into the evaluation steps, and the steps themselves
    index: np.ndarray
    steps: np.ndarray

    @property
    def span(self) -> str:
        return f"steps {int(self.steps[0]):,}-{int(self.steps[-1]):,}"


def points(steps: np.ndarray) -> list[Point]:
    """Thirds of the evaluation steps (one point per evaluation when there are fewer than 3)."""
    parts = np.array_split(np.arange(len(steps)), min(len(NAMES), len(steps)))
    names = NAMES if len(parts) == len(NAMES) else [f"step {int(steps[p[0]]):,}" for p in parts]
    return [Point(n, p, steps[p]) for n, p in zip(names, parts, strict=True)]


def per_seed(values: np.ndarray, point: Point) -> np.ndarray:
    """Each seed's mean over the point's evaluations of ``values`` (seeds x evaluations), NaN
    where a seed has none."""
    values = values[:, point.index]
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=1)
    return np.where(finite.any(axis=1), total / np.maximum(finite.sum(axis=1), 1), np.nan)


def plateau(metrics: dict[str, Any], variant: str, point: Point) -> str | None:
    """Why ``variant`` cannot be compared at ``point`` (its mean test accuracy at the point's
    last evaluation is below TRAINING), or None."""
    accuracy = S.series(metrics, variant, "test_accuracy").mean()[point.index[-1]]
    if np.isfinite(accuracy) and accuracy >= TRAINING:
        return None
    return (
        f"the network without BN has not left its plateau by step {int(point.steps[-1]):,} "
        f"(test accuracy {accuracy:.3f} < {TRAINING})"
    )


def show(values: np.ndarray, fmt: str = ".4g") -> str:
    """Mean ± sample std over the seeds ("0.12 ± 0.01"; the mean alone for one seed)."""
    mean, std, n = S.mean_std(values)
    if n == 0:
        return "—"
    return format(mean, fmt) + (f" ± {format(std, fmt)}" if n > 1 else "")
