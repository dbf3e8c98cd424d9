"""Where a group's runs live: one CPU device per group, or the run axis sharded over a mesh.

XLA runs one program at a time per device; splitting the host into several CPU devices lets the
two networks of Figure 1 train side by side on two cores (about 2x on this project's 2-core
machine). The split must be configured before JAX starts its backend; when it already has, the
devices that exist are used (groups then share them and run one after the other).

A sweep instead shards each group's run axis over a :class:`jax.sharding.Mesh` with one axis,
``"runs"``: every device (of every host, under ``jax.distributed``) trains its slice of the runs,
and the data is replicated. Runs are independent, so the compiled program needs no communication
until the results are gathered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

from bnlab.errors import ConfigError

RUNS = "runs"


def cpu_devices(wanted: int) -> list[jax.Device]:
    """Up to ``wanted`` CPU devices, at most one per core."""
    n = max(1, min(wanted, os.cpu_count() or 1))
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        pass  # the backend is already running: keep its devices
    return jax.devices("cpu")[:n]


def run_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh ("runs") over ``devices``; default: every device of every process."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (RUNS,))


def default_mesh(devices: int | None = None) -> Mesh:
    """A "runs" mesh over the first ``devices`` (default: all) devices of every process; on a
    CPU-only host, one CPU device per core unless XLA_FLAGS already sets a count."""
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        cpu_devices(os.cpu_count() or 1)  # before the backend starts; no effect after
    available = jax.devices()
    if devices is not None and not 1 <= devices <= len(available):
        raise ConfigError(f"--devices: expected 1 to {len(available)}, got {devices}")
    return run_mesh(available[:devices])


@dataclass(frozen=True)
class Placement:
    """Where arrays with a leading run axis go (``runs``), where the shared data goes
    (``shared``), and the number of devices the runs are split over (run counts are padded to a
    multiple of it)."""

    runs: jax.Device | Sharding
    shared: jax.Device | Sharding
    size: int = 1

    @classmethod
    def on_device(cls, device: jax.Device) -> Placement:
        return cls(device, device)

    @classmethod
    def over_mesh(cls, mesh: Mesh) -> Placement:
        return cls(
            NamedSharding(mesh, PartitionSpec(RUNS)),
            NamedSharding(mesh, PartitionSpec()),
            mesh.size,
        )

    def padded(self, n: int) -> int:
        return -(-n // self.size) * self.size


def put(tree: Any, where: jax.Device | Sharding) -> Any:
    """Host arrays onto a device or a sharding. For a sharding, every process passes the same
    values and each device takes its slice (``make_array_from_callback``), as multi-host needs."""
    if isinstance(where, jax.Device):
        return jax.device_put(tree, where)

    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, where, lambda index: x[index])

    return jax.tree.map(one, tree)


def fetch(tree: Any) -> Any:
    """Device arrays to host numpy arrays; arrays spread over several processes are gathered
    (every process must call this at the same point)."""

    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return np.asarray(jax.device_get(x))
        return multihost_utils.process_allgather(x, tiled=True)

    return jax.tree.map(one, tree)


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Keep compiled XLA programs on disk, so a second `bnlab reproduce` skips most compiling
    (about 10 s of CPU for the two Figure 1 networks). ``path`` default: $BNLAB_COMPILE_CACHE,
    else $XDG_CACHE_HOME/bnlab/xla or ~/.cache/bnlab/xla; the value "off" disables it."""
    setting = path if path is not None else os.environ.get("BNLAB_COMPILE_CACHE")
    if setting == "off":
        return None
    if setting is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        setting = Path(base) / "bnlab" / "xla"
    jax.config.update("jax_compilation_cache_dir", str(setting))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return Path(setting)
