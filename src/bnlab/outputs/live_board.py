"""TensorBoard logs written while the runs train: one event file per run, opened before training,
one evaluation's events added (with their real wall time) and flushed as the engine hands them
over, so that ``tensorboard --logdir`` shows the curves growing.

>>> with LiveBoard(out / "tensorboard", [["baseline-seed0"], [BoardRun("bn-seed0")]],
...                percentiles=(50,)) as b:
...     results, timing = train_groups(groups, train, mnist, on_record=b.record)
...     b.finish([r.finals for r in results])

The board reads the engine's evaluation records by their fields (``evaluation.test_accuracy``,
``train_loss``, ``diverged_at``, ...; each leaf with a leading run axis) without importing the
engine, which lies beside this layer; histograms come binned
(:class:`bnlab.outputs.tensorboard.Binned`). A resumed run opens its board afresh (each run's old
directory removed) and is handed its restored evaluations again before training goes on, so its
logs hold every evaluation exactly once.

Every run with ``hparams`` is an HParams session (:mod:`bnlab.outputs.hparams`);
:func:`write_experiment` writes the experiment that lists them, once for all phases.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bnlab.outputs import hparams as H
from bnlab.outputs.tags import CURVE_TAGS, DESCRIPTIONS, PERCENTILE_TAG, describe
from bnlab.outputs.tensorboard import EventFile, RunLog

# the curves the HParams dashboard compares runs by (their last value)
HPARAMS_METRICS = tuple(CURVE_TAGS.values())


@dataclass(frozen=True)
class BoardRun:
    """One run's logs: its directory name, the scalars that stay constant over the run (written
    at every evaluation, e.g. the learning rate) and its HParams session (``hparams`` None: no
    session), averaged with the other runs of ``group``."""

    name: str
    constants: Mapping[str, float] = field(default_factory=dict)
    hparams: Mapping[str, H.HParamValue] | None = None
    group: str = ""


def write_experiment(root: Path, sessions: Sequence[Mapping[str, H.HParamValue]]) -> None:
    """The HParams experiment of ``sessions`` (every run's hyperparameters) in ``root``'s own
    event file, replacing an earlier one (a resumed run writes it again)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("events.out.tfevents.*"):
        old.unlink()
    file = EventFile(root)
    try:
        metrics = {tag: DESCRIPTIONS[tag] for tag in HPARAMS_METRICS}
        file.add_summary(H.experiment(sessions, metrics), 0)
        file.flush()
    finally:
        file.close()


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
    """The event files of one phase's runs: ``runs[g][j]`` is run ``j`` of group ``g`` (a run's
    name alone will do; a record's runs beyond those are padding and ignored). ``percentiles``:
    the q of each column of a record's percentiles; ``examples``: test images per activation
    histogram (for the descriptions)."""

    def __init__(
        self,
        root: Path,
        runs: Sequence[Sequence[BoardRun | str]],
        *,
        percentiles: Sequence[int],
        examples: int | None = None,
        unit_measures: UnitMeasures | None = None,
        experiment: Sequence[Mapping[str, H.HParamValue]] | None = None,
    ):
        self._percentiles = tuple(percentiles)
        self._examples = examples
        self._unit_measures = dict(unit_measures or {})
        # tag -> (key, description template) of the unit measures' tags
        self._unit_tags: dict[str, tuple[str, str]] = {}
        self._runs = [[r if isinstance(r, BoardRun) else BoardRun(r) for r in g] for g in runs]
        self._units: list[list[int | None]] = [[None] * len(group) for group in runs]
        self._root = Path(root)
        self._experiment = experiment
        self._logs: list[list[RunLog]] = []

    def _open(self) -> None:
        """Replace each run's directory with a fresh event file, at the first evaluation: a
        resume refused before it (a damaged checkpoint) leaves the old logs untouched. With
        ``experiment`` (every session of the run, all phases), its HParams experiment too."""
        try:
            if self._experiment is not None:
                write_experiment(self._root, self._experiment)
            for g, group in enumerate(self._runs):
                row = []
                for j, run in enumerate(group):
                    logdir = self._root / run.name
                    if logdir.exists():
                        shutil.rmtree(logdir)
                    logdir.mkdir(parents=True)
                    log = RunLog(logdir, partial(self._describe, g, j))
                    row.append(log)
                    if run.hparams is not None:
                        log.file.add_summary(H.session_start(run.hparams, run.group), 0)
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
                    "train_accuracy": e.train_accuracy[j],
                    "test_loss": e.test_loss[j],
                    "train_loss": rec.train_loss[j],
                }
                scalars = {CURVE_TAGS[k]: v for k, v in curves.items()}
                scalars |= self._runs[g][j].constants
                for i, q in enumerate(self._percentiles):
                    scalars[PERCENTILE_TAG.format(q=q)] = e.percentiles[j, i]
                scalars |= self._measures(e.measures, j, self._units[g][j])
                histograms = {
                    tag: jax.tree.map(lambda leaf, j=j: np.asarray(leaf)[j], h)
                    for tag, h in e.histograms.items()
                }
                diverged = int(rec.diverged_at[j])
                log.evaluation(step, scalars, histograms, diverged if diverged >= 0 else None)
                log.flush()

    def finish(self, finals: Sequence[Mapping[str, Any]]) -> None:
        """Each run's final numbers (``finals``: one mapping per run, group by group) as a table,
        then close every file."""
        if not self._logs:
            self._open()
        logs = [log for row in self._logs for log in row]
        runs = [run for row in self._runs for run in row]
        if len(finals) != len(logs):
            raise ValueError(f"finals: expected one per run ({len(logs)}), got {len(finals)}")
        for log, run, final in zip(logs, runs, finals, strict=True):
            log.finish(final)
            if run.hparams is not None:
                log.file.add_summary(H.session_end(log.diverged_at is not None), 0)
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
