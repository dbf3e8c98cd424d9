"""A grid of configurations (seeds x learning rates x variants x any config field) as few programs.

>>> from bnlab.experiments.sweep import load_sweep, run_sweep
>>> result = run_sweep(load_sweep("sweep.toml"), "runs/lr-sweep")

The config file names a preset, overrides any of its fields, and spans a ``[grid]``::

    preset = "seed"          # any preset; any config field below it overrides the preset
    steps = 400
    seeds = [0, 1]           # or a count: seeds = 2 (from first_seed)
    [grid]                   # every combination is one cell; each cell trains every variant
    lr = [0.001, 0.003]

Runs that share a compiled shape share one vmapped program: the optimiser's ``lr`` (and
RMSprop's ``rho`` and ``opt_eps``) are per-run arrays in the optimiser state, so a learning-rate
grid is one program per variant. Any other field in the grid (``hidden``, ``bn_placement``,
``batch_size``, ...) gives one program per value. Every program's runs are sharded over all
devices (:func:`bnlab.engine.devices.run_mesh`), and over all hosts under ``jax.distributed``
(docs/sweep.md); only process 0 writes the run directory.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bnlab.data import load_mnist
from bnlab.engine import RunGroup, RunResult, train_groups
from bnlab.engine.devices import cpu_devices, run_mesh
from bnlab.errors import ConfigError
from bnlab.experiments.presets import ExperimentConfig
from bnlab.experiments.reproduce import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    METRICS_FILE,
    TENSORBOARD_DIR,
    TIMING_FILE,
    prepare_out_dir,
    run_entry,
)
from bnlab.experiments.sweep_config import SweepConfig, load_sweep, parse_sweep
from bnlab.outputs.files import atomic_write_json
from bnlab.outputs.sweep_report import run_name, show_value

__all__ = [
    "Program",
    "SweepConfig",
    "SweepResult",
    "cell_rows",
    "default_mesh",
    "load_sweep",
    "parse_sweep",
    "plan",
    "program_groups",
    "run_sweep",
]

SWEEP_FILE, FIGURE_STEM = "sweep.json", "sweep"
OUTPUTS = (
    CONFIG_FILE,
    SWEEP_FILE,
    METRICS_FILE,
    TIMING_FILE,
    CHECKPOINT_DIR,
    TENSORBOARD_DIR,
    f"{FIGURE_STEM}.png",
    f"{FIGURE_STEM}.svg",
    "report.md",
)
# config fields a run keeps in its optimiser state (per run), and the engine's names for them
PER_RUN = {"lr": "lr", "rho": "rho", "opt_eps": "eps"}
RMSPROP_ONLY = ("rho", "opt_eps")


@dataclass(frozen=True)
class Program:
    """Cells whose runs share compiled programs (one per variant): they differ at most in the
    per-run fields."""

    config: ExperimentConfig
    cells: tuple[dict[str, Any], ...]
    per_run: tuple[str, ...]


def plan(sweep: SweepConfig) -> list[Program]:
    """Group the cells by everything but their per-run fields, in first-seen order."""
    programs: dict[ExperimentConfig, list[dict[str, Any]]] = {}
    per_run: dict[ExperimentConfig, tuple[str, ...]] = {}
    for cell in sweep.cells():
        config = sweep.cell_config(cell)
        fields_here = tuple(
            k
            for k in sweep.grid
            if k in PER_RUN and (k not in RMSPROP_ONLY or config.optimizer == "rmsprop")
        )
        static = sweep.cell_config({k: v for k, v in cell.items() if k not in fields_here})
        programs.setdefault(static, []).append(cell)
        per_run[static] = fields_here
    return [Program(c, tuple(cells), per_run[c]) for c, cells in programs.items()]


def program_groups(program: Program, seeds: tuple[int, ...]) -> list[RunGroup]:
    """One group per variant; its runs are cell-major, seed-minor."""
    n = len(seeds)
    hyper = {
        PER_RUN[k]: tuple(float(cell[k]) for cell in program.cells for _ in range(n))
        for k in program.per_run
    }
    return [
        RunGroup(v, program.config.model_spec(v), seeds * len(program.cells), hyper=hyper)
        for v in program.config.variants
    ]


def default_mesh(devices: int | None = None) -> jax.sharding.Mesh:
    """The first ``devices`` (default: all) devices of every process; on a CPU-only host, one CPU
    device per core unless XLA_FLAGS already sets a count."""
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        cpu_devices(os.cpu_count() or 1)  # before the backend starts; no effect after
    available = jax.devices()
    if devices is not None and not 1 <= devices <= len(available):
        raise ConfigError(f"--devices: expected 1 to {len(available)}, got {devices}")
    return run_mesh(available[:devices])


@dataclass
class SweepResult:
    out_dir: Path
    sweep: SweepConfig
    metrics: dict[str, Any]
    timing: dict[str, Any]
    rows: list[dict[str, Any]]
    files: dict[str, Path]


def run_sweep(
    sweep: SweepConfig,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress=None,
    mesh: jax.sharding.Mesh | None = None,
    write_outputs: bool = True,
) -> SweepResult:
    """Train every run of the grid and write one run directory (process 0 only).

    ``progress(step, total)`` is called as training advances (steps summed over programs).
    """
    started = time.perf_counter()
    mesh = mesh if mesh is not None else default_mesh()  # before anything starts JAX's backend
    writer = jax.process_index() == 0
    out_dir = Path(out_dir) if out_dir is not None else _default_out(sweep)
    mnist = {}
    programs = plan(sweep)
    for p in programs:
        if p.config.data_dir not in mnist:
            mnist[p.config.data_dir] = load_mnist(p.config.data_dir)
    if writer:
        prepare_out_dir(out_dir, sweep.base, resume=False, overwrite=overwrite, outputs=OUTPUTS)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / CONFIG_FILE, sweep.base.to_dict())
        atomic_write_json(out_dir / SWEEP_FILE, sweep.to_dict())
    total = sum(p.config.steps for p in programs)
    done, timing = 0, {"setup_s": time.perf_counter() - started, "compile_s": 0.0, "train_s": 0.0}
    timing["final_eval_s"] = 0.0
    entries: list[tuple[dict[str, Any], RunResult]] = []
    for p in programs:
        groups = program_groups(p, sweep.seeds)
        report = None if progress is None else (lambda s, _latest, d=done: progress(d + s, total))
        results, t = train_groups(
            groups, p.config.train_spec(), mnist[p.config.data_dir], progress=report, mesh=mesh
        )
        done += p.config.steps
        timing["compile_s"] += t.compile_s
        timing["train_s"] += t.train_s
        timing["final_eval_s"] += t.final_s
        n = len(sweep.seeds)
        for i, result in enumerate(results):
            cell = p.cells[(i % len(groups[0].seeds)) // n]
            entries.append((_entry(result, cell, sweep.cell_config(cell)), result))
    order = {run_name(v, c, s): i for i, (c, v, s) in enumerate(_run_order(sweep))}
    entries.sort(key=lambda e: order[run_name(e[0]["variant"], e[0]["cell"], e[0]["seed"])])
    metrics = {
        "preset": sweep.base.preset,
        "grid": sweep.to_dict()["grid"],
        "runs": [e for e, _ in entries],
    }
    run_steps = sum(
        len(sweep.seeds) * len(p.cells) * len(p.config.variants) * p.config.steps for p in programs
    )
    timing.update(
        runs=len(entries),
        programs=len(programs),
        devices=mesh.size,
        processes=jax.process_count(),
        device_kind=mesh.devices.flat[0].device_kind,
        runs_x_steps_per_s=run_steps / timing["train_s"] if timing["train_s"] else None,
    )
    rows = cell_rows(metrics, list(sweep.grid))
    files: dict[str, Path] = {}
    if writer:
        files = _write(out_dir, sweep, metrics, entries, timing, rows, write_outputs, started)
    else:
        timing["total_s"] = time.perf_counter() - started
    return SweepResult(out_dir, sweep, metrics, timing, rows, files)


def _run_order(sweep: SweepConfig):
    """(cell, variant, seed) in the order metrics.json lists the runs."""
    for cell in sweep.cells():
        for variant in sweep.cell_config(cell).variants:
            for seed in sweep.seeds:
                yield cell, variant, seed


def _entry(result: RunResult, cell: dict[str, Any], config: ExperimentConfig) -> dict[str, Any]:
    """A metrics.json run: variant, seed, the cell's values, then reproduce's fields."""
    entry = run_entry(result, config)
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in cell.items()}
    return {
        "variant": entry.pop("variant"),
        "seed": entry.pop("seed"),
        **values,
        "cell": values,
        **entry,
    }


def _default_out(sweep: SweepConfig) -> Path:
    from bnlab.experiments.reproduce import default_out_dir

    stem = Path(sweep.source).stem
    return default_out_dir(f"sweep-{stem}")


def cell_rows(metrics: dict[str, Any], axes: list[str]) -> list[dict[str, Any]]:
    """Per grid cell and variant: the final test accuracy (mean ± std over the seeds that did
    not diverge) and how many runs diverged."""
    from bnlab.outputs import report_tables as T

    rows: dict[tuple, dict[str, Any]] = {}
    for run in metrics["runs"]:
        key = (tuple(show_value(run["cell"][k]) for k in axes), run["variant"])
        row = rows.setdefault(
            key,
            {
                "cell": run["cell"],
                "variant": run["variant"],
                "final": [],
                "diverged": [],
                "seeds": 0,
            },
        )
        row["seeds"] += 1
        curve = run["test_accuracy"]
        if run["diverged_at"] is not None:
            row["diverged"].append(run["diverged_at"])
        elif curve and curve[-1] is not None:
            row["final"].append(curve[-1])
    for row in rows.values():
        values = np.asarray(row["final"], dtype=float)
        row["mean_std"] = T.mean_std_cell(values, row["seeds"], row["diverged"])
        row["mean"] = float(values.mean()) if values.size else None
        row["std"] = float(values.std(ddof=1)) if values.size > 1 else None
    return list(rows.values())


def _write(
    out_dir, sweep, metrics, entries, timing, rows, write_outputs, started
) -> dict[str, Path]:
    from bnlab.outputs import sweep_report

    files = {
        "config": out_dir / CONFIG_FILE,
        "sweep": out_dir / SWEEP_FILE,
        "metrics": out_dir / METRICS_FILE,
    }
    t = time.perf_counter()
    atomic_write_json(files["metrics"], metrics)
    if write_outputs:
        files.update(sweep_report.write_outputs(out_dir, sweep, metrics, entries, rows, timing))
    timing["outputs_s"] = time.perf_counter() - t
    timing["total_s"] = time.perf_counter() - started
    timing["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    files["timing"] = out_dir / TIMING_FILE
    atomic_write_json(files["timing"], timing)
    if write_outputs:
        sweep_report.write_report(out_dir, sweep, metrics, rows, timing)
    return files
