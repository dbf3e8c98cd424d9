"""Santurkar et al.'s (and Ioffe & Szegedy's learning-rate) claims beside what a run measured.

Claims are quoted from shared/reference/papers.md. Every verdict is computed from the metrics
passed in; the thresholds that turn a comparison into "agrees" are constants here, and the report
states them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bnlab.experiments.analyses import lr_table as L
from bnlab.outputs import series as S
from bnlab.outputs.claims import Verdict, _count_word

# "similar or even larger ICS": BN's mean ||G - G'|| at least this fraction of the baseline's
ICS_SIMILAR = 0.8
# "trains as well as BN": final test accuracy at most this far below BN's
AS_WELL_AS_BN = 0.005
# "about two orders of magnitude": a ratio of at least 10 counts as agreeing
ORDER_OF_MAGNITUDE = 10.0


def _values(metrics: dict[str, Any], variant: str, key: str) -> np.ndarray:
    return S.series(metrics, variant, key).values


def overall_mean(metrics: dict[str, Any], variant: str, key: str) -> float:
    """Mean of ``key`` over every evaluation step and seed with a finite value."""
    v = _values(metrics, variant, key)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def final_accuracy(metrics: dict[str, Any], variant: str) -> float:
    """Mean over seeds of the test accuracy at the last evaluation step (NaN if all diverged)."""
    curve = S.series(metrics, variant, "test_accuracy")
    return S.mean_std(curve.values[:, -1])[0] if curve.steps.size else float("nan")


def instability(metrics: dict[str, Any], variant: str) -> float:
    """How much the sigmoid input's {15, 50, 85}th percentiles move from one evaluation to the
    next: the mean absolute change, averaged over the three percentiles, steps and seeds."""
    moves = [np.abs(np.diff(_values(metrics, variant, f"percentiles.{q}"))) for q in S.PCTS]
    moves = np.stack(moves)
    moves = moves[np.isfinite(moves)]
    return float(moves.mean()) if moves.size else float("nan")


def _fmt(values: dict[str, float], fmt: str = ".4f") -> str:
    return ", ".join(f"{S.label(v)} {format(x, fmt)}" for v, x in values.items())


def noisy_bn_verdicts(metrics: dict[str, Any]) -> list[Verdict]:
    names = ("baseline", "bn", "noisy_bn", "baseline_noisy")
    acc = {v: final_accuracy(metrics, v) for v in names}
    checks = [
        acc["noisy_bn"] > acc["baseline"],
        abs(acc["bn"] - acc["noisy_bn"]) < abs(acc["noisy_bn"] - acc["baseline"]),
    ]
    trains = Verdict(
        "Santurkar 2.1: noisy BN still trains well",
        "Noisy BN trains nearly as well as BN and better than the standard network "
        "(Santurkar et al. 2018, Fig. 2).",
        "noisy BN ≈ BN > standard",
        f"final test accuracy: {_fmt(acc)}; noisy BN above standard: {checks[0]}; "
        f"closer to BN than to standard: {checks[1]}",
        _count_word(sum(checks), len(checks)),
    )
    moves = {v: instability(metrics, v) for v in names}
    unstable = moves["noisy_bn"] > moves["baseline"]
    stability = Verdict(
        "Santurkar 2.1: noisy BN's distributions are unstable",
        "The activation distributions of noisy BN are less stable than even the standard "
        "network's.",
        "noisy BN less stable than standard",
        "mean change of the sigmoid input's 15/50/85th percentiles between evaluations: "
        f"{_fmt(moves, '.3f')}",
        "yes" if unstable else "no",
    )
    return [trains, stability]


def ics_verdicts(metrics: dict[str, Any], layers: list[str]) -> list[Verdict]:
    dist = {
        v: [overall_mean(metrics, v, f"ics.distance.{k}") for k in layers]
        for v in ("baseline", "bn")
    }
    cos = {
        v: [overall_mean(metrics, v, f"ics.cosine.{k}") for k in layers] for v in ("baseline", "bn")
    }
    ratios = [b / a for a, b in zip(dist["baseline"], dist["bn"], strict=True)]
    similar = sum(r >= ICS_SIMILAR for r in ratios)
    per_layer = ", ".join(f"layer {k}: x{r:.2f}" for k, r in zip(layers, ratios, strict=True))
    distance = Verdict(
        "Santurkar 2.2: BN does not reduce ICS (l2)",
        "Networks with BN show similar or even larger internal covariate shift, measured as "
        "‖G - G'‖_2 (Definition 2.1, Fig. 3).",
        f"BN's ICS similar (>= {ICS_SIMILAR} x) or larger",
        f"BN's mean ‖G - G'‖_2 relative to the standard network's: {per_layer}",
        _count_word(similar, len(layers)),
    )
    not_closer = sum(b <= a + 0.02 for a, b in zip(cos["baseline"], cos["bn"], strict=True))
    cosines = ", ".join(
        f"layer {k}: {a:.3f} vs {b:.3f}"
        for k, a, b in zip(layers, cos["baseline"], cos["bn"], strict=True)
    )
    cosine = Verdict(
        "Santurkar 2.2: BN does not align G and G'",
        "With BN, cos(G, G') is not closer to the ideal 1 than without (Fig. 3).",
        "BN's cos(G, G') not higher",
        f"mean cos(G, G') standard vs BN: {cosines} (BN counted higher above +0.02)",
        _count_word(not_closer, len(layers)),
    )
    return [distance, cosine]


def _smoothness(metrics: dict[str, Any], variant: str) -> dict[str, float]:
    loss_range = _values(metrics, variant, "landscape.loss_max") - _values(
        metrics, variant, "landscape.loss_min"
    )
    loss_range = loss_range[np.isfinite(loss_range)]
    return {
        "loss range": float(loss_range.mean()) if loss_range.size else float("nan"),
        "gradient change": overall_mean(metrics, variant, "landscape.grad_change_max"),
        "beta-smoothness": overall_mean(metrics, variant, "landscape.beta_smoothness"),
    }


def landscape_verdicts(
    metrics: dict[str, Any], smoother: list[str], reference: str = "baseline"
) -> list[Verdict]:
    """BN (and the other networks in ``smoother``) against ``reference`` on Fig. 4's measures."""
    ref = _smoothness(metrics, reference)
    out = []
    for variant in smoother:
        ours = _smoothness(metrics, variant)
        wins = sum(ours[k] < ref[k] for k in ref)
        text = "; ".join(f"{k} {ref[k]:.4g} vs {ours[k]:.4g}" for k in ref)
        out.append(
            Verdict(
                f"Santurkar 3.1: {'BN' if variant == 'bn' else S.label(variant)} smooths the "
                "landscape",
                "BN makes the loss and its gradient markedly smoother: smaller loss variation, "
                "more predictive gradients, smaller effective beta-smoothness (Fig. 4); l_p "
                "normalization likewise (Sec. 3.3).",
                "all three smaller",
                f"mean over training, {S.label(reference)} vs {S.label(variant)}: {text}",
                _count_word(wins, len(ref)),
            )
        )
    if "bn" in smoother:
        base = _values(metrics, reference, "landscape.grad_change_max")
        bn = _values(metrics, "bn", "landscape.grad_change_max")
        ratio = np.nanmean(base, axis=0) / np.nanmean(bn, axis=0)
        steps = S.series(metrics, "bn", "landscape.grad_change_max").steps
        j = int(np.nanargmax(ratio)) if np.isfinite(ratio).any() else 0
        best = float(ratio[j]) if ratio.size else float("nan")
        out.append(
            Verdict(
                "Santurkar 3.1: gradient predictiveness gap",
                "Up to about two orders of magnitude better gradient predictiveness with BN, "
                "early in training (Fig. 4b).",
                "up to ~100x",
                f"largest ratio standard / BN of the gradient change: {best:.1f}x at step "
                f"{int(steps[j]):,}"
                if steps.size
                else "no measurement",
                "yes" if best >= ORDER_OF_MAGNITUDE else "partly" if best > 1 else "no",
            )
        )
    return out


