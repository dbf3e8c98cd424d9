"""A grid of configurations (seeds x learning rates x networks x any config field) as few programs.

>>> from bnlab.experiments import SWEEP, load_sweep, run_experiment
>>> run = run_experiment(SWEEP, load_sweep("sweep.toml"), "runs/lr-sweep")

The config file names a preset, overrides any of its fields, and spans a ``[grid]``::

    preset = "seed"          # any preset; any config field below it overrides the preset
    steps = 400
    seeds = [0, 1]           # or a count: seeds = 2 (from first_seed)
    [grid]                   # every combination is one cell; each cell trains every variant
    lr = [0.001, 0.003]

Runs that share a compiled shape share one vmapped program: the optimiser's ``lr`` (and
RMSprop's ``rho`` and ``opt_eps``) are per-run arrays in the optimiser state, so a learning-rate
grid is one program per network. Any other field in the grid (``hidden``, ``bn_placement``,
``batch_size``, ...) gives one program per value. Every program's runs are sharded over all
devices (:func:`bnlab.engine.devices.default_mesh`), and over all hosts under ``jax.distributed``
(docs/sweep.md); only process 0 writes the run directory. Each device trains its runs vmapped or
one after another, as the file's ``layout`` says or, by default, as measured
(:mod:`bnlab.experiments.sweep.layout`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
from jax.sharding import Mesh

from bnlab.engine import RunGroup, RunResult
from bnlab.experiments.config import ExperimentConfig
from bnlab.experiments.experiment import Experiment, Phase, Summary
from bnlab.experiments.figure1 import FIGURE1
from bnlab.experiments.network import VARIANTS, Network
from bnlab.experiments.sweep import report as R
from bnlab.experiments.sweep.config import SweepConfig, cell_label, show_cell_value
from bnlab.experiments.sweep.layout import Choice, program_layout
from bnlab.outputs.figures import save_figure
from bnlab.outputs.verdicts import Verdict

# config fields a run keeps in its optimiser state (per run), and the engine's names for them
PER_RUN = {"lr": "lr", "rho": "rho", "opt_eps": "eps"}
RMSPROP_ONLY = ("rho", "opt_eps")


@dataclass(frozen=True)
class Program:
    """Cells whose runs share compiled programs (one per network): they differ at most in the
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


def program_layouts(sweep: SweepConfig, devices: int, platform: str) -> list[Choice]:
    """Each program's training layout on ``devices`` devices of ``platform``: the file's
    ``layout``, or for "auto" the measured choice for its runs, width and batch."""
    return [
        program_layout(sweep.layout, p.config, len(sweep.seeds) * len(p.cells), platform, devices)
        for p in plan(sweep)
    ]


def program_groups(program: Program, seeds: tuple[int, ...]) -> list[RunGroup]:
    """One group per network; its runs are cell-major, seed-minor, each tagged with its cell."""
    n = len(seeds)
    hyper = {
        PER_RUN[k]: tuple(float(cell[k]) for cell in program.cells for _ in range(n))
        for k in program.per_run
    }
    tags = tuple(cell for cell in program.cells for _ in range(n))
    return [
        RunGroup(
            VARIANTS[v],
            VARIANTS[v].model_spec(program.config),
            seeds * len(program.cells),
            hyper=hyper,
            tags=tags,
        )
        for v in program.config.variants
    ]


