"""One report from several run directories (`bnlab report DIR...`).

Each directory is loaded and checked (config.json, metrics.json; timing.json when present), the
experiment that wrote it looked up from config.json's "experiment", and its report rendered again
from those files, as the run itself rendered it. The merged report opens with one table of every
network's (or sweep cell's) final test accuracy across the runs; each run's report follows with
its headings moved down and its figures linked relative to the merged file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from bnlab.data import DataError
from bnlab.errors import ConfigError
from bnlab.experiments.experiment import Experiment
from bnlab.experiments.rundir import CONFIG_FILE, EXPERIMENT_KEY, experiment_of
from bnlab.outputs import report_tables as T
from bnlab.outputs.rundir import RunDir, load_run_dir

IMAGE = re.compile(r"\]\(([^)/]+\.(?:png|svg))\)")


def load(directory: str | Path) -> tuple[RunDir, Experiment, Any]:
    """A run directory, the experiment that wrote it, and its config object."""
    run = load_run_dir(directory)
    experiment = experiment_of(run.config, run.path)
    data = {k: v for k, v in run.config.items() if k != EXPERIMENT_KEY}
    try:
        config = experiment.config_from_dict(data, run.path)
    except (ConfigError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise DataError(f"{run.path / CONFIG_FILE}: not a {experiment.name} config ({e})") from None
    return run, experiment, config


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
        for s in experiment.summary(config, run.metrics):
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
        text = experiment.report(config, run.metrics, run.timing)
        parts += [
            f"## {i}. `{run.path}` ({kind(experiment, config)})",
            _relocate(text, run.path, out_file.parent).strip(),
        ]
    return "\n\n".join(parts) + "\n"