def lp_norm_verdicts(metrics: dict[str, Any], norms: list[str]) -> list[Verdict]:
    bn = final_accuracy(metrics, "bn")
    acc = {v: final_accuracy(metrics, v) for v in norms}
    good = sum(a >= bn - AS_WELL_AS_BN for a in acc.values())
    return [
        Verdict(
            "Santurkar 3.3: l_p normalization trains as well as BN",
            "Normalizing by the average l_p norm (p = 1, 2, inf) leads to the same performance "
            "as BN (Sec. 3.3).",
            f"final accuracy within {AS_WELL_AS_BN} of BN or above",
            f"final test accuracy: BN {bn:.4f}; {_fmt(acc)}",
            _count_word(good, len(norms)),
        ),
        *landscape_verdicts(metrics, norms),
    ]


def _steps_or_inf(row: L.SweepRow) -> float:
    return float(np.mean(row.reached)) if row.reached else float("inf")


def lr_sweep_verdicts(rows: list[L.SweepRow], target: float) -> list[Verdict]:
    by = {(r.network, r.multiplier): r for r in rows}
    claim = "Ioffe & Szegedy 2015, Sec. 4.2.2 (ImageNet, Inception): "
    out = []
    base1, bn1 = by.get(("baseline", 1)), by.get(("BN", 1))
    if base1 and bn1:
        a, b = _steps_or_inf(base1), _steps_or_inf(bn1)
        out.append(
            Verdict(
                "BN reaches the target sooner at the same learning rate",
                claim + "BN-Baseline reaches Inception's best accuracy in 13.3M steps vs 31.0M.",
                "BN x1 faster than baseline x1",
                f"steps to {target:.4f}: baseline x1 {L.describe_steps(base1)}, "
                f"BN x1 {L.describe_steps(bn1)}",
                "yes" if b < a else "no",
            )
        )
    for mult in (5, 30):
        hi = by.get(("BN", mult))
        if bn1 and hi:
            faster = _steps_or_inf(hi) < _steps_or_inf(bn1)
            out.append(
                Verdict(
                    f"BN with a {mult}x learning rate trains faster",
                    claim + "BN-x5 reaches it in 2.1M steps and BN-x30 in 2.7M, vs 13.3M at x1.",
                    f"BN x{mult} faster than BN x1",
                    f"BN x{mult} {L.describe_steps(hi)} steps vs BN x1 {L.describe_steps(bn1)}"
                    + ("" if not hi.diverged else f"; {L.describe_divergence(hi)}"),
                    "yes" if faster else "no",
                )
            )
        base = by.get(("baseline", mult))
        if mult == 5 and base:
            fails = base.diverged or not base.reached
            out.append(
                Verdict(
                    "the baseline cannot take a 5x learning rate",
                    claim + "raising the baseline's learning rate 5x made it diverge (\"machine "
                    'infinity").',
                    "baseline x5 diverges",
                    f"baseline x5: {L.describe_divergence(base)}; steps to target "
                    f"{L.describe_steps(base)}",
                    "yes" if base.diverged else "partly" if fails else "no",
                )
            )
    return out
