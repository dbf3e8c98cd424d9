"""Santurkar et al. (2018), Sec. 3.3: normalizing by the average l_p norm (p = 1, 2, inf) in BN's
place trains as well as BN and smooths the landscape too."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bnlab.experiments.network import WITH_BN, WITHOUT_BN, Network
from bnlab.experiments.santurkar.common import AnalysisConfig, fmt_values
from bnlab.experiments.santurkar.landscape import LandscapeAnalysis, smoother_verdicts
from bnlab.outputs import series as S
from bnlab.outputs.verdicts import Verdict, cannot_judge, count_word

# "trains as well as BN": final test accuracy at most this far below BN's
AS_WELL_AS_BN = 0.005
LP_NETWORKS = [Network("lp1"), Network("lp2"), Network("lpinf")]


class LpNorm(LandscapeAnalysis):
    name = "lp-norm"
    title = "l_p normalization beside BN (Santurkar et al. 2018, Sec. 3.3)"
    summary_line = (
        "l1, l2 and l_inf normalization beside BN and the baseline: accuracy and landscape."
    )
    defaults: ClassVar[dict[str, Any]] = {"steps": 3000, "eval_every": 250, "seeds": 2}
    thresholds = f"'As well as BN' means a final test accuracy at most {AS_WELL_AS_BN} below BN's."

    def networks(self, config: AnalysisConfig) -> list[Network]:
        return [WITHOUT_BN, WITH_BN, *LP_NETWORKS]

    def verdicts(self, config: AnalysisConfig, metrics: dict[str, Any]) -> list[Verdict]:
        labels = self.labels(config)
        norms = [n.variant for n in LP_NETWORKS]
        bn = S.final_accuracy(metrics, WITH_BN.variant)
        acc = {v: S.final_accuracy(metrics, v) for v in norms}
        name = "Santurkar 3.3: l_p normalization trains as well as BN"
        claim = (
            "Normalizing by the average l_p norm (p = 1, 2, inf) leads to the same performance as "
            "BN (Sec. 3.3)."
        )
        theirs = f"final accuracy within {AS_WELL_AS_BN} of BN or above"
        if not np.isfinite([bn, *acc.values()]).all():
            trains = cannot_judge(name, claim, theirs, "a network has no final accuracy")
        else:
            good = sum(a >= bn - AS_WELL_AS_BN for a in acc.values())
            ours = f"final test accuracy: {labels[WITH_BN.variant]} {bn:.4f}; "
            ours += fmt_values(acc, labels)
            trains = Verdict(name, claim, theirs, ours, count_word(good, len(norms)))
        return [trains, *smoother_verdicts(metrics, labels, norms, WITHOUT_BN.variant)]


LP_NORM_ANALYSIS = LpNorm()
