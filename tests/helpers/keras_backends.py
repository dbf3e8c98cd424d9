"""Run a helper script's checks on a Keras backend: in this process (JAX, the tests' backend) or
in a subprocess with KERAS_BACKEND set (torch, tensorflow), reading its JSON from stdout."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OTHER_BACKENDS = ["torch", "tensorflow"]


def in_process(helper: Path) -> dict:
    spec = importlib.util.spec_from_file_location(helper.stem, helper)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main()


def on_backend(helper: Path, backend: str) -> dict:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"the {backend} Keras backend needs {backend} installed (not in this venv)")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, str(helper)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
