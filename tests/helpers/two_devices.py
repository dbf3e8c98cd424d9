"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=2: BN with axis_name over two CPU
devices (pmap) must equal single-device BN on the concatenated batch. Prints the worst difference
of each quantity as JSON on stdout."""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from bnlab.core import batch_norm_train, init_state  # noqa: E402


def main(backward: str, shape: tuple[int, ...]) -> dict:
    assert jax.device_count() == 2, jax.devices()
    rng = np.random.default_rng(0)
    c = shape[-1]
    x = jnp.asarray(rng.normal(1.0, 2.0, (2, *shape)))  # (devices, per-device batch...)
    w = jnp.asarray(rng.normal(size=(2, *shape)))
    gamma, beta = jnp.asarray(rng.normal(1, 0.5, c)), jnp.asarray(rng.normal(0, 0.5, c))
    state = init_state(c, jnp.float64)

    def loss(x, gamma, beta, w, axis_name):
        y, new = batch_norm_train(x, gamma, beta, state, axis_name=axis_name, backward=backward)
        return jnp.sum(jnp.tanh(y) * w), (y, new)

    grad = jax.grad(loss, argnums=(0, 1, 2), has_aux=True)

    def per_device(x, w):
        (dx, dg, db), (y, new) = grad(x, gamma, beta, w, "devices")
        return dx, jax.lax.psum(dg, "devices"), jax.lax.psum(db, "devices"), y, new

    dx, dg, db, y, new = jax.pmap(per_device, axis_name="devices")(x, w)
    whole = lambda v: v.reshape(-1, *shape[1:])  # noqa: E731
    (dx1, dg1, db1), (y1, new1) = grad(whole(x), gamma, beta, whole(w), None)
    diff = lambda a, b: float(jnp.max(jnp.abs(a - b)))  # noqa: E731
    return {
        "y": diff(whole(y), y1),
        "running_mean": diff(new.running_mean[0], new1.running_mean),
        "running_var": diff(new.running_var[0], new1.running_var),
        "dx": diff(whole(dx), dx1),
        "dgamma": diff(dg[0], dg1),
        "dbeta": diff(db[0], db1),
    }


if __name__ == "__main__":
    shape = tuple(int(s) for s in sys.argv[2].split(","))
    print(json.dumps(main(sys.argv[1], shape)))
