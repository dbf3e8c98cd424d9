"""One report from several run directories (`bnlab report DIR...`).

Each directory is loaded and checked (config.json, metrics.json; timing.json when present) and
its report rendered again from those files, as the run itself rendered it: an analysis's by
:mod:`bnlab.experiments.analyses.report`, a reproduction's by :mod:`bnlab.outputs.report`. The
merged report opens with one table of every network's final test accuracy across the runs; each
run's report follows with its headings moved down and its figures linked relative to the
merged file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bnlab.data import DataError
from bnlab.experiments.analyses.report import render_analysis_report
from bnlab.experiments.analyses.verdicts import final_accuracy
from bnlab.experiments.presets import ExperimentConfig
from bnlab.experiments.reproduce import TIMING_FILE, model_summaries
from bnlab.outputs import report as R
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.rundir import RunDir, load_run_dir, read_json_object

IMAGE = re.compile(r"\]\(([^)/]+\.(?:png|svg))\)")


def kind(run: RunDir) -> str:
    analysis = run.config.get("analysis")
    return f"analyze {analysis}" if analysis else f"reproduce ({run.config.get('preset', '?')})"


def render_run(run: RunDir) -> str:
    """The run's own report.md text, rendered again from its files."""
    timing_path = run.path / TIMING_FILE
    timing = read_json_object(timing_path) if timing_path.exists() else {}
    if "analysis" in run.config:
        return render_analysis_report(run.config, run.metrics, timing)
    try:
        summaries = model_summaries(ExperimentConfig.from_dict(run.config))
    except (ValueError, TypeError) as e:
        raise DataError(f"{run.path / 'config.json'}: not a bnlab run config ({e})") from None
    return R.render_report(run.config, run.metrics, summaries, timing)


def _relocate(text: str, run_dir: Path, out_dir: Path) -> str:
    """Headings two levels down (under the merged report's own); figure links relative to the
    merged report's directory."""
    text = re.sub(r"^(#+) ", r"##\1 ", text, flags=re.MULTILINE)
    rel = Path(os.path.relpath(run_dir.resolve(), out_dir.resolve()))
    return IMAGE.sub(lambda m: f"]({(rel / m.group(1)).as_posix()})", text)


def _overview(runs: list[RunDir]) -> str:
    rows = []
    for i, run in enumerate(runs, start=1):
        steps = max(max(r["steps"], default=0) for r in run.metrics["runs"])
        seeds = len({r["seed"] for r in run.metrics["runs"]})
        for v in S.variants(run.metrics):
            diverged = len(S.diverged(run.metrics, v))
            rows.append(
                [
                    str(i),
                    f"`{run.path}`",
                    kind(run),
                    S.label(v),
                    str(seeds),
                    f"{steps:,}",
                    f"{final_accuracy(run.metrics, v):.4f}",
                    str(diverged),
                ]
            )
    head = [
        "#",
        "run directory",
        "what",
        "network",
        "seeds",
        "steps",
        "final test acc.",
        "diverged",
    ]
    return T.md_table(head, rows)


def merged_report(directories: list[str | Path], out_file: Path) -> str:
    """The merged Markdown for ``directories``, with links relative to ``out_file``."""
    if not directories:
        raise DataError("bnlab report: expected at least one run directory, got none")
    runs = [load_run_dir(d) for d in directories]
    parts = [
        f"# bnlab report: {len(runs)} run director{'y' if len(runs) == 1 else 'ies'}",
        "Final test accuracy: the mean over seeds at the last evaluation step (moving-average "
        "statistics for BN); a seed that diverged is left out.",
        _overview(runs),
    ]
    for i, run in enumerate(runs, start=1):
        parts += [
            f"## {i}. `{run.path}` ({kind(run)})",
            _relocate(render_run(run), run.path, out_file.parent).strip(),
        ]
    return "\n\n".join(parts) + "\n"
