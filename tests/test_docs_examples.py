"""The worked examples in docs/conventions.md run as written."""

from __future__ import annotations

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
