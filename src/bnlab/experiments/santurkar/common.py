"""What Santurkar et al.'s analyses share: their config (a preset, `paper` unless the analysis says
otherwise, with overrides, and the
analysis's own settings), one phase of groups with the analysis's measures, metrics entries with
the measures under their names, and the report's layout. Each analysis (one file beside this one)
says its networks, measures, figures, results table and verdicts.

Every analysis starts from the `paper` preset (Section 4.1 of Ioffe & Szegedy: 784-100-100-100-10
sigmoids, binary input, N(0, 0.01^2) weights, no bias before BN, plain SGD lr 0.5, batch 60):
plain SGD makes the optimiser step of Definition 2.1 exact and the landscape's step sizes
multiples of the one learning rate, and in this setup BN visibly helps (papers.md). The default
length is shorter than the paper's 50,000 steps so that each analysis runs in under 3 minutes on
2 cores; every field can be overridden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bnlab.engine import Measure, RunGroup, RunResult
from bnlab.errors import ConfigError
from bnlab.experiments.config import ExperimentConfig, brief_repr
from bnlab.experiments.experiment import Experiment, Phase, curves_entry
from bnlab.experiments.fields import setup_rows
from bnlab.experiments.network import Network
from bnlab.experiments.presets import PAPER
from bnlab.experiments.santurkar import figures as F
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.report import diverged_section, show_value, timing_section
from bnlab.outputs.verdicts import Verdict, claims_section

# below this final test accuracy a network is called "far from trained" in the report
UNTRAINED = 0.9
ACCURACY_FIGURE = "accuracy"


@dataclass(frozen=True)
class AnalysisConfig:
    """An analysis's config: the `paper` preset with overrides (``base``), and the analysis's own
    settings (a frozen dataclass validating itself, or None)."""

    base: ExperimentConfig
    settings: Any = None

    def __post_init__(self) -> None:
        # settings that depend on the base config (lr-sweep: lr x each multiplier) check it here
        check = getattr(self.settings, "check_base", None)
        if check is not None:
            check(self.base)

    def replace(self, **overrides: Any) -> AnalysisConfig:
        """A copy with fields of ``base`` overridden (None values ignored)."""
        return dataclasses.replace(self, base=self.base.replace(**overrides))


@dataclass(frozen=True)
class _NoSettings:
    """The settings of an analysis without any."""


def settings_dict(settings: Any) -> dict[str, Any]:
    if settings is None:
        return {}
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()
    }


class Analysis(Experiment):
    """One of Santurkar et al.'s analyses (or Ioffe & Szegedy's learning-rate claim)."""

    # the preset it starts from, and its default size over it
    preset: ClassVar[ExperimentConfig] = PAPER
    defaults: ClassVar[dict[str, Any]] = {"steps": 4000, "eval_every": 250, "seeds": 2}
    # the analysis's own settings (a frozen dataclass with defaults), None without any
    settings_type: ClassVar[type | None] = None
    # its own CLI options: name -> (type, help); settings_from_options turns them into settings
    options: ClassVar[dict[str, tuple[Any, str]]] = {}
    # what its figure shows and how it was measured (the report's words under the figures)
    figure_note: ClassVar[str] = ""
    # how the verdicts' thresholds are set (the report's words under the claims)
    thresholds: ClassVar[str] = ""
    # the one-line help of its CLI command
    summary_line: ClassVar[str] = ""

    # --- configuration -----------------------------------------------------------------------
    def default_config(self, **overrides: Any) -> AnalysisConfig:
        """The analysis at its default size, ``overrides`` of the preset's fields applied."""
        base = self.preset.replace(**{**self.defaults, **overrides})
        return AnalysisConfig(base, self.settings_type() if self.settings_type else None)

    def settings_from_options(self, **options: Any) -> Any:
        """The settings from its CLI options (None: not given, the default)."""
        return self.settings_type() if self.settings_type else None

    def config_to_dict(self, config: AnalysisConfig) -> dict[str, Any]:
        return {
            "analysis": self.name,
            "networks": [n.variant for n in self.networks(config)],
            "base": config.base.to_dict(),
            "settings": settings_dict(config.settings),
        }

    def config_from_dict(self, data: dict[str, Any], run_dir: Path | None = None):
        """The config of ``data`` (config.json's); every problem is a ConfigError naming the
        field (``settings.target``...)."""
        if not isinstance(data, dict) or "base" not in data:
            raise ConfigError(
                f"config: expected a table with base and settings, got {brief_repr(data)}"
            )
        base = ExperimentConfig.from_dict(data["base"])
        saved = data.get("settings")
        saved = {} if saved is None else saved
        if not isinstance(saved, dict):
            raise ConfigError(f"settings: expected a table of settings, got {brief_repr(saved)}")
        known = [f.name for f in dataclasses.fields(self.settings_type or _NoSettings)]
        unknown = sorted(str(k) for k in saved if k not in known)
        if unknown:
            expected = f"one of {', '.join(known)}" if known else "none"
            raise ConfigError(
                f"settings: unknown field {brief_repr(unknown[0])} of {self.name}; "
                f"expected {expected}"
            )
        if self.settings_type is None:
            return AnalysisConfig(base)
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
        return AnalysisConfig(base, self.settings_type(**values))

    # --- what it trains and records -------------------------------------------------------------
    def measures(self, config: AnalysisConfig) -> dict[str, Measure]:
        return {}

    def model_spec(self, config: AnalysisConfig, network: Network):
        return network.model_spec(config.base)

    def groups(self, config: AnalysisConfig, networks: list[Network]) -> tuple[RunGroup, ...]:
        seeds, measures = config.base.seed_list(), self.measures(config)
        return tuple(
            RunGroup(n, self.model_spec(config, n), seeds, measures, final_evaluation=False)
            for n in networks
        )

    def phases(self, config: AnalysisConfig) -> list[Phase]:
        base = config.base
        return [Phase(base.train_spec(), self.groups(config, self.networks(config)), base.data_dir)]

    def entry(self, config: AnalysisConfig, result: RunResult) -> dict[str, Any]:
        multiplier = result.network.lr_multiplier or 1.0
        return {
            **curves_entry(result),
            "lr": config.base.lr * multiplier,
            "lr_multiplier": multiplier,
            **result.measures,
        }

    def metrics_header(self, config: AnalysisConfig) -> dict[str, Any]:
        return {"analysis": self.name}

    # --- what it shows -----------------------------------------------------------------------
    def figures(self, config: AnalysisConfig, metrics: dict[str, Any], out_dir: Path):
        return F.plot_accuracy(metrics, self.labels(config), out_dir)

    def setup_extra(self, config: AnalysisConfig) -> list[list[str]]:
        """Rows of its own settings for the setup table."""
        return [
            [k.replace("_", " "), show_value(v)] for k, v in settings_dict(config.settings).items()
        ]

    def describe(self, config: AnalysisConfig, network: Network) -> str:
        """One line on what ``network`` is, for the setup's table of networks."""
        return describe_network(config.base, network)

    def results_section(self, config: AnalysisConfig, metrics: dict[str, Any]) -> str:
        """Its own numbers (a table), before the accuracy table."""
        return ""

    def report(self, config: AnalysisConfig, metrics: dict, timing: dict[str, Any]) -> str:
        labels = self.labels(config)
        found = self.verdicts(config, metrics)
        links = [f"![{stem}]({stem}.png)" for stem in self.figure_stems]
        accuracy = (
            "Test accuracy, mean ± sample std (ddof=1) over seeds, at evaluation steps through "
            "training:\n\n" + T.accuracy_table(metrics, labels)
        )
        own = self.results_section(config, metrics)
        parts = [
            f"# bnlab analyze {self.name}: {self.title}",
            "## Setup",
            self._setup(config),
            "## Figures",
            *links,
            *([self.figure_note] if self.figure_note else []),
            "## Results",
            (own + "\n\n" if own else "") + accuracy,
            "## The papers' claims beside this run",
            claims_section(found, self.thresholds),
            "## What we measured",
            measured_paragraph(config, metrics, labels, found),
            "## Diverged runs",
            diverged_section(metrics, labels),
            timing_section(timing),
        ]
        if "total_s" in timing:
            parts.append(
                f"This analysis took {timing['total_s']:.0f} s from start to report (interpreter "
                "start-up not included); bnlab's goal for each analysis at its default size is "
                "under 3 minutes on a 2-core machine."
            )
        return "\n\n".join(parts) + "\n"

    def _setup(self, config: AnalysisConfig) -> str:
        rows = [*setup_rows(config.base.to_dict()), *self.setup_extra(config)]
        networks = T.md_table(
            ["network", "label", "what it is"],
            [[n.variant, n.label, self.describe(config, n)] for n in self.networks(config)],
        )
        return (
            T.md_table(["setting", "value"], rows)
            + "\n\nThe full resolved configuration is in `config.json`.\n\n"
            + networks
        )


