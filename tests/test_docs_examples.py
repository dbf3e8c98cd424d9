"""The worked examples in docs/conventions.md run as written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "conventions.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_its_examples():
    assert len(BLOCKS) == 2


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=["core", "keras"])
def test_example_runs(index, capsys):
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), namespace)
    if index == 0:
        mean, std, count, diff = capsys.readouterr().out.split()
        assert abs(float(mean)) < 1e-6 and abs(float(std) - 1) < 1e-5 and count == "1"
        assert float(diff) < 1e-5
        assert namespace["y_one"].shape == (1, 100)
    else:
        assert len(namespace["model"].layers) == 10


README = DOC.parent.parent / "README.md"
OWN_MODEL = README.read_text(encoding="utf-8").split("## Use bnlab with your own model", 1)[1]
OWN_BLOCKS = re.findall(r"```python\n(.*?)```", OWN_MODEL.split("\n## ", 1)[0], re.S)


def test_the_readme_shows_keras_and_pytorch():
    assert [("keras" in b, "torch" in b) for b in OWN_BLOCKS] == [(True, False), (False, True)]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(OWN_BLOCKS)), ids=["keras", "torch"])
def test_readme_own_model_example_runs(index, capsys, tmp_path, monkeypatch):
    """Trains one epoch recording Figure 1, then Algorithm 2 and the batch-statistics evaluation,
    as printed."""
    monkeypatch.chdir(tmp_path)
    exec(compile(OWN_BLOCKS[index], f"README.md[own model {index}]", "exec"), {})
    # the two printed dicts, read back as literals (never eval)
    before, after = map(ast.literal_eval, capsys.readouterr().out.splitlines()[-2:])
    averages = "moving_averages" if index == 0 else "running_averages"
    assert after[averages] > 0.85 and before[averages] > 0.85
    # Algorithm 2 changes only the moving statistics: batch statistics score alike
    assert after["batch_statistics"] == before["batch_statistics"]
    assert after["batch_statistics"][1] < 0.2 < 0.85 < after["batch_statistics"][60]
    figure = sorted(p.name for p in (tmp_path / "figure1").iterdir())
    assert figure == ["figure1.json", "figure1.png", "figure1.svg"]
    assert any((tmp_path / "logs" / "bn").glob("events.out.tfevents.*"))
