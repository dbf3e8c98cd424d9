"""TensorBoard logs written while the runs train: one event file per run, opened before training,
one evaluation's events added (with their real wall time) and flushed as the engine hands them
over, so that ``tensorboard --logdir`` shows the curves growing.

>>> with LiveBoard(out / "tensorboard", [["baseline-seed0"], ["bn-seed0"]], percentiles=(50,)) as b:
...     results, timing = train_groups(groups, train, mnist, on_record=b.record)
...     b.finish([r.finals for r in results])

The board reads the engine's evaluation records by their fields (``evaluation.test_accuracy``,
``train_loss``, ``diverged_at``, ...; each leaf with a leading run axis) without importing the
engine, which lies beside this layer. A resumed run opens its board afresh (each run's old
directory removed) and is handed its restored evaluations again before training goes on, so its
logs hold every evaluation exactly once.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bnlab.outputs.tensorboard import CURVE_TAGS, PERCENTILE_TAG, RunLog, describe

# measure name -> (tag template with {key}, description template with {key} and {unit}): a
# measure whose leaves hold one value per last-layer unit, shown at the run's typical unit
UnitMeasures = Mapping[str, tuple[str, str]]


def _leaves(prefix: str, tree: Any) -> Iterator[tuple[str, Any]]:
    """A measure's pytree of nested dicts as (``prefix/key/...``, leaf) pairs."""
    if isinstance(tree, dict):
        for key, sub in tree.items():
            yield from _leaves(f"{prefix}/{key}", sub)
    else:
        yield prefix, tree


class LiveBoard:
    """The event files of one phase's runs: ``names[g][j]`` is run ``j`` of group ``g`` (a
    record's runs beyond those are padding and ignored). ``percentiles``: the q of each column of
    a record's percentiles; ``examples``: test images per histogram (for the descriptions)."""

    def __init__(
        self,
        root: Path,
        names: Sequence[Sequence[str]],
        *,
        percentiles: Sequence[int],
        examples: int | None = None,
        unit_measures: UnitMeasures | None = None,
    ):
        self._percentiles = tuple(percentiles)
        self._examples = examples
        self._unit_measures = dict(unit_measures or {})
        # tag -> (key, description template) of the unit measures' tags
        self._unit_tags: dict[str, tuple[str, str]] = {}
        self._units: list[list[int | None]] = [[None] * len(group) for group in names]
        self._root, self._names = Path(root), names
        self._logs: list[list[RunLog]] = []

    def _open(self) -> None:
        """Replace each run's directory with a fresh event file, at the first evaluation: a
        resume refused before it (a damaged checkpoint) leaves the old logs untouched."""
        try:
            for g, group in enumerate(self._names):
                row = []
                for j, name in enumerate(group):
                    logdir = self._root / name
                    if logdir.exists():
                        shutil.rmtree(logdir)
                    logdir.mkdir(parents=True)
                    row.append(RunLog(logdir, partial(self._describe, g, j)))
                self._logs.append(row)
        except BaseException:
            self.close()
            raise

    def _describe(self, g: int, j: int, tag: str) -> str:
        if tag in self._unit_tags:
            key, why = self._unit_tags[tag]
            return why.format(key=key, unit=self._units[g][j])
        return describe(tag, self._units[g][j], self._examples)

    def _measures(self, measures: Mapping[str, Any], j: int, unit: int) -> dict[str, Any]:
        """Run ``j``'s scalar measure leaves, and the unit measures at its typical unit."""
        out = {}
        for name, tree in measures.items():
            if name in self._unit_measures:
                template, why = self._unit_measures[name]
                for key, leaf in tree.items():
                    tag = template.format(key=key)
                    self._unit_tags[tag] = (key, why)
                    out[tag] = np.asarray(leaf)[j, unit]
                continue
            for tag, leaf in _leaves(name, tree):
                value = np.asarray(leaf)[j]
                if value.ndim == 0:
                    out[tag] = value
        return out

    def record(self, step: int, records: Sequence[Any], units: Sequence[Any]) -> None:
        """Write one evaluation of every run (``records[g]``: group g's record; ``units[g]``: its
        runs' typical units) and flush each file."""
        if not self._logs:
            self._open()
        for g, (logs, rec) in enumerate(zip(self._logs, records, strict=True)):
            e = rec.evaluation
            for j, log in enumerate(logs):
                if self._units[g][j] is None:
                    self._units[g][j] = int(units[g][j])
                curves = {
                    "test_accuracy": e.test_accuracy[j],
                    "test_loss": e.test_loss[j],
                    "train_loss": rec.train_loss[j],
                }
                scalars = {CURVE_TAGS[k]: v for k, v in curves.items()}
                for i, q in enumerate(self._percentiles):
                    scalars[PERCENTILE_TAG.format(q=q)] = e.percentiles[j, i]
                scalars |= self._measures(e.measures, j, self._units[g][j])
                histograms = {tag: values[j] for tag, values in e.histograms.items()}
                diverged = int(rec.diverged_at[j])
                log.evaluation(step, scalars, histograms, diverged if diverged >= 0 else None)
                log.flush()

    def finish(self, finals: Sequence[Mapping[str, Any]]) -> None:
        """Each run's final numbers (``finals``: one mapping per run, group by group) as a table,
        then close every file."""
        if not self._logs:
            self._open()
        runs = [log for logs in self._logs for log in logs]
        if len(finals) != len(runs):
            raise ValueError(f"finals: expected one per run ({len(runs)}), got {len(finals)}")
        for log, final in zip(runs, finals, strict=True):
            log.finish(final)
            log.flush()
        self.close()

    def close(self) -> None:
        for logs in self._logs:
            for log in logs:
                log.close()
        self._logs = [[] for _ in self._logs]

    def __enter__(self) -> LiveBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
