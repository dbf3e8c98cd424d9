"""report.md of a Figure 1 run: setup, models, the figure, test accuracy during training and at the
end (moving averages, Algorithm 2, batch statistics), and each claim beside what the run measured
(:mod:`bnlab.experiments.figure1.claims`). Rendered from loaded JSON, so ``bnlab report DIR...``
renders a finished run directory as the run did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bnlab.experiments.fields import setup_rows
from bnlab.experiments.figure1 import claims as C
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.report import diverged_section, timing_section
from bnlab.outputs.verdicts import Verdict, claims_section

FIGURE_STEM = "figure1"
CHANCE = 0.10
PAPER_CHOICES = (
    "The paper gives no learning rate, optimiser, weight scale or binarization threshold. The "
    "`paper` preset chooses plain SGD with lr 0.5 (with lr 0.1 the baseline, whose tiny initial "
    "weights give vanishing sigmoid gradients, is still near chance after 10k steps; public "
    'reproductions of Figure 1 also use SGD lr 0.5), weights N(0, 0.01^2) ("small random '
    'Gaussian values") with zero biases and no bias in front of BN (Section 3.2: the mean '
    'subtraction cancels it), and a pixel threshold of 0.5 of the range for the "binary image". '
    "This run's values are in the table above."
)


def _units_sentence(metrics: dict[str, Any], labels: S.Labels) -> str:
    """Which sigmoid panels (b, c) follow, per variant and seed, when the engine recorded it."""
    units = [
        f"{labels[v]} seed {r['seed']}: unit {r['percentile_unit']}"
        for v in labels
        for r in S.runs_of(metrics, v)
        if "percentile_unit" in r
    ]
    if not units:
        return ""
    convolutional = any("percentile_input" in r for r in metrics["runs"])
    followed = (
        "one typical channel of the last convolution (a channel's values are its activation's "
        "input at every position of every image, the paper's m' = m * p * q)"
        if convolutional
        else "one typical sigmoid of the last hidden layer"
    )
    return (
        f"Panels (b, c) follow {followed}, fixed before training: "
        "the unit whose median input over the test set at initialisation is the middle one of all "
        "units' medians (the lower middle for an even count), so neither a saturated unit nor an "
        "outlier (" + "; ".join(units) + "); the percentiles are over the whole test set."
    )


def _final(run: dict[str, Any], key: str) -> float:
    """A final number of a run; ``key`` may be "batch_stats_test_accuracy.60". NaN if absent."""
    value: Any = run
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else np.nan


def _last_accuracy(run: dict[str, Any]) -> float:
    values = [v for v in run.get("test_accuracy") or [] if v is not None]
    return float(values[-1]) if values and run.get("diverged_at") is None else np.nan


BATCH_STATS = "batch_stats_test_accuracy"


def batch_sizes(metrics: dict[str, Any]) -> list[str]:
    """The test batch sizes of the batch-statistics evaluations in the run, largest first."""
    found = {k for r in metrics["runs"] for k in (r.get(BATCH_STATS) or {})}
    return sorted(found, key=lambda k: -int(k) if k.isdigit() else 0)


def finals(metrics: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(row title, dotted key) of each final evaluation in the run; None: the last curve value."""
    rows: list[tuple[str, str | None]] = [
        ("last evaluation during training (moving averages)", None),
        ("Algorithm 2 population statistics", "population_test_accuracy"),
    ]
    for b in batch_sizes(metrics):
        rows.append((f"batch statistics, test batches of {b}", f"{BATCH_STATS}.{b}"))
    return rows


def final_values(metrics: dict[str, Any], variant: str, key: str | None) -> np.ndarray:
    runs = S.runs_of(metrics, variant)
    return np.array([_last_accuracy(r) if key is None else _final(r, key) for r in runs])


def finals_table(metrics: dict[str, Any], labels: S.Labels) -> str:
    """Final test accuracy of each variant under each evaluation it has numbers for."""
    names = list(labels)
    rows = []
    for title, key in finals(metrics):
        cells = []
        for v in names:
            values = final_values(metrics, v, key)
            diverged = [seed for seed, _ in S.diverged(metrics, v)]
            has_any = np.isfinite(values).any() or diverged
            cells.append(T.mean_std_cell(values, len(values), diverged) if has_any else "n/a")
        if any(c != "n/a" for c in cells):
            rows.append([title, *cells])
    return T.md_table(["test accuracy", *labels.values()], rows)