class Sweep(Experiment):
    name = "sweep"
    title = "a grid of configurations"
    figure_stems = (R.FIGURE_STEM,)
    shards_runs = True

    def config_to_dict(self, config: SweepConfig) -> dict[str, Any]:
        return config.to_dict()

    def config_from_dict(self, data: dict[str, Any], run_dir: Path | None = None):
        return SweepConfig.from_dict(data)

    def out_name(self, config: SweepConfig) -> str:
        return f"sweep-{Path(config.source).stem}"

    def networks(self, config: SweepConfig) -> list[Network]:
        return [VARIANTS[v] for v in config.base.variants]

    def phases(self, config: SweepConfig) -> list[Phase]:
        return [
            Phase(p.config.train_spec(), tuple(program_groups(p, config.seeds)), p.config.data_dir)
            for p in plan(config)
        ]

    def phases_on(self, config: SweepConfig, mesh: Mesh | None) -> list[Phase]:
        """:meth:`phases` with each program's groups in its layout for ``mesh``."""
        devices = jax.devices() if mesh is None else list(mesh.devices.flat)
        choices = program_layouts(config, len(devices), devices[0].platform)
        return [
            dataclasses.replace(
                phase,
                groups=tuple(dataclasses.replace(g, layout=c.layout) for g in phase.groups),
            )
            for phase, c in zip(self.phases(config), choices, strict=True)
        ]

    def entry(self, config: SweepConfig, result: RunResult) -> dict[str, Any]:
        """A metrics.json run: variant, seed, the cell's values, then Figure 1's fields."""
        cell = result.tag
        entry = FIGURE1.entry(config.cell_config(cell), result)
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in cell.items()}
        return {
            "variant": entry.pop("variant"),
            "seed": entry.pop("seed"),
            **values,
            "cell": values,
            **entry,
        }

    def ordered(self, config: SweepConfig, pairs: list[tuple]) -> list[tuple]:
        """Cell by cell (grid order), then network, then seed."""
        order = {
            (cell_label(c), v, s): i
            for i, (c, v, s) in enumerate(
                (c, v, s)
                for c in config.cells()
                for v in config.cell_config(c).variants
                for s in config.seeds
            )
        }
        return sorted(
            pairs, key=lambda p: order[(cell_label(p[1].tag), p[0]["variant"], p[0]["seed"])]
        )

    def metrics_header(self, config: SweepConfig) -> dict[str, Any]:
        return {"preset": config.base.preset, "grid": config.to_dict()["grid"]}

    def run_name(self, network: Network, seed: int, tag: Any = None) -> str:
        """bn-lr0.001-seed0: the run's grid cell (its tag) between network and seed."""
        return R.run_name(network.variant, tag, seed)

    def run_hparams(self, config: SweepConfig, network: Network, seed: int, tag: Any = None):
        """The network, the grid cell's values (a list as 100-100) and the seed."""
        cell = {k: show_cell_value(v) if isinstance(v, tuple | list) else v for k, v in tag.items()}
        return {"network": network.label, **cell, "seed": seed}

    def figures(self, config: SweepConfig, metrics: dict[str, Any], out_dir: Path):
        rows = R.cell_rows(metrics, list(config.grid))
        labels = self.labels(config)
        return save_figure(
            lambda: R.build_figure(rows, list(config.grid), labels), out_dir, R.FIGURE_STEM
        )

    def verdicts(self, config: SweepConfig, metrics: dict[str, Any]) -> list[Verdict]:
        return []

    def report(self, config: SweepConfig, metrics: dict, timing: dict[str, Any]) -> str:
        return R.render_report(config, metrics, self.labels(config), timing)

    def summary(self, config: SweepConfig, metrics: dict[str, Any]) -> list[Summary]:
        labels = self.labels(config)
        steps = max(max(r["steps"], default=0) for r in metrics["runs"])
        return [
            Summary(
                f"{labels[r['variant']]}, {cell_label(r['cell'])}",
                r["seeds"],
                steps,
                r["mean"],
                len(r["diverged"]),
            )
            for r in R.cell_rows(metrics, list(config.grid))
        ]

    def timing_extra(self, config: SweepConfig, timing: dict[str, Any]) -> dict[str, Any]:
        programs = plan(config)
        run_steps = sum(
            len(config.seeds) * len(p.cells) * len(p.config.variants) * p.config.steps
            for p in programs
        )
        train_s = timing["train_s"]
        platform = jax.devices()[0].platform
        choices = program_layouts(config, timing["devices"], platform)
        return {
            "runs": sum(
                len(config.seeds) * len(p.cells) * len(p.config.variants) for p in programs
            ),
            "programs": len(programs),
            "processes": jax.process_count(),
            "device_kind": jax.devices()[0].device_kind,
            "runs_x_steps_per_s": run_steps / train_s if train_s else None,
            # each program's training layout and the measurement behind it
            "layout": {
                "setting": config.layout,
                "platform": platform,
                "programs": [c.to_dict() for c in choices],
            },
        }


SWEEP = Sweep()
