"""Santurkar et al. (2018), Sec. 2.2, Definition 2.1, Fig. 3: internal covariate shift measured
through gradients, per layer over training, standard network vs BN. The measure itself is
:func:`bnlab.measures.internal_covariate_shift`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bnlab.experiments.network import WITH_BN, WITHOUT_BN, Network
from bnlab.experiments.santurkar import figures as F
from bnlab.experiments.santurkar import points as P
from bnlab.experiments.santurkar.common import Analysis, AnalysisConfig
from bnlab.experiments.santurkar.landscape import LandscapeAnalysis
from bnlab.experiments.santurkar.measures import ics_measure
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.verdicts import Verdict, cannot_judge, count_word

# "similar or even larger ICS": BN's mean ||G - G'|| at least this fraction of the baseline's
ICS_SIMILAR = 0.8
# BN's cos(G, G') counts as higher than the baseline's only above this margin
COSINE_MARGIN = 0.02


def layers(metrics: dict[str, Any]) -> list[str]:
    """The Dense layers measured ("1" = input side), from the first run's record."""
    return sorted(metrics["runs"][0].get("ics", {}).get("distance", {}), key=int)


class ICSAnalysis(Analysis):
    name = "ics"
    # as the landscape's: both networks train from the first evaluations (see landscape.py)
    defaults: ClassVar[dict[str, Any]] = LandscapeAnalysis.defaults
    title = "internal covariate shift through gradients (Santurkar et al. 2018, Def. 2.1, Fig. 3)"
    summary_line = (
        "Internal covariate shift (Definition 2.1) per layer over training, standard vs BN."
    )
    figure_stems = ("accuracy", "ics")
    figure_note = (
        "G and G' are the gradients of each Dense layer's weight matrix on a fixed probe batch "
        "(the first training batch) in training mode; G' after the layers below took the SGD step "
        "that G itself gives. Layer 1 has nothing below it: its ICS is 0 by definition."
    )
    thresholds = (
        f"'Similar' ICS means at least {ICS_SIMILAR} x the standard network's; BN's cos(G, G') "
        f"counts as higher only above +{COSINE_MARGIN}."
    )

    def networks(self, config: AnalysisConfig) -> list[Network]:
        return [WITHOUT_BN, WITH_BN]

    def measures(self, config: AnalysisConfig):
        return {"ics": ics_measure()}

    def figures(self, config: AnalysisConfig, metrics: dict[str, Any], out_dir: Path):
        labels = self.labels(config)
        return F.plot_accuracy(metrics, labels, out_dir) + F.plot_ics(
            metrics, labels, layers(metrics)[1:], out_dir
        )

    def results_section(self, config: AnalysisConfig, metrics: dict[str, Any]) -> str:
        labels = self.labels(config)
        rows = []
        for k in layers(metrics):
            row = [k]
            for v in labels:
                dist = S.overall_mean(metrics, v, f"ics.distance.{k}")
                norm = S.overall_mean(metrics, v, f"ics.grad_norm.{k}")
                cos = S.overall_mean(metrics, v, f"ics.cosine.{k}")
                rel = dist / norm if norm > 0 else float("nan")
                row += [f"{dist:.4g}", f"{rel:.3f}", f"{cos:.3f}"]
            rows.append(row)
        head = ["layer"] + [
            f"{label}: {m}" for label in labels.values() for m in ("‖G-G'‖", "/‖G‖", "cos")
        ]
        return "Mean over evaluations and seeds, per layer:\n\n" + T.md_table(head, rows)

    def verdicts(self, config: AnalysisConfig, metrics: dict[str, Any]) -> list[Verdict]:
        """The two claims at each point along training (thirds of the evaluations), each seed's
        mean over the point's evaluations, per layer from 2 up."""
        plain = WITHOUT_BN.variant
        steps = S.series(metrics, plain, "test_accuracy").steps
        return [v for point in P.points(steps) for v in self._at(metrics, point)]

    def _at(self, metrics: dict[str, Any], point: P.Point) -> list[Verdict]:
        plain, bn = WITHOUT_BN.variant, WITH_BN.variant
        measured = layers(metrics)[1:]

        def seeds(v: str, what: str) -> list[np.ndarray]:
            return [
                P.per_seed(S.series(metrics, v, f"ics.{what}.{k}").values, point) for k in measured
            ]

        dist = {v: seeds(v, "distance") for v in (plain, bn)}
        cos = {v: seeds(v, "cosine") for v in (plain, bn)}
        mean = {
            key: {v: [S.mean_std(x)[0] for x in table[v]] for v in table}
            for key, table in (("dist", dist), ("cos", cos))
        }
        name_d = f"Santurkar 2.2: BN does not reduce ICS (l2), {point.name}"
        claim_d = (
            "Networks with BN show similar or even larger internal covariate shift, measured as "
            "‖G - G'‖_2 (Definition 2.1, Fig. 3)."
        )
        theirs_d = f"BN's ICS similar (>= {ICS_SIMILAR} x) or larger"
        name_c = f"Santurkar 2.2: BN does not align G and G', {point.name}"
        claim_c = "With BN, cos(G, G') is not closer to the ideal 1 than without (Fig. 3)."
        theirs_c = "BN's cos(G, G') not higher"
        stuck = P.plateau(metrics, plain, point)
        values = np.asarray([x for table in mean.values() for v in table.values() for x in v])
        if stuck is None and (
            not measured or not np.isfinite(values).all() or min(mean["dist"][plain]) <= 0
        ):
            stuck = "no finite ICS of both networks in layers 2 and up (every seed diverged?)"
        if stuck is not None:
            return [
                cannot_judge(name_d, claim_d, theirs_d, stuck),
                cannot_judge(name_c, claim_c, theirs_c, stuck),
            ]
        ratios = [b / a for a, b in zip(mean["dist"][plain], mean["dist"][bn], strict=True)]
        per_layer = ", ".join(f"layer {k}: x{r:.2f}" for k, r in zip(measured, ratios, strict=True))
        pairs = list(zip(mean["cos"][plain], mean["cos"][bn], strict=True))
        not_closer = sum(b <= a + COSINE_MARGIN for a, b in pairs)
        cosines = ", ".join(
            f"layer {k}: {P.show(a, '.3f')} vs {P.show(b, '.3f')}"
            for k, a, b in zip(measured, cos[plain], cos[bn], strict=True)
        )
        return [
            Verdict(
                name_d,
                claim_d,
                theirs_d,
                f"{point.span}, BN's mean ‖G - G'‖_2 relative to the standard network's: "
                f"{per_layer}",
                count_word(sum(r >= ICS_SIMILAR for r in ratios), len(measured)),
            ),
            Verdict(
                name_c,
                claim_c,
                theirs_c,
                f"{point.span}, cos(G, G') standard vs BN, mean ± std over seeds: {cosines}",
                count_word(not_closer, len(measured)),
            ),
        ]


ICS_ANALYSIS = ICSAnalysis()
