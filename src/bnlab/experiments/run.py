"""Running any experiment: preparing its run directory (:mod:`bnlab.experiments.rundir`), loading
the data, placing the runs on devices, training the experiment's phases, and writing
metrics.json, timing.json, TensorBoard logs, the figures and report.md.

>>> from bnlab.experiments import registry, run_experiment
>>> ics = registry.experiment("ics")
>>> run = run_experiment(ics, ics.default_config(seeds=3), "runs/ics-3seeds")
"""

from __future__ import annotations

import contextlib
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from bnlab.data import MNIST, load_mnist
from bnlab.engine import RunResult, Stopped, train_groups
from bnlab.engine.devices import cpu_devices, default_mesh
from bnlab.errors import ConfigError
from bnlab.experiments import preflight
from bnlab.experiments.board import phase_board
from bnlab.experiments.experiment import Experiment
from bnlab.experiments.rundir import (
    COMPLETE,
    CONFIG_FILE,
    INTERRUPTED,
    METRICS_FILE,
    RUNNING,
    STATUS_FILE,
    TENSORBOARD_DIR,
    TIMING_FILE,
    check_resume,
    checkpoint_dir,
    clear_out_dir,
    config_dict,
    default_out_dir,
    record_failure,
    remove_partial_outputs,
    write_status,
    written_by_bnlab,
)
from bnlab.files import atomic_write_json, atomic_write_text
from bnlab.outputs.report import REPORT_FILE

# progress(steps done over all phases, total steps, latest means per network label or None)
Progress = Callable[[int, int, dict[str, dict[str, float]] | None], None]


@dataclass
class Prepared:
    """A checked run: valid config, data loaded, run directory ready (config.json written)."""

    experiment: Experiment
    config: Any
    out_dir: Path
    data: dict[str | None, MNIST]
    resume: bool
    started: float
    # where the runs train: one CPU device per group, or (shards_runs) a mesh over every device
    devices: list[jax.Device] | None
    mesh: jax.sharding.Mesh | None
    # a resumed run's status.json before this attempt: put back if the resume is refused
    previous_status: bytes | None = None


@dataclass
class ExperimentRun:
    """What a run left: its directory, config, metrics, timing and files (name -> path)."""

    experiment: Experiment
    out_dir: Path
    config: Any
    metrics: dict[str, Any]
    timing: dict[str, Any]
    files: dict[str, Path]
    results: list[RunResult]


def prepare_experiment(
    experiment: Experiment,
    config: Any,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    mesh: jax.sharding.Mesh | None = None,
    check_resources: bool = True,
) -> Prepared:
    """Every check that can fail on the user's input, before anything is trained: the data fits
    the networks, the memory and disk hold the run (unless ``check_resources`` is False), the run
    directory can be written (:mod:`bnlab.experiments.preflight`); then the run directory is made
    ready and config.json written, with status.json saying "running" until the run completes
    (by process 0 only). The devices are set up first, before anything starts JAX's backend
    (``mesh``: for an experiment that shards its runs, default: every device)."""
    started = time.perf_counter()
    if resume and out_dir is None:
        raise ConfigError("--resume: expected --out DIR, the run to continue; got no --out")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: expected at most one of them, got both")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(experiment, config)
    preflight.check_out_name(out_dir)
    devices = None
    if experiment.shards_runs:
        mesh = mesh if mesh is not None else default_mesh()
    else:
        mesh, devices = None, cpu_devices(max(len(p.groups) for p in experiment.phases(config)))
    if resume and not _keeps_state():
        raise ConfigError(
            f"--resume: a run over {jax.process_count()} processes (--num-processes) keeps no "
            "checkpoints: only process 0 writes, on its own disk, and every process would need "
            "its state back; start it again with --overwrite"
        )
    if resume and not (out_dir.is_dir() and any(out_dir.iterdir())):
        what = "an empty directory" if out_dir.is_dir() else "no such directory"
        raise ConfigError(f"--resume: --out {out_dir} is {what}; expected the run to continue")
    data = {d: load_mnist(d) for d in experiment.data_dirs(config)}
    preflight.check_data(experiment, config, data)
    writer = jax.process_index() == 0
    made = preflight.probe_out_dir(out_dir) if writer else []
    if check_resources:
        placed = mesh.size if mesh is not None else len(devices)
        need = preflight.footprint(experiment, config, data, placed)
        with preflight.removing(made):
            preflight.check_resources(need, out_dir)
    if resume:
        check_resume(experiment, config, out_dir, mesh.size if mesh is not None else 1)
    elif writer:
        hint = "--resume to continue that run or " if _keeps_state() else ""
        clear_out_dir(out_dir, written_by_bnlab(), overwrite=overwrite, hint=hint)
    status = out_dir / STATUS_FILE
    previous = status.read_bytes() if resume and status.is_file() else None
    if writer:
        remove_partial_outputs(out_dir)
        write_status(out_dir, RUNNING)
        atomic_write_json(out_dir / CONFIG_FILE, config_dict(experiment, config))
    return Prepared(experiment, config, out_dir, data, resume, started, devices, mesh, previous)


def _keeps_state() -> bool:
    """Whether the run saves its state, to be resumed: not under jax.distributed, where only
    process 0 could write it, and other hosts need not see its disk."""
    return jax.process_count() == 1


class RunStopped(Stopped):
    """A run stopped on request (:func:`run_experiment`'s ``stop``) at ``step`` of ``total``
    (over all phases), its state saved in ``out_dir`` when ``saved``: ``resume`` continues it."""

    def __init__(self, step: int, total: int, saved: bool, out_dir: Path):
        super().__init__(step, saved)
        self.total, self.out_dir = total, out_dir