def network_words(base: ExperimentConfig) -> str:
    """The config's network in a few words: "100-100-100 sigmoid MLP", or its convolutions."""
    dense = "-".join(map(str, base.hidden))
    if base.conv:
        return f"{base.activation} convnet ({', '.join(base.conv)}, then Dense {dense})"
    return f"{dense} {base.activation} MLP"


def describe_network(base: ExperimentConfig, network: Network) -> str:
    """What a network of the config ``base`` is, from its record."""
    what = {
        "none": f"the {base.preset} preset's {network_words(base)} without normalization",
        "bn": "the same with BN (no bias in front of BN)",
        "lp1": "BN's place taken by l1 normalization: (x - mean) / mean|x - mean|",
        "lp2": "l2 normalization: (x - mean) / sqrt(mean (x - mean)^2) (BN's normalization)",
        "lpinf": "l∞ normalization: (x - mean) / max|x - mean|",
    }[network.norm]
    if network.placement is not None:
        what += f", placed {network.placement} each {base.activation}"
    if network.noise:
        where = "after it" if network.normalized else f"in front of each {base.activation}"
        what += (
            f"; in training each value a <- s a + m with noise drawn per layer and step, {where}"
        )
    if network.lr_multiplier is not None:
        what += f"; learning rate x{network.lr_multiplier:g}"
    return what


