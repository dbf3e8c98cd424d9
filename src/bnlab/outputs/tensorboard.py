"""TensorBoard event files: one per run, every tag described, written evaluation by evaluation.

The layout a user looks for first: the curves (``accuracy/test``, ``accuracy/train``,
``loss/test``, ``loss/train``), then the typical unit's input percentiles
(``typical_unit_input/p{q}``), per-layer histograms, and as text the run's status and its final
numbers (a Markdown table: one-point scalar cards say nothing). Each tag's first event carries its
description (:mod:`bnlab.outputs.tags`). :class:`RunLog` writes one run's evaluations in step
order, nothing after its divergence step; :mod:`bnlab.outputs.live_board` feeds it as training
runs. Scalars and histograms are tensors, as ``tf.summary`` (and so Keras) writes them:
TensorBoard's fast loader shows a description only there, not on tensorboardX's
``simple_value`` and ``histo`` events.

Events are written in the caller's thread (:class:`EventFile`), not by tensorboardX's
SummaryWriter, whose writer thread dies silently on a full disk and then blocks the caller
forever: here the OSError reaches the caller at once. A flush hands the events to the operating
system (what a reader needs), without tensorboardX's fsync (5 ms a file, each evaluation);
records are checksummed with the C ``crc32c`` (tensorboardX's pure-Python one took ~60% of the
logging time).
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from crc32c import crc32c
from tensorboardX import summary
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.proto.tensor_pb2 import TensorProto
from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto

from bnlab.outputs.series import DIVERGED_WHY
from bnlab.outputs.tags import (
    CURVE_NAMES,
    FINAL_NAMES,
    FINAL_TAG,
    SKIPPED_TAG,
    STATUS_TAG,
    describe,
)

# TensorFlow's DataType numbers
DT_FLOAT, DT_DOUBLE = 1, 2
# Values beyond +-1e20 (TensorFlow's outermost bucket limit) are too large to bin.
BIN_LIMIT = 1e20


class Binned(Protocol):
    """One binned histogram (bnlab.engine.histograms.Histogram on the host): ``counts`` of
    equal-width buckets from ``min`` to ``max``."""

    min: Any
    max: Any
    counts: Any


def binnable(h: Binned) -> bool:
    """Finite, and within the range TensorBoard's buckets can hold (a run that diverged or
    exploded has neither)."""
    ends = np.array([h.min, h.max], np.float64)
    return bool(np.all(np.isfinite(ends)) and np.max(np.abs(ends)) <= BIN_LIMIT)


def buckets(h: Binned) -> np.ndarray:
    """(left edge, right edge, count) of each bucket, TensorBoard's histogram tensor; one bucket
    of zero width when every value is the same."""
    low, high = float(h.min), float(h.max)
    counts = np.asarray(h.counts, np.float64)
    if high == low:
        return np.array([[low, high, counts.sum()]])
    edges = np.linspace(low, high, counts.size + 1)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def _tensor(values: np.ndarray, dtype: int) -> TensorProto:
    shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=n) for n in values.shape])
    if dtype == DT_FLOAT:
        return TensorProto(dtype=dtype, tensor_shape=shape, float_val=values.ravel().tolist())
    return TensorProto(dtype=dtype, tensor_shape=shape, double_val=values.ravel().tolist())


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's checksum: CRC-32C, rotated and offset ("masked")."""
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


class _RecordFile:
    """An event file in TFRecord framing: length, its checksum, the event, its checksum."""

    def __init__(self, logdir: Path):
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._file = open(Path(logdir) / name, "wb")
        self.write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, event: Event) -> None:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        self._file.write(header + _masked_crc(header) + data + _masked_crc(data))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class EventFile:
    """One TensorBoard event file in ``logdir``, written synchronously; the first event of each
    tag carries ``describe(tag)`` as its description."""

    def __init__(self, logdir: Path, describe: Callable[[str], str] = describe):
        self._writer = _RecordFile(logdir)
        self._describe = describe
        self._described: set[str] = set()

    def _add(self, proto: Any, step: int, tag: str, plugin: str) -> None:
        if tag not in self._described:
            value = proto.value[0]
            value.metadata.summary_description = self._describe(tag)
            if not value.metadata.plugin_data.plugin_name:
                value.metadata.plugin_data.plugin_name = plugin
            self._described.add(tag)
        self._writer.write(Event(wall_time=time.time(), step=step, summary=proto))

    def _add_tensor(self, tag: str, tensor: TensorProto, step: int, plugin: str) -> None:
        self._add(Summary(value=[Summary.Value(tag=tag, tensor=tensor)]), step, tag, plugin)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._add_tensor(tag, _tensor(np.float32(value), DT_FLOAT), step, "scalars")

    def add_histogram(self, tag: str, h: Binned, step: int) -> None:
        if not binnable(h):
            raise ValueError(f"histogram {tag!r}: values NaN, inf or beyond +-{BIN_LIMIT:g}")
        self._add_tensor(tag, _tensor(buckets(h), DT_DOUBLE), step, "histograms")

    def add_text(self, tag: str, text: str, step: int) -> None:
        self._add(summary.text(tag, text), step, tag, "text")

    def add_summary(self, proto: Any, step: int) -> None:
        """A summary as it is (a plugin's own, e.g. HParams'), without a description."""
        self._writer.write(Event(wall_time=time.time(), step=step, summary=proto))

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
        histograms: Mapping[str, Binned],
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
        for tag, h in histograms.items():
            # NaN or inf values (a diverged step), or too large to bin (an exploding network)
            if binnable(h):
                self.file.add_histogram(tag, h, step)
            else:
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
