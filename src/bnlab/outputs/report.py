"""The report sections every experiment shares: values in words, time and machine, diverged runs.

Each experiment writes its own report (its claims, its tables) from these and from
:mod:`bnlab.outputs.report_tables`; nothing here knows an experiment.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import jax

from bnlab.outputs import report_tables as T
from bnlab.outputs import series as S

REPORT_FILE = "report.md"


def show_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(show_value(v) for v in value) if value else "none"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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


def timing_section(timing: dict[str, Any]) -> str:
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


def diverged_section(metrics: dict[str, Any], labels: S.Labels) -> str:
    """One line per diverged run and per run that never left chance, or "No run diverged."."""
    lines = [
        f"- {labels[v]}, seed {seed}: diverged at step {step:,} ({S.DIVERGED_WHY}); "
        f"its curves end there and it is left out of the means from that step."
        for v in labels
        for seed, step in S.diverged(metrics, v)
    ]
    lines += [
        f"- {labels[v]}, seed {seed}: never left chance (best test accuracy {best:.4f}, below "
        f"{S.CHANCE_LEVEL:g}, twice a uniform guess); a comparison with it cannot be judged."
        for v in labels
        for seed, best in S.at_chance(metrics, v)
    ]
    return "\n".join(lines) if lines else "No run diverged; every run left chance."
