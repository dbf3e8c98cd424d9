"""Medians per column without sorting, equal to ``jnp.median`` (the same two middle values and
their midpoint, NaN where a column has one).

XLA:CPU sorts slowly: the median of each of a convolution's 16 channels over the test set
(640,000 values each) took 7.3 s with ``jnp.median``. Selecting the k-th smallest value instead
takes 32 counting passes: float32 values map to unsigned keys in the same order, and the k-th key
is built bit by bit, from the highest, as the largest key with at most k keys below it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# a numpy scalar, not a jax one: creating a jax array at import would start the backend before
# bnlab.engine.devices could split the CPU into devices
SIGN = np.uint32(0x80000000)


def _keys(x: jax.Array) -> jax.Array:
    """float32 -> uint32 in the same order: negatives reversed, positives above them."""
    u = lax.bitcast_convert_type(x, jnp.uint32)
    return jnp.where(u >= SIGN, ~u, u | SIGN)


def _values(keys: jax.Array) -> jax.Array:
    u = jnp.where(keys >= SIGN, keys & ~SIGN, ~keys)
    return lax.bitcast_convert_type(u, jnp.float32)


def kth_smallest(x: jax.Array, k: jax.Array) -> jax.Array:
    """For ``x`` of shape (n, c) and 0-based ranks ``k`` of shape (r,): the (r, c) values of those
    ranks in each column."""
    keys = _keys(x.astype(jnp.float32))

    def bit(i, found):
        # found: (r, c) keys; try setting bit 31 - i
        trial = found | (jnp.uint32(1) << (31 - i).astype(jnp.uint32))
        below = jnp.sum(keys[None] < trial[:, None, :], axis=1)
        return jnp.where(below <= k[:, None], trial, found)

    # zeros made from the keys, so that under shard_map the loop's carry varies over the mesh
    # axis as its output does
    start = jnp.zeros((k.shape[0], x.shape[1]), jnp.uint32) | (keys[:1] & 0)
    return _values(lax.fori_loop(0, 32, bit, start))


def medians(x: jax.Array) -> jax.Array:
    """``jnp.median(x, axis=0)`` for ``x`` of shape (n, c): the midpoint of the ranks
    floor((n - 1) / 2) and ceil((n - 1) / 2), NaN for a column holding one."""
    n = x.shape[0]
    ranks = jnp.array([(n - 1) // 2, n // 2], jnp.int32)
    low, high = kth_smallest(x, ranks)
    return jnp.where(jnp.isnan(x).any(axis=0), jnp.nan, (low + high) * jnp.float32(0.5))
