"""The shape every experiment has: which runs it trains, what it measures and records, its figures,
its claims and its report. :func:`bnlab.experiments.run.run_experiment` owns the run directory
for all of them; an experiment only says what is its own.

Adding an experiment: a subclass in its own file, and one line in :mod:`bnlab.experiments.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from jax.sharding import Mesh

from bnlab.engine import RunGroup, RunResult, TrainSpec
from bnlab.experiments.network import Network
from bnlab.outputs import series as S
from bnlab.outputs.verdicts import Verdict


@dataclass(frozen=True)
class Phase:
    """Groups of runs trained together by one call of the engine, with one training spec."""

    train: TrainSpec
    groups: tuple[RunGroup, ...]
    # the data they train on (a directory of IDX files), None: the embedded MNIST
    data_dir: str | None = None


@dataclass(frozen=True)
class Summary:
    """One line of an overview: a network (or a sweep's cell) and its final test accuracy."""

    label: str
    runs: int
    steps: int
    final_accuracy: float
    diverged: int


def curves_entry(result: RunResult) -> dict[str, Any]:
    """What every experiment's metrics.json entry holds: the run's identity and its curves."""
    return {
        "variant": result.network.variant,
        "seed": result.seed,
        "steps": result.steps,
        **result.curves,
        "percentiles": result.percentiles,
        "diverged_at": result.diverged_at,
        "percentile_unit": result.percentile_unit,
    }


class Experiment(ABC):
    """One experiment; its ``config`` is whatever config object the experiment defines."""

    # registry key: config.json's "experiment", the CLI's name for it
    name: ClassVar[str]
    title: ClassVar[str]
    # figures it writes, each as <stem>.png and <stem>.svg
    figure_stems: ClassVar[tuple[str, ...]] = ()
    # its runs are sharded over every device (and host) instead of one device per group. In one
    # process its checkpoints hold every run and resume on as many devices as they were saved
    # with; under jax.distributed none are kept (hosts need not share a filesystem)
    shards_runs: ClassVar[bool] = False

    # --- configuration -----------------------------------------------------------------------
    @abstractmethod
    def config_to_dict(self, config: Any) -> dict[str, Any]:
        """The config as config.json holds it (JSON types only)."""

    @abstractmethod
    def config_from_dict(self, data: dict[str, Any], run_dir: Path | None = None) -> Any:
        """The config back from config.json (``run_dir``: where it was read, for extra files)."""

    def out_name(self, config: Any) -> str:
        """The stem of the default run directory, runs/<stem>-<time>."""
        return self.name

    def data_dirs(self, config: Any) -> list[str | None]:
        return sorted({p.data_dir for p in self.phases(config)}, key=str)

    # --- what it trains and records -------------------------------------------------------------
    @abstractmethod
    def networks(self, config: Any) -> list[Network]:
        """The networks it compares, in the order figures and tables show them."""

    def labels(self, config: Any) -> S.Labels:
        return {n.variant: n.label for n in self.networks(config)}

    @abstractmethod
    def phases(self, config: Any) -> list[Phase]:
        """What the engine trains, in order."""

    def phases_on(self, config: Any, mesh: Mesh | None) -> list[Phase]:
        """The phases as they train on ``mesh`` (None: one device per group); default: as
        :meth:`phases` says (a sweep picks its programs' training layout for the mesh)."""
        return self.phases(config)

    def entry(self, config: Any, result: RunResult) -> dict[str, Any]:
        """One run's entry of metrics.json["runs"]."""
        return curves_entry(result)

    def metrics_header(self, config: Any) -> dict[str, Any]:
        """What metrics.json holds before "runs"."""
        return {"experiment": self.name}

    def ordered(self, config: Any, pairs: list[tuple[dict, RunResult]]) -> list[tuple]:
        """The (entry, result) pairs in the order metrics.json lists them; default: as trained."""
        return pairs

    def run_name(self, network: Network, seed: int, tag: Any = None) -> str:
        """A run's TensorBoard directory name, known before it trains (``tag``: the run's
        RunGroup.tags entry, None without tags)."""
        return f"{network.variant}-seed{seed}"

    def run_hparams(
        self, config: Any, network: Network, seed: int, tag: Any = None
    ) -> dict[str, str | float | bool]:
        """A run's hyperparameters in TensorBoard's HParams dashboard (``tag`` as for
        :meth:`run_name`): its network and seed; an experiment adds what its runs differ in."""
        return {"network": network.label, "seed": seed}

    def unit_measures(self, config: Any) -> dict[str, tuple[str, str]]:
        """Measures that record one value per last-layer unit, which TensorBoard shows at the
        run's typical unit: measure name -> (tag template with {key}, description template with
        {key} and {unit}), one tag per key of the measure's dict. Default: none."""
        return {}

    # --- what it shows -----------------------------------------------------------------------
    @abstractmethod
    def figures(self, config: Any, metrics: dict[str, Any], out_dir: Path) -> list[Path]:
        """Write its figures (the ``figure_stems``, .png and .svg) into ``out_dir``."""

    @abstractmethod
    def verdicts(self, config: Any, metrics: dict[str, Any]) -> list[Verdict]:
        """Each claim it tests beside what this run measured."""

    @abstractmethod
    def report(self, config: Any, metrics: dict[str, Any], timing: dict[str, Any]) -> str:
        """report.md, from the config and the loaded metrics and timing (so that `bnlab report`
        renders a finished run directory exactly as the run did)."""

    def summary(self, config: Any, metrics: dict[str, Any]) -> list[Summary]:
        """Final test accuracy per network, for overviews and the CLI's closing table."""
        out = []
        for variant, label in self.labels(config).items():
            runs = S.runs_of(metrics, variant)
            steps = max((max(r["steps"], default=0) for r in runs), default=0)
            accuracy = S.final_accuracy(metrics, variant) if runs else float("nan")
            out.append(
                Summary(label, len(runs), steps, accuracy, len(S.diverged(metrics, variant)))
            )
        return out

    def timing_extra(self, config: Any, timing: dict[str, Any]) -> dict[str, Any]:
        """Further timing.json entries, from the phases' timing (e.g. a sweep's throughput)."""
        return {}
