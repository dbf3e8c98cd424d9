"""Where BN goes (Ioffe & Szegedy 2015, Sec. 3.2): before the nonlinearity, z = g(BN(Wu)), as the
paper does, or after it. The paper normalizes Wu rather than the layer input u because u, the
output of another nonlinearity, changes shape during training, while Wu is "more likely to produce
activations with a stable distribution". Networks: without BN, BN before and BN after each
sigmoid; measured as Figure 1 (accuracy and a last-layer sigmoid's input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bnlab.experiments.network import WITHOUT_BN, Network
from bnlab.experiments.santurkar import figures as F
from bnlab.experiments.santurkar.common import Analysis, AnalysisConfig, fmt_values
from bnlab.outputs import series as S
from bnlab.outputs.verdicts import Verdict, cannot_judge, count_word

BEFORE, AFTER = Network("bn", placement="before"), Network("bn", placement="after")
CLAIM = (
    "Ioffe & Szegedy 2015, Sec. 3.2: BN is added immediately before the nonlinearity, "
    "z = g(BN(Wu)); normalizing Wu is more likely to give the activations a stable distribution."
)


class Placement(Analysis):
    name = "placement"
    title = "BN before or after the activation (Ioffe & Szegedy 2015, Sec. 3.2)"
    summary_line = "BN before vs after each sigmoid, beside no BN: accuracy and a sigmoid's input."
    figure_stems = ("accuracy_percentiles",)

    def networks(self, config: AnalysisConfig) -> list[Network]:
        return [WITHOUT_BN, BEFORE, AFTER]

    def figures(self, config: AnalysisConfig, metrics: dict[str, Any], out_dir: Path):
        return F.plot_accuracy_and_percentiles(metrics, self.labels(config), out_dir)

    def verdicts(self, config: AnalysisConfig, metrics: dict[str, Any]) -> list[Verdict]:
        labels = self.labels(config)
        before, after = BEFORE.variant, AFTER.variant
        moves = {v: S.percentile_drift(metrics, v) for v in (before, after)}
        name = "BN before the sigmoid keeps its input more stable than BN after it"
        theirs = "median and 15-85 spread move less with BN before"
        if any(S.series(metrics, v, "percentiles.50").steps.size < 2 for v in moves) or None in (
            moves.values()
        ):
            stable = cannot_judge(name, CLAIM, theirs, "fewer than two evaluations")
        else:
            (m0, s0), (m1, s1) = moves[before], moves[after]
            stable = Verdict(
                name,
                CLAIM,
                theirs,
                f"median moves over {m0:.2f} before vs {m1:.2f} after; 15-85 spread over "
                f"{s0:.2f} vs {s1:.2f} (max - min over the evaluations, mean over seeds)",
                count_word((m0 < m1) + (s0 < s1), 2),
            )
        acc = {v: S.final_accuracy(metrics, v) for v in labels}
        name = "BN before the sigmoid trains at least as well as BN after it"
        if not np.isfinite(list(acc.values())).all():
            trains = cannot_judge(name, CLAIM, "before >= after", "a network has no final accuracy")
        else:
            trains = Verdict(
                name,
                CLAIM + " (The paper compares no other placement; this is the choice it makes.)",
                "before >= after",
                f"final test accuracy: {fmt_values(acc, labels)}",
                "yes" if acc[before] >= acc[after] else "no",
            )
        return [stable, trains]


PLACEMENT_ANALYSIS = Placement()
