"""`bnlab reproduce` end to end, as a user runs it: wall time, CPU time and peak memory.

    python benchmarks/reproduce_wall.py [--preset seed] [--repeat 1] [extra bnlab options...]

Runs the command in a child process, first with an empty compile cache (cold: every XLA program
compiled) and then with the cache that run filled (warm), ``--repeat`` times each. The CPU time
(user + system of the child) next to the wall time shows how much of the machine the run had: on
a shared machine wall time grows with the load, CPU time much less. Phases come from the run's
timing.json. The BLAS floor of issue 13 is measured in the same invocation: numpy doing only one
step's matmuls on one thread (reproduce_workers.blas_floor, 5,000 steps) x 50,000, one network's
training at the least it can cost; the two networks train side by side, one per core, so the
floor of the whole run is one network's. Targets: <= 1.8x the floor warm, <= 2.4x cold.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reproduce_workers import one_thread_floor_s

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_once(preset: str, extra: list[str], cache: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        env = {**os.environ, "PYTHONPATH": SRC, "BNLAB_COMPILE_CACHE": str(cache)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        command = ["reproduce", "--preset", preset, "--out", str(out), *extra]
        subprocess.run(
            [sys.executable, "-m", "bnlab", *command],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        timing = json.loads((out / "timing.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, **timing}


FLOOR_STEPS, FULL_STEPS = 5_000, 50_000


def floor_50k_s() -> float:
    """One network's 50,000 steps of only the matmuls, one thread, extrapolated from 5,000."""
    return one_thread_floor_s(FLOOR_STEPS) * FULL_STEPS / FLOOR_STEPS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--repeat", type=int, default=1)
    args, extra = parser.parse_known_args()
    rows = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cache:
            for kind in ("cold", "warm"):
                rows.append((kind, run_once(args.preset, extra, Path(cache))))
    floor = floor_50k_s()
    keys = (
        "wall_s",
        "cpu_s",
        "setup_s",
        "compile_s",
        "train_s",
        "final_eval_s",
        "outputs_s",
        "peak_rss_mb",
    )
    print(f"{'cache':<6}" + "".join(f"{k:>13}" for k in keys) + f"{'wall/floor':>12}")
    for kind, row in rows:
        cells = "".join(f"{row.get(k, float('nan')):13.1f}" for k in keys)
        print(f"{kind:<6}{cells}{row['wall_s'] / floor:12.2f}")
    print(f"BLAS floor, one network's {FULL_STEPS:,} steps on one thread: {floor:.1f} s")
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
