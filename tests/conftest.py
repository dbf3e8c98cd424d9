"""Shared test setup: Keras runs on the JAX backend (set before any test imports keras)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test in float64 (for exact comparisons with hand-computed values)."""
    with jax.enable_x64(True):
        yield
