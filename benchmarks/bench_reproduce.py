"""Training speed of Figure 1's networks: bnlab's engine beside a BLAS floor and three frameworks.

    python benchmarks/bench_reproduce.py [--steps 5000] [--repeat 1] [--end-to-end] [--json PATH]

Needs the ``test`` extra (Keras, PyTorch and Flax, the frameworks it compares).

Each (framework, network) trains in its own child process (reproduce_workers.py) for --steps
steps after a warm-up, all in this one invocation, so the ratios compare runs made under the same
machine load; absolute numbers move with whatever else the machine runs. Rows:

- bnlab: the engine, one network per compiled program on one CPU device; "both" trains the two
  networks together in `bnlab reproduce`'s layout (steps/s there counts steps of either network);
- BLAS floor: numpy doing only the step's matmuls (forward, weight gradients, input gradients),
  with 1 BLAS thread and with one per core; the floor is the 1-thread row (issue 13: one core's
  work, since `bnlab reproduce` trains one network per core);
- Keras 3 `model.fit` on the JAX backend (the notebook's model and compile call), with
  keras.layers.BatchNormalization and with bnlab.keras.BatchNormalization;
- plain JAX: the least a compiled lax.scan training program does (no measurements, no
  divergence check), to show what bnlab's own extras cost;
- a PyTorch per-step loop (torch.set_num_threads = cores, and = 1: on a shared machine extra
  threads can cost more than they give) and a Flax nnx loop with an nnx.jit step.

With --end-to-end, `bnlab reproduce --preset seed` also runs in full (2 nets x 50,000 steps,
evaluation every 1,000, TensorBoard, figure, report) and its measured wall time is reported.

Times exclude compilation and warm-up; with --repeat R each row keeps its fastest of R. The
50,000-step column is an extrapolation of the measured rate, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from requires import require

HERE = Path(__file__).resolve().parent
WORKER = HERE / "reproduce_workers.py"
FULL_STEPS = 50_000
TARGET_FLOOR, TARGET_KERAS, TARGET_RSS_MIB, TARGET_E2E_S = 1.5, 3.0, 2048, 30.0
TARGET_MINIMAL = 1.15
FLOOR_ROW = "BLAS floor, 1 thread"
MINIMAL_ROW = "plain JAX lax.scan (minimal)"
KERAS_ROW = "Keras 3 fit (JAX)"
# (row name, worker, networks, extra environment)
ROWS = [
    ("bnlab", "bnlab", ("baseline", "bn", "both"), {}),
    (FLOOR_ROW, "blas", ("baseline", "bn"), {"OPENBLAS_NUM_THREADS": "1"}),
    (
        "BLAS floor, 1 thread per core",
        "blas",
        ("baseline", "bn"),
        {"OPENBLAS_NUM_THREADS": str(os.cpu_count() or 1)},
    ),
    (KERAS_ROW, "keras", ("baseline", "bn"), {"KERAS_BACKEND": "jax"}),
    (
        "Keras 3 fit (JAX), bnlab.keras BN",
        "keras",
        ("bn",),
        {"KERAS_BACKEND": "jax", "BENCH_KERAS_BN": "bnlab"},
    ),
    ("PyTorch loop, 1 thread per core", "torch", ("baseline", "bn"), {}),
    ("PyTorch loop, 1 thread", "torch", ("baseline", "bn"), {"BENCH_TORCH_THREADS": "1"}),
    ("Flax nnx loop", "flax", ("baseline", "bn"), {}),
    (MINIMAL_ROW, "jaxscan", ("baseline", "bn"), {}),
]


def run_worker(worker: str, network: str, steps: int, env: dict[str, str], timeout: float) -> dict:
    src = str(HERE.parent / "src")
    child_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([src, str(HERE)])}
    try:
        proc = subprocess.run(
            [sys.executable, str(WORKER), worker, network, str(steps)],
            capture_output=True,
            text=True,
            env=child_env,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:.0f} s (--row-timeout)"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        error = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {"error": error}
    return json.loads(lines[-1])


END_TO_END = ("bnlab reproduce --preset seed, end to end", "reproduce", ("both",), {})


def measure(steps: int, repeat: int, timeout: float, end_to_end: bool) -> list[dict]:
    results: dict[tuple[str, str], dict] = {}
    rows = [*ROWS, END_TO_END] if end_to_end else ROWS
    for _ in range(repeat):
        for name, worker, networks, env in rows:
            run_steps = 0 if worker == "reproduce" else steps
            for network in networks:
                out = run_worker(worker, network, run_steps, env, timeout)
                print(
                    f"  {name:32s} {network:9s} {out.get('train_s', out.get('error'))}",
                    file=sys.stderr,
                )
                best = results.get((name, network))
                if best is None or "error" in best or out.get("train_s", 1e9) < best["train_s"]:
                    results[(name, network)] = {"row": name, **out, "network": network}
    return list(results.values())


def _runs(r: dict) -> int:
    return 2 if r["network"] == "both" else 1


def analyse(results: list[dict], steps: int) -> dict:
    """Per-run-step times, the floor, and every ratio the issue's targets name."""
    ok = [r for r in results if "error" not in r and r["row"] != END_TO_END[0]]
    for r in ok:
        r["ms_per_step"] = 1000 * r["train_s"] / (steps * _runs(r))
    floor = {}
    for network in ("baseline", "bn"):
        candidates = [r for r in ok if r["row"] == FLOOR_ROW and r["network"] == network]
        if candidates:
            floor[network] = min(r["ms_per_step"] for r in candidates)
    if floor:
        floor["both"] = sum(floor.values()) / len(floor)
    bnlab = {r["network"]: r["ms_per_step"] for r in ok if r["row"] == "bnlab"}
    for r in ok:
        if r["network"] in floor:
            r["x_floor"] = r["ms_per_step"] / floor[r["network"]]
        if r["network"] in bnlab and r["network"] != "both":
            r["x_bnlab"] = r["ms_per_step"] / bnlab[r["network"]]
        r["extrapolated_50k_s"] = r["ms_per_step"] * FULL_STEPS * _runs(r) / 1000
    keras = {r["network"]: r["ms_per_step"] for r in ok if r["row"] == KERAS_ROW}
    minimal = {r["network"]: r["ms_per_step"] for r in ok if r["row"] == MINIMAL_ROW}
    return {
        "bnlab_x_minimal": {n: bnlab[n] / minimal[n] for n in bnlab if n in minimal},
        "floor_ms_per_step": floor,
        "bnlab_x_floor": {n: bnlab[n] / floor[n] for n in bnlab if n in floor},
        "keras_x_bnlab": {n: keras[n] / bnlab[n] for n in keras if n in bnlab},
        "bnlab_peak_rss_mib": {r["network"]: r["peak_rss_mib"] for r in ok if r["row"] == "bnlab"},
        "end_to_end": next((r for r in results if r["row"] == END_TO_END[0]), None),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(results: list[dict], summary: dict, steps: int) -> str:
    header = [
        "framework",
        "network",
        "steps/s",
        f"train s ({steps:,} steps)",
        "x BLAS floor",
        "x bnlab (time)",
        "warm-up s",
        "peak RSS MiB",
        "50k steps s (extrapolated)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        if r["row"] == END_TO_END[0]:
            continue
        if "error" in r:
            lines.append(f"| {r['row']} | {r['network']} | not run: {r['error'][:80]} |")
            continue
        cells = [
            r["row"],
            "both nets at once" if r["network"] == "both" else r["network"],
            f"{1000 / r['ms_per_step']:,.0f}",
            f"{r['train_s']:.2f}",
            _fmt(r.get("x_floor"), ".2f"),
            _fmt(r.get("x_bnlab"), ".2f"),
            _fmt(r.get("warmup_s"), ".1f"),
            f"{r['peak_rss_mib']:,.0f}",
            f"{r['extrapolated_50k_s']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    targets = [
        f"- bnlab per-run training vs the BLAS floor (target <= {TARGET_FLOOR}x): "
        + ", ".join(f"{n} {v:.2f}x" for n, v in summary["bnlab_x_floor"].items()),
        f"- bnlab per-run training vs the minimal JAX program (target <= {TARGET_MINIMAL}x): "
        + ", ".join(f"{n} {v:.2f}x" for n, v in summary["bnlab_x_minimal"].items()),
        f"- Keras fit time / bnlab time (target >= {TARGET_KERAS}x): "
        + ", ".join(f"{n} {v:.2f}x" for n, v in summary["keras_x_bnlab"].items()),
        f"- bnlab peak RSS (target < {TARGET_RSS_MIB:,} MiB): "
        + ", ".join(f"{n} {v:,.0f} MiB" for n, v in summary["bnlab_peak_rss_mib"].items()),
    ]
    e2e = summary["end_to_end"]
    if e2e is not None and "error" in e2e:
        targets.append(f"- {END_TO_END[0]}: not run: {e2e['error'][:80]}")
    elif e2e is not None:
        targets.append(
            f"- {END_TO_END[0]} (target <= {TARGET_E2E_S:.0f} s), measured: "
            f"{e2e['wall_s']:.1f} s wall ({e2e['warmup_s']:.1f} s compile, {e2e['train_s']:.1f} s "
            f"training), peak RSS {e2e['child_peak_rss_mib']:,.0f} MiB"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(targets)


def main() -> None:
    require("test", "keras", "torch", "flax")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="timed steps per run")
    parser.add_argument("--repeat", type=int, default=1, help="keep each row's fastest of R")
    parser.add_argument(
        "--row-timeout",
        type=float,
        default=300,
        help="seconds a row may take, start-up included, before it is stopped and reported so "
        "(threaded BLAS and PyTorch rows crawl on a busy machine)",
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="also time `bnlab reproduce --preset seed` in full (50,000 steps, all outputs)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.steps < 1 or args.repeat < 1 or args.row_timeout <= 0:
        parser.error("--steps, --repeat and --row-timeout must be positive")
    load_before = os.getloadavg()
    results = measure(args.steps, args.repeat, args.row_timeout, args.end_to_end)
    load_after = os.getloadavg()
    summary = analyse(results, args.steps)
    sys.path.insert(0, str(HERE.parent / "src"))
    from bnlab.outputs.report import machine_info

    machine = machine_info()
    print(
        f"{machine['cpu']}, {machine['cores']} cores, JAX {machine['jax']}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (other work on the machine "
        "makes absolute numbers noisy; compare ratios within this run)\n"
    )
    print(markdown(results, summary, args.steps))
    if args.json:
        payload = {
            "steps": args.steps,
            "repeat": args.repeat,
            "row_timeout_s": args.row_timeout,
            "machine": machine,
            "loadavg": [load_before[0], load_after[0]],
            "results": results,
            "summary": summary,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
