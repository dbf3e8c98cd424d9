"""Which training layout is faster: a device's runs vmapped, or trained one after another.

    python benchmarks/sweep_layout.py [--work 3000] [--rounds 3] [--json docs/sweep_layout.json]
    python benchmarks/sweep_layout.py --devices --merge a.json b.json --json docs/sweep_layout.json

Each row trains K runs of the BN network of benchmarks/scaling.py (784-W-W-W-10, BN before each
sigmoid, RMSprop, batch B) as `bnlab sweep` does: one compiled lax.scan segment, the run axis
sharded over D CPU devices, in both layouts of :func:`bnlab.engine.programs.runs_in`:
"vmapped" (the runs batched into each operation) and "sequential" (each device trains its runs
one after another, each unbatched). A segment is about --work run-steps of a W 100, B 60 network
(fewer steps for more runs, wider networks and larger batches; at least 200 such steps a run).
Every round times each (D, K, W, B) once in both layouts, interleaved, so that a busy machine
slows both alike; the fastest round counts (compilation excluded). "runs x steps/s" counts every
run's steps. --merge adds earlier --json outputs: each row (same D, K, W, B and steps) keeps
each layout's fastest over all of them, and counts their rounds (a machine shared with other
work needs several invocations). The cpu rows are the table `bnlab sweep`'s layout = "auto"
picks from (:mod:`bnlab.experiments.sweep.layout`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from scaling import bn_network, child_rows, compiled_segment, fastest_s, mesh_and_data

LAYOUTS = ("vmapped", "sequential")
# (K, W, B): runs at width 100, batch 60; then wide networks and large batches
POINTS = [(k, 100, 60) for k in (2, 4, 16, 64)] + [(4, 1600, 60), (4, 100, 1024), (16, 400, 256)]


def steps_for(work: int, k: int, width: int, batch: int) -> int:
    """Steps of a segment of about ``work`` run-steps of a W 100, B 60 network, and at least 200
    such steps per run: a segment draws each run's permutation of the 60,000 images, which
    shorter segments would time more than the training (a sweep's segments are ``eval_every``
    steps, 1,000 in the presets)."""
    return max(1, round(max(work / k, 200) * 100 * 60 / (width * batch)))


def worker(devices: int, work: int, rounds: int) -> None:
    """One device count's rows, one JSON line each."""
    mesh, data = mesh_and_data(devices)
    points = [p for p in POINTS if p[0] >= devices]
    calls = {}
    for k, width, batch in points:
        spec, train = bn_network(width, batch)
        n = steps_for(work, k, width, batch)
        for layout in LAYOUTS:
            calls[k, width, batch, layout] = compiled_segment(spec, train, k, mesh, data, n, layout)
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for key, once in calls.items():
            best[key] = min(best[key], fastest_s(once, 1))
    for k, width, batch in points:
        n = steps_for(work, k, width, batch)
        rates = {layout: k * n / best[k, width, batch, layout] for layout in LAYOUTS}
        row = {"devices": devices, "runs": k, "width": width, "batch": batch, "steps": n}
        print(json.dumps({**row, **rates, "rounds": rounds}), flush=True)


def merged(rows: list[dict]) -> list[dict]:
    """One row per (D, K, W, B, steps), first-seen order: each layout's fastest, rounds added."""
    out: dict[tuple, dict] = {}
    for r in rows:
        key = tuple(r[k] for k in ("devices", "runs", "width", "batch", "steps"))
        if key not in out:
            out[key] = dict(r)
            continue
        kept = out[key]
        for layout in LAYOUTS:
            kept[layout] = max(kept[layout], r[layout])
        kept["rounds"] += r["rounds"]
    return list(out.values())


def table(rows: list[dict]) -> str:
    lines = [
        "| devices | runs K | width | batch | vmapped | sequential | sequential / vmapped |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["sequential"] / r["vmapped"]
        lines.append(
            f"| {r['devices']} | {r['runs']} | {r['width']:,} | {r['batch']:,} | "
            f"{r['vmapped']:,.0f} | {r['sequential']:,.0f} | {ratio:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--devices", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--merge", type=Path, nargs="*", default=[])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.work, args.rounds)
        return
    rows = [row for path in args.merge for row in json.loads(path.read_text())]
    rows = merged(
        rows
        + child_rows(
            __file__, args.devices, ["--work", str(args.work), "--rounds", str(args.rounds)]
        )
    )
    rows.sort(key=lambda r: (r["devices"], POINTS.index((r["runs"], r["width"], r["batch"]))))
    rounds = sorted({r["rounds"] for r in rows})
    print(
        f"{os.cpu_count()} cores; about {args.work} run-steps (W 100, B 60) per segment, "
        f"fastest of {'/'.join(map(str, rounds))} rounds; runs x steps/s"
    )
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
