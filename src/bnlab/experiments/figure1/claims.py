"""What the paper and others report for Figure 1, and whether a run's metrics agree with it.

The reference numbers are copied from shared/reference/papers.md (the project's notes on Ioffe &
Szegedy 2015 and on public reproductions, and the measurements made before bnlab existed). Every
verdict is computed from the metrics passed in; nothing here knows what a run "should" give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bnlab.outputs import series as S
from bnlab.outputs.verdicts import Verdict, cannot_judge, count_word

PAPER_ACCURACY = (
    'Ioffe & Szegedy (2015), Fig. 1(a): the BN network "enjoys the higher test accuracy" over '
    "10K-50K steps (3x100 sigmoid MLP, batch 60, optimiser and learning rate not given)."
)
PAPER_DRIFT = (
    "Fig. 1(b, c): without BN the input to a typical last-layer sigmoid drifts in mean and "
    "variance over training; with BN it is stable."
)
REPRODUCTION = {
    "source": "public reproductions (single unofficial runs; SGD lr 0.5, truncated-normal std 0.1, "
    "batch 60)",
    "optimizer": "sgd",
    "lr": 0.5,
    "step": 50_000,
    "bn": 0.98,
    "baseline": (0.975, 0.977),
}


@dataclass(frozen=True)
class Measurement:
    """Test accuracy measured once before bnlab existed (one seed, this 2-core machine)."""

    preset: str
    setup: str
    steps: tuple[int, ...]
    baseline: tuple[float, ...]
    bn: tuple[float, ...]


PRE_BNLAB = (
    Measurement(
        "seed",
        "the seed notebook's own TF-Keras code (RMSprop; BN evaluated with batch statistics), "
        "one seed, epochs 10-50 of 1,000 steps",
        (10_000, 20_000, 30_000, 40_000, 50_000),
        (0.9727, 0.9747, 0.9736, 0.9723, 0.9753),
        (0.9629, 0.9683, 0.9723, 0.9755, 0.9740),
    ),
    Measurement(
        "paper",
        "a paper-like setup (binary input at 0.5, N(0, 0.01^2) weights, no bias before BN, "
        "SGD lr 0.5, batch 60), one seed",
        (10_000, 20_000, 50_000),
        (0.9413, 0.9573, 0.9632),
        (0.9693, 0.9721, 0.9742),
    ),
)


def _accuracy_at(metrics: dict[str, Any], variant: str, step: int) -> tuple[float, float, int]:
    return S.mean_std(S.series(metrics, variant, "test_accuracy").at(step))


def accuracy_verdict(metrics: dict[str, Any], plain: str, with_bn: str) -> Verdict:
    name, theirs = "Fig. 1(a), BN reaches the higher test accuracy", "BN higher at every step"
    steps = S.checkpoint_steps(S.series(metrics, plain, "test_accuracy").steps)
    rows = []
    for step in steps:
        (m0, s0, _), (m1, s1, _) = (_accuracy_at(metrics, v, step) for v in (plain, with_bn))
        if np.isfinite(m0) and np.isfinite(m1):
            rows.append((step, m1 - m0, np.nanmax([s0, s1, 0.0])))
    if not rows:
        return cannot_judge(name, PAPER_ACCURACY, theirs, "no step where both have a value")
    ahead = [s for s, gap, _ in rows if gap > 0]
    behind = [s for s, gap, _ in rows if gap <= 0]
    step, gap, spread = rows[-1]
    ours = f"BN's mean is higher at {len(ahead)} of {len(rows)} checkpoints" + _which(ahead, behind)
    ours += f"; gap at {step:,} steps {gap:+.4f}"
    if spread > 0:
        relation = "larger" if abs(gap) > spread else "no larger"
        ours += f", {relation} than the larger seed-to-seed std of the two ({spread:.4f})"
    return Verdict(name, PAPER_ACCURACY, theirs, ours, count_word(len(ahead), len(rows)))


def _which(ahead: list[int], behind: list[int]) -> str:
    """ " (at 10,000 and 30,000 steps; not at 20,000)": exactly the checkpoints counted."""

    def steps(values: list[int]) -> str:
        return ", ".join(f"{s:,}" for s in values)

    if not behind:
        return f" (at {steps(ahead)} steps)"
    if not ahead:
        return f" (not at {steps(behind)} steps)"
    return f" (at {steps(ahead)} steps; not at {steps(behind)})"


def drift_verdict(metrics: dict[str, Any], plain: str, with_bn: str) -> Verdict:
    name = "Fig. 1(b, c), BN keeps the sigmoid input stable"
    theirs = "drifts without BN, stable with BN"
    evaluations = min(S.series(metrics, v, "percentiles.50").steps.size for v in (plain, with_bn))
    if evaluations < 2:
        why = "one evaluation: a drift needs percentiles at two steps at least"
        return cannot_judge(name, PAPER_DRIFT, theirs, why if evaluations else "no percentiles")
    d0, d1 = S.percentile_drift(metrics, plain), S.percentile_drift(metrics, with_bn)
    if d0 is None or d1 is None:
        return cannot_judge(name, PAPER_DRIFT, theirs, "no percentiles recorded")
    ours = (
        f"median moves over {d0[0]:.2f} without BN vs {d1[0]:.2f} with BN; 15-85 spread over "
        f"{d0[1]:.2f} vs {d1[1]:.2f} (max - min over the evaluation steps, mean over seeds)"
    )
    return Verdict(
        name,
        PAPER_DRIFT,
        theirs,
        ours,
        count_word(sum(b < a for a, b in zip(d0, d1, strict=True)), 2),
    )


def _setup_differs(config: dict[str, Any]) -> str:
    """A note when the run's optimiser is not the reproductions' (SGD lr 0.5), else ""."""
    ours = (config.get("optimizer"), config.get("lr"))
    if None in ours or ours == (REPRODUCTION["optimizer"], REPRODUCTION["lr"]):
        return ""
    return f"; a different setup: {ours[0]} lr {ours[1]:g} here"


def reproduction_verdict(
    metrics: dict[str, Any], plain: str, with_bn: str, config: dict[str, Any] | None = None
) -> Verdict:
    lo, hi = REPRODUCTION["baseline"]
    name = "Public reproductions at 50k steps"
    claim = f"{REPRODUCTION['source']}: about {REPRODUCTION['bn']:.2f} with BN, {lo}-{hi} without"
    theirs = f"BN ~{REPRODUCTION['bn']:.2f}, no BN {lo}-{hi}"
    steps = S.series(metrics, plain, "test_accuracy").steps
    if steps.size == 0 or steps.max() < REPRODUCTION["step"]:
        last = int(steps.max()) if steps.size else 0
        return cannot_judge(name, claim, theirs, f"our run ends at {last:,} steps")
    step = int(steps[np.argmin(np.abs(steps - REPRODUCTION["step"]))])
    m0, m1 = (_accuracy_at(metrics, v, step)[0] for v in (plain, with_bn))
    if not (np.isfinite(m0) and np.isfinite(m1)):
        return cannot_judge(name, claim, theirs, f"a network has no value at {step:,} steps")
    checks = {
        f"BN rounds to {REPRODUCTION['bn']:.2f}": round(m1, 2) == REPRODUCTION["bn"],
        f"no BN within {lo}-{hi}": lo <= round(m0, 3) <= hi,
        "BN ahead": m1 > m0,
    }
    ours = f"BN {m1:.4f}, no BN {m0:.4f} at {step:,} steps (gap {m1 - m0:+.4f}; " + ", ".join(
        f"{what}: {'yes' if ok else 'no'}" for what, ok in checks.items()
    )
    ours += _setup_differs(config or {}) + ")"
    return Verdict(name, claim, theirs, ours, count_word(sum(checks.values()), len(checks)))


def pre_bnlab_verdict(metrics: dict[str, Any], plain: str, with_bn: str, m: Measurement) -> Verdict:
    name = f"bnlab's first measurement ({m.preset} setup)"
    claim = f"{m.setup}: " + ", ".join(
        f"{s // 1000}k {b0:.4f} / {b1:.4f}"
        for s, b0, b1 in zip(m.steps, m.baseline, m.bn, strict=True)
    )
    theirs = "BN - no BN: " + ", ".join(
        f"{b1 - b0:+.4f}" for b0, b1 in zip(m.baseline, m.bn, strict=True)
    )
    gaps = []
    for step, b0, b1 in zip(m.steps, m.baseline, m.bn, strict=True):
        m0, m1 = (_accuracy_at(metrics, v, step)[0] for v in (plain, with_bn))
        if np.isfinite(m0) and np.isfinite(m1):
            gaps.append((m1 - m0, b1 - b0))
    if not gaps:
        return cannot_judge(name, claim, theirs, "our run has none of these steps")
    ours = "BN - no BN: " + ", ".join(f"{g:+.4f}" for g, _ in gaps)
    same = sum((g > 0) == (t > 0) for g, t in gaps)
    ours += f"; the same network leads at {same} of {len(gaps)} of these steps"
    return Verdict(name, claim, theirs, ours, count_word(same, len(gaps)))


def verdicts(
    metrics: dict[str, Any],
    plain: str | None,
    with_bn: str | None,
    preset: str | None,
    config: dict[str, Any] | None = None,
) -> list[Verdict]:
    """Each claim about Figure 1 with our numbers beside it, for the networks named ``plain``
    (without BN) and ``with_bn`` (the first measurement only for the preset it was made with;
    ``config`` lets a comparison say when the setups differ)."""
    if plain is None or with_bn is None:
        return []
    accuracy = [
        accuracy_verdict(metrics, plain, with_bn),
        reproduction_verdict(metrics, plain, with_bn, config),
    ]
    accuracy += [
        pre_bnlab_verdict(metrics, plain, with_bn, m) for m in PRE_BNLAB if m.preset == preset
    ]
    stuck = _stuck_at_chance(metrics, (plain, with_bn))
    if stuck:
        # an accuracy compared with a network that learned nothing says nothing about BN
        accuracy = [cannot_judge(v.name, v.claim, v.theirs, stuck) for v in accuracy]
    return [accuracy[0], drift_verdict(metrics, plain, with_bn), *accuracy[1:]]


def _stuck_at_chance(metrics: dict[str, Any], variants: tuple[str, str]) -> str:
    """Why the accuracy comparisons cannot be judged ("" when both networks left chance)."""
    stuck = [
        f"{variant} seed {seed} never left chance (best test accuracy {best:.4f} < "
        f"{S.CHANCE_LEVEL:g})"
        for variant in variants
        for seed, best in S.at_chance(metrics, variant)
    ]
    return "; ".join(stuck)


def measured_paragraph(
    found: list[Verdict], metrics: dict[str, Any], config: dict[str, Any]
) -> str:
    """One paragraph, generated from the verdicts, saying where our numbers agree."""
    if not found:
        return "The run has no pair of networks without and with BN, so no claim is compared."
    seeds = len({r["seed"] for r in metrics["runs"]})
    last = max(max(r["steps"], default=0) for r in metrics["runs"])
    lead = f"We trained {seeds} seed{'s' if seeds != 1 else ''} of each network for {last:,} steps"
    lead += f" (preset `{config['preset']}`)." if config.get("preset") else "."
    if seeds == 1:
        lead += " With one seed the seed-to-seed spread is unknown, so small gaps may be noise."
    return f"{lead} " + " ".join(v.sentence() for v in found)
