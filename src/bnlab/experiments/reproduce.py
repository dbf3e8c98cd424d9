"""Figure 1 of Ioffe & Szegedy (2015), end to end: train, measure, and write the run directory.

>>> from bnlab.experiments import preset, run_reproduce
>>> result = run_reproduce(preset("paper").replace(seeds=3), "runs/paper-3seeds")

The run directory holds config.json, metrics.json, timing.json, checkpoint/ (the state after each
epoch, for ``resume``), tensorboard/<variant>-seed<k>/, figure1.png/.svg and report.md.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bnlab.data import MNIST, load_mnist
from bnlab.engine import RunResult, summary_rows, train_groups
from bnlab.engine.devices import cpu_devices
from bnlab.engine.runner import Progress
from bnlab.errors import ConfigError
from bnlab.experiments.presets import ExperimentConfig
from bnlab.outputs.files import atomic_write_json

CONFIG_FILE, METRICS_FILE, TIMING_FILE = "config.json", "metrics.json", "timing.json"
CHECKPOINT_DIR, TENSORBOARD_DIR = "checkpoint", "tensorboard"
# everything a run writes; --overwrite deletes these and nothing else
OUTPUTS = (
    CONFIG_FILE,
    METRICS_FILE,
    TIMING_FILE,
    CHECKPOINT_DIR,
    TENSORBOARD_DIR,
    "figure1.png",
    "figure1.svg",
    "report.md",
)


@dataclass
class ReproduceResult:
    out_dir: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    timing: dict[str, Any]
    files: dict[str, Path]


def default_out_dir(preset: str) -> Path:
    return Path("runs") / f"{preset}-{datetime.now():%Y%m%d-%H%M%S}"


def model_summaries(config: ExperimentConfig) -> dict[str, list[tuple[str, str, int]]]:
    """Keras-like layer rows (name, output shape, params) per variant."""
    return {v: summary_rows(config.model_spec(v)) for v in config.variants}


def saved_config(out_dir: Path) -> ExperimentConfig | None:
    """The config a run directory was started with, or None when it has none."""
    path = Path(out_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ExperimentConfig.from_dict(data)
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: not a bnlab reproduce config ({e})") from None


def prepare_out_dir(
    out_dir: Path,
    config: ExperimentConfig,
    *,
    resume: bool,
    overwrite: bool,
    outputs: tuple[str, ...] = OUTPUTS,
) -> None:
    """Refuse a non-empty directory unless resuming the same config, or overwriting bnlab's own
    outputs (``outputs``: the names a run writes; a directory holding anything else is never
    emptied)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: expected at most one of them, got both")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: expected a directory, got a file")
    contents = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    if not contents:
        return
    if resume:
        saved = saved_config(out_dir)
        if saved is None:
            raise ConfigError(f"--resume: {out_dir} has no {CONFIG_FILE} to resume from")
        if saved != config:
            changed = [
                f"{k} {v!r} -> {config.to_dict()[k]!r}"
                for k, v in saved.to_dict().items()
                if config.to_dict()[k] != v
            ]
            raise ConfigError(
                f"--resume: the options differ from {out_dir / CONFIG_FILE}: {'; '.join(changed)}"
            )
        return
    clear_out_dir(out_dir, OUTPUTS, overwrite=overwrite, resumable=True)


def clear_out_dir(
    out_dir: Path, outputs: tuple[str, ...], *, overwrite: bool, resumable: bool = False
) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``, and then delete only the files a run
    writes (``outputs``): a directory holding anything else is never emptied."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: expected a directory, got a file")
    contents = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    if not contents:
        return
    if not overwrite:
        hint = "--resume to continue that run or " if resumable else ""
        raise ConfigError(
            f"--out {out_dir}: directory is not empty; pass {hint}--overwrite to replace it"
        )
    foreign = [name for name in contents if name not in outputs]
    if foreign:
        raise ConfigError(
            f"--overwrite: {out_dir} holds files bnlab did not write ({', '.join(foreign[:5])}); "
            "expected a bnlab run directory"
        )
    for name in contents:
        path = out_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def curves_entry(result: RunResult) -> dict[str, Any]:
    """What every experiment's metrics.json entry holds: the run's identity and its curves."""
    return {
        "variant": result.variant,
        "seed": result.seed,
        "steps": result.steps,
        **result.curves,
        "percentiles": result.percentiles,
        "diverged_at": result.diverged_at,
        "percentile_unit": result.percentile_unit,
    }


