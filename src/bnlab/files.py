"""Atomic file writes: a reader (or a run killed midway) never sees a half-written file."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from bnlab.errors import BnlabError


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write to a temporary file in the same directory, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); a file of a run is as readable as any other
        # file the user makes: 0666 less the umask (0644 under umask 022)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


# a config, sweep or metrics file bnlab reads whole; a larger one is not one of them
MAX_USER_FILE = 256 * 2**20


def read_user_text(path: Path, error: type[BnlabError]) -> str:
    """A user's file as UTF-8 text; a missing or unreadable file raises ``error`` naming it. Only a
    regular file is opened: reading a FIFO would wait for a writer forever."""
    try:
        info = path.stat()
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{path}: is a directory, expected a file")
        if not stat.S_ISREG(mode):
            raise error(f"{path}: not a regular file (a FIFO, socket or device), expected a file")
        if info.st_size > MAX_USER_FILE:
            raise error(f"{path}: {info.st_size:,} bytes, expected at most {MAX_USER_FILE:,}")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read ({e})") from None
