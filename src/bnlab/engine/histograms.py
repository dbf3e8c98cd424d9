"""Histograms binned inside the compiled evaluation, so that an evaluation hands the host 66
numbers per tensor (its TensorBoard histogram) instead of the tensor: a run's parameters, running
statistics, logits and hidden-layer inputs at every evaluation cost ~0.3 KB each to fetch, keep
in the checkpoint's records and write, whatever the tensor's size.

The buckets are equal widths over the values' range, as ``numpy.histogram(values, BINS)``
counts them (TensorBoard's own summaries use 30; TensorFlow's ~1,500 fixed limits cost ~10x
more to write while a run trains).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

BINS = 64


class Histogram(NamedTuple):
    """What TensorBoard's histogram shows (float32 leaves, which may carry leading run and
    evaluation axes): the values' range and the count in each of BINS equal-width buckets from
    ``min`` to ``max`` (the last one closed)."""

    min: jax.Array
    max: jax.Array
    counts: jax.Array


def histogram(values: jax.Array) -> Histogram:
    """``values`` (any shape) binned. A NaN or inf makes ``min`` or ``max`` non-finite: the
    writer then skips the histogram (its counts mean nothing)."""
    v = jnp.ravel(values).astype(jnp.float32)
    low, high = jnp.min(v), jnp.max(v)
    # all values equal: the first bucket holds them (the writer shows one bucket of no width)
    width = jnp.where(high > low, (high - low) / BINS, 1.0)
    bucket = jnp.clip(jnp.floor((v - low) / width), 0, BINS - 1).astype(jnp.int32)
    counts = jnp.zeros(BINS, jnp.float32).at[bucket].add(1.0)
    return Histogram(low, high, counts)
