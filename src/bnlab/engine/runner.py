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
import time
from collections.abc import Callable, Mapping
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
from bnlab.engine.evaluate import PERCENTILES, Measure, choose_unit, evaluate, final_evaluation
from bnlab.engine.model import ModelSpec, NormHook, init_params
from bnlab.engine.optim import OptimizerSpec, set_hyperparams
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
    # this group's optimiser, when it differs from the experiment's (e.g. a learning-rate sweep)
    optimizer: OptimizerSpec | None = None
    # per-run optimiser values (names from bnlab.engine.optim.PER_RUN_FIELDS), one per entry of
    # ``seeds`` (which may then repeat): {"lr": (1e-3, 1e-3, 3e-3, 3e-3)} with seeds (0, 1, 0, 1)
    hyper: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass
class RunResult:
    """One run's measurements; lists are aligned with ``steps``, None after divergence."""

    variant: str
    seed: int
    steps: list[int]
    curves: dict[str, list[float | None]]
    percentiles: dict[str, list[float | None]]
    histograms: dict[str, np.ndarray]
    extra: dict[str, list[Any]]
    finals: dict[str, Any]
    diverged_at: int | None
    percentile_unit: int
    # this run's entries of RunGroup.hyper
    hyper: dict[str, float] = field(default_factory=dict)


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
    """``jax.vmap(f)`` over the leading (seed) axis of every argument, except that a single run is
    computed unbatched: XLA's CPU batched matmuls with a batch of one are ~1.5x slower."""

    def mapped(*args):
        if jax.tree.leaves(args)[0].shape[0] != 1:
            return jax.vmap(f)(*args)
        out = f(*jax.tree.map(lambda a: a[0], args))
        return jax.tree.map(lambda a: a[None], out)

    return mapped


def one_by_one(f: Callable, mesh: Mesh) -> Callable:
    """``f`` over the leading (run) axis, sharded over ``mesh``: each device takes its runs one
    after the other (``lax.map``). Used for the evaluations, which all runs do on the same test
    images: vmapped, XLA fuses them into one matmul whose width (and so its rounding) depends on
    how many runs a device holds; one at a time, a run's numbers do not depend on the device
    count. (Training batches differ per run, so its vmapped matmuls stay per run.)"""

    def local(*args):
        return lax.map(lambda a: f(*a), args)

    return jax.shard_map(
        local, mesh=mesh, in_specs=PartitionSpec(RUNS), out_specs=PartitionSpec(RUNS)
    )


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

        def init(seed, hyper):
            keys = run_keys(seed)
            params, bn_state = init_params(spec, keys.init)
            run = init_run(params, bn_state, opt)
            if hyper:
                run = run._replace(opt_state=set_hyperparams(run.opt_state, hyper))
            return run, choose_unit(spec, train, params, data), keys

        def measure(run: RunState, unit):
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
            lambda run, keys, start, n: over_runs(lambda r, k: segment(r, k, start, data, n))(
                run, keys
            ),
            static_argnums=3,
            **out,
        )
        self._measure = jax.jit(each(measure), **out)
        self._final = jax.jit(each(lambda p: final_evaluation(spec, train, p, data)), **out)
        self.run, self._units, self.keys = self._init(*put((seeds, hyper), place.runs))
        self.units = fetch(self._units)
        self._compiled: dict[Any, Any] = {}

    def compile(self, lengths: set[int]) -> None:
        """Compile ahead of time, so that training time and compile time are measured apart."""
        # a host scalar, not a device array: valid input on every device of a mesh
        start = np.int32(0)
        for n in lengths:
            self._compiled[n] = self._segment.lower(self.run, self.keys, start, n).compile()
        self._compiled["measure"] = self._measure.lower(self.run, self._units).compile()

    def segment(self, start: int, n: int) -> None:
        self.run = self._compiled[n](self.run, self.keys, np.int32(start))

    def measure(self) -> dict[str, jax.Array]:
        self.run, record = self._compiled["measure"](self.run, self._units)
        return record

    def final(self) -> dict[str, jax.Array] | None:
        return self._final(self.run.params) if self.group.model.has_bn else None


def _fingerprint(groups: list[RunGroup], train: TrainSpec) -> str:
    described = repr(
        [
            (g.variant, g.model, g.seeds, sorted(g.measures), g.optimizer, sorted(g.hyper.items()))
            for g in groups
        ]
    )
    return hashlib.sha256((described + repr(train)).encode()).hexdigest()


def _clean(values: np.ndarray, alive: np.ndarray) -> list:
    """Floats, with None after divergence and for non-finite values (JSON has neither NaN nor
    inf); rows of a 2-D array become the inner lists."""
    out = []
    for value, ok in zip(values, alive, strict=True):
        finite = np.isfinite(value)
        out.append(
            np.where(ok & finite, value, np.nan).tolist()
            if np.ndim(value)
            else (float(value) if ok and finite else None)
        )
    return [
        [None if isinstance(v, float) and np.isnan(v) else v for v in row]
        if isinstance(row, list)
        else row
        for row in out
    ]


def _assemble(
    group: _Group, stacked: dict[str, np.ndarray], steps: list[int], final
) -> list[RunResult]:
    """Split a group's stacked records (n_evals, K, ...) into one RunResult per seed."""
    results = []
    steps_arr = np.asarray(steps)
    for j, seed in enumerate(group.group.seeds):
        diverged = int(stacked["diverged_at"][-1, j]) if steps else -1
        diverged_at = diverged if diverged >= 0 else None
        alive = steps_arr < diverged if diverged_at is not None else np.ones(len(steps), bool)
        pct = _clean(stacked["percentiles"][:, j], alive) if steps else []
        results.append(
            RunResult(
                variant=group.group.variant,
                seed=seed,
                steps=steps,
                curves={
                    n: _clean(stacked[n][:, j], alive) if steps else []
                    for n in ("test_accuracy", "test_loss", "train_loss")
                },
                percentiles={str(q): [row[i] for row in pct] for i, q in enumerate(PERCENTILES)},
                histograms={
                    k.removeprefix("hist/"): np.where(alive[:, None], v[:, j], np.nan)
                    for k, v in stacked.items()
                    if k.startswith("hist/")
                },
                extra={
                    k.removeprefix("extra/"): _clean(v[:, j], alive)
                    for k, v in stacked.items()
                    if k.startswith("extra/")
                },
                finals={}
                if final is None or diverged_at is not None
                else {k: float(v[j]) for k, v in final.items()},
                diverged_at=diverged_at,
                percentile_unit=int(group.units[j]),
                hyper={k: float(v[j]) for k, v in group.group.hyper.items()},
            )
        )
    return results


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
    if checkpoint_dir is not None and resume and (checkpoint_dir / "state.npz").exists():
        start, records = _load(checkpoint_dir, gs, fingerprint, all_evals)
    timing.compile_s = _compile(gs, train, start, epoch)
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
        results += _assemble(g, stacked, steps, finals[i])
    return results, timing


def _compile(gs: list[_Group], train: TrainSpec, start: int, epoch: int) -> float:
    """Compile every program before the clock for training starts (so timings separate them)."""
    t = time.perf_counter()
    lengths = {b - a for a, b in schedule(train.steps, train.eval_every, epoch) if b > start}
    for g in gs:
        g.compile(lengths)
    return time.perf_counter() - t


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
