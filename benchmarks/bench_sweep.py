"""Runs x steps per second of `bnlab sweep`'s training, for a sweep of a given size.

    python benchmarks/bench_sweep.py                      # the issue's 256-run sweep
    python benchmarks/bench_sweep.py --lrs 2 --seeds 2 --steps 2000 --devices 2

Defaults: 8 learning rates (log-spaced from 1e-4 to 1e-1) x 2 variants (without and with BN) x
16 seeds x 50,000 steps of the `seed` preset, evaluated every 1,000 steps, as one grid through
the same code as the CLI (run_experiment(SWEEP, ...); TensorBoard, figure and report
skipped). Prints the training time (compiling excluded, evaluations included), compile time, the
rate runs x steps / training seconds, and the device; one JSON line at the end for scripts.
On a CPU-only host each core is one device unless XLA_FLAGS sets a count.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", type=int, default=8, help="learning rates (log-spaced)")
    parser.add_argument("--seeds", type=int, default=16, help="seeds per cell and variant")
    parser.add_argument("--steps", type=int, default=50_000, help="training steps per run")
    parser.add_argument("--eval-every", type=int, default=1000, help="steps between evaluations")
    parser.add_argument("--variants", default="baseline,bn", help="comma-separated")
    parser.add_argument("--devices", type=int, default=None, help="first N devices (all)")
    args = parser.parse_args()

    from bnlab.engine.devices import default_mesh
    from bnlab.experiments import SWEEP, parse_sweep, run_experiment

    mesh = default_mesh(args.devices)  # before anything else starts JAX's backend
    lrs = [float(f"{v:.3g}") for v in np.logspace(-4, -1, args.lrs)] if args.lrs > 1 else [1e-3]
    sweep = parse_sweep(
        {
            "preset": "seed",
            "steps": args.steps,
            "eval_every": min(args.eval_every, args.steps),
            "variants": args.variants.split(","),
            "seeds": list(range(args.seeds)),
            "grid": {"lr": lrs},
        },
        "bench_sweep",
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = run_experiment(SWEEP, sweep, out, mesh=mesh, write_outputs=False)
    wall = time.perf_counter() - started
    t = result.timing
    runs = t["runs"]
    print(
        f"{runs} runs ({args.lrs} lrs x {len(sweep.base.variants)} variants x {args.seeds} seeds)"
        f" x {args.steps:,} steps on {t['devices']} x {t['device_kind']}: training "
        f"{t['train_s']:.1f} s ({t['runs_x_steps_per_s']:,.0f} runs x steps / s), compiling "
        f"{t['compile_s']:.1f} s, final evaluation {t['final_eval_s']:.1f} s, wall {wall:.1f} s"
    )
    print(
        json.dumps(
            {
                "runs": runs,
                "steps": args.steps,
                "devices": t["devices"],
                "device_kind": t["device_kind"],
                "train_s": round(t["train_s"], 3),
                "compile_s": round(t["compile_s"], 3),
                "final_eval_s": round(t["final_eval_s"], 3),
                "wall_s": round(wall, 3),
                "runs_x_steps_per_s": round(t["runs_x_steps_per_s"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
