"""How a sweep's programs train the runs each device holds: the sweep file's ``layout``, "auto"
(the default), "vmapped" or "sequential" (:data:`bnlab.engine.programs.Layout`).

The two layouts do not give bit-identical numbers on XLA:CPU in float32: vmapped, XLA fuses the
per-run reductions (the batch mean of the loss, BN's moments) of the runs a device holds, and
their rounding depends on how many it holds; sequential, each run's numbers are those it has
trained alone (tests/test_engine_layout.py measures the bound). So "auto" does not time the two
on the machine at hand, which would let two machines of the same kind train different bits: it
looks the program up in :data:`MEASURED`, a table per device platform measured with
benchmarks/sweep_layout.py and shipped here, and takes the layout that was faster (sequential
by at least :data:`MARGIN`) at the measured point nearest to the program (the nearest device
count, then the nearest runs, width and batch, each on a log scale). A platform with no table
(gpu, tpu) gets "vmapped": nothing is measured there yet, and batched operations are what
accelerators are built for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from bnlab.engine.programs import LAYOUTS, Layout
from bnlab.errors import ConfigError
from bnlab.experiments.config import ExperimentConfig, brief_repr

SWEEP_LAYOUTS = ("auto", *LAYOUTS)
# sequential is chosen only where it measured this much faster: the cpu rows were measured on a
# shared 2-core machine, where the same point varied by about 10% between invocations; below
# that, the long-standing vmapped layout stays
MARGIN = 1.05


def check_setting(source: str, value: Any) -> str:
    """The sweep file's ``layout``; else a one-line ConfigError naming the file and the field."""
    if not isinstance(value, str) or value not in SWEEP_LAYOUTS:
        expected = ", ".join(f'"{v}"' for v in SWEEP_LAYOUTS)
        got = brief_repr(value)
        raise ConfigError(f"{source}: layout: expected one of {expected}, got {got}")
    return value


@dataclass(frozen=True)
class Measured:
    """One point of benchmarks/sweep_layout.py: K runs of the 784-W-W-W-10 BN network, batch B,
    sharded over D devices, in runs x steps per second for each layout."""

    devices: int
    runs: int
    width: int
    batch: int
    vmapped: float
    sequential: float

    @property
    def faster(self) -> Layout:
        """Sequential where it was at least :data:`MARGIN` faster; else vmapped."""
        return "sequential" if self.sequential >= MARGIN * self.vmapped else "vmapped"


# benchmarks/sweep_layout.py --work 3000 --rounds 3 on the 2-core development machine (XLA:CPU,
# JAX 0.10.2), three invocations merged (--merge: each layout's fastest of 6 or 9 rounds; the
# machine was shared with other work); docs/sweep_layout.json holds the same rows
MEASURED: dict[str, tuple[Measured, ...]] = {
    "cpu": (
        Measured(1, 2, 100, 60, 2532, 2407),
        Measured(1, 4, 100, 60, 2536, 2315),
        Measured(1, 16, 100, 60, 1973, 1906),
        Measured(1, 64, 100, 60, 1781, 1335),
        Measured(1, 4, 1600, 60, 53, 54),
        Measured(1, 4, 100, 1024, 190, 188),
        Measured(1, 16, 400, 256, 75, 118),
        Measured(2, 2, 100, 60, 2508, 3986),
        Measured(2, 4, 100, 60, 3938, 3897),
        Measured(2, 16, 100, 60, 2852, 3236),
        Measured(2, 64, 100, 60, 2543, 3309),
        Measured(2, 4, 1600, 60, 57, 55),
        Measured(2, 4, 100, 1024, 254, 261),
        Measured(2, 16, 400, 256, 149, 165),
    ),
}


@dataclass(frozen=True)
class Choice:
    """A program's layout and why: "set" (the sweep file names it), "measured" (the nearest
    point of the platform's table, ``point``) or "unmeasured" (no table for the platform)."""

    layout: Layout
    reason: str
    point: Measured | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "reason": self.reason,
            "measured": asdict(self.point) if self.point is not None else None,
        }


def choose_layout(
    setting: str, platform: str, devices: int, runs: int, width: int, batch: int
) -> Choice:
    """The layout of a program of ``runs`` runs of width ``width`` (its widest hidden layer) and
    batch ``batch`` on ``devices`` devices of ``platform`` (jax.Device.platform), for the sweep
    file's ``setting``."""
    if setting != "auto":
        return Choice(setting, "set")  # type: ignore[arg-type]
    table = MEASURED.get(platform, ())
    if not table:
        return Choice("vmapped", "unmeasured")
    nearest_devices = min({p.devices for p in table}, key=lambda d: (abs(d - devices), d))

    def distance(p: Measured) -> float:
        return sum(
            abs(math.log2(a / b)) for a, b in ((p.runs, runs), (p.width, width), (p.batch, batch))
        )

    point = min((p for p in table if p.devices == nearest_devices), key=distance)
    return Choice(point.faster, "measured", point)


def program_layout(
    setting: str, config: ExperimentConfig, runs: int, platform: str, devices: int
) -> Choice:
    """:func:`choose_layout` for a program of ``runs`` runs trained with ``config``."""
    width = max(config.hidden, default=1)
    return choose_layout(setting, platform, devices, runs, width, config.batch_size)


def describe(choice: dict[str, Any]) -> str:
    """A choice (as timing.json holds it) in words: "sequential (set in the sweep file)"."""
    layout, point = choice["layout"], choice.get("measured")
    if choice["reason"] == "set":
        return f"{layout} (set in the sweep file)"
    if choice["reason"] == "unmeasured":
        return f"{layout} (layout auto: nothing measured on this platform yet)"
    return (
        f"{layout} (layout auto: measured nearest, {point['runs']} runs of width "
        f"{point['width']}, batch {point['batch']} on {point['devices']} device(s): "
        f"{point['vmapped']:,.0f} vmapped vs {point['sequential']:,.0f} sequential "
        "runs x steps/s)"
    )
