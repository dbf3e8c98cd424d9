"""Santurkar et al. (2018), Sec. 3.1, Fig. 4: the loss landscape along the gradient (loss
variation, gradient predictiveness, effective beta-smoothness), standard network vs BN. The
measure itself is :func:`bnlab.measures.loss_landscape`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bnlab.errors import ConfigError
from bnlab.experiments.config import FLOAT32_MAX, FLOAT32_TINY, brief_repr, is_number
from bnlab.experiments.network import WITH_BN, WITHOUT_BN, Network
from bnlab.experiments.santurkar import figures as F
from bnlab.experiments.santurkar import points as P
from bnlab.experiments.santurkar.common import Analysis, AnalysisConfig
from bnlab.experiments.santurkar.measures import landscape_measure
from bnlab.measures import DEFAULT_MULTIPLIER_RANGE, step_multipliers
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.report import show_value
from bnlab.outputs.verdicts import Verdict, cannot_judge, count_word

# "about two orders of magnitude": a ratio of at least 10 counts as agreeing
ORDER_OF_MAGNITUDE = 10.0
SMOOTHNESS = ("loss range", "gradient change", "beta-smoothness")
LANDSCAPE_KEYS = ("loss_max", "loss_min", "grad_change_max", "beta_smoothness")


# every step size is a forward and backward pass per evaluation, all held at once: past a few
# hundred the curve is no smoother, and 10^8 of them need ~10^14 bytes
MAX_STEP_COUNT = 1_000


@dataclass(frozen=True)
class LandscapeSettings:
    # step sizes from low to high x the learning rate, this many
    step_range: tuple[float, float] = DEFAULT_MULTIPLIER_RANGE
    step_count: int = 8

    def __post_init__(self) -> None:
        given = self.step_range
        pair = isinstance(given, tuple) and len(given) == 2 and all(map(is_number, given))
        low, high = (float(given[0]), float(given[1])) if pair else (0.0, -1.0)
        # step sizes are float32 numbers (the engine's precision): neither overflow nor vanish
        if not FLOAT32_TINY <= low <= high <= FLOAT32_MAX:
            shown = list(given) if isinstance(given, tuple) else given
            raise ConfigError(
                f"--step-range: expected LOW,HIGH with 0 < LOW <= HIGH, got {brief_repr(shown)} "
                f"(step sizes are float32: {FLOAT32_TINY:.8g}..{FLOAT32_MAX:.8g})"
            )
        object.__setattr__(self, "step_range", (low, high))
        count = self.step_count
        is_int = isinstance(count, int) and not isinstance(count, bool)
        if not is_int or not 1 <= count <= MAX_STEP_COUNT:
            shown = brief_repr(count)
            raise ConfigError(f"--step-count: expected 1..{MAX_STEP_COUNT}, got {shown}")

    def multipliers(self) -> list[float]:
        return step_multipliers(*self.step_range, self.step_count)


def smoothness(metrics: dict[str, Any], variant: str) -> dict[str, float]:
    """Fig. 4's three numbers for ``variant``, each the mean over evaluations and seeds."""
    hi, lo = (S.series(metrics, variant, f"landscape.{k}").values for k in ("loss_max", "loss_min"))
    return dict(
        zip(
            SMOOTHNESS,
            (
                S.mean_std((hi - lo).ravel())[0],
                S.overall_mean(metrics, variant, "landscape.grad_change_max"),
                S.overall_mean(metrics, variant, "landscape.beta_smoothness"),
            ),
            strict=True,
        )
    )


def seed_smoothness(metrics: dict[str, Any], variant: str, point: P.Point) -> dict[str, Any]:
    """Fig. 4's three numbers for ``variant`` at ``point``: each seed's mean over the point's
    evaluations."""
    series = {k: S.series(metrics, variant, f"landscape.{k}").values for k in LANDSCAPE_KEYS}
    per = [
        series["loss_max"] - series["loss_min"],
        series["grad_change_max"],
        series["beta_smoothness"],
    ]
    return {k: P.per_seed(v, point) for k, v in zip(SMOOTHNESS, per, strict=True)}


def smoother_verdicts(
    metrics: dict[str, Any], labels: S.Labels, smoother: list[str], reference: str
) -> list[Verdict]:
    """Each network of ``smoother`` against ``reference`` on Fig. 4's measures, at each point
    along training (:mod:`bnlab.experiments.santurkar.points`), over the seeds."""
    claim = (
        "BN makes the loss and its gradient markedly smoother: smaller loss variation, more "
        "predictive gradients, smaller effective beta-smoothness (Fig. 4); l_p normalization "
        "likewise (Sec. 3.3)."
    )
    steps = S.series(metrics, reference, "landscape.loss_max").steps
    out = []
    for variant in smoother:
        for point in P.points(steps):
            name = f"Santurkar 3.1: {labels[variant]} smooths the landscape, {point.name}"
            stuck = P.plateau(metrics, reference, point)
            if stuck is not None:
                out.append(cannot_judge(name, claim, "all three smaller", stuck))
                continue
            ref = seed_smoothness(metrics, reference, point)
            ours = seed_smoothness(metrics, variant, point)
            means = {k: (S.mean_std(ref[k])[0], S.mean_std(ours[k])[0]) for k in SMOOTHNESS}
            if not np.isfinite(list(means.values())).all():
                why = "a network has no finite landscape measure (every seed diverged?)"
                out.append(cannot_judge(name, claim, "all three smaller", why))
                continue
            wins = sum(b < a for a, b in means.values())
            text = "; ".join(f"{k} {P.show(ref[k])} vs {P.show(ours[k])}" for k in SMOOTHNESS)
            out.append(
                Verdict(
                    name,
                    claim,
                    "all three smaller",
                    f"{point.span}, mean ± std over seeds, {labels[reference]} vs "
                    f"{labels[variant]}: {text}",
                    count_word(wins, len(SMOOTHNESS)),
                )
            )
    return out


