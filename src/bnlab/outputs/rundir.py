"""A run directory (config.json, metrics.json, timing.json) read back, for `bnlab report`.

Only JSON is read (never pickle), and nothing walks it recursively: its nesting is bounded first.
Every problem is a :class:`DataError` naming the file and saying what was expected and what was
found.
"""

from __future__ import annotations

import errno
import itertools
import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnlab.data.idx import DataError, check_regular_file, show_path, stat_error
from bnlab.files import read_user_text

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
# optional: a run killed before its end has none
TIMING_FILE = "timing.json"
# {"status": "running" | "failed" | "complete", ...}; a directory of an older bnlab has none
STATUS_FILE = "status.json"
COMPLETE = "complete"
# what a run entry must hold for the reports (identity, evaluation steps, the accuracy curve)
REQUIRED = ("variant", "seed", "steps", "test_accuracy", "diverged_at")
# Lists in a run that must have one entry per evaluation step.
ACCURACY_CURVES = ("test_accuracy", "train_accuracy")
LOSS_CURVES = ("test_loss", "train_loss")
CURVES = ACCURACY_CURVES + LOSS_CURVES
PERCENTILES = ("15", "50", "85")
# one value per run: accuracies in [0, 1] (an object of them per batch size) and losses
ACCURACY_VALUES = ("population_test_accuracy",)
ACCURACY_TABLES = ("batch_stats_test_accuracy",)
LOSS_VALUES = ("population_test_loss",)
# objects in a run that are not curves keyed by measure (a sweep's grid cell)
NOT_MEASURES = ("cell", *ACCURACY_TABLES)
# timing.json: seconds (keys ending in "_s") and these are non-negative numbers, these counts
# positive integers
TIMING_NUMBERS = ("peak_rss_mb", "runs_x_steps_per_s")
TIMING_COUNTS = ("devices", "runs", "programs", "processes")
# steps (and counts) are int64 in the engine and in numpy
MAX_STEP = 2**63 - 1
# deeper than any file bnlab writes (metrics.json: runs, a run, a measure, its layers, a curve)
MAX_DEPTH = 32


@dataclass(frozen=True)
class RunDir:
    """A finished (or partly finished) run: its directory, resolved config and metrics."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    timing: dict[str, Any]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (expected a number or null)")


def _depth(obj: Any) -> int:
    """How deeply lists and objects nest in ``obj`` (0 for a number), without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in value)
    return deepest


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; NaN/Infinity are refused (bnlab writes null instead), and so
    is nesting deeper than MAX_DEPTH."""
    check_regular_file(path, "a JSON file")
    text = read_user_text(path, DataError)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise DataError(
            f"{path}: nested too deeply (expected at most {MAX_DEPTH} levels)"
        ) from None
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    if _depth(obj) > MAX_DEPTH:
        raise DataError(f"{path}: nested too deeply (expected at most {MAX_DEPTH} levels)")
    return obj


def _is_number(value: Any) -> bool:
    """A finite JSON number (an integer too large for a float is not)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_number_or_none(value: Any) -> bool:
    return value is None or _is_number(value)


def _is_accuracy_or_none(value: Any) -> bool:
    return value is None or (_is_number(value) and 0 <= value <= 1)


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_STEP


def _check_value(path: Path, where: str, value: Any, accuracy: bool = False) -> None:
    if accuracy and not _is_accuracy_or_none(value):
        raise DataError(
            f"{path}: {where}: expected an accuracy in [0, 1] or null, found {value!r:.60}"
        )
    if not _is_number_or_none(value):
        raise DataError(f"{path}: {where}: expected a finite number or null, found {value!r:.60}")


def _check_curve(path: Path, where: str, values: Any, n: int, accuracy: bool = False) -> None:
    if not isinstance(values, list) or len(values) != n:
        found = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise DataError(f"{path}: {where}: expected a list of {n} values (one per step), {found}")
    for i, v in enumerate(values):
        _check_value(path, f"{where}[{i}]", v, accuracy)


def _check_object(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"{path}: {where}: expected an object, found {type(value).__name__}")
    return value


