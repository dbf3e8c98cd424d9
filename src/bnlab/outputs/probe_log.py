"""Figure 1 for a user's own network: the framework-free half of ``bnlab.keras.Figure1Callback``
and ``bnlab.torch.Figure1Recorder``.

A framework hands :meth:`ProbeLog.record` the values at each probe step: for each tapped layer, its
input over a fixed probe set (examples x units, or examples x ... x channels for a convolution's
output), its output if it has one, and the accuracy on validation data if the user gave some.
ProbeLog keeps, per tap, the {15, 50, 85}th percentiles of one typical unit's input, as bnlab's
engine does for Figure 1(b, c): the unit is chosen at the first record (before training) by the
engine's rule, the unit whose median input is the middle one of the layer's medians. It writes
them and the whole layer's input and output as histograms to TensorBoard, keeps the curves in
metrics.json's shape, and draws them with bnlab's Figure 1 code (:func:`figure1`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnlab.errors import ConfigError
from bnlab.files import atomic_write_json
from bnlab.outputs.figures import build_figure1, save_figure
from bnlab.outputs.series import PCTS
from bnlab.outputs.tensorboard import EventFile

BINS = 64
ACCURACY_TAG = "accuracy/validation"


@dataclass(frozen=True)
class HostHistogram:
    """A histogram binned on the host (what ``EventFile.add_histogram`` takes)."""

    min: float
    max: float
    counts: np.ndarray


def host_histogram(values: np.ndarray) -> HostHistogram:
    """``values`` in BINS equal-width buckets over their range, as ``numpy.histogram`` counts."""
    v = np.ravel(values)
    low, high = (float(v.min()), float(v.max())) if v.size else (math.nan, math.nan)
    if not (math.isfinite(low) and math.isfinite(high)):
        # NaN or inf: the TensorBoard writer skips a histogram whose ends are not finite
        return HostHistogram(math.nan, math.nan, np.zeros(BINS))
    counts, _ = np.histogram(v, BINS, (low, high) if high > low else (low, low + 1.0))
    return HostHistogram(low, high, counts.astype(np.float64))


def by_unit(values: np.ndarray, tap: str) -> np.ndarray:
    """(values, units): every axis but the last is an example (a convolution's positions count as
    examples of its channel, the paper's m' = m·p·q)."""
    values = np.asarray(values)
    if values.ndim < 2:
        raise ConfigError(
            f"layer {tap!r}: expected its input to have a batch axis and a units axis, "
            f"got shape {values.shape}"
        )
    return values.reshape(-1, values.shape[-1])


def typical_unit(values: np.ndarray) -> int:
    """The unit whose median is the middle one of the units' medians (the lower middle for an
    even count): bnlab.engine.evaluate.choose_unit's rule, neither saturated nor an outlier."""
    medians = np.median(values, axis=0)
    return int(np.argsort(medians, kind="stable")[(medians.shape[0] - 1) // 2])


def _finite_or_none(value: Any) -> float | None:
    """metrics.json's convention: a value that is not finite (a diverged run) is null."""
    return float(value) if math.isfinite(float(value)) else None


@dataclass
class TapCurves:
    """One tapped layer: its typical unit and that unit's input percentiles per record."""

    unit: int
    percentiles: dict[str, list[float | None]] = field(
        default_factory=lambda: {q: [] for q in PCTS}
    )


class ProbeLog:
    """The probe records of one network (``name``), written to ``log_dir`` when given."""

    def __init__(self, name: str, log_dir: str | Path | None = None) -> None:
        self.name = name
        self.steps: list[int] = []
        self.accuracy: list[float | None] = []
        self.taps: dict[str, TapCurves] = {}
        self.log_dir = None if log_dir is None else Path(log_dir)
        self._events: EventFile | None = None

    def _event_file(self) -> EventFile | None:
        if self.log_dir is not None and self._events is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._events = EventFile(self.log_dir, self.describe)
        return self._events

    def describe(self, tag: str) -> str:
        if tag == ACCURACY_TAG:
            return "Accuracy on the validation data, the model in inference mode."
        layer, _, what = tag.rpartition("/")
        if what == "input":
            return f"Every value of the input of layer {layer} over the probe set."
        if what == "output":
            return f"Every value of the output of layer {layer} over the probe set."
        unit = self.taps[layer].unit if layer in self.taps else "?"
        return (
            f"The {what[1:]}th percentile of the input of layer {layer}, unit {unit} (its "
            "typical unit: the median input at the first record is the middle one of the "
            "layer's), over the probe set: Figure 1(b, c) of Ioffe & Szegedy (2015)."
        )

    def record(
        self,
        step: int,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray] | None = None,
        accuracy: float | None = None,
    ) -> None:
        """One probe step: each tapped layer's input (and output) over the probe set."""
        if self.steps and step <= self.steps[-1]:
            raise ConfigError(f"step: expected a step after {self.steps[-1]}, got {step}")
        if self.steps and set(inputs) != set(self.taps):
            raise ConfigError(
                f"inputs: expected the layers {sorted(self.taps)}, got {sorted(inputs)}"
            )
        events = self._event_file()
        for tap, values in inputs.items():
            units = by_unit(values, tap)
            if tap not in self.taps:
                self.taps[tap] = TapCurves(typical_unit(units))
            curves = self.taps[tap]
            qs = np.percentile(units[:, curves.unit], [float(q) for q in PCTS])
            for q, value in zip(PCTS, qs, strict=True):
                curves.percentiles[q].append(_finite_or_none(value))
                if events is not None and math.isfinite(value):
                    events.add_scalar(f"{tap}/p{q}", float(value), step)
            if events is not None:
                self._add_histogram(events, f"{tap}/input", units, step)
        for tap, values in (outputs or {}).items():
            if events is not None:
                self._add_histogram(events, f"{tap}/output", values, step)
        if accuracy is not None:
            self.accuracy.append(_finite_or_none(accuracy))
            if events is not None:
                events.add_scalar(ACCURACY_TAG, float(accuracy), step)
        self.steps.append(int(step))
        if events is not None:
            events.flush()

    @staticmethod
    def _add_histogram(events: EventFile, tag: str, values: np.ndarray, step: int) -> None:
        h = host_histogram(values)
        if np.isfinite(h.min):
            events.add_histogram(tag, h, step)

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def runs(self) -> list[dict[str, Any]]:
        """This network as metrics.json runs: one with its accuracy curve (when recorded), one
        per tapped layer with its percentiles (variant ``"{name}: {layer}"``)."""
        runs = []
        if self.accuracy:
            runs.append(
                {
                    "variant": self.name,
                    "seed": 0,
                    "steps": list(self.steps),
                    "test_accuracy": list(self.accuracy),
                }
            )
        for tap, curves in self.taps.items():
            runs.append(
                {
                    "variant": f"{self.name}: {tap}",
                    "seed": 0,
                    "steps": list(self.steps),
                    "percentiles": curves.percentiles,
                    "percentile_unit": curves.unit,
                    "percentile_input": f"input to {tap}",
                }
            )
        return runs


def figure1(
    logs: Sequence[ProbeLog], out_dir: str | Path, stem: str = "figure1", *, last_only: bool = True
) -> list[Path]:
    """Figure 1 for the networks of ``logs``: (a) their validation accuracy (those that recorded
    one), then a percentile panel per network for its last tapped layer (``last_only``, Figure
    1(b, c)'s last hidden layer) or for every tapped layer. Writes ``stem``.png/.svg and the
    curves as ``stem``.json into ``out_dir``; returns the paths."""
    names = [log.name for log in logs]
    if not logs or len(set(names)) != len(names):
        raise ConfigError(f"logs: expected networks with distinct names, got {names}")
    if not any(log.steps for log in logs):
        raise ConfigError("logs: expected at least one record, got none (was the model trained?)")
    runs = [run for log in logs for run in log.runs()]
    accuracy = {log.name: log.name for log in logs if log.accuracy}
    percentiles = {}
    for log in logs:
        taps = list(log.taps)[-1:] if last_only else list(log.taps)
        percentiles |= {f"{log.name}: {t}": f"{log.name}: {t}" for t in taps}
    metrics = {"runs": runs}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = save_figure(lambda: build_figure1(metrics, accuracy, percentiles), out_dir, stem)
    atomic_write_json(out_dir / f"{stem}.json", metrics)
    return [*paths, out_dir / f"{stem}.json"]
