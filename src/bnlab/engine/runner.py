"""Train groups of runs together: one compiled program per group, the seeds vmapped inside it.

A *group* is one network variant with K seeds. Each group's programs run on their own CPU device
(see :func:`bnlab.engine.devices.cpu_devices`), so two groups train in parallel on two cores while
Python only dispatches one call per segment (an epoch, or up to the next evaluation). Results of
a segment are fetched while the next one already runs. After each epoch the state is saved, and
``resume=True`` continues from the last save with bit-identical results.

With a ``mesh`` (:func:`bnlab.engine.devices.run_mesh`) every group's runs are instead sharded
over all of the mesh's devices (a sweep's many runs); optimiser hyperparameters that differ between
runs (``RunGroup.hyper``) are per-run arrays in the state, so one program serves them all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from bnlab.data import MNIST
from bnlab.engine import checkpoint as ckpt
from bnlab.engine.data import DeviceData, to_device
from bnlab.engine.devices import RUNS, Placement, cpu_devices, fetch, put
from bnlab.engine.evaluate import Measure, choose_unit, evaluate, final_evaluation
from bnlab.engine.model import ModelSpec, NormHook, init_params
from bnlab.engine.optim import OptimizerSpec, set_hyperparams
from bnlab.engine.results import RunResult, assemble
from bnlab.engine.train import (
    RunState,
    TrainSpec,
    init_run,
    make_segment,
    reset_interval,
    run_keys,
    steps_per_epoch,
)


@dataclass(frozen=True)
class RunGroup:
    """One network variant trained with several seeds in one vmapped program."""

    variant: str
    model: ModelSpec
    seeds: tuple[int, ...]
    norm_hook: NormHook | None = None
    measures: Mapping[str, Measure] = field(default_factory=dict)
    # Algorithm 2's population statistics and the batch-statistics accuracies at the end (BN only)
    final_evaluation: bool = True
    # this group's optimiser, when it differs from the experiment's (e.g. a learning-rate sweep)
    optimizer: OptimizerSpec | None = None
    # per-run optimiser values (names from bnlab.engine.optim.PER_RUN_FIELDS), one per entry of
    # ``seeds`` (which may then repeat): {"lr": (1e-3, 1e-3, 3e-3, 3e-3)} with seeds (0, 1, 0, 1)
    hyper: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass
class Timing:
    compile_s: float = 0.0
    train_s: float = 0.0
    final_s: float = 0.0


# progress(step, latest) -- latest: variant -> {metric: mean over seeds} after an evaluation
Progress = Callable[[int, dict[str, dict[str, float]] | None], None]


def schedule(steps: int, eval_every: int, epoch: int) -> list[tuple[int, int]]:
    """Segments (start, end) cut at every evaluation point and every epoch boundary."""
    cuts = {steps}
    cuts.update(range(eval_every, steps, eval_every))
    cuts.update(range(epoch, steps, epoch))
    ends = sorted(cuts)
    return list(zip([0, *ends[:-1]], ends, strict=True))


def eval_steps(steps: int, eval_every: int) -> list[int]:
    return sorted({*range(eval_every, steps + 1, eval_every), steps})


def over_runs(f: Callable) -> Callable:
    """``jax.vmap(f)`` over the leading (seed) axis of every argument but the last (the shared
    data), except that a single run is computed unbatched: XLA's CPU batched matmuls with a batch
    of one are ~1.5x slower."""

    def mapped(*args):
        *args, data = args
        if jax.tree.leaves(args)[0].shape[0] != 1:
            return jax.vmap(lambda *a: f(*a, data))(*args)
        out = f(*jax.tree.map(lambda a: a[0], args), data)
        return jax.tree.map(lambda a: a[None], out)

    return mapped


def one_by_one(f: Callable, mesh: Mesh) -> Callable:
    """``f`` over the leading (run) axis, sharded over ``mesh``: each device takes its runs one
    after the other (``lax.map``). Used for the evaluations, which all runs do on the same test
    images: vmapped, XLA fuses them into one matmul whose width (and so its rounding) depends on
    how many runs a device holds; one at a time, a run's numbers do not depend on the device
    count. (Training batches differ per run, so its vmapped matmuls stay per run.)"""

    def local(*args):
        *args, data = args
        return lax.map(lambda a: f(*a, data), tuple(args))

    def sharded(*args):
        specs = (*(PartitionSpec(RUNS) for _ in args[:-1]), PartitionSpec())
        return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=PartitionSpec(RUNS))(*args)

    return sharded


class _Group:
    """A group's compiled programs, where its runs live and their current state. The run axis is
    padded (repeating the last run) to a multiple of the devices it is split over; the padded
    runs are trained and never reported."""

    def __init__(self, group: RunGroup, train: TrainSpec, data: DeviceData, place: Placement):
        self.group, self.data, self.place = group, data, place
        spec = group.model
        if group.optimizer is not None:
            train = dataclasses.replace(train, optimizer=group.optimizer)
        for name, values in group.hyper.items():
            if len(values) != len(group.seeds):
                raise ValueError(
                    f"hyper[{name!r}]: {len(values)} values for {len(group.seeds)} runs"
                )
        segment, opt = make_segment(spec, train, group.norm_hook, tuple(group.hyper))
        pad = place.padded(len(group.seeds)) - len(group.seeds)
        seeds = np.asarray([*group.seeds, *group.seeds[-1:] * pad], np.int32)
        hyper = {k: np.asarray([*v, *v[-1:] * pad], np.float32) for k, v in group.hyper.items()}

        # the data is the last argument of every program, never a closure: a closed-over array
        # is baked into the compiled program as a constant (47 MB of pixels through LLVM)
        def init(seed, hyper, data):
            keys = run_keys(seed)
            params, bn_state = init_params(spec, keys.init)
            run = init_run(params, bn_state, opt)
            if hyper:
                run = run._replace(opt_state=set_hyperparams(run.opt_state, hyper))
            return run, choose_unit(spec, train, params, data), keys

        def measure(run: RunState, unit, data):
            run, train_loss = reset_interval(run)
            record = evaluate(spec, train, run.params, run.bn_state, unit, data, group.measures)
            record.update(train_loss=train_loss, diverged_at=run.diverged_at)
            return run, record

        if isinstance(place.runs, jax.Device):
            out, each = {}, over_runs
        else:
            # every output keeps the run axis sharded, so that each program's inputs have the
            # shardings it was compiled for (propagation alone would replicate some leaves)
            out, each = {"out_shardings": place.runs}, partial(one_by_one, mesh=place.runs.mesh)
        self._init = jax.jit(each(init), **out)
        self._segment = jax.jit(
            lambda run, keys, start, data, n: over_runs(lambda r, k, d: segment(r, k, start, d, n))(
                run, keys, data
            ),
            static_argnums=4,
            **out,
        )
        self._measure = jax.jit(each(measure), **out)
        self._final = jax.jit(each(lambda p, d: final_evaluation(spec, train, p, d)), **out)
        self._inputs = (seeds, hyper)
        self._compiled: dict[Any, Any] = {}

    def prepare(self, lengths: set[int]) -> None:
        """Initialise the runs and compile the training programs ahead of time (so training and
        compile time are measured apart); groups do this in parallel threads."""
        self.run, self._units, self.keys = self._init(
            *put(self._inputs, self.place.runs), self.data
        )
        self.units = fetch(self._units)
        # a host scalar, not a device array: valid input on every device of a mesh
        start = np.int32(0)
        for n in lengths:
            lowered = self._segment.lower(self.run, self.keys, start, self.data, n)
            self._compiled[n] = lowered.compile()
        lowered = self._measure.lower(self.run, self._units, self.data)
        self._compiled["measure"] = lowered.compile()

    def wants_final(self) -> bool:
        """Algorithm 2 and batch-statistics evaluations: for BN groups that ask for them."""
        model = self.group.model
        return self.group.final_evaluation and model.has_bn and model.norm == "bn"

    def compile_final(self) -> None:
        if self.wants_final():
            self._compiled["final"] = self._final.lower(self.run.params, self.data).compile()

    def segment(self, start: int, n: int) -> None:
        self.run = self._compiled[n](self.run, self.keys, np.int32(start), self.data)

    def measure(self) -> dict[str, jax.Array]:
        self.run, record = self._compiled["measure"](self.run, self._units, self.data)
        return record

    def final(self) -> dict[str, jax.Array] | None:
        if not self.wants_final():
            return None
        return self._compiled["final"](self.run.params, self.data)


def _fingerprint(groups: list[RunGroup], train: TrainSpec) -> str:
    described = repr(
        [
            (g.variant, g.model, g.seeds, sorted(g.measures), g.optimizer, sorted(g.hyper.items()))
            for g in groups
        ]
    )
    return hashlib.sha256((described + repr(train)).encode()).hexdigest()


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
) -> tuple[list[RunResult], Timing]:
    """Train every group for ``train.steps`` steps, measuring every ``train.eval_every``.

    With ``checkpoint_dir`` the state is saved after every epoch and each evaluation's record as
    it comes; ``resume`` continues from the last saved state (from scratch if there is none).
    ``devices`` default: one CPU device per group, up to one per core (:func:`cpu_devices`).
    ``mesh``: instead, shard every group's runs over this mesh's "runs" axis (``devices`` is then
    ignored); under ``jax.distributed`` every process calls this alike and gets all results, and
    only process 0 writes checkpoints.
    """
    host = (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test)
    if mesh is not None:
        place = Placement.over_mesh(mesh)
        data = to_device(*host, device=place.shared)
        gs = [_Group(g, train, data, place) for g in groups]
    else:
        devices = devices or cpu_devices(len(groups))
        device_data = {d: to_device(*host, device=d) for d in devices[: len(groups)]}
        gs = [
            _Group(g, train, device_data[d], Placement.on_device(d))
            for i, g in enumerate(groups)
            for d in [devices[i % len(devices)]]
        ]
    timing = Timing()
    epoch = steps_per_epoch(len(mnist.y_train), train.batch_size)
    all_evals = eval_steps(train.steps, train.eval_every)
    records: list[dict[str, np.ndarray]] = []  # one per evaluation, keys "g{i}/{name}"
    start = 0
    fingerprint = _fingerprint(groups, train)
    resuming = checkpoint_dir is not None and resume and (checkpoint_dir / "state.npz").exists()
    lengths = {b - a for a, b in schedule(train.steps, train.eval_every, epoch)}
    pool = ThreadPoolExecutor(max(1, min(len(gs), os.cpu_count() or 1)))
    t_compile = time.perf_counter()
    list(pool.map(lambda g: g.prepare(lengths), gs))
    timing.compile_s = time.perf_counter() - t_compile
    if resuming:
        start, records = _load(checkpoint_dir, gs, fingerprint, all_evals)
    # the final evaluation's programs compile while the groups train (a core is idle at the end,
    # once the cheaper network has finished)
    finals_compiled = [pool.submit(g.compile_final) for g in gs]
    pool.shutdown(wait=False)
    t_train = time.perf_counter()
    pending = None
    for a, b in schedule(train.steps, train.eval_every, epoch):
        if b <= start:
            continue
        for g in gs:
            g.segment(a, b - a)
        record = (
            {f"g{i}/{k}": v for i, g in enumerate(gs) for k, v in g.measure().items()}
            if b in all_evals
            else None
        )
        is_ckpt = checkpoint_dir is not None and (b % epoch == 0 or b == train.steps)
        snapshot = [g.run for g in gs] if is_ckpt else None
        if pending is not None:
            _settle(*pending, records, checkpoint_dir, fingerprint, gs, progress)
        pending = (b, record, snapshot)
    if pending is not None:
        _settle(*pending, records, checkpoint_dir, fingerprint, gs, progress)
    timing.train_s = time.perf_counter() - t_train
    t_final = time.perf_counter()
    for f in finals_compiled:
        f.result()
    finals = [fetch(g.final()) for g in gs]
    timing.final_s = time.perf_counter() - t_final
    steps = all_evals[: len(records)]
    results = []
    for i, g in enumerate(gs):
        stacked = {
            k.removeprefix(f"g{i}/"): np.stack([r[k] for r in records])
            for k in (records[0] if records else {})
            if k.startswith(f"g{i}/")
        }
        results += assemble(
            g.group.variant, g.group.seeds, g.units, stacked, steps, finals[i], g.group.hyper
        )
    return results, timing


def _settle(
    step: int,
    record: dict[str, jax.Array] | None,
    snapshot: list[RunState] | None,
    records: list[dict[str, np.ndarray]],
    checkpoint_dir: Path | None,
    fingerprint: str,
    gs: list[_Group],
    progress: Progress | None,
) -> None:
    """Fetch a finished segment's results, save them, and report progress."""
    latest = None
    writer = checkpoint_dir is not None and jax.process_index() == 0
    if record is not None:
        host = fetch(record)
        records.append(host)
        if writer:
            ckpt.save_arrays(checkpoint_dir / "evals" / f"{step:08d}.npz", host)
        latest = {
            g.group.variant: {
                name: _mean_finite(host[f"g{i}/{name}"]) for name in ("test_accuracy", "train_loss")
            }
            for i, g in enumerate(gs)
        }
    if snapshot is not None and checkpoint_dir is not None:
        arrays = {"step": np.asarray(step), "fingerprint": np.asarray(fingerprint)}
        for i, run in enumerate(snapshot):
            arrays.update(ckpt.tree_arrays(f"g{i}", fetch(run)))
        if writer:
            ckpt.save_arrays(checkpoint_dir / "state.npz", arrays)
    if progress is not None:
        progress(step, latest)


def _mean_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _load(
    checkpoint_dir: Path, gs: list[_Group], fingerprint: str, all_evals: list[int]
) -> tuple[int, list[dict[str, np.ndarray]]]:
    path = checkpoint_dir / "state.npz"
    arrays = ckpt.load_arrays(path)
    if str(arrays.get("fingerprint")) != fingerprint:
        raise ckpt.CheckpointError(f"{path}: saved by a different configuration; cannot resume")
    step = int(arrays["step"])
    for i, g in enumerate(gs):
        g.run = put(ckpt.restore_tree(path, arrays, f"g{i}", g.run), g.place.runs)
    records = []
    for s in all_evals:
        if s > step:
            break
        records.append(ckpt.load_arrays(checkpoint_dir / "evals" / f"{s:08d}.npz"))
    return step, records
