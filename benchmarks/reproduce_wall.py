"""`bnlab reproduce` end to end, as a user runs it: wall time, CPU time and peak memory.

    python benchmarks/reproduce_wall.py [--preset seed] [--repeat 1] [extra bnlab options...]

Runs the command in a child process, first with an empty compile cache (cold: every XLA program
compiled) and then with the cache that run filled (warm), ``--repeat`` times each. The CPU time
(user + system of the child) next to the wall time shows how much of the machine the run had: on
a shared machine wall time grows with the load, CPU time much less. Phases come from the run's
timing.json.
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
    keys = ("wall_s", "cpu_s", "compile_s", "train_s", "final_eval_s", "outputs_s", "peak_rss_mb")
    print(f"{'cache':<6}" + "".join(f"{k:>14}" for k in keys))
    for kind, row in rows:
        print(f"{kind:<6}" + "".join(f"{row[k]:14.1f}" for k in keys))
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
