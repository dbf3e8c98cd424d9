"""An experiment's TensorBoard logs (``<run dir>/tensorboard``): one live board per phase, one
event file per run named by the experiment, each run's learning rate, and the HParams sessions
(every run's network, seed and what else the experiment varies) under one HParams experiment,
for all phases at once, written with the first phase's logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bnlab.engine import PERCENTILES, RunGroup
from bnlab.experiments.experiment import Experiment, Phase
from bnlab.outputs.live_board import BoardRun, LiveBoard
from bnlab.outputs.tags import LEARNING_RATE_TAG


def _runs(experiment: Experiment, config: Any, phase: Phase, group: RunGroup) -> Iterator[BoardRun]:
    """The board's view of each run of ``group``."""
    tags = group.tags or (None,) * len(group.seeds)
    lr = (group.optimizer or phase.train.optimizer).lr
    for j, (seed, tag) in enumerate(zip(group.seeds, tags, strict=True)):
        hparams = experiment.run_hparams(config, group.network, seed, tag)
        yield BoardRun(
            experiment.run_name(group.network, seed, tag),
            {LEARNING_RATE_TAG: group.hyper["lr"][j] if "lr" in group.hyper else lr},
            hparams,
            # the runs the dashboard averages together: all but the seed alike
            ", ".join(f"{k}={v}" for k, v in hparams.items() if k != "seed"),
        )


def phase_board(
    experiment: Experiment, config: Any, root: Path, phases: list[Phase], k: int
) -> LiveBoard:
    """Phase ``k``'s live logs, one directory per run (a resumed run's written again); the first
    phase's also writes the HParams experiment of every run of every phase."""
    sessions = None
    if k == 0:
        sessions = [
            run.hparams
            for phase in phases
            for group in phase.groups
            for run in _runs(experiment, config, phase, group)
        ]
    phase = phases[k]
    return LiveBoard(
        root,
        [list(_runs(experiment, config, phase, g)) for g in phase.groups],
        percentiles=PERCENTILES,
        examples=phase.train.hist_examples,
        unit_measures=experiment.unit_measures(config),
        experiment=sessions,
    )
