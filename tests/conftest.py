"""Shared test fixtures."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test in float64 (for exact comparisons with hand-computed values)."""
    with jax.enable_x64(True):
        yield
