"""What TensorBoard logging adds to `bnlab reproduce --preset seed`: the same run trained with
and without its live logs, alternating, in this one invocation (the machine's load moves both
alike), and the time spent inside the board's writes themselves.

    python benchmarks/tensorboard_cost.py [--steps 50000] [--repeat 2]

"with logs" is what `bnlab reproduce` does; "without" is run_experiment(write_outputs=False),
which also skips the figure and report (timed apart, in "outputs_s", so the comparison is the
training time). The board writes on the training thread between dispatches, while the devices
already run the next segment, so part of its time hides behind the training.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bnlab.experiments import FIGURE1, run_experiment
from bnlab.experiments.presets import preset
from bnlab.outputs import live_board

TARGET = 0.05


def _timed_board() -> dict[str, float]:
    """Wrap the board's writes with a clock; returns the running total."""
    spent = {"s": 0.0}
    for name in ("record", "finish"):
        original = getattr(live_board.LiveBoard, name)

        def timed(self, *args, _original=original, **kwargs):
            t = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                spent["s"] += time.perf_counter() - t

        setattr(live_board.LiveBoard, name, timed)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    config = preset("seed").replace(steps=args.steps)
    spent = _timed_board()
    train = {True: [], False: []}
    board = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for logs in (True, False):
                before = spent["s"]
                run = run_experiment(FIGURE1, config, Path(tmp) / f"{i}-{logs}", write_outputs=logs)
                train[logs].append(run.timing["train_s"])
                if logs:
                    board.append(spent["s"] - before)
                print(
                    f"run {i + 1}, logs {'on ' if logs else 'off'}: training "
                    f"{run.timing['train_s']:.2f} s",
                    flush=True,
                )
    with_logs, without = statistics.median(train[True]), statistics.median(train[False])
    written = statistics.median(board)
    print(
        f"training with logs {with_logs:.2f} s, without {without:.2f} s (medians of "
        f"{args.repeat}): logging adds {(with_logs - without) / without:+.1%}"
    )
    print(
        f"inside the board's writes: {written:.2f} s = {written / with_logs:.1%} of training "
        f"(target < {TARGET:.0%})"
    )


if __name__ == "__main__":
    main()
