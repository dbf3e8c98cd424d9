"""The layers of bnlab point one way (docs/architecture.md): cli -> experiments -> engine, outputs,
measures -> core, data; no private name is imported across modules; no file grows past 300 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "bnlab"
BOTTOM = {"errors", "files"}
# package -> the bnlab packages it may import (besides itself)
ALLOWED = {
    "errors": set(),
    "files": {"errors"},
    "core": BOTTOM,
    "data": BOTTOM,
    "keras": {"core", "outputs", *BOTTOM},
    "torch": {"core", "outputs", *BOTTOM},
    "measures": {"core", *BOTTOM},
    "engine": {"core", "data", *BOTTOM},
    "outputs": {"data", *BOTTOM},
    "experiments": {"core", "data", "engine", "measures", "outputs", *BOTTOM},
    "cli": {"bnlab", "core", "data", "engine", "experiments", "outputs", *BOTTOM},
    "__main__": {"cli"},
}
MAX_LINES = 300


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


def package(path: Path) -> str:
    return path.relative_to(SRC).with_suffix("").parts[0]


def bnlab_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every ``bnlab`` import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bnlab"):
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("bnlab")]
    return out


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_layers(path):
    here = package(path)
    for module, _ in bnlab_imports(path):
        parts = module.split(".")
        there = parts[1] if len(parts) > 1 else "bnlab"
        if there != here:
            assert there in ALLOWED[here], f"{here} imports {module}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_name_is_imported_across_modules(path):
    for module, names in bnlab_imports(path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"imports {private} from {module}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_source_file_is_longer_than_300_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_every_module_is_in_a_known_layer():
    assert {package(p) for p in modules()} <= set(ALLOWED)


def test_importing_bnlab_and_planning_runs_leaves_jax_unstarted():
    """bnlab.engine.devices splits the CPU into devices before JAX's backend starts; a jax array
    made at import (or while an experiment lists its runs) would start it with one device."""
    code = (
        "import jax._src.xla_bridge as xb\n"
        "import bnlab.cli\n"
        "from bnlab.experiments import EXPERIMENTS, PRESETS, FIGURE1\n"
        "for p in PRESETS.values(): FIGURE1.phases(p)\n"
        "for a in EXPERIMENTS.values():\n"
        "    if hasattr(a, 'default_config'): a.phases(a.default_config())\n"
        "assert not xb.backends_are_initialized()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