def batch_stats_sentence(metrics: dict[str, Any], variant: str) -> str:
    """Why evaluating with batch statistics (as the notebook did) misleads, with this run's numbers;
    empty when the run has no such evaluation at a training-size batch and at batch 1."""
    sizes = [b for b in batch_sizes(metrics) if b != "1"]
    if not sizes or "1" not in batch_sizes(metrics):
        return ""
    big = sizes[0]
    population, at_big, at_one = (
        S.mean_std(final_values(metrics, variant, key))[0]
        for key in ("population_test_accuracy", f"{BATCH_STATS}.{big}", f"{BATCH_STATS}.1")
    )
    if not np.isfinite([population, at_big, at_one]).all():
        return ""
    return (
        f"Evaluated with the batch's own statistics, as the notebook does, a test example's "
        f"prediction depends on the other examples in its batch: in test batches of {big} the BN "
        f"network scores {at_big:.4f} against {population:.4f} with Algorithm 2's population "
        f"statistics, and at batch 1 every normalised value is 0 (each example is its own batch "
        f"mean), so the network outputs one constant and scores {at_one:.4f} "
        f"(chance is {CHANCE:.2f})."
    )


def measurement_table(metrics: dict[str, Any], m: Any, plain: str, with_bn: str) -> str:
    """Our test accuracy beside an earlier measurement's (``claims.Measurement``), step by step."""
    curves = {v: S.series(metrics, v, "test_accuracy") for v in (plain, with_bn)}
    rows = []
    for step, b0, b1 in zip(m.steps, m.baseline, m.bn, strict=True):
        ours = [
            T.mean_std_cell(
                curves[v].at(step), len(curves[v].seeds), T.diverged_by(metrics, v, step)
            )
            for v in (plain, with_bn)
        ]
        rows.append([f"{step:,}", f"{b0:.4f}", ours[0], f"{b1:.4f}", ours[1]])
    header = ["steps", "then, without BN", "bnlab, without BN", "then, with BN", "bnlab, with BN"]
    return T.md_table(header, rows)


def _claims(
    found: list[Verdict], metrics: dict[str, Any], plain: str | None, with_bn: str | None, preset
) -> str:
    if not found:
        return "No pair of networks without and with BN to compare."
    parts = [claims_section(found)]
    for m in C.PRE_BNLAB:
        if m.preset == preset:
            parts += [
                f"Test accuracy beside bnlab's first measurement, {m.setup}:",
                measurement_table(metrics, m, plain, with_bn),
            ]
    return "\n\n".join(parts)


def render_report(
    config: dict[str, Any],
    metrics: dict[str, Any],
    labels: S.Labels,
    roles: tuple[str | None, str | None],
    model_summaries: dict[str, list[tuple[str, str, int, int]]],
    timing: dict[str, Any],
) -> str:
    """The report as Markdown; ``roles``: the names of the networks without and with BN."""
    preset = config.get("preset")
    plain, with_bn = roles
    verdicts = C.verdicts(metrics, plain, with_bn, preset, config)
    why = batch_stats_sentence(metrics, with_bn) if with_bn else ""
    seeds = sorted({r["seed"] for r in metrics["runs"]})
    units = _units_sentence(metrics, labels)
    parts = [
        "# bnlab: Figure 1 of Ioffe & Szegedy (2015)" + (f", preset `{preset}`" if preset else ""),
        "## Setup",
        T.md_table(["setting", "value"], setup_rows(config))
        + (f"\n\n{PAPER_CHOICES}" if preset == "paper" else "")
        + "\n\nThe resolved configuration is in `config.json`.",
        "## Models",
        "\n\n".join(
            T.model_table(labels.get(name, name), layers)
            for name, layers in model_summaries.items()
        ),
        "## Figure 1",
        f"![Figure 1: test accuracy, and the followed unit's input without and with BN]"
        f"({FIGURE_STEM}.png)" + (f"\n\n{units}" if units else ""),
        "## Test accuracy during training",
        "Mean ± sample standard deviation (ddof=1) over the seeds "
        f"({', '.join(map(str, seeds))}), at the evaluation steps nearest to each checkpoint; "
        "BN networks are evaluated with their moving-average statistics during training.\n\n"
        + T.accuracy_table(metrics, labels),
        "## Final evaluation",
        finals_table(metrics, labels) + (f"\n\n{why}" if why else ""),
        "## Diverged runs",
        diverged_section(metrics, labels),
        "## Beside the paper and other measurements",
        _claims(verdicts, metrics, plain, with_bn, preset),
        "## What we measured",
        C.measured_paragraph(verdicts, metrics, config),
        timing_section(timing),
    ]
    return "\n\n".join(parts) + "\n"
