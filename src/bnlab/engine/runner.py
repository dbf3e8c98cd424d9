"""Train groups of runs together: one compiled program per group, the seeds vmapped inside it.

A *group* is one network with K runs (seeds, or seeds x per-run optimiser values). Each group's
programs (:mod:`bnlab.engine.programs`) run on their own CPU device
(:func:`bnlab.engine.devices.cpu_devices`), so two groups train in parallel on two cores while
Python only dispatches one call per segment (an epoch, or up to the next evaluation). Results of
a segment are fetched while the next one already runs. After each epoch the state is saved
(:mod:`bnlab.engine.checkpoint`), and ``resume=True`` continues from the last save with
bit-identical results.

With a ``mesh`` (:func:`bnlab.engine.devices.run_mesh`) every group's runs are instead sharded
over all of the mesh's devices (a sweep's many runs); optimiser hyperparameters that differ between
runs (``RunGroup.hyper``) are per-run arrays in the state, so one program serves them all.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from bnlab.data import MNIST
from bnlab.engine import checkpoint as ckpt
from bnlab.engine.data import to_device
from bnlab.engine.devices import Placement, cpu_devices, fetch
from bnlab.engine.evaluate import Measure
from bnlab.engine.model import ModelSpec
from bnlab.engine.optim import OptimizerSpec
from bnlab.engine.programs import CompiledGroup, Layout, check_layout
from bnlab.engine.results import Record, RunResult, assemble, stack
from bnlab.engine.train import TrainSpec, steps_per_epoch


@dataclass(frozen=True)
class RunGroup:
    """One network trained as several runs (seeds) in one vmapped program."""

    # the experiment's identity of the network (hashable; carried to every RunResult)
    network: Hashable
    model: ModelSpec
    seeds: tuple[int, ...]
    measures: Mapping[str, Measure] = field(default_factory=dict)
    # Algorithm 2's population statistics and the batch-statistics accuracies at the end (BN only)
    final_evaluation: bool = True
    # this group's optimiser, when it differs from the experiment's (e.g. a learning-rate sweep)
    optimizer: OptimizerSpec | None = None
    # per-run optimiser values (names from bnlab.engine.optim.PER_RUN_FIELDS), one per entry of
    # ``seeds`` (which may then repeat): {"lr": (1e-3, 1e-3, 3e-3, 3e-3)} with seeds (0, 1, 0, 1)
    hyper: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    # one per run, carried to its RunResult.tag (e.g. the grid cell of a sweep's run)
    tags: tuple[Any, ...] = ()
    # how each device trains its runs: "vmapped" (batched) or "sequential" (one after another)
    layout: Layout = "vmapped"

    def __post_init__(self) -> None:
        check_layout(self.layout, "RunGroup.layout")
        for name, values in [*self.hyper.items(), *([("tags", self.tags)] if self.tags else [])]:
            if len(values) != len(self.seeds):
                raise ValueError(f"{name}: {len(values)} values for {len(self.seeds)} runs")


class Stopped(Exception):
    """Training stopped on request (``stop`` was set) at ``step``, its state saved there when
    the run keeps checkpoints (``saved``): ``resume`` continues from that step."""

    def __init__(self, step: int, saved: bool):
        super().__init__(f"stopped at step {step:,}")
        self.step, self.saved = step, saved


@dataclass
class Timing:
    compile_s: float = 0.0
    train_s: float = 0.0
    final_s: float = 0.0


# progress(step, latest) -- latest: network -> {metric: mean over runs} after an evaluation
Progress = Callable[[int, dict[Hashable, dict[str, float]] | None], None]
# on_record(step, records, units) -- one evaluation's host Record per group (leaves with a run
# axis, possibly padded beyond the group's runs) and each group's typical units (one per run)
OnRecord = Callable[[int, list[Record], list[np.ndarray]], None]


def schedule(steps: int, eval_every: int, epoch: int) -> list[tuple[int, int]]:
    """Segments (start, end) cut at every evaluation point and every epoch boundary."""
    cuts = {steps}
    cuts.update(range(eval_every, steps, eval_every))
    cuts.update(range(epoch, steps, epoch))
    ends = sorted(cuts)
    return list(zip([0, *ends[:-1]], ends, strict=True))


def eval_steps(steps: int, eval_every: int) -> list[int]:
    return sorted({*range(eval_every, steps + 1, eval_every), steps})


def _compiled_groups(
    groups: list[RunGroup],
    train: TrainSpec,
    mnist: MNIST,
    devices: list[jax.Device] | None,
    mesh: Mesh | None,
) -> list[CompiledGroup]:
    """Each group's programs, with the data on the devices it runs on."""
    host = (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test)
    if mesh is not None:
        place = Placement.over_mesh(mesh)
        data = to_device(*host, device=place.shared)
        return [CompiledGroup(g, train, data, place) for g in groups]
    devices = devices or cpu_devices(len(groups))
    device_data = {d: to_device(*host, device=d) for d in devices[: len(groups)]}
    placed = [devices[i % len(devices)] for i in range(len(groups))]
    return [
        CompiledGroup(g, train, device_data[d], Placement.on_device(d))
        for g, d in zip(groups, placed, strict=True)
    ]