def _train(
    prepared: Prepared, progress: Progress | None, stop: threading.Event | None, logs: bool
) -> tuple[list, dict[str, Any]]:
    """Train every phase; the results in order and the summed compile/train/final times.
    ``logs``: write each phase's TensorBoard logs as its evaluations arrive."""
    experiment, config, out_dir = prepared.experiment, prepared.config, prepared.out_dir
    devices, mesh = prepared.devices, prepared.mesh
    phases = experiment.phases_on(config, mesh)
    labels = experiment.labels(config)
    total = sum(p.train.steps for p in phases)
    root = out_dir / TENSORBOARD_DIR
    timing = {"compile_s": 0.0, "train_s": 0.0, "final_eval_s": 0.0}
    results: list[RunResult] = []
    done = 0
    for k, phase in enumerate(phases):
        kept = checkpoint_dir(out_dir, k, len(phases)) if _keeps_state() else None

        def report(step, latest, done=done):
            if progress is not None:
                shown = latest and {labels.get(n.variant, n.variant): m for n, m in latest.items()}
                progress(done + step, total, shown or None)

        board = phase_board(experiment, config, root, phases, k) if logs else None
        try:
            with board or contextlib.nullcontext():
                found, t = train_groups(
                    list(phase.groups),
                    phase.train,
                    prepared.data[phase.data_dir],
                    checkpoint_dir=kept,
                    resume=prepared.resume,
                    progress=report,
                    devices=devices,
                    mesh=mesh,
                    stop=stop,
                    on_record=None if board is None else board.record,
                )
                if board is not None:
                    board.finish([r.finals for r in found])
        except Stopped as e:
            raise RunStopped(done + e.step, total, e.saved, out_dir) from None
        results += found
        done += phase.train.steps
        timing["compile_s"] += t.compile_s
        timing["train_s"] += t.train_s
        timing["final_eval_s"] += t.final_s
    timing["devices"] = mesh.size if mesh is not None else len(devices)
    return results, timing


def run_experiment(
    experiment: Experiment | Prepared,
    config: Any = None,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    mesh: jax.sharding.Mesh | None = None,
    write_outputs: bool = True,
    stop: threading.Event | None = None,
) -> ExperimentRun:
    """Train ``experiment`` with ``config`` and write its run directory ``out_dir`` (default
    runs/<name>-<time>): config.json, metrics.json, timing.json, training_state/, tensorboard/,
    the figures and report.md. ``resume`` continues an interrupted run in ``out_dir`` (same
    config) from its last checkpoint, with the same results as an uninterrupted run (a sweep:
    in one process, on as many devices as before); ``overwrite`` replaces a run directory.
    ``experiment`` may instead be what :func:`prepare_experiment` returned (the CLI checks
    everything before it shows a progress bar). ``mesh``: where an experiment that shards its
    runs trains them (default: every device). ``write_outputs`` False skips TensorBoard, figures
    and report. Under ``jax.distributed`` only process 0 writes, and no checkpoints are kept.
    ``stop``, once set (e.g. by a signal handler), ends training at the next segment with the
    state saved there, status.json "interrupted", and raises :class:`RunStopped`."""
    if isinstance(experiment, Prepared):
        prepared = experiment
    else:
        prepared = prepare_experiment(
            experiment, config, out_dir, resume=resume, overwrite=overwrite, mesh=mesh
        )
    writer = jax.process_index() == 0
    try:
        run = _run(prepared, progress, write_outputs, stop)
    except RunStopped as e:
        if writer:
            write_status(prepared.out_dir, INTERRUPTED, f"stopped at step {e.step:,}")
        raise
    except BaseException as e:
        if writer:
            record_failure(prepared.out_dir, e, prepared.previous_status)
        raise
    if writer:
        write_status(prepared.out_dir, COMPLETE)
    return run


def _run(
    prepared: Prepared,
    progress: Progress | None,
    write_outputs: bool,
    stop: threading.Event | None,
) -> ExperimentRun:
    experiment, config, out_dir = prepared.experiment, prepared.config, prepared.out_dir
    t_setup = time.perf_counter()
    writer = jax.process_index() == 0
    results, timing = _train(prepared, progress, stop, logs=writer and write_outputs)
    timing = {"setup_s": t_setup - prepared.started, **timing}
    t_outputs = time.perf_counter()
    pairs = [(experiment.entry(config, r), r) for r in results]
    pairs = experiment.ordered(config, pairs)
    metrics = {**experiment.metrics_header(config), "runs": [e for e, _ in pairs]}
    timing.update(experiment.timing_extra(config, timing))
    files = {"config": out_dir / CONFIG_FILE, "metrics": out_dir / METRICS_FILE}
    if writer:
        atomic_write_json(files["metrics"], metrics)
    if writer and write_outputs:
        files["tensorboard"] = out_dir / TENSORBOARD_DIR
        for path in experiment.figures(config, metrics, out_dir):
            files[path.name] = path
    timing["outputs_s"] = time.perf_counter() - t_outputs
    timing["total_s"] = time.perf_counter() - prepared.started
    timing["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if writer and write_outputs:
        files["report"] = out_dir / REPORT_FILE
        atomic_write_text(files["report"], experiment.report(config, metrics, timing))
    if writer:
        files["timing"] = out_dir / TIMING_FILE
        atomic_write_json(files["timing"], timing)
    return ExperimentRun(experiment, out_dir, config, metrics, timing, files, results)
