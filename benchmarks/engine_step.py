"""Microseconds per training step of the engine's compiled segment, per configuration.

    python benchmarks/engine_step.py [--steps 1000] [--repeat 5]

All configurations are compiled first, then timed round-robin ``--repeat`` times (the fastest of
each kept), so a busy machine slows them alike and the ratios stay meaningful. One CPU device;
``seeds K`` reports the time per step of the whole vmapped program and per run.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from bnlab.data import load_mnist
from bnlab.engine import ModelSpec, TrainSpec, make_segment, run_keys, to_device
from bnlab.engine.model import init_params
from bnlab.engine.runner import over_runs
from bnlab.engine.train import init_run


def build(spec: ModelSpec, seeds: int, steps: int, data):
    segment, opt = make_segment(spec, TrainSpec())
    keys = jax.vmap(run_keys)(jnp.arange(seeds))
    run = jax.jit(over_runs(lambda k: init_run(*init_params(spec, k.init), opt)))(keys)
    fn = jax.jit(over_runs(lambda r, k: segment(r, k, jnp.int32(0), data, steps)))
    compiled = fn.lower(run, keys).compile()
    jax.block_until_ready(compiled(run, keys))
    return lambda: jax.block_until_ready(compiled(run, keys))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    m = load_mnist()
    data = to_device(m.x_train, m.y_train, m.x_test, m.y_test)
    configs = {
        "baseline": (ModelSpec(), 1),
        "bn, paper backward": (ModelSpec(bn="before", backward="paper"), 1),
        "bn, autodiff backward": (ModelSpec(bn="before", backward="autodiff"), 1),
        "baseline, 2 seeds": (ModelSpec(), 2),
        "bn, 2 seeds": (ModelSpec(bn="before"), 2),
    }
    runners = {name: build(spec, k, args.steps, data) for name, (spec, k) in configs.items()}
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(args.repeat):
        for name, run in runners.items():
            t = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t)
    print(f"{'configuration':<24} {'us/step':>9} {'us/step/run':>12}")
    for name, seconds in best.items():
        us = seconds / args.steps * 1e6
        print(f"{name:<24} {us:9.1f} {us / configs[name][1]:12.1f}")


if __name__ == "__main__":
    main()