@dataclass
class _Loop:
    """The state of a training loop over compiled groups: records so far, checkpointing."""

    gs: list[CompiledGroup]
    checkpoint_dir: Path | None
    stamp: str
    progress: Progress | None
    # the run's length (a saved step must lie within it)
    steps: int
    # set (by a signal handler) to stop at the next segment's end, after saving the state there
    stop: threading.Event | None = None
    on_record: OnRecord | None = None
    records: list[list[Record]] = field(default_factory=list)

    @property
    def split(self) -> int:
        """The devices each group's runs are split over (1: one device per group)."""
        return self.gs[0].place.size

    def settle(self, step: int, record: list[Record] | None, snapshot: list[Any] | None) -> None:
        """Fetch a finished segment's results, save them, and report progress."""
        latest = None
        writer = self.checkpoint_dir is not None and jax.process_index() == 0
        if record is not None:
            host = fetch(record)
            self.records.append(host)
            if writer:
                ckpt.save_record(self.checkpoint_dir, step, host)
            if self.on_record is not None:
                self.on_record(step, host, [g.units for g in self.gs])
            latest = {
                g.group.network: {
                    "test_accuracy": _mean_finite(r.evaluation.test_accuracy),
                    "train_loss": _mean_finite(r.train_loss),
                    "diverged": float(np.sum(r.diverged_at >= 0)),
                    "runs": float(r.diverged_at.size),
                }
                for g, r in zip(self.gs, host, strict=True)
            }
        if snapshot is not None:
            host_runs = fetch(snapshot)  # every process gathers; only process 0 writes
            if writer:
                ckpt.save_state(self.checkpoint_dir, step, self.stamp, host_runs, self.split)
        if self.progress is not None:
            self.progress(step, latest)

    def train(
        self, segments: list[tuple[int, int]], start: int, evals: list[int], epoch: int, end: int
    ) -> None:
        """Run the segments after ``start``: measure at ``evals``, checkpoint every ``epoch``
        steps and at ``end``. A segment's results are fetched while the next one runs."""
        pending = None
        for a, b in segments:
            if b <= start:
                continue
            for g in self.gs:
                g.segment(a, b - a)
            record = [g.measure(b) for g in self.gs] if b in evals else None
            stopping = self.stop is not None and self.stop.is_set()
            is_ckpt = self.checkpoint_dir is not None and (b % epoch == 0 or b == end or stopping)
            if pending is not None:
                self.settle(*pending)
            pending = (b, record, [g.run for g in self.gs] if is_ckpt else None)
            if stopping and b < end:
                self.settle(*pending)
                raise Stopped(b, saved=self.checkpoint_dir is not None)
        if pending is not None:
            self.settle(*pending)

    def resume(self, all_evals: list[int]) -> int:
        """Restore the last saved state and the records up to it; the step to go on from."""
        templates = [g.run for g in self.gs]
        step, runs = ckpt.load_state(
            self.checkpoint_dir, self.stamp, templates, self.steps, self.split
        )
        for run in runs:
            ckpt.check_finite(self.checkpoint_dir / ckpt.STATE_FILE, run)
        for g, run in zip(self.gs, runs, strict=True):
            g.restore(run)
        shapes = [g.record_shape for g in self.gs]
        done = [s for s in all_evals if s <= step]
        self.records = [ckpt.load_record(self.checkpoint_dir, s, shapes) for s in done]
        if self.on_record is not None:
            for s, host in zip(done, self.records, strict=True):
                self.on_record(s, host, [g.units for g in self.gs])
        return step


