"""The training progress shared by the commands that train: steps done, time, live accuracy.

In a terminal, a rich bar on stderr, erased if the run fails (so that the error is the only line
left). Piped to a file (nohup, Slurm, CI): one plain, flushed line per evaluation, no control
characters."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# update(steps done, total steps, latest means per network label or None): run_experiment's
# progress
Update = Callable[[int, int, dict[str, dict[str, float]] | None], None]


def live_text(latest: dict[str, float]) -> str:
    """ "acc 0.9712", "diverged" when every run of the network has, or "acc 0.9712 (1 of 3
    diverged)" (the accuracy is the mean of the runs still going)."""
    diverged, runs = int(latest.get("diverged", 0)), int(latest.get("runs", 1))
    if diverged and diverged == runs:
        return "diverged"
    text = f"acc {latest['test_accuracy']:.4f}"
    return text + (f" ({diverged} of {runs} diverged)" if diverged else "")


def _eta(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"


@contextmanager
def training_progress(description: str, total: int | None) -> Iterator[Update]:
    """The yielded ``update`` reports steps done and each network's accuracy on stderr."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield _plain_lines(description)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[live]}"),
        console=console,
        # erased if the run fails, so that the error is the only line the user sees
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total, live="compiling")

        def update(step: int, total: int, latest: dict[str, dict[str, float]] | None) -> None:
            fields = {}
            if latest:
                fields["live"] = "  ".join(f"{v} {live_text(m)}" for v, m in latest.items())
            elif step and bar.tasks[task].fields["live"] == "compiling":
                fields["live"] = ""
            bar.update(task, completed=step, total=total, **fields)

        yield update
        bar.live.transient = False


def _plain_lines(description: str) -> Update:
    """One line per evaluation: step, steps/s since the first report, ETA, accuracies."""
    start: tuple[float, int] | None = None

    def update(step: int, total: int, latest: dict[str, dict[str, float]] | None) -> None:
        nonlocal start
        now = time.perf_counter()
        if start is None:
            start = (now, step)  # training has started: compiling is behind
        if latest is None:
            return
        t0, s0 = start
        rate = (step - s0) / (now - t0) if now > t0 and step > s0 else 0.0
        eta = _eta((total - step) / rate) if rate else "?"
        accuracies = "  ".join(f"{v} {live_text(m)}" for v, m in latest.items())
        line = f"{description}: step {step:,}/{total:,}, {rate:,.0f} steps/s, ETA {eta}"
        print(f"{line}  {accuracies}".rstrip(), file=sys.stderr, flush=True)

    return update
