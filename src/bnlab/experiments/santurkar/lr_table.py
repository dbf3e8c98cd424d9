"""The learning-rate table (Ioffe & Szegedy 2015, Sec. 4.2.2, the table of BN-x5 / BN-x30): for
each network and learning-rate multiplier, the steps to reach a target test accuracy and the best
test accuracy, with diverged runs shown as diverged. A seed that diverged counts in neither column
(it leaves no usable network), only in the last. Pure functions of metrics.json.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bnlab.experiments.network import Network
from bnlab.outputs.series import show_mean_std


@dataclass(frozen=True)
class SeedResult:
    seed: int
    steps_to_target: int | None
    best_accuracy: float | None
    diverged_at: int | None


@dataclass(frozen=True)
class SweepRow:
    # the network (with its learning-rate multiplier) and how the table names it without one
    network: Network
    name: str
    lr: float
    seeds: tuple[SeedResult, ...]

    @property
    def multiplier(self) -> float:
        return self.network.lr_multiplier or 1.0

    @property
    def finished(self) -> list[SeedResult]:
        """The seeds that did not diverge; only they count in the steps and best columns."""
        return [s for s in self.seeds if s.diverged_at is None]

    @property
    def reached(self) -> list[int]:
        return [s.steps_to_target for s in self.finished if s.steps_to_target is not None]

    @property
    def diverged(self) -> list[SeedResult]:
        return [s for s in self.seeds if s.diverged_at is not None]


def steps_to_target(
    steps: Sequence[int], accuracy: Sequence[float | None], target: float
) -> int | None:
    """The first evaluation step whose test accuracy is >= ``target``; None if none is."""
    for step, acc in zip(steps, accuracy, strict=False):
        if acc is not None and math.isfinite(acc) and acc >= target:
            return int(step)
    return None


def best_accuracy(accuracy: Sequence[float | None]) -> float | None:
    """The highest finite test accuracy of a run (before it diverged); None if it has none."""
    finite = [a for a in accuracy if a is not None and math.isfinite(a)]
    return max(finite) if finite else None


def default_target(metrics: dict[str, Any], reference: str) -> float:
    """The accuracy every seed of ``reference`` reaches: the lowest of its seeds' best accuracies
    (the paper's target is the baseline Inception's best accuracy, 72.2%)."""
    bests = [
        best_accuracy(run.get("test_accuracy") or [])
        for run in metrics["runs"]
        if run["variant"] == reference
    ]
    bests = [b for b in bests if b is not None]
    if not bests:
        raise ValueError(f"no run of {reference!r} has a test accuracy to take the target from")
    return min(bests)


def sweep_rows(
    metrics: dict[str, Any], networks: Sequence[Network], base_lr: float, target: float
) -> list[SweepRow]:
    """One row per network of ``networks`` (each with its lr multiplier), in order."""
    rows = []
    for network in networks:
        runs = sorted(
            (r for r in metrics["runs"] if r["variant"] == network.variant),
            key=lambda r: r["seed"],
        )
        seeds = tuple(
            SeedResult(
                seed=r["seed"],
                steps_to_target=steps_to_target(r["steps"], r.get("test_accuracy") or [], target),
                best_accuracy=best_accuracy(r.get("test_accuracy") or []),
                diverged_at=r.get("diverged_at"),
            )
            for r in runs
        )
        name = dataclasses.replace(network, lr_multiplier=None).label
        rows.append(SweepRow(network, name, base_lr * (network.lr_multiplier or 1.0), seeds))
    return rows


def describe_steps(row: SweepRow) -> str:
    """Mean ± std of the steps to the target over the seeds that reach it (and do not diverge),
    and how many do."""
    n, reached = len(row.seeds), row.reached
    if not row.finished:
        return "diverged"
    if not reached:
        return "not reached"
    text = show_mean_std(reached, ",.0f")
    return text if len(reached) == n else f"{text} ({len(reached)} of {n} seeds)"


def describe_best(row: SweepRow) -> str:
    """Mean ± std of the best accuracies of the seeds that did not diverge."""
    if not row.finished:
        return "diverged"
    bests = [s.best_accuracy for s in row.finished if s.best_accuracy is not None]
    text = show_mean_std(bests, ".4f", none="none")
    n = len(row.seeds)
    return text if len(row.finished) == n else f"{text} ({len(row.finished)} of {n} seeds)"


def describe_divergence(row: SweepRow) -> str:
    if not row.diverged:
        return "no"
    where = ", ".join(f"seed {s.seed} at step {s.diverged_at:,}" for s in row.diverged)
    return f"diverged: {where}"


def markdown_table(rows: Sequence[SweepRow], target: float) -> str:
    lines = [
        f"| network | lr multiplier | lr | steps to {target:.4f} test accuracy "
        "| best test accuracy | diverged |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | x{row.multiplier:g} | {row.lr:g} | {describe_steps(row)} "
            f"| {describe_best(row)} | {describe_divergence(row)} |"
        )
    return "\n".join(lines)
