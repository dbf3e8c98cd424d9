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


def pytest_sessionfinish(session):
    """With BNLAB_ORACLE_DIFFS=path, write the worst difference seen against each oracle there
    (benchmarks/oracle_diffs.py runs the oracle tests this way and prints the table)."""
    path = os.environ.get("BNLAB_ORACLE_DIFFS")
    if path:
        import json

        from oracle_cases import WORST

        with open(path, "w", encoding="utf-8") as f:
            json.dump(WORST, f, indent=2, sort_keys=True)


@pytest.fixture
def dirs(tmp_path):
    """A reproduction's and an ICS analysis's run directories, made by hand."""
    from merge_fixtures import figure1_config, ics_config, ics_metrics, reproduce_metrics, write_run

    reproduce = write_run(tmp_path / "runs" / "paper", figure1_config(), reproduce_metrics())
    ics = write_run(tmp_path / "runs" / "ics", ics_config(), ics_metrics())
    return reproduce, ics
