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
# Setup rows: a label and the config keys that may hold it, as dotted paths matched from the end
# ("lr" matches "optimizer.lr"), the most specific first; rows the config lacks are left out.
SETUP_ROWS = (
    ("preset", ("preset",)),
    ("optimiser", ("optimizer.name", "optimiser.name", "optimizer", "optimiser")),
    ("learning rate", ("optimizer.lr", "optimizer.learning_rate", "lr", "learning_rate")),
    ("optimiser settings", ("optimizer.rho", "optimizer.eps", "optimizer.momentum")),
    ("batch size", ("batch_size", "batch")),
    ("training steps", ("steps", "num_steps")),
    ("epochs", ("epochs",)),
    ("evaluation every", ("eval_every",)),
    ("seeds", ("seeds", "num_seeds")),
    ("layer sizes", ("layer_sizes", "model.layer_sizes", "hidden")),
    ("weight init", ("init", "weight_init", "model.init")),
    ("input scaling", ("input_scaling", "input", "binarize", "binary_threshold")),
    ("BN placement", ("bn_placement", "placement", "model.bn")),
    ("bias before BN", ("bias_before_bn", "use_bias", "bias")),
    ("BN eps", ("bn.eps", "bn_eps", "eps")),
    ("BN momentum", ("bn.momentum", "bn_momentum", "momentum")),
    ("evaluation statistics", ("eval_statistics", "eval_stats", "evaluation")),
    ("probe unit (Fig. 1 b, c)", ("probe_unit", "probe", "percentile_unit")),
)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: obj}


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " x ".join(_show(v) for v in value) if value else "[]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def setup_rows(config: dict[str, Any]) -> list[list[str]]:
    flat = _flatten(config)
    rows, used = [], set()
    for label, candidates in SETUP_ROWS:
        found: list[str] = []
        for cand in candidates:
            keys = [k for k in flat if (k == cand or k.endswith("." + cand)) and k not in used]
            used.update(keys)
            found += [f"{k.rsplit('.', 1)[-1]} {_show(flat[k])}" for k in keys]
            if keys and label != "optimiser settings":
                # One value per row: drop the key name that the label already says.
                found = [_show(flat[keys[0]])]
                break
        if found:
            rows.append([label, ", ".join(found)])
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
    machine = {**machine_info(), **(timing.get("machine") or {})}
    seconds = [[k, f"{v:.1f}"] for k, v in timing.items() if isinstance(v, int | float)]
    lines = ["## Time and machine", ""]
    if seconds:
        lines += [T.md_table(["phase", "seconds"], seconds), ""]
    lines.append(
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['os']}; "
        f"Python {machine['python']}, JAX {machine['jax']} on {machine['jax_device']}."
    )
    return "\n".join(lines)


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
    verdicts = C.verdicts(metrics, preset)
    bn_variant = C.roles(metrics)[1]
    why = T.batch_stats_sentence(metrics, bn_variant) if bn_variant else ""
    seeds = sorted({r["seed"] for r in metrics["runs"]})
    parts = [
        "# bnlab: Figure 1 of Ioffe & Szegedy (2015)" + (f", preset `{preset}`" if preset else ""),
        "## Setup",
        T.md_table(["setting", "value"], setup_rows(config))
        + "\n\nThe full resolved configuration is in `config.json`.",
        "## Models",
        "\n\n".join(T.model_table(name, layers) for name, layers in model_summaries.items()),
        "## Figure 1",
        f"![Figure 1: test accuracy, and the last-layer sigmoid input without and with BN]"
        f"({FIGURE_STEM}.png)",
        "## Test accuracy during training",
        f"Mean ± sample standard deviation (ddof=1) over {len(seeds)} seed(s) "
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
