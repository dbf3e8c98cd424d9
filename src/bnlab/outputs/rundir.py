"""A run directory (config.json, metrics.json, timing.json) read back, for `bnlab report`.

Only JSON is read (never pickle); every problem is a :class:`DataError` naming the file and saying
what was expected and what was found.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnlab.data.idx import DataError
from bnlab.files import read_user_text

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
# optional: a run killed before its end has none
TIMING_FILE = "timing.json"
# Lists in a run that must have one entry per evaluation step.
CURVES = ("test_accuracy", "test_loss", "train_loss")
PERCENTILES = ("15", "50", "85")


@dataclass(frozen=True)
class RunDir:
    """A finished (or partly finished) run: its directory, resolved config and metrics."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    timing: dict[str, Any]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (expected a number or null)")


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; NaN/Infinity are refused (bnlab writes null instead)."""
    text = read_user_text(path, DataError)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj


def _is_number_or_none(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_curve(path: Path, where: str, values: Any, n: int) -> None:
    if not isinstance(values, list) or len(values) != n:
        found = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise DataError(f"{path}: {where}: expected a list of {n} values (one per step), {found}")
    for i, v in enumerate(values):
        if not _is_number_or_none(v):
            raise DataError(f"{path}: {where}[{i}]: expected a finite number or null, found {v!r}")


def validate_metrics(metrics: dict[str, Any], path: Path) -> None:
    """Check the shape of metrics.json: a "runs" list whose curves are aligned with their steps."""
    runs = metrics.get("runs")
    if not isinstance(runs, list) or not runs:
        raise DataError(f'{path}: expected a non-empty list "runs", found {runs!r:.60}')
    for r, run in enumerate(runs):
        where = f"runs[{r}]"
        if not isinstance(run, dict):
            raise DataError(f"{path}: {where}: expected an object, found {type(run).__name__}")
        for key in ("variant", "seed", "steps"):
            if key not in run:
                raise DataError(f'{path}: {where}: missing key "{key}"')
        if not isinstance(run["variant"], str) or not run["variant"]:
            raise DataError(f"{path}: {where}.variant: expected a name, found {run['variant']!r}")
        if not isinstance(run["seed"], int) or isinstance(run["seed"], bool):
            raise DataError(f"{path}: {where}.seed: expected an integer, found {run['seed']!r}")
        steps = run["steps"]
        if not isinstance(steps, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in steps
        ):
            raise DataError(f"{path}: {where}.steps: expected a list of integers")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise DataError(f"{path}: {where}.steps: expected strictly increasing steps")
        for key in CURVES:
            if key in run:
                _check_curve(path, f"{where}.{key}", run[key], len(steps))
        percentiles = run.get("percentiles", {})
        if not isinstance(percentiles, dict):
            raise DataError(f"{path}: {where}.percentiles: expected an object")
        for q, values in percentiles.items():
            _check_curve(path, f"{where}.percentiles.{q}", values, len(steps))
        diverged_at = run.get("diverged_at")
        if diverged_at is not None and not isinstance(diverged_at, int):
            raise DataError(
                f"{path}: {where}.diverged_at: expected null or a step, found {diverged_at!r}"
            )


def load_run_dir(directory: str | Path) -> RunDir:
    """Read and check ``directory``/config.json and metrics.json, and timing.json when present."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (expected a bnlab run directory)")
    config = read_json_object(directory / CONFIG_FILE)
    metrics_path = directory / METRICS_FILE
    metrics = read_json_object(metrics_path)
    validate_metrics(metrics, metrics_path)
    timing_path = directory / TIMING_FILE
    timing = read_json_object(timing_path) if timing_path.exists() else {}
    return RunDir(path=directory, config=config, metrics=metrics, timing=timing)