def gap_verdict(metrics: dict[str, Any], reference: str, bn: str) -> Verdict:
    name = "Santurkar 3.1: gradient predictiveness gap"
    claim = (
        "Up to about two orders of magnitude better gradient predictiveness with BN, early in "
        "training (Fig. 4b)."
    )
    base, with_bn = (S.series(metrics, v, "landscape.grad_change_max") for v in (reference, bn))
    ratio = base.mean() / with_bn.mean() if base.steps.size == with_bn.steps.size else np.array([])
    # only where the network without BN trains (P.plateau's rule): on its plateau its gradient
    # barely changes because nothing does
    training = S.series(metrics, reference, "test_accuracy").mean() >= P.TRAINING
    ratio = np.where(training, ratio, np.nan) if ratio.size == training.size else ratio
    if not np.isfinite(ratio).any():
        why = f"no step where both have a measure and {reference} trains (test accuracy >= "
        return cannot_judge(name, claim, "up to ~100x", why + f"{P.TRAINING})")
    j = int(np.nanargmax(ratio))
    best = float(ratio[j])
    return Verdict(
        name,
        claim,
        "up to ~100x",
        f"largest ratio standard / BN of the gradient change: {best:.1f}x at step "
        f"{int(with_bn.steps[j]):,}",
        "yes" if best >= ORDER_OF_MAGNITUDE else "partly" if best > 1 else "no",
    )


class LandscapeAnalysis(Analysis):
    name = "landscape"
    title = "the loss landscape along the gradient (Santurkar et al. 2018, Sec. 3.1, Fig. 4)"
    # Glorot-uniform weights: the network without BN leaves its plateau within the first 500
    # steps (test accuracy ~0.80 there, 0.95 at 4,000), so both networks train while they are
    # measured; the paper preset's N(0, 0.01^2) weights (--init gaussian) keep it on the plateau
    # for thousands of steps, where its points cannot be judged
    defaults: ClassVar[dict[str, Any]] = {
        "steps": 4000,
        "eval_every": 250,
        "seeds": 3,
        "init": "glorot_uniform",
    }
    summary_line = "Loss variation, gradient predictiveness and beta-smoothness along the gradient."
    figure_stems = ("accuracy", "landscape")
    settings_type = LandscapeSettings
    options: ClassVar[dict[str, tuple[Any, str]]] = {
        "step_range": (str | None, "Step sizes as multiples of the lr: LOW,HIGH. Default 0.5,4."),
        "step_count": (int | None, "Number of step sizes. Default 8."),
    }
    figure_note = (
        "At each evaluation, on a fixed probe batch (the first training batch) in training mode, "
        "the parameters move along -g by each step size; the bands show the range over the step "
        "sizes (mean over seeds)."
    )
    thresholds = f"'Orders of magnitude' agrees from a ratio of {ORDER_OF_MAGNITUDE:g}."

    def settings_from_options(self, step_range: str | None, step_count: int | None):
        d = LandscapeSettings()
        if step_range is not None:
            try:
                low, high = (float(v) for v in step_range.split(","))
            except ValueError:
                raise ConfigError(
                    f"--step-range: expected LOW,HIGH (two numbers), got {step_range!r}"
                ) from None
            d = LandscapeSettings((low, high), d.step_count)
        return LandscapeSettings(d.step_range, d.step_count if step_count is None else step_count)

    def networks(self, config: AnalysisConfig) -> list[Network]:
        return [WITHOUT_BN, WITH_BN]

    def measures(self, config: AnalysisConfig):
        return {"landscape": landscape_measure(config.settings.multipliers())}

    def figures(self, config: AnalysisConfig, metrics: dict[str, Any], out_dir: Path):
        labels = self.labels(config)
        return F.plot_accuracy(metrics, labels, out_dir) + F.plot_landscape(
            metrics, labels, out_dir
        )

    def setup_extra(self, config: AnalysisConfig) -> list[list[str]]:
        return [["step sizes (x lr)", show_value(config.settings.multipliers())]]

    def results_section(self, config: AnalysisConfig, metrics: dict[str, Any]) -> str:
        rows = [
            [
                label,
                *(f"{x:.4g}" if np.isfinite(x) else "—" for x in smoothness(metrics, v).values()),
            ]
            for v, label in self.labels(config).items()
        ]
        head = ["network", "loss range", "max gradient change", "effective beta-smoothness"]
        return "Mean over evaluations and seeds:\n\n" + T.md_table(head, rows)

    def verdicts(self, config: AnalysisConfig, metrics: dict[str, Any]) -> list[Verdict]:
        labels = self.labels(config)
        plain, bn = WITHOUT_BN.variant, WITH_BN.variant
        return [*smoother_verdicts(metrics, labels, [bn], plain), gap_verdict(metrics, plain, bn)]


LANDSCAPE_ANALYSIS = LandscapeAnalysis()
