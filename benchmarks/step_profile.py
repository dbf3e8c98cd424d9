"""Where bnlab's training step spends what a minimal JAX program does not: the compiled scan body
of each, counted op by op, and the time per step, side by side in this one invocation.

    python benchmarks/step_profile.py [--steps 1000] [--repeat 5] [--hlo DIR]

Rows: bnlab's engine segment (one run, one CPU device) without BN, with BN and the paper's
backward (the default), with BN and JAX's autodiff backward; the minimal program of
bench_reproduce.py (reproduce_workers.minimal_program) without and with BN. For each, the ops XLA
runs per step (the top-level instructions of the while loop's body, each one kernel on the CPU:
fusions, dots, reduces, ...), how many of those are dots, and the microseconds per step (the
fastest of --repeat rounds, round-robin, so load slows all rows alike), and the time over the
BLAS floor of bench_reproduce.py measured in the same rounds. Last, the time of one of the
engine's evaluations (what `bnlab reproduce` adds every 1,000 steps), in training steps.
--hlo writes each optimised HLO module to DIR for reading.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
from reproduce_workers import minimal_program, one_thread_floor_s

from bnlab.data import load_mnist
from bnlab.engine import ModelSpec, TrainSpec, make_segment, run_keys, to_device
from bnlab.engine.model import init_params
from bnlab.engine.optim import OptimizerSpec
from bnlab.engine.train import init_run

OPCODE = re.compile(r"=\s*[^\s]+\s+([a-z][a-z0-9-]*)\(")


def computation(hlo: str, name: str) -> list[str]:
    """The instruction lines of computation ``name`` in an HLO module's text."""
    lines = hlo.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\s*%?{re.escape(name)}\s", line))
    body = []
    for line in lines[start + 1 :]:
        if line.strip() == "}":
            break
        body.append(line)
    return body


def loop_body_ops(hlo: str) -> Counter:
    """Opcode counts of the largest while loop's body: what runs once per training step."""
    bodies = re.findall(r"\bwhile\(.*?body=%?([\w.\-]+)", hlo)
    counts = [
        Counter(m.group(1) for line in computation(hlo, b) if (m := OPCODE.search(line)))
        for b in bodies
    ]
    return max(counts, key=lambda c: sum(c.values()))


BN_ROW = "bnlab, BN (paper backward)"
TRAIN = TrainSpec(optimizer=OptimizerSpec("rmsprop", lr=1e-3, rho=0.9, eps=1e-7))


def bnlab_program(spec: ModelSpec, steps: int, data):
    segment, opt = make_segment(spec, TRAIN)
    keys = run_keys(0)
    run = init_run(*init_params(spec, keys.init), opt)
    fn = jax.jit(lambda r, k, d: segment(r, k, jnp.int32(0), d, steps))
    compiled = fn.lower(run, keys, data).compile()
    return compiled, lambda: jax.block_until_ready(compiled(run, keys, data))


def minimal(variant: str, steps: int):
    epoch, carry, _ = minimal_program(variant)
    args = (carry, jax.random.key(0), jnp.zeros(steps))
    compiled = epoch.lower(*args).compile()
    return compiled, lambda: jax.block_until_ready(compiled(*args))


def evaluation_ms(spec: ModelSpec, data, repeat: int) -> float:
    """Milliseconds for one of the engine's evaluations of one run (the test set, the training
    subset, percentiles, histograms), compiled as `bnlab reproduce` runs it, fastest of
    ``repeat``."""
    from bnlab.engine import RunGroup
    from bnlab.engine.programs import CompiledGroup, Placement

    group = RunGroup("profile", spec, (0,))
    compiled = CompiledGroup(group, TRAIN, data, Placement.on_device(jax.devices()[0]))
    compiled.prepare({1})
    compiled.fetch_units()
    best = float("inf")
    for _ in range(repeat + 1):  # the first call also warms up
        t = time.perf_counter()
        jax.block_until_ready(compiled.measure(1))
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # at most one epoch (1,000 steps of 60): the engine's segments and the minimal program's scan
    # both stay within an epoch
    parser.add_argument(
        "--steps", type=int, default=1000, choices=range(1, 1001), metavar="1..1000"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hlo", type=Path, default=None)
    args = parser.parse_args()
    m = load_mnist()
    data = to_device(m.x_train, m.y_train, m.x_test, m.y_test)
    programs = {
        "bnlab, no BN": bnlab_program(ModelSpec(), args.steps, data),
        BN_ROW: bnlab_program(ModelSpec(bn="before"), args.steps, data),
        "bnlab, BN (autodiff backward)": bnlab_program(
            ModelSpec(bn="before", backward="autodiff"), args.steps, data
        ),
        "minimal JAX, no BN": minimal("baseline", args.steps),
        "minimal JAX, BN": minimal("bn", args.steps),
    }
    best = dict.fromkeys(programs, float("inf"))
    floor = float("inf")
    for _ in range(args.repeat):
        for name, (_, run) in programs.items():
            t = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t)
        floor = min(floor, one_thread_floor_s(args.steps))
    print(f"jax {jax.__version__}, {args.steps} steps per call, fastest of {args.repeat}")
    floor_us = floor / args.steps * 1e6
    print(f"BLAS floor (numpy, the step's matmuls only, 1 thread): {floor_us:.1f} us/step")
    header = f"{'program':<30} {'us/step':>8} {'x floor':>8} {'ops/step':>9} {'dots':>5}"
    print(f"{header} {'fusions':>8}  other ops")
    for name, (compiled, _) in programs.items():
        hlo = compiled.as_text()
        if args.hlo is not None:
            args.hlo.mkdir(parents=True, exist_ok=True)
            (args.hlo / (re.sub(r"\W+", "_", name).strip("_") + ".hlo")).write_text(hlo)
        ops = loop_body_ops(hlo)
        total = sum(ops.values())
        other = ", ".join(f"{op} {n}" for op, n in ops.most_common() if op not in ("dot", "fusion"))
        us = best[name] / args.steps * 1e6
        print(
            f"{name:<30} {us:8.1f} {us / floor_us:8.2f} {total:9d} {ops['dot']:5d} "
            f"{ops['fusion']:8d}  {other}"
        )

    rows = {"no BN": (ModelSpec(), "bnlab, no BN"), "BN": (ModelSpec(bn="before"), BN_ROW)}
    for name, (spec, row) in rows.items():
        ms = evaluation_ms(spec, data, args.repeat)
        step_ms = best[row] / args.steps * 1e3
        print(f"bnlab, {name}: one evaluation {ms:.1f} ms, the time of {ms / step_ms:.0f} steps")


if __name__ == "__main__":
    main()
