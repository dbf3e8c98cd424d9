"""Figure 1 of Ioffe & Szegedy (2015) as an experiment: the config's networks (without and with
BN), trained side by side, measured every ``eval_every`` steps, and at the end the BN networks
evaluated with Algorithm 2's population statistics and with test-batch statistics.

>>> from bnlab.experiments import FIGURE1, preset, run_experiment
>>> run = run_experiment(FIGURE1, preset("paper").replace(seeds=3), "runs/paper-3seeds")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnlab.engine import RunGroup, RunResult, SummaryRow, summary_rows
from bnlab.experiments.config import ExperimentConfig
from bnlab.experiments.experiment import Experiment, Phase, curves_entry
from bnlab.experiments.figure1 import claims
from bnlab.experiments.figure1.report import FIGURE_STEM, render_report
from bnlab.experiments.network import VARIANTS, Network
from bnlab.outputs.figures import build_figure1, save_figure
from bnlab.outputs.verdicts import Verdict


def model_summaries(config: ExperimentConfig) -> dict[str, list[SummaryRow]]:
    """Keras's summary rows (name, output shape, weights, trainable weights) per network."""
    return {v: summary_rows(VARIANTS[v].model_spec(config)) for v in config.variants}


class Figure1(Experiment):
    name = "figure1"
    title = "Figure 1 of Ioffe & Szegedy (2015)"
    figure_stems = (FIGURE_STEM,)

    def config_to_dict(self, config: ExperimentConfig) -> dict[str, Any]:
        return config.to_dict()

    def config_from_dict(self, data: dict[str, Any], run_dir: Path | None = None):
        return ExperimentConfig.from_dict(data)

    def out_name(self, config: ExperimentConfig) -> str:
        return config.preset

    def networks(self, config: ExperimentConfig) -> list[Network]:
        return [VARIANTS[v] for v in config.variants]

    def phases(self, config: ExperimentConfig) -> list[Phase]:
        seeds = config.seed_list()
        groups = tuple(RunGroup(n, n.model_spec(config), seeds) for n in self.networks(config))
        return [Phase(config.train_spec(), groups, config.data_dir)]

    def entry(self, config: ExperimentConfig, result: RunResult) -> dict[str, Any]:
        entry = curves_entry(result)
        if config.conv:
            entry["percentile_input"] = f"{config.activation} input, last convolution's channel"
        if result.network.normalized:
            finals = result.finals
            entry["population_test_accuracy"] = finals.get("population_test_accuracy")
            entry["population_test_loss"] = finals.get("population_test_loss")
            entry["batch_stats_test_accuracy"] = {
                str(b): finals.get(f"batch_stats_test_accuracy/{b}") for b in (config.batch_size, 1)
            }
        return entry

    def metrics_header(self, config: ExperimentConfig) -> dict[str, Any]:
        return {"preset": config.preset}

    def figures(self, config: ExperimentConfig, metrics: dict[str, Any], out_dir: Path):
        labels = self.labels(config)
        return save_figure(lambda: build_figure1(metrics, labels), out_dir, FIGURE_STEM)

    def _roles(self, config: ExperimentConfig) -> tuple[str | None, str | None]:
        """The names of the network without BN and of the one with BN, when the config has them."""
        nets = self.networks(config)
        plain = next((n.variant for n in nets if not n.normalized), None)
        return plain, next((n.variant for n in nets if n.norm == "bn"), None)

    def verdicts(self, config: ExperimentConfig, metrics: dict[str, Any]) -> list[Verdict]:
        plain, with_bn = self._roles(config)
        return claims.verdicts(metrics, plain, with_bn, config.preset, config.to_dict())

    def report(self, config: ExperimentConfig, metrics: dict, timing: dict[str, Any]) -> str:
        labels = self.labels(config)
        return render_report(
            config.to_dict(), metrics, labels, self._roles(config), model_summaries(config), timing
        )


FIGURE1 = Figure1()
