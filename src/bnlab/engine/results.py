"""From the records of a group's evaluations (arrays stacked as (n_evals, K, ...)) to one
:class:`RunResult` per run: plain floats, with None after divergence and for non-finite values
(JSON has neither NaN nor inf)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bnlab.engine.evaluate import PERCENTILES


@dataclass
class RunResult:
    """One run's measurements; lists are aligned with ``steps``, None after divergence."""

    variant: str
    seed: int
    steps: list[int]
    curves: dict[str, list[float | None]]
    percentiles: dict[str, list[float | None]]
    histograms: dict[str, np.ndarray]
    extra: dict[str, list[Any]]
    finals: dict[str, Any]
    diverged_at: int | None
    percentile_unit: int
    # this run's entries of RunGroup.hyper
    hyper: dict[str, float] = field(default_factory=dict)


def _clean(values: np.ndarray, alive: np.ndarray) -> list:
    """Floats, with None after divergence and for non-finite values (JSON has neither NaN nor
    inf); rows of a 2-D array become the inner lists."""
    out = []
    for value, ok in zip(values, alive, strict=True):
        finite = np.isfinite(value)
        out.append(
            np.where(ok & finite, value, np.nan).tolist()
            if np.ndim(value)
            else (float(value) if ok and finite else None)
        )
    return [
        [None if isinstance(v, float) and np.isnan(v) else v for v in row]
        if isinstance(row, list)
        else row
        for row in out
    ]


def assemble(
    variant: str,
    seeds: tuple[int, ...],
    units: np.ndarray,
    stacked: dict[str, np.ndarray],
    steps: list[int],
    final: dict[str, np.ndarray] | None,
    hyper: Mapping[str, tuple[float, ...]] | None = None,
) -> list[RunResult]:
    """Split a group's stacked records (n_evals, K, ...) into one RunResult per seed."""
    results = []
    steps_arr = np.asarray(steps)
    for j, seed in enumerate(seeds):
        diverged = int(stacked["diverged_at"][-1, j]) if steps else -1
        diverged_at = diverged if diverged >= 0 else None
        alive = steps_arr < diverged if diverged_at is not None else np.ones(len(steps), bool)
        pct = _clean(stacked["percentiles"][:, j], alive) if steps else []
        results.append(
            RunResult(
                variant=variant,
                seed=seed,
                steps=steps,
                curves={
                    n: _clean(stacked[n][:, j], alive) if steps else []
                    for n in ("test_accuracy", "test_loss", "train_loss")
                },
                percentiles={str(q): [row[i] for row in pct] for i, q in enumerate(PERCENTILES)},
                histograms={
                    k.removeprefix("hist/"): np.where(alive[:, None], v[:, j], np.nan)
                    for k, v in stacked.items()
                    if k.startswith("hist/")
                },
                extra={
                    k.removeprefix("extra/"): _clean(v[:, j], alive)
                    for k, v in stacked.items()
                    if k.startswith("extra/")
                },
                finals={}
                if final is None or diverged_at is not None
                else {k: float(v[j]) for k, v in final.items()},
                diverged_at=diverged_at,
                percentile_unit=int(units[j]),
                hyper={k: float(v[j]) for k, v in (hyper or {}).items()},
            )
        )
    return results