def _described(groups: list[RunGroup], train: TrainSpec) -> Any:
    """What a checkpoint belongs to; measures by name (a function's repr is not stable)."""
    return [
        (g.network, g.model, g.seeds, sorted(g.measures), g.optimizer, sorted(g.hyper.items()))
        # the layout only when not the default, so that older checkpoints still match
        + ((g.layout,) if g.layout != "vmapped" else ())
        for g in groups
    ], train


def _mean_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def train_groups(
    groups: list[RunGroup],
    train: TrainSpec,
    mnist: MNIST,
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    devices: list[jax.Device] | None = None,
    mesh: Mesh | None = None,
    stop: threading.Event | None = None,
    on_record: OnRecord | None = None,
) -> tuple[list[RunResult], Timing]:
    """Train every group for ``train.steps`` steps, measuring every ``train.eval_every``.

    With ``checkpoint_dir`` the state is saved after every epoch and each evaluation's record as
    it comes; ``resume`` continues from the last saved state (from scratch if there is none).
    ``devices`` default: one CPU device per group, up to one per core (:func:`cpu_devices`).
    ``mesh``: instead, shard every group's runs over this mesh's "runs" axis (``devices`` is then
    ignored); under ``jax.distributed`` every process calls this alike and gets all results, and
    only process 0 writes checkpoints. ``stop``, once set, ends training at the next segment's
    end (within an epoch) with the state saved there: :class:`Stopped`. ``on_record`` is called
    with each evaluation as it is fetched, and on resume with each restored one, in step order.
    """
    gs = _compiled_groups(groups, train, mnist, devices, mesh)
    timing = Timing()
    epoch = steps_per_epoch(len(mnist.y_train), train.batch_size)
    all_evals = eval_steps(train.steps, train.eval_every)
    segments = schedule(train.steps, train.eval_every, epoch)
    stamp = ckpt.fingerprint(_described(groups, train))
    loop = _Loop(gs, checkpoint_dir, stamp, progress, train.steps, stop, on_record)
    pool = ThreadPoolExecutor(max(1, min(len(gs), os.cpu_count() or 1)))
    t = time.perf_counter()
    list(pool.map(lambda g: g.prepare({b - a for a, b in segments}), gs))
    for g in gs:
        g.fetch_units()
    timing.compile_s = time.perf_counter() - t
    start = 0
    if checkpoint_dir is not None and resume and ckpt.has_state(checkpoint_dir):
        start = loop.resume(all_evals)
    # the final evaluation's programs compile while the groups train (a core is idle at the end,
    # once the cheaper network has finished)
    finals_compiled = [pool.submit(g.compile_final) for g in gs]
    pool.shutdown(wait=False)
    t = time.perf_counter()
    loop.train(segments, start, all_evals, epoch, train.steps)
    timing.train_s = time.perf_counter() - t
    t = time.perf_counter()
    for f in finals_compiled:
        f.result()
    finals = [fetch(g.final()) for g in gs]
    timing.final_s = time.perf_counter() - t
    steps = all_evals[: len(loop.records)]
    results = []
    for i, g in enumerate(gs):
        stacked = stack([r[i] for r in loop.records])
        group = g.group
        results += assemble(
            group.network, group.seeds, g.units, stacked, steps, finals[i], group.hyper, group.tags
        )
    return results, timing
