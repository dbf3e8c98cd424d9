"""report.md of an analysis: setup, figures, the numbers, and each paper claim beside what this
run measured (computed by :mod:`bnlab.experiments.analyses.verdicts`, agreeing or not).

``render_analysis_report`` takes loaded JSON (config, metrics, timing), so ``bnlab report DIR...``
renders a finished run directory the same way the run itself did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bnlab.experiments.analyses import lr_table as L
from bnlab.experiments.analyses import verdicts as V
from bnlab.experiments.analyses.verdicts import final_accuracy
from bnlab.outputs import report as R
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.claims import AGREEMENT, Verdict
from bnlab.outputs.files import atomic_write_text

# below this final test accuracy a network is called "far from trained" in the report
UNTRAINED = 0.9
TITLES = {
    "noisy-bn": "BN with noise injected after it (Santurkar et al. 2018, Sec. 2.1, Fig. 2)",
    "ics": "internal covariate shift through gradients (Santurkar et al. 2018, Def. 2.1, Fig. 3)",
    "landscape": "the loss landscape along the gradient (Santurkar et al. 2018, Sec. 3.1, Fig. 4)",
    "lp-norm": "l_p normalization beside BN (Santurkar et al. 2018, Sec. 3.3)",
    "lr-sweep": "higher learning rates with BN (Ioffe & Szegedy 2015, Sec. 4.2.2)",
}
NETWORKS = {
    "baseline": "the paper preset's 3 x 100 sigmoid MLP without normalization",
    "bn": "the same with BN before each sigmoid (no bias in front of BN)",
    "noisy_bn": "BN, then in training each value a <- s a + m with noise drawn per layer and step",
    "baseline_noisy": "no BN, the same noise added in front of each sigmoid",
    "lp1": "BN's place taken by l1 normalization: (x - mean) / mean|x - mean|",
    "lp2": "l2 normalization: (x - mean) / sqrt(mean (x - mean)^2) (BN's normalization)",
    "lpinf": "l∞ normalization: (x - mean) / max|x - mean|",
}
FIGURES = {
    "noisy-bn": ("accuracy_percentiles", "test accuracy, and one last-layer sigmoid's input"),
    "ics": ("ics", "ICS per layer"),
    "landscape": ("landscape", "the loss landscape along the gradient"),
    "lp-norm": ("landscape", "the loss landscape along the gradient"),
}
NOTES = {
    "noisy-bn": "The percentile panels show the input of the same typical last-layer sigmoid as "
    "Figure 1 (chosen at initialisation), taken in training mode over {probe} training batches "
    "with a fresh noise draw at each evaluation, as a training step sees it; test accuracy is "
    "measured without noise (the noise is a training perturbation, like dropout).",
    "ics": "G and G' are the gradients of each Dense layer's weight matrix on a fixed probe batch "
    "(the first training batch) in training mode; G' after the layers below took the SGD step "
    "that G itself gives. Layer 1 has nothing below it: its ICS is 0 by definition.",
    "landscape": "At each evaluation, on a fixed probe batch (the first training batch) in "
    "training mode, the parameters move along -g by each step size; the bands show the range "
    "over the step sizes (mean over seeds).",
}
NOTES["lp-norm"] = NOTES["landscape"]


def _md_list(values: dict[str, float], fmt: str) -> list[str]:
    return [format(v, fmt) if np.isfinite(v) else "—" for v in values.values()]


def _accuracy_section(metrics: dict[str, Any]) -> str:
    return (
        "Test accuracy, mean ± sample std (ddof=1) over seeds, at evaluation steps through "
        "training:\n\n" + T.accuracy_table(metrics)
    )


def _with_accuracy(intro: str, head: list[str], rows: list[list[str]], metrics) -> str:
    """A table of the analysis's numbers (after ``intro``), then the accuracy table."""
    table = T.md_table(head, rows)
    return (f"{intro}\n\n" if intro else "") + table + "\n\n" + _accuracy_section(metrics)


def _ics_section(metrics: dict[str, Any]) -> str:
    layers = sorted(metrics["runs"][0]["ics"]["distance"], key=int)
    rows = []
    for k in layers:
        row = [k]
        for v in ("baseline", "bn"):
            dist = V.overall_mean(metrics, v, f"ics.distance.{k}")
            norm = V.overall_mean(metrics, v, f"ics.grad_norm.{k}")
            cos = V.overall_mean(metrics, v, f"ics.cosine.{k}")
            rel = dist / norm if norm > 0 else float("nan")
            row += [f"{dist:.4g}", f"{rel:.3f}", f"{cos:.3f}"]
        rows.append(row)
    head = ["layer"] + [
        f"{S.label(v)}: {m}" for v in ("baseline", "bn") for m in ("‖G-G'‖", "/‖G‖", "cos")
    ]
    return _with_accuracy("Mean over evaluations and seeds, per layer:", head, rows, metrics)


