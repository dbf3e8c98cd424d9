"""A group's compiled programs (initialise, train a segment, measure, final evaluation), where its
runs live, and their current state. The runner (:mod:`bnlab.engine.runner`) drives them.

A group trains its runs in one of two layouts (:data:`Layout`), inside the same compiled segment
program: "vmapped" (:func:`over_runs`, the runs batched into each operation) or "sequential"
(:func:`one_by_one`, each device trains its runs one after another, each unbatched).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, get_args

import jax
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from bnlab.engine.data import DeviceData
from bnlab.engine.devices import RUNS, Placement, fetch, put
from bnlab.engine.evaluate import choose_unit, evaluate, final_evaluation
from bnlab.engine.model import init_params
from bnlab.engine.optim import set_hyperparams
from bnlab.engine.results import Record
from bnlab.engine.train import RunState, TrainSpec, init_run, make_segment, reset_interval, run_keys
from bnlab.errors import ConfigError

# how a device trains the runs it holds: batched into each operation, or one after another
Layout = Literal["vmapped", "sequential"]
LAYOUTS: tuple[str, ...] = get_args(Layout)


def check_layout(value: Any, name: str = "layout") -> Layout:
    """``value`` if it is a :data:`Layout`; else a ConfigError naming ``name``."""
    if not isinstance(value, str) or value not in LAYOUTS:
        expected = " or ".join(repr(v) for v in LAYOUTS)
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")
    return value  # type: ignore[return-value]


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


def one_by_one(f: Callable, mesh: Mesh | None = None) -> Callable:
    """``f`` over the leading (run) axis of every argument but the last (the shared data), sharded
    over ``mesh`` (None: on one device): each device takes its runs one after the other
    (``lax.map``), each unbatched. The "sequential" training layout, and the evaluations' on a
    mesh in either layout: all runs evaluate the same test images, and vmapped, XLA fuses them
    into one matmul whose width (and so its rounding) depends on how many runs a device holds;
    one at a time, a run's numbers do not depend on the device count. (Training batches differ
    per run, so vmapped training matmuls stay per run.)"""

    def local(*args):
        *args, data = args
        return lax.map(lambda a: f(*a, data), tuple(args))

    if mesh is None:
        return local

    def sharded(*args):
        specs = (*(PartitionSpec(RUNS) for _ in args[:-1]), PartitionSpec())
        return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=PartitionSpec(RUNS))(*args)

    return sharded


def runs_in(layout: Layout, mesh: Mesh | None) -> Callable[[Callable], Callable]:
    """How a training program takes its runs: :func:`over_runs` ("vmapped"; on a mesh, its run
    axis sharded by the program's shardings) or :func:`one_by_one` ("sequential")."""
    return over_runs if check_layout(layout) == "vmapped" else partial(one_by_one, mesh=mesh)


class CompiledGroup:
    """A group's compiled programs, where its runs live and their current state. The run axis is
    padded (repeating the last run) to a multiple of the devices it is split over; the padded
    runs are trained and never reported. ``group.layout`` says how the segment program trains
    the runs (:data:`Layout`)."""

    def __init__(self, group: Any, train: TrainSpec, data: DeviceData, place: Placement):
        self.group, self.data, self.place = group, data, place
        self.layout = check_layout(group.layout, "RunGroup.layout")
        spec = group.model
        if group.optimizer is not None:
            train = dataclasses.replace(train, optimizer=group.optimizer)
        segment, opt = make_segment(spec, train, tuple(group.hyper))
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

        def measure(run: RunState, unit, key, data):
            run, train_loss = reset_interval(run)
            evaluation = evaluate(
                spec, train, run.params, run.bn_state, unit, data, group.measures, key
            )
            return run, Record(evaluation, train_loss, run.diverged_at)

        if isinstance(place.runs, jax.Device):
            out, each, mesh = {}, over_runs, None
        else:
            # every output keeps the run axis sharded, so that each program's inputs have the
            # shardings it was compiled for (propagation alone would replicate some leaves)
            mesh = place.runs.mesh
            out, each = {"out_shardings": place.runs}, partial(one_by_one, mesh=mesh)
        self._init = jax.jit(each(init), **out)
        # the step it starts from goes with the shared data (one value for every run)
        self._segment = jax.jit(
            lambda run, keys, start, data, n: runs_in(self.layout, mesh)(
                lambda r, k, shared: segment(r, k, *shared, n)
            )(run, keys, (start, data)),
            static_argnums=4,
            **out,
        )
        # each run's measure key: its own stream folded with the (shared) evaluation step
        self._measure = jax.jit(
            lambda run, unit, keys, step, data: each(measure)(
                run, unit, jax.vmap(lambda k: jax.random.fold_in(k, step))(keys.measure), data
            ),
            **out,
        )
        self._final = jax.jit(each(lambda p, d: final_evaluation(spec, train, p, d)), **out)
        self._inputs = (seeds, hyper)
        self._compiled: dict[Any, Any] = {}

    def prepare(self, lengths: set[int]) -> None:
        """Initialise the runs and compile the training programs ahead of time (so training and
        compile time are measured apart); groups do this in parallel threads."""
        self.run, self._units, self.keys = self._init(
            *put(self._inputs, self.place.runs), self.data
        )
        # a host scalar, not a device array: valid input on every device of a mesh
        start = np.int32(0)
        for n in lengths:
            lowered = self._segment.lower(self.run, self.keys, start, self.data, n)
            self._compiled[n] = lowered.compile()
        lowered = self._measure.lower(self.run, self._units, self.keys, start, self.data)
        self._compiled["measure"] = lowered.compile()
        self.record_shape = jax.eval_shape(
            self._measure, self.run, self._units, self.keys, start, self.data
        )[1]

    def fetch_units(self) -> None:
        """The typical units on the host. Under jax.distributed a fetch is a collective: every
        process must make them in the same order, so the runner calls this group by group,
        never from the threads that prepare the groups."""
        self.units = fetch(self._units)

    def wants_final(self) -> bool:
        """Algorithm 2 and batch-statistics evaluations: for BN groups that ask for them."""
        model = self.group.model
        return self.group.final_evaluation and model.has_bn and model.norm == "bn"

    def compile_final(self) -> None:
        if self.wants_final():
            self._compiled["final"] = self._final.lower(self.run.params, self.data).compile()

    def segment(self, start: int, n: int) -> None:
        self.run = self._compiled[n](self.run, self.keys, np.int32(start), self.data)

    def measure(self, step: int) -> Record:
        self.run, record = self._compiled["measure"](
            self.run, self._units, self.keys, np.int32(step), self.data
        )
        return record

    def final(self) -> dict[str, jax.Array] | None:
        if not self.wants_final():
            return None
        return self._compiled["final"](self.run.params, self.data)

    def restore(self, run: RunState) -> None:
        self.run = put(run, self.place.runs)
