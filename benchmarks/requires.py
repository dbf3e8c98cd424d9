"""What a benchmark needs beyond bnlab itself, said in one line (with the extra that installs it)
instead of an ImportError from deep inside a worker."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def require(extra: str, *modules: str) -> None:
    """Exit with one line naming the missing ``modules`` and ``pip install -e '.[extra]'``."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        script = Path(sys.argv[0]).name
        raise SystemExit(
            f"{script} needs {', '.join(missing)}: pip install -e '.[{extra}]' (from the "
            "repository root)"
        )