def _check_measures(path: Path, where: str, measures: Any, n: int) -> None:
    """An object of curves (nested objects allowed: measure, layer, curve), one value per step;
    a single number or null where a measure has one value."""
    stack = [(where, measures)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{at}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            _check_curve(path, at, value, n)
        else:
            _check_value(path, at, value)


def _check_identity(path: Path, where: str, run: dict[str, Any]) -> None:
    for key in REQUIRED:
        if key not in run:
            raise DataError(f'{path}: {where}: missing key "{key}"')
    if not isinstance(run["variant"], str) or not run["variant"]:
        raise DataError(f"{path}: {where}.variant: expected a name, found {run['variant']!r:.60}")
    if not isinstance(run["seed"], int) or isinstance(run["seed"], bool):
        raise DataError(f"{path}: {where}.seed: expected an integer, found {run['seed']!r:.60}")


def _check_steps(path: Path, where: str, steps: Any) -> None:
    if not isinstance(steps, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in steps
    ):
        raise DataError(f"{path}: {where}.steps: expected a list of integers")
    for i, step in enumerate(steps):
        if not _is_step(step):
            raise DataError(
                f"{path}: {where}.steps[{i}]: expected a positive step, found {step!r:.60}"
            )
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise DataError(f"{path}: {where}.steps: expected strictly increasing steps")


def _check_values(path: Path, where: str, run: dict[str, Any], n: int) -> None:
    """Curves, per-run values and measures: numbers where numbers belong, accuracies in [0, 1]."""
    for key in CURVES:
        if key in run:
            _check_curve(path, f"{where}.{key}", run[key], n, accuracy=key in ACCURACY_CURVES)
    for key in (*ACCURACY_VALUES, *LOSS_VALUES):
        if key in run:
            _check_value(path, f"{where}.{key}", run[key], accuracy=key in ACCURACY_VALUES)
    for key in ACCURACY_TABLES:
        for b, value in _check_object(path, f"{where}.{key}", run.get(key, {})).items():
            _check_value(path, f"{where}.{key}.{b}", value, accuracy=True)
    for key, value in run.items():
        if isinstance(value, dict) and key not in NOT_MEASURES:
            _check_measures(path, f"{where}.{key}", value, n)
    if "percentiles" in run:
        _check_object(path, f"{where}.percentiles", run["percentiles"])
    diverged_at = run["diverged_at"]
    if diverged_at is not None and not _is_step(diverged_at):
        raise DataError(
            f"{path}: {where}.diverged_at: expected null or a step, found {diverged_at!r:.60}"
        )


def _check_cell(path: Path, where: str, run: dict[str, Any], axes: list[str]) -> None:
    """A sweep's run names its grid cell: a value for every axis of the grid."""
    cell = run.get("cell")
    if not isinstance(cell, dict) or sorted(cell) != sorted(axes):
        raise DataError(
            f"{path}: {where}.cell: expected a value for each grid axis ({', '.join(axes)}), "
            f"found {cell!r:.60}"
        )


def validate_metrics(metrics: dict[str, Any], path: Path) -> None:
    """Check the shape of metrics.json: a "runs" list of entries with the fields the reports read,
    curves aligned with their steps, finite numbers, accuracies in [0, 1]."""
    runs = metrics.get("runs")
    if not isinstance(runs, list) or not runs:
        raise DataError(f'{path}: expected a non-empty list "runs", found {runs!r:.60}')
    axes = None
    if "grid" in metrics:
        axes = list(_check_object(path, "grid", metrics["grid"]))
    for r, run in enumerate(runs):
        where = f"runs[{r}]"
        _check_identity(path, where, _check_object(path, where, run))
        _check_steps(path, where, run["steps"])
        _check_values(path, where, run, len(run["steps"]))
        if axes is not None:
            _check_cell(path, where, run, axes)


def validate_timing(timing: dict[str, Any], path: Path) -> None:
    """Check timing.json: seconds and rates non-negative numbers, counts positive integers."""
    for key, value in timing.items():
        number = (_is_number(value) and value >= 0) or (key in TIMING_NUMBERS and value is None)
        if (key.endswith("_s") or key in TIMING_NUMBERS) and not number:
            raise DataError(f"{path}: {key}: expected a non-negative number, found {value!r:.60}")
        if key in TIMING_COUNTS and not _is_step(value):
            raise DataError(f"{path}: {key}: expected a positive integer, found {value!r:.60}")
    if "machine" in timing:
        _check_object(path, "machine", timing["machine"])


def check_complete(directory: Path) -> None:
    """Refuse a run directory whose status.json says the run has not completed."""
    status_path = directory / STATUS_FILE
    if not os.path.lexists(status_path):
        return  # written by a bnlab from before status.json
    status = read_json_object(status_path).get("status")
    if status != COMPLETE:
        raise DataError(
            f"{directory}: an incomplete run ({STATUS_FILE} says {status!r:.60}); "
            "resume it with --resume or remove it"
        )


def _check_run_dir(directory: Path) -> None:
    try:
        is_dir = stat.S_ISDIR(os.stat(directory).st_mode)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise stat_error(directory, e, "directory") from None
        is_dir = False
    if not is_dir:
        raise DataError(f"{show_path(directory)}: not a directory (expected a bnlab run directory)")


def load_run_dir(directory: str | Path) -> RunDir:
    """Read and check ``directory``/config.json and metrics.json, and timing.json when present;
    a directory whose status.json says its run is not complete is refused."""
    directory = Path(directory)
    _check_run_dir(directory)
    check_complete(directory)
    config = read_json_object(directory / CONFIG_FILE)
    metrics_path = directory / METRICS_FILE
    metrics = read_json_object(metrics_path)
    validate_metrics(metrics, metrics_path)
    timing_path = directory / TIMING_FILE
    timing = read_json_object(timing_path) if timing_path.exists() else {}
    validate_timing(timing, timing_path)
    return RunDir(path=directory, config=config, metrics=metrics, timing=timing)
