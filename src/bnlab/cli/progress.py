"""The training progress bar shared by the commands that train: steps done, time, live accuracy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# update(steps done, total steps, latest means per network label or None): run_experiment's
# progress
Update = Callable[[int, int, dict[str, dict[str, float]] | None], None]


@contextmanager
def training_progress(description: str, total: int) -> Iterator[Update]:
    """A rich bar on stderr; the yielded ``update`` moves it and shows each network's accuracy."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[live]}"),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total, live="compiling")

        def update(step: int, total: int, latest: dict[str, dict[str, float]] | None) -> None:
            fields = {}
            if latest:
                fields["live"] = "  ".join(
                    f"{v} acc {m['test_accuracy']:.4f}" for v, m in latest.items()
                )
            bar.update(task, completed=step, total=total, **fields)

        yield update