def _landscape_section(metrics: dict[str, Any]) -> str:
    rows = []
    for v in S.variants(metrics):
        rows.append([S.label(v), *_md_list(V._smoothness(metrics, v), ".4g")])
    head = ["network", "loss range", "max gradient change", "effective beta-smoothness"]
    return _with_accuracy("Mean over evaluations and seeds:", head, rows, metrics)


def _noisy_section(metrics: dict[str, Any]) -> str:
    rows = [
        [S.label(v), f"{final_accuracy(metrics, v):.4f}", f"{V.instability(metrics, v):.3f}"]
        for v in S.variants(metrics)
    ]
    head = ["network", "final test accuracy (mean)", "mean percentile move per evaluation"]
    return _with_accuracy("", head, rows, metrics)


def sweep_variants(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """network-xM -> {"network", "multiplier", "lr"}, in the order the runs were trained."""
    out: dict[str, dict[str, Any]] = {}
    for run in metrics["runs"]:
        net = run["variant"].rpartition("-x")[0]
        out.setdefault(
            run["variant"],
            {
                "network": "BN" if net == "bn" else net,
                "multiplier": run["lr_multiplier"],
                "lr": run["lr"],
            },
        )
    return dict(
        sorted(out.items(), key=lambda kv: (kv[1]["network"] != "baseline", kv[1]["multiplier"]))
    )


def sweep_target(metrics: dict[str, Any], config: dict[str, Any]) -> float:
    if config.get("target", "baseline") != "baseline":
        return float(config["target"])
    reference = min(
        (v for v, info in sweep_variants(metrics).items() if info["network"] == "baseline"),
        key=lambda v: sweep_variants(metrics)[v]["multiplier"],
    )
    return L.default_target(metrics, reference)


def _sweep_section(metrics: dict[str, Any], config: dict[str, Any]) -> str:
    target = sweep_target(metrics, config)
    how = (
        "the best test accuracy that every seed of the lowest-lr baseline reaches (as the "
        "paper's target is the baseline Inception's best accuracy)"
        if config.get("target", "baseline") == "baseline"
        else "a fixed level (--target); `--target baseline` uses the paper's definition, the "
        "x1 baseline's best accuracy"
    )
    rows = L.sweep_rows(metrics, sweep_variants(metrics), target)
    return (
        f"Target test accuracy {target:.4f}: {how}. Steps are the first evaluation step at or "
        "above the target (mean ± std over the seeds that reach it); a seed whose loss became "
        "NaN/inf counts only as diverged.\n\n" + L.markdown_table(rows, target)
    )


def analysis_verdicts(config: dict[str, Any], metrics: dict[str, Any]) -> list[Verdict]:
    kind = config["analysis"]
    if kind == "noisy-bn":
        return V.noisy_bn_verdicts(metrics)
    if kind == "ics":
        layers = sorted(metrics["runs"][0]["ics"]["distance"], key=int)[1:]
        return V.ics_verdicts(metrics, layers)
    if kind == "landscape":
        return V.landscape_verdicts(metrics, ["bn"])
    if kind == "lp-norm":
        return V.lp_norm_verdicts(metrics, ["lp1", "lp2", "lpinf"])
    target = sweep_target(metrics, config)
    return V.lr_sweep_verdicts(L.sweep_rows(metrics, sweep_variants(metrics), target), target)


def _results_section(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    kind = config["analysis"]
    if kind == "noisy-bn":
        return _noisy_section(metrics)
    if kind == "ics":
        return _ics_section(metrics)
    if kind in ("landscape", "lp-norm"):
        return _landscape_section(metrics)
    return _sweep_section(metrics, config)


THRESHOLDS = {
    "ics": f"'Similar' ICS means at least {V.ICS_SIMILAR} x the standard network's.",
    "landscape": f"'Orders of magnitude' agrees from a ratio of {V.ORDER_OF_MAGNITUDE:g}.",
    "lp-norm": f"'As well as BN' means a final test accuracy at most {V.AS_WELL_AS_BN} below BN's.",
}


def _claims_section(kind: str, found: list[Verdict]) -> str:
    rows = [[v.name, v.theirs, v.ours, AGREEMENT[v.agrees]] for v in found]
    sources = "\n".join(f"- {v.name}: {v.claim}" for v in found)
    parts = [T.md_table(["claim", "theirs", "ours", "verdict"], rows), "Sources:", sources]
    return "\n\n".join(parts + ([THRESHOLDS[kind]] if kind in THRESHOLDS else []))


def _measured_paragraph(config: dict[str, Any], metrics: dict[str, Any], found) -> str:
    seeds = len({r["seed"] for r in metrics["runs"]})
    steps = max(max(r["steps"], default=0) for r in metrics["runs"])
    lead = (
        f"We trained {seeds} seed(s) of each network for {steps:,} steps of the `paper` preset "
        "(an MLP on MNIST, not the papers' VGG/CIFAR-10 or Inception/ImageNet, and fewer steps "
        "than the paper's 50,000), so agreement here is about the direction of each effect."
    )
    body = " ".join(f"{v.name}: {v.ours}; this {AGREEMENT[v.agrees]}." for v in found)
    slow = {v: final_accuracy(metrics, v) for v in S.variants(metrics)}
    slow = {v: a for v, a in slow.items() if a < UNTRAINED}
    if slow:
        which = ", ".join(f"{S.label(v)} ({a:.4f})" for v, a in slow.items())
        body += (
            f" Caveat: at the end some networks are still far from trained (final test accuracy "
            f"below {UNTRAINED}): {which}. With the paper preset's tiny initial weights a sigmoid "
            "network without normalization spends its first thousands of steps on a plateau "
            "where gradients are small and the loss changes little, so measures of it there "
            "describe that slow phase rather than a trained network."
        )
    return f"{lead} {body}"


def _setup(config: dict[str, Any]) -> str:
    rows = R.setup_rows(config)
    rows.append(["networks", ", ".join(config["networks"])])
    kind = config["analysis"]
    if kind == "noisy-bn":
        rows.append(["noise", ", ".join(f"{k} {v:g}" for k, v in config["noise"].items())])
    if kind in ("landscape", "lp-norm"):
        multipliers = ", ".join(f"{m:g}" for m in config["landscape"]["multipliers"])
        rows.append(["step sizes (x lr)", multipliers])
    if kind == "lr-sweep":
        rows.append(["lr multipliers", ", ".join(f"{m:g}" for m in config["lr_multipliers"])])
    networks = T.md_table(
        ["network", "label", "what it is"],
        [[n, S.label(n), NETWORKS[n]] for n in config["networks"]],
    )
    return (
        T.md_table(["setting", "value"], rows)
        + "\n\nThe full resolved configuration is in `config.json`.\n\n"
        + networks
    )


def render_analysis_report(
    config: dict[str, Any], metrics: dict[str, Any], timing: dict[str, Any]
) -> str:
    kind = config["analysis"]
    found = analysis_verdicts(config, metrics)
    parts = [f"# bnlab analyze {kind}: {TITLES[kind]}", "## Setup", _setup(config)]
    parts += (
        ["## Figures", "![test accuracy](accuracy.png)"] if kind != "noisy-bn" else ["## Figures"]
    )
    if kind in FIGURES:
        stem, alt = FIGURES[kind]
        parts.append(f"![{alt}]({stem}.png)")
    if kind in NOTES:
        parts.append(NOTES[kind].format(probe=config.get("probe_batches")))
    parts += [
        "## Results",
        _results_section(config, metrics),
        "## The papers' claims beside this run",
        _claims_section(kind, found),
        "## What we measured",
        _measured_paragraph(config, metrics, found),
        "## Diverged runs",
        R._diverged_section(metrics),
        R._timing_section(timing),
    ]
    if "total_s" in timing:
        parts.append(
            f"This analysis took {timing['total_s']:.0f} s from start to report (interpreter "
            "start-up not included); bnlab's goal for each analysis at its default size is under "
            "3 minutes on a 2-core machine."
        )
    return "\n\n".join(parts) + "\n"


def write_analysis_report(
    out_dir: Path, config: dict[str, Any], metrics: dict[str, Any], timing: dict[str, Any]
) -> Path:
    path = Path(out_dir) / R.REPORT_FILE
    atomic_write_text(path, render_analysis_report(config, metrics, timing))
    return path
