"""Print the worst absolute difference between bnlab and each oracle framework (PyTorch, Flax,
Keras), as measured by the oracle tests themselves.

Runs ``pytest tests/test_oracles_*.py`` with BNLAB_ORACLE_DIFFS pointing at a temporary file,
where tests/conftest.py writes the worst |bnlab - oracle| per oracle and quantity, then prints
the table. Needs the ``test`` extra (pytest and the oracle frameworks). Run from the repository
root:

    python benchmarks/oracle_diffs.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from requires import require

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    require("test", "pytest", "keras", "torch", "flax")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "diffs.json"
        tests = sorted(str(p) for p in (ROOT / "tests").glob("test_oracles_*.py"))
        env = {**os.environ, "BNLAB_ORACLE_DIFFS": str(out)}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", *tests], env=env, cwd=ROOT)
        if not out.exists():
            print("the oracle tests wrote no differences", file=sys.stderr)
            return 1
        worst = json.loads(out.read_text(encoding="utf-8"))
    print(f"\n{'oracle':28s} {'quantity':40s} worst |bnlab - oracle|")
    for oracle, quantities in sorted(worst.items()):
        for quantity, diff in sorted(quantities.items()):
            print(f"{oracle:28s} {quantity:40s} {diff:.3g}")
    print("\nworst over all quantities:")
    for oracle, quantities in sorted(worst.items()):
        print(f"  {oracle:28s} {max(quantities.values()):.3g}")
    return run.returncode


if __name__ == "__main__":
    raise SystemExit(main())
