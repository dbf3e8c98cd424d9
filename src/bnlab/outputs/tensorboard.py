"""TensorBoard event files: one per run, every tag described, written evaluation by evaluation.

The layout a user looks for first: the curves (``accuracy/test``, ``loss/test``, ``loss/train``),
then the typical unit's input percentiles (``typical_unit_input/p{q}``), per-layer histograms, and
as text the run's status and its final numbers (a Markdown table: one-point scalar cards say
nothing). Each tag's first event carries its description (data, BN mode, which unit and why),
shown behind TensorBoard's info icon. :class:`RunLog` writes one run's evaluations in step order,
nothing after its divergence step; :mod:`bnlab.outputs.live_board` feeds it as training runs,
:func:`write_run` from a finished metrics.json entry.

Events are written in the caller's thread (:class:`EventFile`), not by tensorboardX's
SummaryWriter, whose writer thread dies silently on a full disk and then blocks the caller
forever: here the OSError reaches the caller at once.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tensorboardX import summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event

from bnlab.outputs.series import DIVERGED_WHY

# metrics.json key -> TensorBoard tag, for the curves recorded at every evaluation step
CURVE_TAGS = {
    "test_accuracy": "accuracy/test",
    "test_loss": "loss/test",
    "train_loss": "loss/train",
}
PERCENTILE_TAG = "typical_unit_input/p{q}"
STATUS_TAG = "run/status"
SKIPPED_TAG = "run/skipped_histograms"
FINAL_TAG = "run/final"

_EVAL = (
    "the test set in evaluation mode (a BN network with its running averages, the moving mean "
    "and variance kept during training, not the batch's statistics; no noise)"
)
DESCRIPTIONS = {
    "accuracy/test": f"Accuracy on {_EVAL}.",
    "loss/test": f"Cross-entropy on {_EVAL}.",
    "loss/train": (
        "Mean cross-entropy of the training mini-batches since the previous evaluation, as the "
        "steps computed it (BN with each batch's own statistics, a noisy network's noise "
        "included); non-finite steps left out."
    ),
    STATUS_TAG: "Whether and at which step the run diverged; nothing is written after it.",
    SKIPPED_TAG: "Histograms left out because their values were NaN, inf or too large to bin.",
    FINAL_TAG: "The run's final numbers: the last evaluation and the end-of-training ones.",
}
# curve tag -> how the final table calls it
CURVE_NAMES = {
    "accuracy/test": "test accuracy, BN with its running averages",
    "loss/test": "test loss, BN with its running averages",
    "loss/train": "training loss, mean since the previous evaluation",
}
UNIT_WHY = (
    "unit {unit} of the last hidden layer, its typical unit: at initialisation, over the test set, "
    "the unit whose median pre-activation (Wu + b) is the middle one of the layer's medians "
    "(neither among the most saturated units nor an outlier), fixed before training as in the "
    "paper's Figure 1(b, c)"
)
PERCENTILE_DESCRIPTION = (
    "The {q}th percentile of the activation's input (BN's output when BN comes before the "
    "activation) over {data}, of " + UNIT_WHY + "."
)
_HIST = re.compile(r"layer(\d+)/(\w+)_input")
# final evaluation name (before any "/size") -> how the final table calls it
FINAL_NAMES = {
    "population_test_accuracy": "test accuracy, BN with Algorithm 2's population statistics",
    "population_test_loss": "test loss, BN with Algorithm 2's population statistics",
    "batch_stats_test_accuracy": "test accuracy, BN with each test batch's own statistics, "
    "batches of {size} (as the seed notebook's layer did)",
}


def describe(tag: str, unit: int | None = None, examples: int | None = None) -> str:
    """What ``tag`` shows (``unit``: the run's typical unit; ``examples``: images per histogram)."""
    if tag in DESCRIPTIONS:
        return DESCRIPTIONS[tag]
    q = re.fullmatch(PERCENTILE_TAG.format(q=r"(\d+)"), tag)
    if q:
        return PERCENTILE_DESCRIPTION.format(q=q.group(1), data=_EVAL, unit=unit)
    h = _HIST.fullmatch(tag)
    if h:
        what = "BN's input (Wu, + b if kept)" if h.group(2) == "bn" else f"The {h.group(2)}'s input"
        on = f"the first {examples} images of " if examples else ""
        return f"{what} of every unit of hidden layer {h.group(1)}, on {on}{_EVAL}."
    return f"The experiment's measure {tag!r} at each evaluation (its report.md says how)."


# A histogram's buckets: equal widths over its values' range (TensorBoard's own summaries use 30),
# not TensorFlow's ~1,500 fixed limits, whose events cost ~10x more to checksum and write while a
# run trains; values beyond +-1e20 (TensorFlow's outermost limit) are too large to bin.
HISTOGRAM_BINS = 64
BIN_LIMIT = 1e20


class EventFile:
    """One TensorBoard event file in ``logdir``, written synchronously; the first event of each
    tag carries ``describe(tag)`` as its description."""

    def __init__(self, logdir: Path, describe: Callable[[str], str] = describe):
        self._writer = EventsWriter(str(Path(logdir) / "events"))
        self._describe = describe
        self._described: set[str] = set()

    def _add(self, proto: Any, step: int, tag: str, plugin: str) -> None:
        if tag not in self._described:
            value = proto.value[0]
            value.metadata.summary_description = self._describe(tag)
            if not value.metadata.plugin_data.plugin_name:
                value.metadata.plugin_data.plugin_name = plugin
            self._described.add(tag)
        self._writer.write_event(Event(wall_time=time.time(), step=step, summary=proto))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._add(summary.scalar(tag, value), step, tag, "scalars")

    def add_histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        values = np.asarray(values, np.float64).reshape(-1)
        if values.size and np.max(np.abs(values)) > BIN_LIMIT:
            raise ValueError(f"histogram {tag!r}: values beyond +-{BIN_LIMIT:g}")
        self._add(summary.histogram(tag, values, HISTOGRAM_BINS), step, tag, "histograms")

    def add_text(self, tag: str, text: str, step: int) -> None:
        self._add(summary.text(tag, text), step, tag, "text")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


class RunLog:
    """One run's event file, fed evaluation by evaluation in step order: nothing from the run's
    divergence step on (the status text says it diverged, once); histograms whose values are NaN,
    inf or too large to bin are skipped and counted; non-finite scalars are skipped."""

    def __init__(self, logdir: Path, describe: Callable[[str], str] = describe):
        self.file = EventFile(logdir, describe)
        self.last_step: int | None = None
        self.last: dict[str, float] = {}
        self.diverged_at: int | None = None
        self.skipped = 0

    def evaluation(
        self,
        step: int,
        scalars: Mapping[str, Any],
        histograms: Mapping[str, np.ndarray],
        diverged_at: int | None = None,
    ) -> None:
        if self.diverged_at is not None:
            return
        if diverged_at is not None and step >= diverged_at:
            self.diverged_at = diverged_at
            text = f"diverged at step {diverged_at}: {DIVERGED_WHY}"
            self.file.add_text(STATUS_TAG, text, diverged_at)
            return
        self.last_step = step
        for tag, value in scalars.items():
            if _finite(value):
                self.file.add_scalar(tag, float(value), step)
                self.last[tag] = float(value)
        skipped = 0
        for tag, row in histograms.items():
            row = np.asarray(row, np.float64)
            # a row with a NaN or inf is from a diverged step; a histogram of it means nothing
            if not np.all(np.isfinite(row)):
                skipped += 1
                continue
            try:
                self.file.add_histogram(tag, row, step)
            except ValueError:
                # values so large that the bins overflow (an exploding network): no histogram
                skipped += 1
        if skipped:
            self.skipped += skipped
            self.file.add_text(
                SKIPPED_TAG,
                f"{self.skipped} histogram(s) not written: their values were NaN, inf or too "
                "large to bin (a diverged or exploding network)",
                step,
            )

    def finish(self, finals: Mapping[str, Any]) -> None:
        """The final numbers as one Markdown table at the last step written."""
        if self.last_step is None and self.diverged_at is None:
            return
        step = self.last_step if self.diverged_at is None else self.diverged_at
        self.file.add_text(FINAL_TAG, final_table(self, finals), step)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def final_table(log: RunLog, finals: Mapping[str, Any]) -> str:
    """The run's last evaluated curves and its final evaluations as a Markdown table."""
    rows = []
    if log.diverged_at is not None:
        rows.append(("status", f"diverged at step {log.diverged_at:,}: {DIVERGED_WHY}"))
    if log.last_step is not None:
        for tag, what in CURVE_NAMES.items():
            if tag in log.last:
                rows.append((f"{what}, step {log.last_step:,}", f"{log.last[tag]:.4f}"))

    def order(name: str) -> tuple:
        base, _, size = name.partition("/")
        known = list(FINAL_NAMES).index(base) if base in FINAL_NAMES else len(FINAL_NAMES)
        return known, -int(size) if size.isdigit() else 0, name

    for name in sorted(finals, key=order):
        if _finite(finals[name]):
            base, _, size = name.partition("/")
            what = FINAL_NAMES.get(base, name).format(size=size)
            rows.append((f"{what}, end of training", f"{float(finals[name]):.4f}"))
    return "\n".join(["| measurement | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def _check_histograms(histograms: dict[str, np.ndarray], n_steps: int) -> None:
    for tag, values in histograms.items():
        if values.ndim != 2 or values.shape[0] != n_steps:
            raise ValueError(
                f"histogram {tag!r}: expected shape ({n_steps}, n_values), one row per step, "
                f"got {values.shape}"
            )


def write_run(
    logdir: Path,
    run: dict[str, Any],
    histograms: dict[str, np.ndarray],
    scalars: dict[str, list[Any]] | None = None,
    finals: dict[str, float] | None = None,
) -> Path:
    """Write a finished ``run`` (one entry of metrics.json["runs"]: its steps, curves and
    percentiles) and ``histograms`` (tag -> array of shape (len(run["steps"]), n_values)) in the
    layout of the live logs, into ``logdir`` at once (a temporary directory renamed into place,
    replacing what was there). ``scalars`` (tag -> values aligned with the steps, None for none)
    adds further curves; ``finals`` (name -> number) go into the final table."""
    logdir = Path(logdir)
    steps = [int(s) for s in run["steps"]]
    histograms = {tag: np.asarray(v) for tag, v in histograms.items()}
    _check_histograms(histograms, len(steps))
    curves = {tag: run.get(key) or [] for key, tag in CURVE_TAGS.items()}
    for q, values in (run.get("percentiles") or {}).items():
        curves[PERCENTILE_TAG.format(q=q)] = values
    curves |= scalars or {}
    logdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=logdir.parent, prefix=f".{logdir.name}.", suffix=".tmp"))
    try:
        log = RunLog(tmp, partial(describe, unit=run.get("percentile_unit")))
        try:
            diverged = run.get("diverged_at")
            for i, step in enumerate(steps):
                values = {tag: v[i] for tag, v in curves.items() if i < len(v)}
                hists = {t: h[i] for t, h in histograms.items()}
                log.evaluation(step, values, hists, None if diverged is None else int(diverged))
            log.finish(finals or {})
        finally:
            log.close()
        if logdir.exists():
            shutil.rmtree(logdir)
        tmp.rename(logdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return logdir
