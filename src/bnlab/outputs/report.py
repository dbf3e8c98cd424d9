"""report.md: what was run, what came out, and how it compares with the paper's claims.

``render_report`` takes an already loaded config and metrics (``bnlab.outputs.rundir``), so the
same renderer serves ``bnlab reproduce`` at the end of a run and ``bnlab report DIR...`` later.
Every statement about agreement is computed from the metrics (``bnlab.outputs.claims``).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import jax

from bnlab.outputs import claims as C
from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S
from bnlab.outputs.figures import FIGURE_STEM
from bnlab.outputs.files import atomic_write_text

REPORT_FILE = "report.md"
EVAL_STATISTICS = (
    'during training, the moving averages (Algorithm 2: "using moving averages instead, we can '
    "track the accuracy of a model as it trains\"); at the end, Algorithm 2's population "
    "statistics, and for comparison the test batch's own statistics (batch {batch} and 1), as the "
    "notebook's layer did"
)
PAPER_CHOICES = (
    "The paper gives no learning rate, optimiser, weight scale or binarization threshold. The "
    "`paper` preset chooses plain SGD with lr 0.5 (with lr 0.1 the baseline, whose tiny initial "
    "weights give vanishing sigmoid gradients, is still near chance after 10k steps; public "
    'reproductions of Figure 1 also use SGD lr 0.5), weights N(0, 0.01^2) ("small random '
    'Gaussian values") with zero biases and no bias in front of BN (Section 3.2: the mean '
    'subtraction cancels it), and a pixel threshold of 0.5 of the range for the "binary image". '
    "This run's values are in the table above."
)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_show(v) for v in value) if value else "none"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _init(c: dict[str, Any]) -> str:
    if c.get("init") == "gaussian":
        return f"gaussian N(0, {_show(c.get('init_std'))}^2), zero biases"
    return f"{c.get('init')} (Keras's Dense default), zero biases"


def _input(c: dict[str, Any]) -> str:
    if c.get("input") == "binary":
        return f"binary: 1 where pixel / 255 > {_show(c.get('threshold'))}, else 0"
    return "pixel / 255, in [0, 1]"


def _optimizer(c: dict[str, Any]) -> str:
    name = str(c.get("optimizer"))
    if name == "rmsprop":
        details = f"rho {_show(c.get('rho'))}, eps {_show(c.get('opt_eps'))}"
        details += f", momentum {_show(c['momentum'])}" if c.get("momentum") else ", no momentum"
        return f"RMSprop ({details})"
    return "SGD" + (f" with momentum {_show(c['momentum'])}" if c.get("momentum") else "")


def _bn(c: dict[str, Any]) -> str:
    place = {"before": "before", "after": "after"}.get(c.get("bn_placement"), "?")
    bias = "kept (as the notebook)" if c.get("bias_before_bn") else "dropped (as the paper)"
    return f"{place} each {c.get('activation', 'activation')}; Dense bias in front of BN {bias}"


# (label, config keys the row shows, how to write it); rows whose keys are absent are left out.
SETUP_ROWS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("preset", ("preset",), lambda c: _show(c["preset"])),
    ("networks", ("variants",), lambda c: _show(c["variants"])),
    (
        "hidden layers",
        ("hidden", "activation"),
        lambda c: f"{_show(c['hidden'])} units, {c['activation']}",
    ),
    ("weight init", ("init", "init_std"), _init),
    ("input", ("input", "threshold"), _input),
    ("optimiser", ("optimizer", "rho", "opt_eps", "momentum"), _optimizer),
    ("learning rate", ("lr",), lambda c: _show(c["lr"])),
    ("batch size", ("batch_size",), lambda c: _show(c["batch_size"])),
    ("training steps", ("steps",), lambda c: f"{c['steps']:,}"),
    ("evaluation every", ("eval_every",), lambda c: f"{c['eval_every']:,} steps"),
    (
        "seeds",
        ("seeds", "first_seed"),
        lambda c: f"{c['seeds']} (from seed {c.get('first_seed', 0)})",
    ),
    ("BN placement", ("bn_placement", "bias_before_bn"), _bn),
    ("BN eps", ("bn_eps",), lambda c: _show(c["bn_eps"])),
    (
        "BN momentum",
        ("bn_momentum",),
        lambda c: f"{_show(c['bn_momentum'])} (weight of the newest batch, PyTorch's convention)",
    ),
    (
        "evaluation statistics",
        ("batch_size",),
        lambda c: EVAL_STATISTICS.format(batch=c["batch_size"]),
    ),
    ("data", ("data_dir",), lambda c: c["data_dir"] or "the embedded MNIST"),
    (
        "histograms",
        ("hist_examples",),
        lambda c: (
            f"hidden-layer values of the first {c['hist_examples']} test images (TensorBoard)"
        ),
    ),
)


def setup_rows(config: dict[str, Any]) -> list[list[str]]:
    """Each known setting in words, then any other top-level setting as it is."""
    rows, shown = [], set()
    without_bn = config.get("variants") == ["baseline"]
    for label, keys, write in SETUP_ROWS:
        if keys[0] in config and not (without_bn and label.startswith("BN")):
            rows.append([label, write(config)])
            shown.update(keys)
    rows += [[key, _show(value)] for key, value in config.items() if key not in shown]
    return rows


def machine_info() -> dict[str, Any]:
    """CPU model, core count, OS and library versions of this machine, for ``timing``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_device": str(jax.devices()[0]),
    }


