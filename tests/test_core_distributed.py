"""Cross-device statistics (axis_name): two forced CPU devices in a subprocess, and a vmap axis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.core import batch_norm_train, init_state

HELPER = Path(__file__).parent / "helpers" / "two_devices.py"


@pytest.mark.parametrize("backward", ["paper", "autodiff"])
@pytest.mark.parametrize("shape", ["6,3", "2,3,3,4"], ids=["N,C", "N,H,W,C"])
def test_two_devices_equal_one_device_on_the_concatenated_batch(backward, shape):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, str(HELPER), backward, shape],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    diffs = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(diffs) == {"y", "running_mean", "running_var", "dx", "dgamma", "dbeta"}
    for name, value in diffs.items():
        assert value < 1e-12, (name, value)


def test_vmap_axis_statistics_equal_the_concatenated_batch(x64):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(4, 5, 3)))  # 4 shards of 5 examples
    state = init_state(3, jnp.float64)
    ys, states = jax.vmap(
        lambda x: batch_norm_train(x, None, None, state, axis_name="shards"), axis_name="shards"
    )(x)
    y1, state1 = batch_norm_train(x.reshape(20, 3), None, None, state)
    np.testing.assert_allclose(np.asarray(ys.reshape(20, 3)), np.asarray(y1), atol=1e-13)
    np.testing.assert_allclose(np.asarray(states.running_var[2]), np.asarray(state1.running_var))
