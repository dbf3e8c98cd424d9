"""Ctrl-C (SIGINT) and SIGTERM during training: stop at the next segment's end (within an epoch)
with the state saved there, print one line naming the step reached and the command that continues
the run, and exit 130 / 143 (128 + the signal's number). A second Ctrl-C stops at once."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bnlab.experiments.run import RunStopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _command() -> list[str]:
    """The subcommand the user typed (``reproduce``, ``analyze ics``), from the command line."""
    words = []
    for arg in sys.argv[1:]:
        if arg.startswith("-"):
            if words:
                break
            continue  # bnlab's own options (--debug) before the subcommand
        words.append(arg)
    return words[:2] if words[:1] == ["analyze"] else words[:1]


@contextmanager
def stop_on_signals(command: list[str] | None = None) -> Iterator[threading.Event]:
    """The yielded event is set by the first SIGINT or SIGTERM; pass it as ``stop`` to
    :func:`bnlab.experiments.run_experiment`. Outside the main thread, nothing is installed.
    ``command``: what continues the run before ``--out DIR --resume`` (default: the subcommand
    typed, e.g. ``analyze ics``)."""
    stop = threading.Event()
    received: list[int] = []

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield stop
    except RunStopped as e:
        where = f"stopped at step {e.step:,} of {e.total:,}"
        if e.saved:
            again = ["bnlab", *(command or _command()), "--out", str(e.out_dir), "--resume"]
            print(f"bnlab: {where}; continue with: {shlex.join(again)}", file=sys.stderr)
        else:
            print(f"bnlab: {where}; this run keeps no checkpoint to resume", file=sys.stderr)
        sys.exit(128 + (received[0] if received else signal.SIGINT))
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
