"""Microseconds per training step of the engine's compiled segment, per configuration.

    python benchmarks/engine_step.py [--steps 1000] [--repeat 5]

All configurations are compiled first, then timed round-robin ``--repeat`` times (the fastest of
each kept), so a busy machine slows them alike and the ratios stay meaningful. Wall time and this
process's CPU time are both reported: on a shared machine the CPU time is the steadier measure of
the work. One CPU device; ``K seeds`` reports the vmapped program per step and per run.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from bnlab.data import load_mnist
from bnlab.engine import ModelSpec, TrainSpec, make_segment, run_keys, to_device
from bnlab.engine.model import init_params
from bnlab.engine.programs import over_runs
from bnlab.engine.train import init_run
from bnlab.experiments.network import WITH_BN, WITHOUT_BN
from bnlab.experiments.presets import CONVNET


def build(spec: ModelSpec, seeds: int, steps: int, data):
    segment, opt = make_segment(spec, TrainSpec())
    keys = jax.vmap(run_keys)(jnp.arange(seeds))
    run = jax.jit(over_runs(lambda k, _: init_run(*init_params(spec, k.init), opt)))(keys, None)
    fn = jax.jit(
        lambda r, k, d: over_runs(lambda r, k, d: segment(r, k, jnp.int32(0), d, steps))(r, k, d)
    )
    compiled = fn.lower(run, keys, data).compile()
    jax.block_until_ready(compiled(run, keys, data))
    return lambda: jax.block_until_ready(compiled(run, keys, data))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="time only configurations containing this")
    args = parser.parse_args()
    m = load_mnist()
    data = to_device(m.x_train, m.y_train, m.x_test, m.y_test)
    configs = {
        "baseline": (ModelSpec(), 1),
        "bn, paper backward": (ModelSpec(bn="before", backward="paper"), 1),
        "bn, autodiff backward": (ModelSpec(bn="before", backward="autodiff"), 1),
        "baseline, 2 seeds": (ModelSpec(), 2),
        "bn, 2 seeds": (ModelSpec(bn="before"), 2),
        "convnet baseline": (WITHOUT_BN.model_spec(CONVNET), 1),
        "convnet bn": (WITH_BN.model_spec(CONVNET), 1),
    }
    configs = {name: c for name, c in configs.items() if args.only in name}
    runners = {name: build(spec, k, args.steps, data) for name, (spec, k) in configs.items()}
    wall = dict.fromkeys(runners, float("inf"))
    cpu = dict.fromkeys(runners, float("inf"))
    for _ in range(args.repeat):
        for name, run in runners.items():
            t, c = time.perf_counter(), time.process_time()
            run()
            wall[name] = min(wall[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.process_time() - c)
    print(f"{'configuration':<24} {'wall us/step':>13} {'cpu us/step':>12} {'cpu us/step/run':>16}")
    for name in runners:
        w, c = (v[name] / args.steps * 1e6 for v in (wall, cpu))
        print(f"{name:<24} {w:13.1f} {c:12.1f} {c / configs[name][1]:16.1f}")


if __name__ == "__main__":
    main()
