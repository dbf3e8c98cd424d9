"""Santurkar et al. (2018), Sec. 2.1, Fig. 2: BN with noise injected after it. The noise makes the
layer's output distribution unstable on purpose; if BN worked by stabilising distributions, noisy
BN would train worse. Networks: standard, BN, noisy BN, and standard with the same noise."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bnlab.core.noise import NoiseConfig
from bnlab.errors import ConfigError
from bnlab.experiments.config import FLOAT32_MAX, brief_repr, is_number
from bnlab.experiments.network import WITH_BN, WITHOUT_BN, Network
from bnlab.experiments.santurkar import figures as F
from bnlab.experiments.santurkar.common import Analysis, AnalysisConfig, fmt_values
from bnlab.experiments.santurkar.measures import training_percentiles_measure
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.report import show_value
from bnlab.outputs.tags import UNIT_WHY
from bnlab.outputs.verdicts import Verdict, cannot_judge, count_word

NOISY_BN, NOISY_BASELINE = Network("bn", noise=True), Network("none", noise=True)
# each probe batch is a forward pass per evaluation; 1,000 batches of 60 are the training set
MAX_PROBE_BATCHES = 10_000
# NoiseConfig field -> the CLI option that sets it
NOISE_OPTIONS = {
    "mean_low": "--noise-mean LOW",
    "mean_high": "--noise-mean HIGH",
    "scale_low": "--noise-scale LOW",
    "scale_high": "--noise-scale HIGH",
    "mean_jitter": "--noise-jitter",
    "scale_std": "--noise-std",
}


@dataclass(frozen=True)
class NoisySettings:
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    # training batches the sigmoid-input percentiles are taken over
    probe_batches: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.noise, dict):  # read back from config.json
            object.__setattr__(self, "noise", _noise_from_dict(self.noise))
        if not isinstance(self.noise, NoiseConfig):
            raise ConfigError(f"noise: expected a table of numbers, got {brief_repr(self.noise)}")
        # the noise is drawn in float32 (the engine's precision)
        for name, value in dataclasses.asdict(self.noise).items():
            if not abs(value) <= FLOAT32_MAX:
                raise ConfigError(
                    f"noise.{name} must be a number within float32 (|x| <= {FLOAT32_MAX:.8g}), "
                    f"got {value}"
                )
        batches = self.probe_batches
        if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
            raise ConfigError(f"probe_batches: expected at least 1, got {brief_repr(batches)}")
        if batches > MAX_PROBE_BATCHES:
            raise ConfigError(
                f"probe_batches: expected at most {MAX_PROBE_BATCHES:,}, got {brief_repr(batches)}"
            )


def _noise_from_dict(values: dict[str, Any]) -> NoiseConfig:
    """The noise of config.json: the fields of NoiseConfig, each a number."""
    known = [f.name for f in dataclasses.fields(NoiseConfig)]
    for name, value in values.items():
        if name not in known:
            raise ConfigError(
                f"noise: unknown field {brief_repr(name)}; expected one of {', '.join(known)}"
            )
        if not is_number(value):
            raise ConfigError(f"noise.{name}: expected a number, got {brief_repr(value)}")
    return NoiseConfig(**{k: float(v) for k, v in values.items()})


def _pair(option: str, text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option}: expected LOW,HIGH (two numbers), got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ConfigError(f"{option}: expected finite LOW <= HIGH, got {text!r}")
    return low, high


def instability(metrics: dict[str, Any], variant: str) -> float:
    """How much the sigmoid input's {15, 50, 85}th percentiles move from one evaluation to the
    next: the mean absolute change, averaged over the three percentiles, steps and seeds."""
    moves = [np.abs(np.diff(S.series(metrics, variant, f"percentiles.{q}").values)) for q in S.PCTS]
    return S.mean_std(np.stack(moves).ravel())[0]


class NoisyBN(Analysis):
    name = "noisy-bn"
    title = "BN with noise injected after it (Santurkar et al. 2018, Sec. 2.1, Fig. 2)"
    summary_line = (
        "Standard, BN, noisy BN and standard + noise: accuracy and a sigmoid input's percentiles."
    )
    figure_stems = ("accuracy_percentiles",)
    settings_type = NoisySettings
    options: ClassVar[dict[str, tuple[Any, str]]] = {
        "noise_mean": (str | None, "Range of the per-step mean mu_t: LOW,HIGH. Default -0.5,0.5."),
        "noise_scale": (
            str | None,
            "Range of the per-step scale sigma_t: LOW,HIGH. Default 1,1.25.",
        ),
        "noise_jitter": (float | None, "Half-width of m_ij around mu_t. Default 0.1."),
        "noise_std": (float | None, "Std of s_ij around sigma_t. Default 0.1."),
    }
    figure_note = (
        "The percentile panels show the input of the same typical last-layer sigmoid as Figure 1 "
        "(chosen at initialisation), taken in training mode over the probe batches (the first "
        "training batches) with a fresh noise draw at each evaluation, as a training step sees "
        "it; test accuracy is measured without noise (the noise is a training perturbation, like "
        "dropout)."
    )

    def settings_from_options(self, noise_mean, noise_scale, noise_jitter, noise_std):
        d = NoiseConfig()
        mean = _pair("--noise-mean", noise_mean) or (d.mean_low, d.mean_high)
        scale = _pair("--noise-scale", noise_scale) or (d.scale_low, d.scale_high)
        jitter = d.mean_jitter if noise_jitter is None else noise_jitter
        std = d.scale_std if noise_std is None else noise_std
        try:
            return NoisySettings(NoiseConfig(*mean, *scale, jitter, std))
        except ConfigError as e:
            # name the option the value came from, not the config field
            text = str(e)
            for field, option in NOISE_OPTIONS.items():
                text = text.replace(f"noise.{field}", option)
            raise ConfigError(text) from None

    def networks(self, config: AnalysisConfig) -> list[Network]:
        return [WITHOUT_BN, WITH_BN, NOISY_BN, NOISY_BASELINE]

    def model_spec(self, config: AnalysisConfig, network: Network):
        return network.model_spec(config.base, config.settings.noise)

    def measures(self, config: AnalysisConfig):
        return {"train_percentiles": training_percentiles_measure(config.settings.probe_batches)}

    def unit_measures(self, config: AnalysisConfig) -> dict[str, tuple[str, str]]:
        """TensorBoard: the training-mode percentiles get their own tag beside the evaluation
        mode's typical_unit_input/p{q}, which every experiment logs."""
        batches = config.settings.probe_batches
        why = (
            "The {key}th percentile, over the first "
            + str(batches)
            + " training batches in training mode (BN with each batch's own statistics, the "
            "noise drawn afresh as a training step sees it), of the activation's input of "
            + UNIT_WHY
            + "."
        )
        return {"train_percentiles": ("typical_unit_input_train/p{key}", why)}

    def entry(self, config: AnalysisConfig, result) -> dict[str, Any]:
        entry = super().entry(config, result)
        per_unit = entry.pop("train_percentiles")
        unit = result.percentile_unit
        # Figure 1(b, c)'s typical unit, in training mode with the step's noise; the evaluation
        # mode's percentiles are kept beside them
        entry["eval_percentiles"] = entry["percentiles"]
        entry["percentiles"] = {
            q: [None if row is None else row[unit] for row in rows] for q, rows in per_unit.items()
        }
        return entry

    def figures(self, config: AnalysisConfig, metrics: dict[str, Any], out_dir: Path):
        return F.plot_accuracy_and_percentiles(metrics, self.labels(config), out_dir)

    def setup_extra(self, config: AnalysisConfig) -> list[list[str]]:
        noise = dataclasses.asdict(config.settings.noise)
        return [
            ["noise", ", ".join(f"{k} {show_value(v)}" for k, v in noise.items())],
            ["probe batches", str(config.settings.probe_batches)],
        ]

    def results_section(self, config: AnalysisConfig, metrics: dict[str, Any]) -> str:
        rows = [
            [label, f"{S.final_accuracy(metrics, v):.4f}", f"{instability(metrics, v):.3f}"]
            for v, label in self.labels(config).items()
        ]
        head = ["network", "final test accuracy (mean)", "mean percentile move per evaluation"]
        return T.md_table(head, rows)

    def verdicts(self, config: AnalysisConfig, metrics: dict[str, Any]) -> list[Verdict]:
        labels = self.labels(config)
        plain, bn, noisy = WITHOUT_BN.variant, WITH_BN.variant, NOISY_BN.variant
        acc = {v: S.final_accuracy(metrics, v) for v in labels}
        name = "Santurkar 2.1: noisy BN still trains well"
        claim = (
            "Noisy BN trains nearly as well as BN and better than the standard network "
            "(Santurkar et al. 2018, Fig. 2)."
        )
        if not all(np.isfinite(acc[v]) for v in (plain, bn, noisy)):
            trains = cannot_judge(
                name,
                claim,
                "noisy BN ≈ BN > standard",
                "a network has no final accuracy (every seed diverged)",
            )
        else:
            checks = [
                acc[noisy] > acc[plain],
                abs(acc[bn] - acc[noisy]) < abs(acc[noisy] - acc[plain]),
            ]
            trains = Verdict(
                name,
                claim,
                "noisy BN ≈ BN > standard",
                f"final test accuracy: {fmt_values(acc, labels)}; noisy BN above standard: "
                f"{checks[0]}; closer to BN than to standard: {checks[1]}",
                count_word(sum(checks), len(checks)),
            )
        moves = {v: instability(metrics, v) for v in labels}
        name = "Santurkar 2.1: noisy BN's distributions are unstable"
        claim = (
            "The activation distributions of noisy BN are less stable than even the standard "
            "network's."
        )
        theirs = "noisy BN less stable than standard"
        if not (np.isfinite(moves[noisy]) and np.isfinite(moves[plain])):
            why = "fewer than two evaluations: nothing can move between them"
            stability = cannot_judge(name, claim, theirs, why)
        else:
            stability = Verdict(
                name,
                claim,
                theirs,
                "mean change of the sigmoid input's 15/50/85th percentiles between evaluations: "
                f"{fmt_values(moves, labels, '.3f')}",
                "yes" if moves[noisy] > moves[plain] else "no",
            )
        return [trains, stability]


NOISY_BN_ANALYSIS = NoisyBN()
