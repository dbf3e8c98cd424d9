"""Helpers of the bad-input suite (tests/test_bad_inputs.py, tests/test_config_fuzz.py).

- :func:`bnlab_here`: ``bnlab ARGS`` in the test's process (its exit status and stderr), for the
  cases bnlab must refuse at once;
- :func:`forbid_training`: any case that reaches the training engine stops there with
  :class:`TrainingStarted` (a refused value must be refused before anything is trained or
  compiled, and an accepted one must not train for minutes inside the suite);
- :func:`bnlab_isolated`: ``bnlab ARGS`` in a child process forked from a server that has already
  imported bnlab (about 0.1 s a case), with a memory cap, a time limit and its whole stderr (C
  libraries' included), for the cases that may allocate without bound, hang or start
  jax.distributed when bnlab gets them wrong;
- builders of IDX files and TOML text, and a snapshot of a directory tree.
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ERROR_PREFIX = "bnlab: error: "
# what bnlab_here returns as the exit status when the case reached the training engine
TRAINING = "training started"


class TrainingStarted(BaseException):
    """Raised by the stand-in for the training engine: the case got past every check.

    A BaseException, so that bnlab's own ``except Exception`` (its internal-error handler) lets it
    through."""


def _refuse_training(*args: Any, **kwargs: Any) -> None:
    raise TrainingStarted("bnlab reached the training engine (train_groups)")


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the training engine raise :class:`TrainingStarted` instead of compiling anything."""
    monkeypatch.setattr("bnlab.experiments.run.train_groups", _refuse_training)


def bnlab_here(capsys, monkeypatch, *args: str) -> tuple[int | str, str]:
    """`bnlab ARGS` in this process: its exit status (or :data:`TRAINING`) and stderr."""
    from bnlab.cli import main

    monkeypatch.setattr(sys, "argv", ["bnlab", *args])
    try:
        main()
    except SystemExit as e:
        code: int | str = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except TrainingStarted:
        code = TRAINING
    else:  # pragma: no cover - main always exits
        code = 0
    return code, capsys.readouterr().err


def assert_user_error(code: int | str, stderr: str, *keys: str | tuple[str, ...]) -> None:
    """Exit status 2, exactly one line on stderr starting "bnlab: error: ", no traceback, and each
    of ``keys`` in it (what the message must name: the option, the file, the field; a tuple: any
    one of its strings)."""
    shown = f"exit status {code!r}, stderr {stderr[-1500:]!r}"
    assert code == 2, shown
    assert "Traceback" not in stderr, shown
    assert stderr.startswith(ERROR_PREFIX), shown
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), shown
    for key in keys:
        alternatives = key if isinstance(key, tuple) else (key,)
        assert any(k in stderr for k in alternatives), f"{key!r} not in the message; {shown}"