def measured_paragraph(
    config: AnalysisConfig, metrics: dict[str, Any], labels: S.Labels, found: list[Verdict]
) -> str:
    seeds = len({r["seed"] for r in metrics["runs"]})
    steps = max(max(r["steps"], default=0) for r in metrics["runs"])
    lead = (
        f"We trained {seeds} seed(s) of each network for {steps:,} steps of the "
        f"`{config.base.preset}` preset (a {network_words(config.base)} on MNIST, not the "
        "papers' VGG/CIFAR-10 or "
        "Inception/ImageNet, and fewer steps than the paper's 50,000), so agreement here is about "
        "the direction of each effect."
    )
    body = " ".join(v.sentence() for v in found)
    slow = {v: S.final_accuracy(metrics, v) for v in labels}
    slow = {v: a for v, a in slow.items() if a < UNTRAINED}
    if slow:
        which = ", ".join(f"{labels[v]} ({a:.4f})" for v, a in slow.items())
        body += (
            f" Caveat: at the end some networks are still far from trained (final test accuracy "
            f"below {UNTRAINED}): {which}. With the paper preset's tiny initial weights a sigmoid "
            "network without normalization spends its first thousands of steps on a plateau "
            "where gradients are small and the loss changes little, so measures of it there "
            "describe that slow phase rather than a trained network."
        )
    return f"{lead} {body}"


def fmt_values(values: dict[str, float], labels: S.Labels, fmt: str = ".4f") -> str:
    return ", ".join(f"{labels[v]} {format(x, fmt)}" for v, x in values.items())
