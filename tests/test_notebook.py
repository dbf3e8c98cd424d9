"""examples/batchnorm.ipynb runs from top to bottom on a tiny configuration (nbclient)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "examples" / "batchnorm.ipynb"


def _text(cell) -> str:
    return "".join(
        o.get("text", "")
        + "".join(str(v) for k, v in o.get("data", {}).items() if k == "text/plain")
        for o in cell.get("outputs", [])
    )


@pytest.mark.slow
def test_notebook_runs_and_shows_its_results(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLAB_NOTEBOOK_STEPS", "200")
    monkeypatch.setenv("BNLAB_NOTEBOOK_OUT", str(tmp_path / "run"))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed clean
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    texts = [_text(c) for c in code]
    assert "training length: 200 steps of 60" in texts[0]
    assert "trainable: [99710, 100310]" in texts[2]
    assert texts[3].count("after 200 steps (Keras fit)") == 2
    images = [o for o in code[4]["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == 1 and (tmp_path / "run" / "figure1.png").exists()
    assert "batch-1 accuracies:" in texts[6]
    markdown = [
        o["data"]["text/markdown"]
        for o in code[6]["outputs"]
        if "text/markdown" in o.get("data", {})
    ]
    assert markdown and markdown[0].count("\n") == 3  # header, rule, one row per seed (2)
    noisy_images = [o for o in code[7]["outputs"] if "image/png" in o.get("data", {})]
    noisy_table = [
        o["data"]["text/markdown"]
        for o in code[7]["outputs"]
        if "text/markdown" in o.get("data", {})
    ]
    assert len(noisy_images) == 1
    # header, rule, then 4 networks x 2 seeds
    assert noisy_table and noisy_table[0].count("\n") == 9
    assert "| noisy_bn | 0 |" in noisy_table[0]