# --- a directory tree, to see that nothing was written ----------------------------------------
def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under ``root`` (relative path -> kind and content hash); {} when absent."""
    if not root.exists() and not root.is_symlink():
        return {}
    out: dict[str, Any] = {}
    for path in sorted([root, *root.rglob("*")]):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir",)
        elif path.is_file():
            out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            out[rel] = ("other",)
    return out


# --- IDX files ---------------------------------------------------------------------------------
STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def idx_header(dims: tuple[int, ...], magic_type: int = 0x08, ndim: int | None = None) -> bytes:
    """Two zero bytes, the type code, the number of dimensions, the sizes as big-endian
    uint32 (sizes up to 2**32 - 1, as a hostile header may claim)."""
    ndim = len(dims) if ndim is None else ndim
    return bytes([0, 0, magic_type, ndim]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


def idx(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    return idx_header(array.shape, magic_type) + array.tobytes()


def write_dataset(
    directory: Path,
    n_train: int = 120,
    n_test: int = 30,
    image: tuple[int, int] = (28, 28),
    gz: bool = True,
) -> Path:
    """The four MNIST IDX files of a small valid dataset (trainable with batches of 60 and 20
    histogram examples), gzipped or raw."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, *image), dtype=np.uint8),
        "y_train": rng.integers(0, 10, (n_train,), dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *image), dtype=np.uint8),
        "y_test": rng.integers(0, 10, (n_test,), dtype=np.uint8),
    }
    for key, array in arrays.items():
        payload = idx(array)
        if gz:
            (directory / f"{STEMS[key]}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / STEMS[key]).write_bytes(payload)
    return directory


# --- TOML text ---------------------------------------------------------------------------------
def toml_value(value: Any) -> str:
    """A TOML value for bools, ints, floats (nan and inf too), strings and (nested) lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string for these characters
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(fields: dict[str, Any], grid: dict[str, Any] | None = None) -> str:
    """A sweep file: top-level ``fields``, then a ``[grid]`` table when given."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in fields.items()]
    if grid is not None:
        lines.append("[grid]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in grid.items()]
    return "\n".join(lines) + "\n"


# --- bnlab in a forked child -------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What a child run of bnlab left: its exit status (negative: killed by that signal; None:
    timed out), stdout, stderr (every byte written to fd 2), how it ended, and its seconds."""

    code: int | None
    stdout: str
    stderr: str
    ended: str  # "exit", "training started", "timed out", "crashed"
    seconds: float

    def status(self) -> int | str:
        return TRAINING if self.ended == "training started" else self.code

    def describe(self) -> str:
        return (
            f"{self.ended} after {self.seconds:.1f} s, exit status {self.code}, stderr "
            f"{self.stderr[-1500:]!r}"
        )


class _Server:
    """A Python process that has imported bnlab's CLI once (~5 s) and forks one child per case,
    so that each case starts at once, from a process that has not started JAX's backend (forking
    one that has can hang). Requests and answers are JSON lines on its stdin and stdout."""

    process: subprocess.Popen | None = None

    @classmethod
    def ask(cls, request: dict[str, Any]) -> dict[str, Any]:
        if cls.process is None or cls.process.poll() is not None:
            tests_dir = str(Path(__file__).resolve().parent.parent)
            code = f"import sys; sys.path.insert(0, {tests_dir!r}); "
            code += "from helpers.bad_inputs import serve; serve()"
            cls.process = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            atexit.register(cls.stop)
        assert cls.process.stdin is not None and cls.process.stdout is not None
        cls.process.stdin.write(json.dumps(request) + "\n")
        cls.process.stdin.flush()
        line = cls.process.stdout.readline()
        if not line:
            raise RuntimeError("the bad-input suite's fork server died")
        return json.loads(line)

    @classmethod
    def stop(cls) -> None:
        if cls.process is not None and cls.process.poll() is None:
            assert cls.process.stdin is not None
            cls.process.stdin.close()  # the server ends at the end of its input
            try:
                cls.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cls.process.kill()
                cls.process.wait()


def serve() -> None:
    """The fork server's loop (see :class:`_Server`)."""
    from bnlab.cli import main  # imported once, before any fork

    assert callable(main)

    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(request)
        deadline = started + request["timeout"]
        status, timed_out = None, False
        while status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = raw
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                status, timed_out = os.waitpid(pid, 0)[1], True
            else:
                time.sleep(0.02)
        answer = {
            "exitcode": os.waitstatus_to_exitcode(status),
            "timed_out": timed_out,
            "seconds": time.monotonic() - started,
        }
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def private_memory() -> int:
    """This process's private writable memory (what RLIMIT_DATA counts), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    return 0


def _child(request: dict[str, Any]) -> None:
    """Run `bnlab ARGS` in this forked child and exit with its status (never returns)."""
    ended, code = "exit", 99
    try:
        for fd, name in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        if request["headroom"] is not None:
            cap = private_memory() + request["headroom"]
            _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
            limit = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        import bnlab.experiments.run
        from bnlab.cli import main

        if request["forbid"]:
            bnlab.experiments.run.train_groups = _refuse_training
        sys.argv = ["bnlab", *request["args"]]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except TrainingStarted:
        ended, code = "training started", 98
    except BaseException:  # a crash outside bnlab's handlers (or of this harness)
        traceback.print_exc()
        ended, code = "crashed", 99
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        Path(request["result"]).write_text(json.dumps({"code": code, "ended": ended}))
    finally:
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 99)


def bnlab_isolated(
    *args: str,
    cwd: Path,
    timeout: float = 120,
    headroom: int | None = 3 * 2**30,
    forbid: bool = True,
    env: dict[str, str] | None = None,
) -> Outcome:
    """`bnlab ARGS` in a forked child, in ``cwd``, killed after ``timeout`` s; its private memory
    capped at what it holds at the start + ``headroom`` bytes (None: no cap); with ``forbid`` the
    training engine is replaced by :class:`TrainingStarted`."""
    with tempfile.TemporaryDirectory(prefix="bnlab-case-") as tmp:
        files = {n: str(Path(tmp) / n) for n in ("result", "stdout", "stderr")}
        request = {
            "args": list(args),
            "cwd": str(cwd),
            "timeout": timeout,
            "headroom": headroom,
            "forbid": forbid,
            "env": env or {},
            **files,
        }
        answer = _Server.ask(request)
        stdout = Path(files["stdout"]).read_text(errors="replace")
        stderr = Path(files["stderr"]).read_text(errors="replace")
        seconds = answer["seconds"]
        if answer["timed_out"]:
            return Outcome(None, stdout, stderr, "timed out", seconds)
        result_path = Path(files["result"])
        if result_path.exists():
            result = json.loads(result_path.read_text())
            return Outcome(result["code"], stdout, stderr, result["ended"], seconds)
        return Outcome(answer["exitcode"], stdout, stderr, "crashed", seconds)


def assert_isolated_user_error(outcome: Outcome, *keys: str) -> None:
    assert outcome.ended == "exit", outcome.describe()
    assert_user_error(outcome.code, outcome.stderr, *keys)


def bnlab_script() -> str:
    """The `bnlab` console script of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "bnlab"
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which("bnlab")
    if found is None:  # pragma: no cover
        pytest.skip("the bnlab console script is not installed")
    return found
