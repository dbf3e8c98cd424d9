"""From a group's evaluations (a :class:`Record` per evaluation, stacked into arrays of shape
(n_evals, K, ...)) to one :class:`RunResult` per run: plain floats, with None after divergence and
for non-finite values (JSON has neither NaN nor inf)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import numpy as np

from bnlab.engine.evaluate import PERCENTILES, Evaluation

# each run's curves, one value per evaluation (metrics.json keys)
CURVES = ("test_accuracy", "train_accuracy", "test_loss", "train_loss")


class Record(NamedTuple):
    """What the runner keeps of one evaluation of a group's runs (each leaf has a run axis)."""

    evaluation: Evaluation
    # mean finite training loss since the previous evaluation
    train_loss: Any
    # step (1-based) at which the loss first became non-finite; -1 while it has not
    diverged_at: Any


@dataclass
class RunResult:
    """One run's measurements; lists are aligned with ``steps``, None after divergence."""

    # the experiment's identity of the network (RunGroup.network)
    network: Any
    seed: int
    steps: list[int]
    curves: dict[str, list[float | None]]
    percentiles: dict[str, list[float | None]]
    # each measure's pytree, every leaf a list aligned with ``steps``
    measures: dict[str, Any]
    finals: dict[str, Any]
    diverged_at: int | None
    percentile_unit: int
    # this run's entries of RunGroup.hyper
    hyper: dict[str, float] = field(default_factory=dict)
    # this run's entry of RunGroup.tags (e.g. a sweep's grid cell); None without tags
    tag: Any = None


def _clean(values: np.ndarray, alive: np.ndarray) -> list:
    """Floats, with None after divergence and for non-finite values (JSON has neither NaN nor
    inf); rows of a 2-D array become the inner lists."""
    out = []
    for value, ok in zip(values, alive, strict=True):
        if np.ndim(value):
            out.append([float(v) if ok and np.isfinite(v) else None for v in value])
        else:
            out.append(float(value) if ok and np.isfinite(value) else None)
    return out


def stack(records: list[Record]) -> Record | None:
    """The evaluations' records as one record of arrays with a leading step axis."""
    if not records:
        return None
    return jax.tree.map(lambda *xs: np.stack(xs), *records)


def assemble(
    network: Any,
    seeds: tuple[int, ...],
    units: np.ndarray,
    stacked: Record | None,
    steps: list[int],
    final: dict[str, np.ndarray] | None,
    hyper: Mapping[str, tuple[float, ...]] | None = None,
    tags: tuple[Any, ...] = (),
) -> list[RunResult]:
    """Split a group's stacked records (n_evals, K, ...) into one RunResult per run."""
    results = []
    for j, seed in enumerate(seeds):
        diverged = int(stacked.diverged_at[-1, j]) if stacked is not None else -1
        diverged_at = diverged if diverged >= 0 else None
        steps_arr = np.asarray(steps)
        alive = steps_arr < diverged if diverged_at is not None else np.ones(len(steps), bool)

        def run(values: np.ndarray, j=j, alive=alive) -> list:
            return _clean(values[:, j], alive)

        if stacked is None:
            curves = {n: [] for n in CURVES}
            pct, measures = [], {}
        else:
            e = stacked.evaluation
            curves = {
                "test_accuracy": run(e.test_accuracy),
                "train_accuracy": run(e.train_accuracy),
                "test_loss": run(e.test_loss),
                "train_loss": run(stacked.train_loss),
            }
            pct = run(e.percentiles)
            measures = jax.tree.map(run, e.measures)
        results.append(
            RunResult(
                network=network,
                seed=seed,
                steps=steps,
                curves=curves,
                percentiles={str(q): [row[i] for row in pct] for i, q in enumerate(PERCENTILES)},
                measures=measures,
                finals={}
                if final is None or diverged_at is not None
                else {k: float(v[j]) for k, v in final.items()},
                diverged_at=diverged_at,
                percentile_unit=int(units[j]),
                hyper={k: float(v[j]) for k, v in (hyper or {}).items()},
                tag=tags[j] if tags else None,
            )
        )
    return results
