"""Run one analysis end to end on the engine and write its run directory.

>>> from bnlab.experiments.analyses import default_config, run_analysis
>>> run_analysis(default_config("ics", seeds=3), "runs/ics-3seeds")

The directory holds config.json, metrics.json, timing.json, tensorboard/<network>-seed<k>/,
the analysis's figures (.png and .svg) and report.md.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnlab.data import MNIST, load_mnist
from bnlab.engine import RunGroup, RunResult, train_groups
from bnlab.engine.devices import cpu_devices
from bnlab.engine.evaluate import Measure
from bnlab.experiments.analyses import figures as F
from bnlab.experiments.analyses import measures as M
from bnlab.experiments.analyses.config import AnalysisConfig
from bnlab.experiments.analyses.report import write_analysis_report
from bnlab.experiments.reproduce import (
    CONFIG_FILE,
    METRICS_FILE,
    TENSORBOARD_DIR,
    TIMING_FILE,
    clear_out_dir,
    curves_entry,
    default_out_dir,
)
from bnlab.outputs import tensorboard
from bnlab.outputs.files import atomic_write_json

# progress(step done over all phases, total steps, latest means per network or None)
AnalysisProgress = Callable[[int, int, dict[str, dict[str, float]] | None], None]
FIGURES = ("accuracy", "accuracy_percentiles", "ics", "landscape")
OUTPUTS = (
    CONFIG_FILE,
    METRICS_FILE,
    TIMING_FILE,
    TENSORBOARD_DIR,
    "report.md",
    *(f"{stem}.{ext}" for stem in FIGURES for ext in ("png", "svg")),
)


@dataclass
class AnalysisResult:
    out_dir: Path
    config: AnalysisConfig
    metrics: dict[str, Any]
    timing: dict[str, Any]
    files: dict[str, Path]


def _measures(config: AnalysisConfig) -> dict[str, Measure]:
    if config.analysis == "ics":
        return {"ics": M.ics_measure()}
    if config.analysis in ("landscape", "lp-norm"):
        return {"landscape": M.landscape_measure(config.multipliers())}
    if config.analysis == "noisy-bn":
        return {"train_percentiles": M.training_percentiles_measure(config.probe_batches)}
    return {}


def phases(config: AnalysisConfig) -> list[tuple[float, list[RunGroup]]]:
    """(learning-rate multiplier, groups) per training program: one for most analyses, one per
    multiplier for the sweep (the engine trains every group of a call with one optimiser)."""
    e = config.experiment
    seeds = tuple(range(e.first_seed, e.first_seed + e.seeds))
    measures = _measures(config)
    sweep = config.analysis == "lr-sweep"
    out = []
    for m in config.lr_multipliers if sweep else (1.0,):
        groups = [
            RunGroup(
                f"{net}-x{m:g}" if sweep else net,
                config.model_spec(net),
                seeds,
                measures=measures,
                final_evaluation=False,
            )
            for net in config.networks
        ]
        out.append((m, groups))
    return out


def _split(rows: list, blocks: tuple[str, ...], names: list[str]) -> dict[str, dict[str, list]]:
    """Per step a flat row of len(blocks) x len(names) values -> {block: {name: [per step]}}."""
    n = len(names)
    return {
        block: {
            name: [None if r is None else r[b * n + i] for r in rows]
            for i, name in enumerate(names)
        }
        for b, block in enumerate(blocks)
    }


def run_entry(result: RunResult, multiplier: float, lr: float) -> dict[str, Any]:
    """One entry of metrics.json["runs"], the analyses' measurements under their own keys."""
    entry = {**curves_entry(result), "lr": lr, "lr_multiplier": multiplier}
    extra = result.extra
    if "ics" in extra:
        layers = [str(k) for k in range(1, len(extra["ics"][0]) // len(M.ICS_KEYS) + 1)]
        entry["ics"] = _split(extra["ics"], M.ICS_KEYS, layers)
    if "landscape" in extra:
        entry["landscape"] = {
            k: v["0"] for k, v in _split(extra["landscape"], M.LANDSCAPE_KEYS, ["0"]).items()
        }
    if "train_percentiles" in extra:
        units = len(extra["train_percentiles"][0]) // 3
        per_unit = _split(
            extra["train_percentiles"], ("15", "50", "85"), [str(u) for u in range(units)]
        )
        # the typical unit of Figure 1(b, c), in training mode with the step's noise
        entry["eval_percentiles"] = entry["percentiles"]
        entry["percentiles"] = {q: v[str(result.percentile_unit)] for q, v in per_unit.items()}
    return entry


def _flat_scalars(entry: dict[str, Any]) -> dict[str, list]:
    """The analyses' curves as TensorBoard tags: ics/distance/layer2, landscape/loss_max, ..."""
    out: dict[str, list] = {}
    for name, value in (("ics", entry.get("ics")), ("landscape", entry.get("landscape"))):
        for key, sub in (value or {}).items():
            if isinstance(sub, dict):
                out.update({f"{name}/{key}/layer{k}": v for k, v in sub.items()})
            else:
                out[f"{name}/{key}"] = sub
    return out


@dataclass
class PreparedAnalysis:
    """A checked analysis: valid config, data loaded, run directory ready (config.json written)."""

    config: AnalysisConfig
    out_dir: Path
    mnist: MNIST
    started: float


def prepare_analysis(
    config: AnalysisConfig, out_dir: str | Path | None = None, *, overwrite: bool = False
) -> PreparedAnalysis:
    """Every check that can fail on the user's input, before anything is trained."""
    started = time.perf_counter()
    config = config.validate()
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(config.analysis)
    mnist = load_mnist(config.experiment.data_dir)
    clear_out_dir(out_dir, OUTPUTS, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / CONFIG_FILE, config.to_dict())
    return PreparedAnalysis(config, out_dir, mnist, started)


def run_analysis(
    config: AnalysisConfig | PreparedAnalysis,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: AnalysisProgress | None = None,
) -> AnalysisResult:
    """Train the analysis's networks for every seed, measure, and write the run directory
    (``config`` may be what :func:`prepare_analysis` returned)."""
    if not isinstance(config, PreparedAnalysis):
        config = prepare_analysis(config, out_dir, overwrite=overwrite)
    prepared, config, out_dir = config, config.config, config.out_dir
    t0, e, mnist = prepared.started, config.experiment, prepared.mnist
    files = {"config": out_dir / CONFIG_FILE}
    plan = phases(config)
    devices = cpu_devices(len(plan[0][1]))
    timing: dict[str, Any] = {"compile_s": 0.0, "train_s": 0.0}
    entries, histograms = [], []
    for k, (multiplier, groups) in enumerate(plan):
        done = k * e.steps

        def report(step, latest, done=done):
            if progress is not None:
                progress(done + step, len(plan) * e.steps, latest)

        lr = e.lr * multiplier
        results, engine_timing = train_groups(
            groups, e.replace(lr=lr).train_spec(), mnist, progress=report, devices=devices
        )
        timing["compile_s"] += engine_timing.compile_s
        timing["train_s"] += engine_timing.train_s
        entries += [run_entry(r, multiplier, lr) for r in results]
        histograms += [r.histograms for r in results]
    t_outputs = time.perf_counter()
    metrics = {"analysis": config.analysis, "runs": entries}
    files["metrics"] = out_dir / METRICS_FILE
    atomic_write_json(files["metrics"], metrics)
    for entry, hist in zip(entries, histograms, strict=True):
        logdir = out_dir / TENSORBOARD_DIR / f"{entry['variant']}-seed{entry['seed']}"
        tensorboard.write_run(logdir, entry, hist, scalars=_flat_scalars(entry))
    files["tensorboard"] = out_dir / TENSORBOARD_DIR
    for path in _figures(config, metrics, out_dir):
        files[path.name] = path
    timing["outputs_s"] = time.perf_counter() - t_outputs
    timing["total_s"] = time.perf_counter() - t0
    timing["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timing["devices"] = len(devices)
    files["report"] = write_analysis_report(out_dir, config.to_dict(), metrics, timing)
    files["timing"] = out_dir / TIMING_FILE
    atomic_write_json(files["timing"], timing)
    return AnalysisResult(out_dir, config, metrics, timing, files)


def _figures(config: AnalysisConfig, metrics: dict[str, Any], out_dir: Path) -> list[Path]:
    if config.analysis == "noisy-bn":
        return F.plot_accuracy_and_percentiles(metrics, out_dir)
    paths = F.plot_accuracy(metrics, out_dir)
    if config.analysis == "ics":
        layers = sorted(metrics["runs"][0]["ics"]["distance"], key=int)[1:]
        paths += F.plot_ics(metrics, layers, out_dir)
    if config.analysis in ("landscape", "lp-norm"):
        paths += F.plot_landscape(metrics, out_dir)
    return paths
