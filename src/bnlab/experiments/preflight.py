"""Checks made before anything is written or compiled: the data fits the networks, the machine's
memory holds the runs, the disk holds what they leave, and the run directory can be made and
written. Each failure is one :class:`ConfigError` naming the option and what it expected."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bnlab.data import MNIST, check_trainable
from bnlab.engine.footprint import Footprint, data_footprint, fixed_footprint, run_footprint
from bnlab.errors import ConfigError
from bnlab.experiments.experiment import Experiment

SKIP_FLAG = "--skip-resource-check"
PROBE_FILE = ".bnlab-write-probe"


def check_data(experiment: Experiment, config: Any, data: dict[str | None, MNIST]) -> None:
    """Each phase's data against its networks: image size, enough examples for a batch and for
    the histogram samples."""
    for phase in experiment.phases(config):
        mnist, train = data[phase.data_dir], phase.train
        check_trainable(mnist, batch_size=train.batch_size)
        if train.hist_examples > len(mnist.y_test):
            raise ConfigError(
                f"--hist-examples: expected at most the {len(mnist.y_test):,} test images of "
                f"{mnist.source}, got {train.hist_examples:,}"
            )


def footprint(
    experiment: Experiment, config: Any, data: dict[str | None, MNIST], devices: int
) -> Footprint:
    """The run's estimated peak memory and disk use (:mod:`bnlab.engine.footprint`)."""
    total = fixed_footprint()
    for mnist in data.values():
        examples = len(mnist.y_train) + len(mnist.y_test)
        total += data_footprint(examples, mnist.x_train[0].size if examples else 0, devices)
    for phase in experiment.phases(config):
        test = len(data[phase.data_dir].y_test)
        for group in phase.groups:
            total += run_footprint(group.model, phase.train, len(group.seeds), test)
    return total


def available_memory() -> int:
    """Bytes the run can still take: the kernel's MemAvailable, or less under a cgroup limit."""
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def _gb(n: int) -> str:
    return f"{n / 2**30:,.1f} GB"


def check_resources(need: Footprint, out_dir: Path) -> None:
    """Refuse a run whose estimate exceeds the available memory or the free disk under
    ``out_dir``."""
    memory = available_memory()
    if need.memory > memory:
        raise ConfigError(
            f"the run needs about {_gb(need.memory)} of memory (estimated from its networks, "
            f"runs, evaluations and data), {_gb(memory)} is available: use fewer seeds, fewer "
            f"evaluations (a larger --eval-every), fewer --hist-examples or smaller layers, or "
            f"pass {SKIP_FLAG} to try anyway"
        )
    free = shutil.disk_usage(_existing_ancestor(out_dir)).free
    if need.disk > free:
        raise ConfigError(
            f"--out {out_dir}: the run writes about {_gb(need.disk)} (checkpoints, evaluation "
            f"records, TensorBoard logs, figures), {_gb(free)} is free there; free some space, "
            f"choose another --out, or pass {SKIP_FLAG} to try anyway"
        )


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not _exists(path):
        path = path.parent
    return path


def _exists(path: Path) -> bool:
    """Path.exists(), False also for a name the file system cannot hold (ENAMETOOLONG)."""
    try:
        path.stat()
    except OSError:
        return False
    return True


def check_out_name(out_dir: Path) -> None:
    """Every component of ``out_dir`` within the file system's name limit, the whole path within
    its path limit, and no plain file where a directory must go."""
    if not str(out_dir).strip():
        raise ConfigError("--out: expected a directory, got an empty name")
    anchor = _existing_ancestor(out_dir)
    if not anchor.is_dir():
        raise ConfigError(f"--out {out_dir}: {anchor} is a file, expected a directory")
    name_max, path_max = _limit(anchor, "PC_NAME_MAX", 255), _limit(anchor, "PC_PATH_MAX", 4096)
    for part in Path(os.path.abspath(out_dir)).parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(
                f"--out: a name of {len(os.fsencode(part))} bytes ({part[:20]}...), expected at "
                f"most {name_max} (the file system's limit)"
            )
    # the longest path bnlab writes below --out is ~80 characters (a TensorBoard event file)
    if len(os.fsencode(os.path.abspath(out_dir))) + 80 > path_max:
        raise ConfigError(f"--out: a path of {len(str(out_dir))} characters is too long")


def _limit(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError):
        return default


def probe_out_dir(out_dir: Path) -> list[Path]:
    """Make ``out_dir`` and write and delete a file there; the directories it made (for
    :func:`removing`). On failure it removes them and raises one line with the system's reason
    (read-only, no space, no permission...)."""
    made = [p for p in (out_dir, *out_dir.parents) if not _exists(p)]
    with removing(made):
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            probe = out_dir / PROBE_FILE
            probe.write_bytes(b"bnlab")
            probe.unlink()
        except OSError as e:
            why = e.strerror or errno.errorcode.get(e.errno or 0, str(e))
            raise ConfigError(f"--out {out_dir}: cannot write there ({why})") from None
    return made


@contextmanager
def removing(made: list[Path]) -> Iterator[None]:
    """On an error, remove the (empty) directories a check made, deepest first."""
    try:
        yield
    except BaseException:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                pass
        raise
