"""What keeping checkpoints costs a sweep: seconds per save and bytes on disk.

    python benchmarks/bench_checkpoint.py                        # 2 lrs x 2 variants x 2 seeds
    python benchmarks/bench_checkpoint.py --lrs 8 --seeds 16     # the issue's 256-run grid

A sweep of the `seed` preset (784-100-100-100-10, RMSprop) through the same code as the CLI
(run_experiment(SWEEP, ...); TensorBoard, figure and report skipped), on the first --examples
training and test images of the embedded MNIST: an epoch is then --examples / 60 steps, so a few
seconds of training already save the state several times, and a save costs what it costs in a
50,000-step run on the whole data (it depends only on the runs' state). Prints the time per save
(gathering the state to the host, and writing state.npz: np.savez, fsync, rename), per
evaluation record, the file sizes, and one JSON line at the end for scripts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(module, name: str, spent: list[float]):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    setattr(module, name, wrapper)


def _write_subset(directory: Path, examples: int) -> None:
    from bnlab.data import load_mnist

    mnist = load_mnist()
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, stem in names.items():
        array = getattr(mnist, key)[:examples]
        header = bytes([0, 0, 8, array.ndim]) + b"".join(
            int(d).to_bytes(4, "big") for d in array.shape
        )
        (directory / stem).write_bytes(header + array.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", type=int, default=2, help="learning rates (log-spaced)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per cell and variant")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (= saves) to time")
    parser.add_argument("--examples", type=int, default=1200, help="training (and test) images")
    parser.add_argument("--devices", type=int, default=None, help="first N devices (all)")
    args = parser.parse_args()

    from bnlab.engine import checkpoint, runner
    from bnlab.engine.devices import default_mesh
    from bnlab.engine.train import RunState
    from bnlab.experiments import SWEEP, parse_sweep, run_experiment

    mesh = default_mesh(args.devices)  # before anything else starts JAX's backend
    saves, records, gathers = [], [], []
    _timed(checkpoint, "save_state", saves)
    _timed(checkpoint, "save_record", records)
    fetch = runner.fetch

    def timed_fetch(tree):
        t = time.perf_counter()
        out = fetch(tree)
        if isinstance(tree, list) and tree and isinstance(tree[0], RunState):
            gathers.append(time.perf_counter() - t)
        return out

    runner.fetch = timed_fetch
    lrs = [float(f"{v:.3g}") for v in np.logspace(-4, -1, args.lrs)] if args.lrs > 1 else [1e-3]
    epoch = args.examples // 60
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        _write_subset(data, args.examples)
        sweep = parse_sweep(
            {
                "preset": "seed",
                "steps": args.epochs * epoch,
                "eval_every": epoch,
                "data_dir": str(data),
                "seeds": list(range(args.seeds)),
                "grid": {"lr": lrs},
            },
            "bench_checkpoint",
        )
        out = Path(tmp) / "out"
        result = run_experiment(SWEEP, sweep, out, mesh=mesh, write_outputs=False)
        state = out / "training_state" / "state.npz"
        evals = sorted((out / "training_state" / "evals").iterdir())
        state_mb = state.stat().st_size / 2**20
        record_mb = evals[-1].stat().st_size / 2**20
    t = result.timing
    per_save = (sum(saves) + sum(gathers)) / len(saves)
    row = {
        "runs": t["runs"],
        "devices": t["devices"],
        "saves": len(saves),
        "gather_s": round(float(np.mean(gathers)), 4),
        "save_s": round(float(np.mean(saves)), 4),
        "per_save_s": round(per_save, 4),
        "record_s": round(float(np.mean(records)), 4),
        "state_mb": round(state_mb, 2),
        "record_mb": round(record_mb, 3),
        "train_s": round(t["train_s"], 2),
        "runs_x_steps_per_s": round(t["runs_x_steps_per_s"], 1),
    }
    print(
        f"{t['runs']} runs on {t['devices']} device(s): a save takes {per_save:.3f} s "
        f"(gather {row['gather_s']:.3f} s, write {row['save_s']:.3f} s) for a "
        f"{state_mb:.1f} MB state.npz; an evaluation record {row['record_s']:.3f} s, "
        f"{record_mb:.2f} MB; training {t['runs_x_steps_per_s']:,.0f} runs x steps / s"
    )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
