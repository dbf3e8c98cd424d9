"""How the engine's training cost grows with runs, width and batch, against a BLAS floor.

    python benchmarks/scaling.py [--steps 300] [--repeat 3] [--json PATH] [--plot PNG]

Each row trains K runs of one BN network (784-W-W-W-10 sigmoids, BN before each sigmoid, RMSprop,
batch B) as the engine does: one compiled lax.scan segment of --steps steps, the K runs vmapped
and their run axis sharded over D CPU devices (one per core; jax.sharding, as `bnlab sweep`),
compilation excluded, fastest of --repeat (wider or larger-batch rows run fewer steps, about
the same work). "runs x steps/s" counts every run's steps. The floor is
numpy doing only one step's matmuls on one thread (forward, weight and input gradients: what no
implementation can skip), for the same W and B, times the cores the row uses; "x floor" is the
floor's rate over the row's (below 1: XLA's one CPU device runs large matmuls on both cores'
threads, the floor on one). "vmapped vs one after another" compares the row with K runs trained
in turn, one per device at a time, each unbatched: that layout's rate is the K = D row's (same D,
W and B), measured, whatever K. Each device count runs in its own child process
(XLA fixes the CPU device count at start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNS = (1, 2, 4, 8, 16, 64)
WIDTHS = (100, 400, 1600)
BATCHES = (60, 256, 1024)


def configs() -> list[tuple[int, int, int]]:
    """(K, W, B): runs at W 100, B 60; widths and batches at K 1, 2 and 4."""
    rows = [(k, 100, 60) for k in RUNS]
    rows += [(k, w, 60) for k in (1, 2, 4) for w in WIDTHS if w != 100]
    rows += [(k, 100, b) for k in (1, 2, 4) for b in BATCHES if b != 60]
    return rows


def steps_for(steps: int, width: int, batch: int) -> int:
    """``steps`` at W 100, B 60; fewer for the larger steps (about the same work per row)."""
    return max(20, steps * 100 * 60 // (width * batch))


def floor_s(width: int, batch: int, steps: int) -> float:
    """Seconds for ``steps`` steps of only the matmuls, one thread (fastest of three)."""
    from reproduce_workers import matmuls_s

    sizes = (784, width, width, width, 10)
    return min(matmuls_s(sizes, batch, steps, warmup=steps) for _ in range(3))


def compiled_segment(spec, train, k: int, mesh, data, steps: int, layout: str = "vmapped"):
    """One compiled ``steps``-step segment of ``k`` runs sharded over ``mesh``, trained in
    ``layout`` (vmapped or sequential: :func:`bnlab.engine.programs.runs_in`), as a call that
    runs it once and waits for it. Compiled (and run once) here."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from bnlab.engine import make_segment, run_keys
    from bnlab.engine.model import init_params
    from bnlab.engine.programs import over_runs, runs_in
    from bnlab.engine.train import init_run

    segment, opt = make_segment(spec, train)
    by_run = NamedSharding(mesh, P("runs"))
    keys = jax.device_put(jax.vmap(run_keys)(jnp.arange(k)), by_run)
    init = jax.jit(over_runs(lambda key, _: init_run(*init_params(spec, key.init), opt)))
    run = jax.device_put(init(keys, None), by_run)
    train_segment = runs_in(layout, mesh)(lambda r, kk, d: segment(r, kk, jnp.int32(0), d, steps))
    compiled = jax.jit(train_segment).lower(run, keys, data).compile()

    def once() -> None:
        jax.block_until_ready(compiled(run, keys, data))

    once()
    return once


