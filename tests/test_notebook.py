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
    # Keras's own summary: 100,910 in all for the BN model, 600 of them non-trainable
    assert "99,710" in texts[2] and "100,910" in texts[2] and "600" in texts[2]
    assert texts[3].count("after 200 steps (Keras fit)") == 2
    assert "taps ['activation', 'activation_1', 'activation_2']" in texts[3]
    assert "taps ['dense_2.activation']" in texts[3]
    assert (
        len(images(code[3])) == 1 and (tmp_path / "run" / "keras_figure1" / "figure1.png").exists()
    )
    assert (tmp_path / "run" / "tensorboard" / "with_bn").is_dir()
    pitfall = markdown(code[4])
    assert pitfall and pitfall[0].count("\n") == 2  # header, rule, one row
    assert len(images(code[5])) == 1 and (tmp_path / "run" / "reproduce" / "figure1.png").exists()
    # header, rule, 2 networks x 2 seeds from bnlab, then the 2 Keras models
    comparison = markdown(code[6])
    assert comparison and comparison[0].count("\n") == 7
    assert "| Keras `with_bn` | 0 |" in comparison[0]
    noisy_table = markdown(code[7])
    assert len(images(code[7])) == 1
    # header, rule, then 4 networks x 2 seeds
    assert noisy_table and noisy_table[0].count("\n") == 9
    assert "| noisy_bn | 0 |" in noisy_table[0]


def images(cell) -> list:
    return [o for o in cell["outputs"] if "image/png" in o.get("data", {})]


def markdown(cell) -> list[str]:
    return [
        o["data"]["text/markdown"] for o in cell["outputs"] if "text/markdown" in o.get("data", {})
    ]
