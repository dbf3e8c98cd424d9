"""Running the `bnlab` command in the test's own process (no interpreter start-up, JAX already
imported), as a user would call it."""

from __future__ import annotations

import sys

import pytest

from bnlab.cli import main


def bnlab_here(capsys, monkeypatch, *args):
    """`bnlab ARGS` in this process: its exit status and stderr."""
    monkeypatch.setattr(sys, "argv", ["bnlab", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err