def fastest_s(once, repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``once``."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - t)
    return best


def segment_s(spec, train, k: int, mesh, data, steps: int, repeat: int) -> float:
    """Seconds for one compiled ``steps``-step segment of ``k`` vmapped runs sharded over
    ``mesh`` (fastest of ``repeat``, compilation excluded)."""
    return fastest_s(compiled_segment(spec, train, k, mesh, data, steps), repeat)


def bn_network(width: int, batch: int):
    """The measured network (784-W-W-W-10, BN before each sigmoid) and its RMSprop training."""
    from bnlab.engine import ModelSpec, TrainSpec
    from bnlab.engine.optim import OptimizerSpec

    spec = ModelSpec(hidden=(width,) * 3, bn="before")
    train = TrainSpec(
        optimizer=OptimizerSpec("rmsprop", lr=1e-3, rho=0.9, eps=1e-7), batch_size=batch
    )
    return spec, train


def mesh_and_data(devices: int):
    """A "runs" mesh of ``devices`` CPU devices and MNIST replicated over it (call before
    anything else starts JAX's backend)."""
    from bnlab.engine.devices import cpu_devices, run_mesh

    mesh = run_mesh(cpu_devices(devices))
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from bnlab.data import load_mnist
    from bnlab.engine import to_device

    m = load_mnist()
    data = jax.device_put(
        to_device(m.x_train, m.y_train, m.x_test, m.y_test), NamedSharding(mesh, P())
    )
    return mesh, data


def child_rows(script: str, devices: list[int], args: list[str]) -> list[dict]:
    """Run ``script --worker D *args`` for each device count D in its own process (XLA fixes
    the CPU device count at start-up), one BLAS thread; the JSON lines they print."""
    rows = []
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for d in devices:
        out = subprocess.run(
            [sys.executable, script, "--worker", str(d), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"worker for {d} device(s) failed:\n{out.stderr[-2000:]}")
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return rows


def worker(devices: int, steps: int, repeat: int) -> None:
    """One device count's rows, one JSON line each."""
    mesh, data = mesh_and_data(devices)
    for k, width, batch in configs():
        if k < devices:
            continue  # fewer runs than devices: the extra device only repeats a run
        spec, train = bn_network(width, batch)
        n = steps_for(steps, width, batch)
        seconds = segment_s(spec, train, k, mesh, data, n, repeat)
        rate = k * n / seconds
        floor_rate = min(devices, k) * n / floor_s(width, batch, n)
        row = {
            "devices": devices,
            "runs": k,
            "width": width,
            "batch": batch,
            "steps": n,
            "runs_x_steps_per_s": rate,
            "floor_runs_x_steps_per_s": floor_rate,
            "x_floor": floor_rate / rate,
        }
        print(json.dumps(row), flush=True)


def table(rows: list[dict]) -> str:
    one = {(r["devices"], r["width"], r["batch"]): r for r in rows if r["runs"] == r["devices"]}
    lines = [
        "| devices | runs K | width | batch | runs x steps/s | x floor | vmapped vs one after "
        "another |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = one.get((r["devices"], r["width"], r["batch"]))
        gain = f"{r['runs_x_steps_per_s'] / base['runs_x_steps_per_s']:.2f}x" if base else "—"
        lines.append(
            f"| {r['devices']} | {r['runs']} | {r['width']:,} | {r['batch']:,} | "
            f"{r['runs_x_steps_per_s']:,.0f} | {r['x_floor']:.2f} | {gain} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    for devices in sorted({r["devices"] for r in rows}):
        pts = [
            r for r in rows if r["devices"] == devices and r["width"] == 100 and r["batch"] == 60
        ]
        (line,) = ax.plot(
            [r["runs"] for r in pts],
            [r["runs_x_steps_per_s"] for r in pts],
            "o-",
            label=f"{devices} CPU device(s), vmapped",
        )
        ax.plot(
            [r["runs"] for r in pts],
            [r["floor_runs_x_steps_per_s"] for r in pts],
            ":",
            color=line.get_color(),
            label=f"BLAS floor, {devices} core(s)",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("runs K (784-100-100-100-10 BN network, batch 60)")
    ax.set_ylabel("runs x steps per second")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=150, metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.steps, args.repeat)
        return
    rows = child_rows(
        __file__, args.devices, ["--steps", str(args.steps), "--repeat", str(args.repeat)]
    )
    print(f"{os.cpu_count()} cores; {args.steps} steps per measurement, fastest of {args.repeat}")
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if args.plot is not None:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
