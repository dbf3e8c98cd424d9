"""CPU devices for the groups of a run: one XLA CPU device per core, so groups train in parallel.

XLA runs one program at a time per device; splitting the host into several CPU devices lets the
two networks of Figure 1 train side by side on two cores (about 2x on this project's 2-core
machine). The split must be configured before JAX starts its backend; when it already has, the
devices that exist are used (groups then share them and run one after the other).
"""

from __future__ import annotations

import os

import jax


def cpu_devices(wanted: int) -> list[jax.Device]:
    """Up to ``wanted`` CPU devices, at most one per core."""
    n = max(1, min(wanted, os.cpu_count() or 1))
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        pass  # the backend is already running: keep its devices
    return jax.devices("cpu")[:n]
