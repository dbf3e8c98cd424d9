"""TensorBoard event files for one run, written after training from its recorded metrics.

Scalars (curves and final numbers) and per-layer histograms go to one event file, written into a
temporary directory next to ``logdir`` and renamed into place, so TensorBoard never shows half a
run and a rewrite (a resumed run) replaces the old file instead of adding a second one.

Events are written in the caller's thread (:class:`EventFile`), not by tensorboardX's
SummaryWriter, whose writer thread dies silently on a full disk and then blocks the caller
forever: here the OSError reaches the caller at once.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tensorboardX import summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event

from bnlab.outputs.series import DIVERGED_WHY

# metrics.json key -> TensorBoard tag, for the curves recorded at every evaluation step.
CURVE_TAGS = {
    "test_accuracy": "test/accuracy",
    "test_loss": "test/loss",
    "train_loss": "train/loss",
}
PERCENTILE_TAG = "last_sigmoid_input/p{q}"
FINAL_PREFIX = "final/"
STATUS_TAG = "run/status"
SKIPPED_TAG = "run/skipped_histograms"


def _tensorflow_buckets() -> list[float]:
    """TensorFlow's default histogram bucket limits (TensorBoard's own test data uses them):
    +-1e-12 growing by 10% up to 1e20, and 0."""
    limits = [1e-12]
    while limits[-1] * 1.1 < 1e20:
        limits.append(limits[-1] * 1.1)
    return [-v for v in reversed(limits)] + [0.0] + limits


BUCKETS = _tensorflow_buckets()


class EventFile:
    """One TensorBoard event file in ``logdir``, written synchronously."""

    def __init__(self, logdir: Path):
        self._writer = EventsWriter(str(Path(logdir) / "events"))

    def _add(self, proto: Any, step: int) -> None:
        self._writer.write_event(Event(wall_time=time.time(), step=step, summary=proto))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._add(summary.scalar(tag, value), step)

    def add_histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        self._add(summary.histogram(tag, values, BUCKETS), step)

    def add_text(self, tag: str, text: str, step: int) -> None:
        self._add(summary.text(tag, text), step)

    def close(self) -> None:
        self._writer.close()


def flat_scalars(prefix: str, tree: Any) -> dict[str, list[Any]]:
    """The curves in a measure's recorded pytree (nested dicts whose leaves are lists aligned with
    the steps) as tags ``prefix/key/...``; leaves that are not one number per step are skipped."""
    if isinstance(tree, dict):
        out: dict[str, list[Any]] = {}
        for key, sub in tree.items():
            out.update(flat_scalars(f"{prefix}/{key}", sub))
        return out
    scalar = isinstance(tree, list) and all(v is None or isinstance(v, float) for v in tree)
    return {prefix: tree} if scalar else {}


def _check_histograms(histograms: dict[str, np.ndarray], n_steps: int) -> None:
    for tag, values in histograms.items():
        if values.ndim != 2 or values.shape[0] != n_steps:
            raise ValueError(
                f"histogram {tag!r}: expected shape ({n_steps}, n_values), one row per step, "
                f"got {values.shape}"
            )


def _write(
    writer: EventFile,
    run: dict[str, Any],
    histograms: dict[str, np.ndarray],
    scalars: dict[str, list[Any]],
    finals: dict[str, float],
) -> None:
    steps = [int(s) for s in run["steps"]]
    curves = {tag: run.get(key) for key, tag in CURVE_TAGS.items()} | scalars
    for tag, values in curves.items():
        for step, value in zip(steps, values or [], strict=False):
            if value is not None:
                writer.add_scalar(tag, float(value), step)
    for q, values in (run.get("percentiles") or {}).items():
        for step, value in zip(steps, values, strict=False):
            if value is not None:
                writer.add_scalar(PERCENTILE_TAG.format(q=q), float(value), step)
    skipped = 0
    for tag, values in histograms.items():
        for step, row in zip(steps, np.asarray(values), strict=True):
            # A row with a NaN or inf is from a diverged step; a histogram of it means nothing.
            if not np.all(np.isfinite(row)):
                skipped += 1
                continue
            try:
                writer.add_histogram(tag, row.astype(np.float64), step)
            except ValueError:
                # values so large that the bins overflow (an exploding network): no histogram
                skipped += 1
    if skipped:
        writer.add_text(
            SKIPPED_TAG,
            f"{skipped} histogram(s) not written: their values were NaN, inf or too large to bin "
            "(a diverged or exploding network)",
            steps[-1],
        )
    if steps:
        for name, value in finals.items():
            if value is not None and np.isfinite(value):
                writer.add_scalar(FINAL_PREFIX + name, float(value), steps[-1])
    if run.get("diverged_at") is not None:
        step = int(run["diverged_at"])
        writer.add_text(STATUS_TAG, f"diverged at step {step}: {DIVERGED_WHY}", step)


def write_run(
    logdir: Path,
    run: dict[str, Any],
    histograms: dict[str, np.ndarray],
    scalars: dict[str, list[Any]] | None = None,
    finals: dict[str, float] | None = None,
) -> Path:
    """Write ``run`` (one entry of metrics.json["runs"]: its steps, curves and percentiles) and
    ``histograms`` (tag -> array of shape (len(run["steps"]), n_values)) as TensorBoard events in
    ``logdir``, replacing what was there. ``scalars`` (tag -> values aligned with the steps, None
    for none) adds further curves; ``finals`` (name -> number) go under ``final/`` at the last
    step."""
    logdir = Path(logdir)
    histograms = {tag: np.asarray(v) for tag, v in histograms.items()}
    _check_histograms(histograms, len(run["steps"]))
    logdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=logdir.parent, prefix=f".{logdir.name}.", suffix=".tmp"))
    try:
        writer = EventFile(tmp)
        try:
            _write(writer, run, histograms, scalars or {}, finals or {})
        finally:
            writer.close()
        if logdir.exists():
            shutil.rmtree(logdir)
        tmp.rename(logdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return logdir
