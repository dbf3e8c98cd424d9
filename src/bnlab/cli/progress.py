"""The training progress shared by the commands that train: where training is, its pace, live
accuracy.

In a terminal, a bar on stderr (the step count, steps/s and ETA on its line; below it, what the
run is doing or each network's latest accuracy), erased if the run fails (so that the error is the
only line left). Piped to a file (nohup, Slurm, CI): one plain, flushed line per evaluation, no
control characters. ``--quiet``: nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

# network label -> {metric: mean over its runs} at an evaluation
Latest = dict[str, dict[str, float]]
# update(steps done over all phases, total steps, Latest or None): run_experiment's progress,
# called at the end of every segment (an epoch, or up to an evaluation)
Update = Callable[[int, int, Latest | None], None]
# the status lines' indent under the bar's line; the bar's widest and narrowest
STATUS_INDENT = 2
MAX_BAR, MIN_BAR = 40, 5


@dataclass(frozen=True)
class Plan:
    """What the engine trains, in order: each phase's length and evaluation interval."""

    steps: tuple[int, ...]
    eval_every: tuple[int, ...]

    @classmethod
    def of(cls, prepared: Any) -> Plan:
        """The plan of a prepared run (:func:`bnlab.experiments.run.prepare_experiment`)."""
        phases = prepared.experiment.phases(prepared.config)
        return cls(tuple(p.train.steps for p in phases), tuple(p.train.eval_every for p in phases))

    def locate(self, done: int) -> tuple[int, int]:
        """The phase that ``done`` steps over all phases fall in, and the step within it (a
        phase's last step is its own: the next phase reports only once it has trained)."""
        for k, steps in enumerate(self.steps[:-1]):
            if done <= steps:
                return k, done
            done -= steps
        return len(self.steps) - 1, done

    def next_eval(self, phase: int, step: int) -> int:
        """The step (within ``phase``) of the first evaluation after ``step``."""
        every = self.eval_every[phase]
        return min((step // every + 1) * every, self.steps[phase])


@dataclass
class Pace:
    """Steps per second over the time spent training: each phase counts from its first report
    (before it, the phase compiled), so a later phase's compilation does not slow the rate."""

    steps: int = 0
    seconds: float = 0.0
    # (phase, time, steps done) at the latest report
    last: tuple[int, float, int] | None = None

    def add(self, phase: int, done: int, now: float) -> None:
        if self.last is not None and self.last[0] == phase:
            self.steps += done - self.last[2]
            self.seconds += now - self.last[1]
        self.last = (phase, now, done)

    def rate(self) -> float | None:
        return self.steps / self.seconds if self.steps > 0 and self.seconds > 0 else None


def live_text(latest: dict[str, float]) -> str:
    """ "acc 0.9712", "diverged" when every run of the network has, or "acc 0.9712 (1 of 3
    diverged)" (the accuracy is the mean of the runs still going)."""
    diverged, runs = int(latest.get("diverged", 0)), int(latest.get("runs", 1))
    if diverged and diverged == runs:
        return "diverged"
    text = f"acc {latest['test_accuracy']:.4f}"
    return text + (f" ({diverged} of {runs} diverged)" if diverged else "")


def cells(latest: Latest) -> list[str]:
    """ "without BN acc 0.9123", "with BN acc 0.9345": each network's label and live text."""
    return [f"{label} {live_text(m)}" for label, m in latest.items()]


def rows(items: list[str], width: int) -> list[str]:
    """The items in order, two spaces apart, on as few lines of at most ``width`` as hold them (an
    item longer than that alone on its line)."""
    lines: list[str] = []
    for cell in items:
        if lines and len(lines[-1]) + 2 + len(cell) <= width:
            lines[-1] += "  " + cell
        else:
            lines.append(cell)
    return lines


def eta_text(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"


def position(plan: Plan, done: int, total: int, rate: float | None) -> str:
    """ "step 600/1,500, 1,234 steps/s, ETA 0:00:12", led by "phase 2 of 3, " when there are
    several (the steps are the phase's: the length the user asked for)."""
    phase, step = plan.locate(done)
    steps = f"{plan.steps[phase]:,}"
    # padded, so that the line keeps its width (and the bar its length) as the numbers grow
    text = f"phase {phase + 1} of {len(plan.steps)}, " if len(plan.steps) > 1 else ""
    text += f"step {step:>{len(steps)},}/{steps}, "
    if rate is None:
        return text + f"{'?':>5} steps/s, ETA ?:??:??"
    return text + f"{rate:>5,.0f} steps/s, ETA {eta_text((total - done) / rate)}"


class Tracker:
    """What the reports so far say: the position line, and what the run is doing (``status``:
    compiling, training towards an evaluation, or each network's latest accuracy)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.pace = Pace()
        self.status = ["compiling"]
        # the phase whose accuracies ``status`` shows
        self.shown: int | None = None

    def report(self, done: int, total: int, latest: Latest | None, now: float) -> str:
        """Take a report in; the position line."""
        phase, step = self.plan.locate(done)
        self.pace.add(phase, done, now)
        if step == self.plan.steps[phase] and phase + 1 < len(self.plan.steps):
            self.status = [f"compiling phase {phase + 2} of {len(self.plan.steps)}"]
        elif latest is not None:
            self.status, self.shown = cells(latest), phase
        elif self.shown != phase:
            next_eval = self.plan.next_eval(phase, step)
            self.status = [f"training, next evaluation at step {next_eval:,}"]
        return position(self.plan, done, total, self.pace.rate())


@contextmanager
def training_progress(description: str, plan: Plan, *, quiet: bool = False) -> Iterator[Update]:
    """The yielded ``update`` reports steps done, pace and each network's accuracy on stderr
    (``quiet``: nothing)."""
    console = Console(stderr=True)
    if quiet:
        yield lambda done, total, latest: None
    elif not console.is_terminal:
        yield plain_lines(description, plan)
    else:
        with terminal_bar(description, plan, console) as update:
            yield update


def bar_line(description: str, fraction: float, position: str, width: int) -> Text:
    """The description, the bar and the position on one line of ``width``: the bar shrinks first
    (gone below MIN_BAR), then the description is cut; the position stays whole."""
    room = width - len(position) - 1  # for the description and the bar, each with its space
    bar = min(MAX_BAR, room - len(description) - 1)
    line = Text(no_wrap=True, overflow="ellipsis")
    if bar >= MIN_BAR:
        filled = round(bar * fraction)
        line.append(description, "bold").append(" ")
        line.append("━" * filled, "bar.complete").append("━" * (bar - filled), "bar.back")
        line.append(" ")
    elif room > 0:
        name = Text(description, "bold")
        name.truncate(room, overflow="ellipsis")
        line.append(name).append(" ")
    return line.append(position)


@dataclass
class Screen:
    """What the terminal shows (rich's Live renders it again at every refresh): the bar's line,
    then the status on as many lines as it needs."""

    description: str
    tracker: Tracker
    total: int
    done: int = 0
    position: str = ""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        yield bar_line(self.description, self.done / self.total, self.position, width)
        for line in rows(self.tracker.status, width - STATUS_INDENT):
            yield Text(" " * STATUS_INDENT + line, no_wrap=True, overflow="ellipsis")


@contextmanager
def terminal_bar(description: str, plan: Plan, console: Console) -> Iterator[Update]:
    tracker = Tracker(plan)
    total = sum(plan.steps)
    screen = Screen(description, tracker, total, position=position(plan, 0, total, None))
    # erased if the run fails, so that the error is the only line the user sees
    with Live(screen, console=console, transient=True, refresh_per_second=4) as live:

        def update(done: int, total: int, latest: Latest | None) -> None:
            screen.position = tracker.report(done, total, latest, time.perf_counter())
            screen.done, screen.total = done, total
            live.refresh()

        yield update
        live.transient = False


def plain_lines(description: str, plan: Plan) -> Update:
    """One line per evaluation: position, steps/s, ETA, accuracies."""
    tracker = Tracker(plan)

    def update(done: int, total: int, latest: Latest | None) -> None:
        line = tracker.report(done, total, latest, time.perf_counter())
        if latest is not None:
            text = f"{description}: {line}  {'  '.join(cells(latest))}".rstrip()
            print(text, file=sys.stderr, flush=True)

    return update