def _timing_section(timing: dict[str, Any]) -> str:
    """Phases in seconds (keys ending in "_s"), the wall time, peak memory and the machine."""
    machine = {**machine_info(), **(timing.get("machine") or {})}
    phases = {k: v for k, v in timing.items() if k.endswith("_s") and isinstance(v, int | float)}
    lines = ["## Time and machine", ""]
    if phases:
        rows = [[k.removesuffix("_s").replace("_", " "), f"{v:.1f}"] for k, v in phases.items()]
        lines += [T.md_table(["phase", "seconds"], rows), ""]
        if "total_s" in phases:
            lines.append(f"Wall time: {phases['total_s']:.1f} s.")
        else:
            wall = sum(phases.values())
            lines.append(f"Wall time up to writing this report: {wall:.1f} s.")
    if isinstance(timing.get("peak_rss_mb"), int | float):
        lines.append(f"Peak memory (RSS): {timing['peak_rss_mb']:,.0f} MB.")
    lines.append(
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['os']}; "
        f"Python {machine['python']}, JAX {machine['jax']} on {machine['jax_device']}"
        + (f" ({timing['devices']} CPU devices)." if timing.get("devices") else ".")
    )
    return "\n".join(lines)


def _units_sentence(metrics: dict[str, Any]) -> str:
    """Which sigmoid panels (b, c) follow, per variant and seed, when the engine recorded it."""
    units = [
        f"{S.label(v)} seed {r['seed']}: unit {r['percentile_unit']}"
        for v in S.variants(metrics)
        for r in S.runs_of(metrics, v)
        if "percentile_unit" in r
    ]
    if not units:
        return ""
    return (
        "Panels (b, c) follow one typical sigmoid of the last hidden layer, fixed before training: "
        "the unit whose median input over the test set at initialisation is the middle one of all "
        "units' medians (the lower middle for an even count), so neither a saturated unit nor an "
        "outlier (" + "; ".join(units) + "); the percentiles are over the whole test set."
    )


def _diverged_section(metrics: dict[str, Any]) -> str:
    lines = [
        f"- {S.label(v)}, seed {seed}: diverged at step {step:,} (the loss became NaN or inf); "
        f"its curves end there and it is left out of the means from that step."
        for v in S.variants(metrics)
        for seed, step in S.diverged(metrics, v)
    ]
    return "\n".join(lines) if lines else "No run diverged."


def _claims_section(verdicts: list[C.Verdict], metrics: dict[str, Any], preset: Any) -> str:
    if not verdicts:
        return "No pair of networks without and with BN to compare."
    rows = [[v.name, v.theirs, v.ours, C.AGREEMENT[v.agrees]] for v in verdicts]
    sources = "\n".join(f"- {v.name}: {v.claim}" for v in verdicts)
    parts = [T.md_table(["claim", "theirs", "ours", "verdict"], rows), "Sources:", sources]
    plain, with_bn = C.roles(metrics)
    for m in C.PRE_BNLAB:
        if m.preset == preset:
            parts += [
                f"Test accuracy beside bnlab's first measurement, {m.setup}:",
                T.measurement_table(metrics, m, plain, with_bn),
            ]
    return "\n\n".join(parts)


def render_report(
    config: dict[str, Any],
    metrics: dict[str, Any],
    model_summaries: dict[str, list[tuple[str, str, int]]],
    timing: dict[str, Any],
) -> str:
    """The report as Markdown text (see the module docstring)."""
    preset = config.get("preset")
    verdicts = C.verdicts(metrics, preset, config)
    bn_variant = C.roles(metrics)[1]
    why = T.batch_stats_sentence(metrics, bn_variant) if bn_variant else ""
    seeds = sorted({r["seed"] for r in metrics["runs"]})
    parts = [
        "# bnlab: Figure 1 of Ioffe & Szegedy (2015)" + (f", preset `{preset}`" if preset else ""),
        "## Setup",
        T.md_table(["setting", "value"], setup_rows(config))
        + (f"\n\n{PAPER_CHOICES}" if preset == "paper" else "")
        + "\n\nThe resolved configuration is in `config.json`.",
        "## Models",
        "\n\n".join(T.model_table(name, layers) for name, layers in model_summaries.items()),
        "## Figure 1",
        f"![Figure 1: test accuracy, and the last-layer sigmoid input without and with BN]"
        f"({FIGURE_STEM}.png)" + (f"\n\n{units}" if (units := _units_sentence(metrics)) else ""),
        "## Test accuracy during training",
        "Mean ± sample standard deviation (ddof=1) over the seeds "
        f"({', '.join(map(str, seeds))}), at the evaluation steps nearest to each checkpoint; "
        "BN networks are evaluated with their moving-average statistics during training.\n\n"
        + T.accuracy_table(metrics),
        "## Final evaluation",
        T.finals_table(metrics) + (f"\n\n{why}" if why else ""),
        "## Diverged runs",
        _diverged_section(metrics),
        "## Beside the paper and other measurements",
        _claims_section(verdicts, metrics, preset),
        "## What we measured",
        C.measured_paragraph(verdicts, metrics, config),
        _timing_section(timing),
    ]
    return "\n\n".join(parts) + "\n"


def write_report(
    out_dir: Path,
    config: dict[str, Any],
    metrics: dict[str, Any],
    model_summaries: dict[str, list[tuple[str, str, int]]],
    timing: dict[str, Any],
) -> Path:
    """Write ``out_dir``/report.md atomically and return its path."""
    path = Path(out_dir) / REPORT_FILE
    atomic_write_text(path, render_report(config, metrics, model_summaries, timing))
    return path
