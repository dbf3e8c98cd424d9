"""One report from several run directories (`bnlab report DIR...`).

Each directory is loaded and checked (config.json, metrics.json; timing.json when present; a
status.json saying the run completed, when there is one), the experiment that wrote it looked up
from config.json's "experiment" and its metrics.json checked to be what that experiment writes for
that config, and its report rendered again from those files, as the run itself rendered it. The
merged report opens with one table of every network's (or sweep cell's) final test accuracy across
the runs; each run's report follows with its headings moved down and its figures linked relative to
the merged file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bnlab.data import DataError
from bnlab.errors import ConfigError
from bnlab.experiments.experiment import Experiment
from bnlab.experiments.rundir import CONFIG_FILE, EXPERIMENT_KEY, METRICS_FILE, experiment_of
from bnlab.outputs import report_tables as T
from bnlab.outputs.rundir import RunDir, load_run_dir

IMAGE = re.compile(r"\]\(([^)/]+\.(?:png|svg))\)")
# config.json's fields, beside "experiment", that say which experiment wrote it
KIND_FIELDS = ("analysis",)


def _shown(fields: dict[str, Any], key: str) -> str:
    return f"{fields[key]!r:.60}" if key in fields else "no such field"


def _check_fields(
    path: Path, expected: dict[str, Any], got: dict[str, Any], keys: Iterable[str], kind: str
) -> None:
    """Each of ``keys`` must be in ``got`` as in ``expected`` (or absent from both)."""
    for key in keys:
        if (key in got, got.get(key)) != (key in expected, expected.get(key)):
            raise DataError(
                f'{path}: "{key}": expected {_shown(expected, key)} ({CONFIG_FILE} says '
                f'"{EXPERIMENT_KEY}": {kind!r}), got {_shown(got, key)}'
            )


def check_kind(run: RunDir, experiment: Experiment, config: Any) -> None:
    """The run directory is what ``experiment`` writes for ``config``: config.json's kind fields,
    metrics.json's header (everything before "runs") and its runs' networks (a directory whose
    files were relabelled as another experiment's is refused, not judged from the wrong data)."""
    ours = experiment.config_to_dict(config)
    kind_keys = [k for k in KIND_FIELDS if k in ours or k in run.config]
    _check_fields(run.path / CONFIG_FILE, ours, run.config, kind_keys, experiment.name)
    path = run.path / METRICS_FILE
    expected = json.loads(json.dumps(experiment.metrics_header(config)))
    header = {k: v for k, v in run.metrics.items() if k != "runs"}
    _check_fields(path, expected, header, dict.fromkeys([*expected, *header]), experiment.name)
    labels = experiment.labels(config)
    for r, entry in enumerate(run.metrics["runs"]):
        if entry["variant"] not in labels:
            raise DataError(
                f"{path}: runs[{r}].variant: expected one of {', '.join(labels)} (the networks "
                f"of this {experiment.name} run), got {entry['variant']!r:.60}"
            )


def load(directory: str | Path) -> tuple[RunDir, Experiment, Any]:
    """A run directory, the experiment that wrote it, and its config object."""
    run = load_run_dir(directory)
    experiment = experiment_of(run.config, run.path)
    data = {k: v for k, v in run.config.items() if k != EXPERIMENT_KEY}
    try:
        config = experiment.config_from_dict(data, run.path)
    except (ConfigError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise DataError(f"{run.path / CONFIG_FILE}: not a {experiment.name} config ({e})") from None
    check_kind(run, experiment, config)
    return run, experiment, config


def _rendered(run: RunDir, experiment: Experiment, render: Callable[..., Any], *args: Any) -> Any:
    """``render(*args)`` from the run's files; a field they lack is the user's error, one line."""
    try:
        return render(*args)
    except KeyError as e:
        raise DataError(
            f"{run.path}: expected {e} in its files (the {experiment.name} report reads it)"
        ) from None


def kind(experiment: Experiment, config: Any) -> str:
    return (
        experiment.name
        if experiment.out_name(config) == experiment.name
        else (f"{experiment.name} ({experiment.out_name(config)})")
    )


def _relocate(text: str, run_dir: Path, out_dir: Path) -> str:
    """Headings two levels down (under the merged report's own); figure links relative to the
    merged report's directory."""
    text = re.sub(r"^(#+) ", r"##\1 ", text, flags=re.MULTILINE)
    rel = Path(os.path.relpath(run_dir.resolve(), out_dir.resolve()))
    return IMAGE.sub(lambda m: f"]({(rel / m.group(1)).as_posix()})", text)


def _overview(loaded: list[tuple[RunDir, Experiment, Any]]) -> str:
    rows = []
    for i, (run, experiment, config) in enumerate(loaded, start=1):
        for s in _rendered(run, experiment, experiment.summary, config, run.metrics):
            accuracy = f"{s.final_accuracy:.4f}" if np.isfinite(s.final_accuracy) else "—"
            rows.append(
                [
                    str(i),
                    f"`{run.path}`",
                    kind(experiment, config),
                    s.label,
                    str(s.runs),
                    f"{s.steps:,}",
                    accuracy,
                    str(s.diverged),
                ]
            )
    head = ["#", "run directory", "what", "network", "runs", "steps", "final test acc.", "diverged"]
    return T.md_table(head, rows)


def merged_report(directories: list[str | Path], out_file: Path) -> str:
    """The merged Markdown for ``directories``, with links relative to ``out_file``."""
    if not directories:
        raise DataError("bnlab report: expected at least one run directory, got none")
    loaded = [load(d) for d in directories]
    parts = [
        f"# bnlab report: {len(loaded)} run director{'y' if len(loaded) == 1 else 'ies'}",
        "Final test accuracy: the mean over seeds at the last evaluation step (moving-average "
        "statistics for BN); a seed that diverged is left out.",
        _overview(loaded),
    ]
    for i, (run, experiment, config) in enumerate(loaded, start=1):
        text = _rendered(run, experiment, experiment.report, config, run.metrics, run.timing)
        parts += [
            f"## {i}. `{run.path}` ({kind(experiment, config)})",
            _relocate(text, run.path, out_file.parent).strip(),
        ]
    return "\n\n".join(parts) + "\n"