def run_entry(result: RunResult, config: ExperimentConfig) -> dict[str, Any]:
    """One entry of metrics.json["runs"]."""
    entry = curves_entry(result)
    spec = config.model_spec(result.variant)
    if spec.has_bn:
        finals = result.finals
        entry["population_test_accuracy"] = finals.get("population_test_accuracy")
        entry["population_test_loss"] = finals.get("population_test_loss")
        entry["batch_stats_test_accuracy"] = {
            str(b): finals.get(f"batch_stats_test_accuracy/{b}") for b in (config.batch_size, 1)
        }
    if result.extra:
        entry["extra"] = result.extra
    return entry


@dataclass
class Prepared:
    """A checked run: valid config, data loaded, run directory ready (config.json written)."""

    config: ExperimentConfig
    out_dir: Path
    mnist: MNIST
    resume: bool
    started: float


def prepare_reproduce(
    config: ExperimentConfig,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> Prepared:
    """Every check that can fail on the user's input, before anything is written or trained."""
    started = time.perf_counter()
    config = config.validate()
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(config.preset)
    mnist = load_mnist(config.data_dir)
    prepare_out_dir(out_dir, config, resume=resume, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / CONFIG_FILE, config.to_dict())
    return Prepared(config, out_dir, mnist, resume, started)


def run_reproduce(
    config: ExperimentConfig | Prepared,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    write_outputs: bool = True,
) -> ReproduceResult:
    """Train both networks of Figure 1 for every seed and write the run directory.

    ``resume`` continues an interrupted run in ``out_dir`` (same config) from its last epoch
    checkpoint; the final metrics are bit-identical to an uninterrupted run. ``write_outputs``
    False skips TensorBoard, figure and report (config/metrics/timing are always written).
    ``config`` may also be what :func:`prepare_reproduce` returned (the CLI checks everything
    before it shows a progress bar).
    """
    if not isinstance(config, Prepared):
        config = prepare_reproduce(config, out_dir, resume=resume, overwrite=overwrite)
    prepared, config, out_dir = config, config.config, config.out_dir
    files = {"config": out_dir / CONFIG_FILE}
    groups = config.groups()
    devices = cpu_devices(len(groups))
    t_engine = time.perf_counter()
    results, engine_timing = train_groups(
        groups,
        config.train_spec(),
        prepared.mnist,
        checkpoint_dir=out_dir / CHECKPOINT_DIR,
        resume=prepared.resume,
        progress=progress,
        devices=devices,
    )
    t_outputs = time.perf_counter()
    metrics = {"preset": config.preset, "runs": [run_entry(r, config) for r in results]}
    files["metrics"] = out_dir / METRICS_FILE
    atomic_write_json(files["metrics"], metrics)
    timing = {
        "setup_s": t_engine - prepared.started,
        "compile_s": engine_timing.compile_s,
        "train_s": engine_timing.train_s,
        "final_eval_s": engine_timing.final_s,
    }
    if write_outputs:
        files.update(_write_outputs(out_dir, config, metrics, results, timing))
    timing["outputs_s"] = time.perf_counter() - t_outputs
    timing["total_s"] = time.perf_counter() - prepared.started
    timing["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timing["devices"] = len(devices)
    files["timing"] = out_dir / TIMING_FILE
    atomic_write_json(files["timing"], timing)
    return ReproduceResult(out_dir, config, metrics, timing, files)


def _write_outputs(
    out_dir: Path,
    config: ExperimentConfig,
    metrics: dict[str, Any],
    results: list[RunResult],
    timing: dict[str, Any],
) -> dict[str, Path]:
    from bnlab.outputs import figures, report, tensorboard

    files: dict[str, Path] = {}
    for entry, result in zip(metrics["runs"], results, strict=True):
        logdir = out_dir / TENSORBOARD_DIR / f"{result.variant}-seed{result.seed}"
        tensorboard.write_run(logdir, entry, result.histograms)
    files["tensorboard"] = out_dir / TENSORBOARD_DIR
    for path in figures.plot_figure1(metrics, out_dir):
        files[f"figure1{path.suffix}"] = path
    files["report"] = report.write_report(
        out_dir, config.to_dict(), metrics, model_summaries(config), timing
    )
    return files
