"""Checkpoints as plain .npz archives: arrays only, loaded with ``allow_pickle=False``.

A pytree is stored as its leaves (``prefix/0``, ``prefix/1``, ...) and rebuilt on a template of
the same structure, so nothing but numbers is ever read back. Writes are atomic: a run killed
while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bnlab.errors import BnlabError
from bnlab.files import atomic_write_bytes


class CheckpointError(BnlabError):
    """A checkpoint is unreadable or belongs to a different configuration."""


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = str(e) or type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({why})") from None


def tree_arrays(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    return {f"{prefix}/{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}


def restore_tree(path: Path, arrays: dict[str, np.ndarray], prefix: str, template: Any) -> Any:
    """Rebuild ``template``'s structure from ``arrays``; leaves must match in shape and dtype."""
    leaves, treedef = jax.tree.flatten(template)
    restored = []
    for i, leaf in enumerate(leaves):
        name = f"{prefix}/{i}"
        if name not in arrays:
            raise CheckpointError(f"{path}: array {name} missing")
        value = arrays[name]
        if value.shape != tuple(leaf.shape) or value.dtype != leaf.dtype:
            raise CheckpointError(
                f"{path}: {name} is {value.dtype}{list(value.shape)}, "
                f"expected {leaf.dtype}{list(leaf.shape)}"
            )
        restored.append(value)
    return jax.tree.unflatten(treedef, restored)


STATE_FILE = "state.npz"
EVALS_DIR = "evals"


def fingerprint(described: Any) -> str:
    """A hash of what a checkpoint belongs to (the groups and the training spec, as repr)."""
    return hashlib.sha256(repr(described).encode()).hexdigest()


def has_state(checkpoint_dir: Path) -> bool:
    """A saved state is there (an empty file is none: a write the disk could not take)."""
    path = checkpoint_dir / STATE_FILE
    return path.is_file() and path.stat().st_size > 0


def save_state(checkpoint_dir: Path, step: int, stamp: str, runs: list[Any], devices: int) -> None:
    """The runs' state after ``step`` steps (one pytree per group), with the fingerprint and the
    number of devices each group's runs are split over."""
    arrays = {
        "step": np.asarray(step),
        "fingerprint": np.asarray(stamp),
        "devices": np.asarray(devices),
    }
    for i, run in enumerate(runs):
        arrays.update(tree_arrays(f"g{i}", run))
    save_arrays(checkpoint_dir / STATE_FILE, arrays)


def load_state(
    checkpoint_dir: Path, stamp: str, templates: list[Any], steps: int, devices: int
) -> tuple[int, list[Any]]:
    """The step and the runs' state saved by :func:`save_state`, rebuilt on ``templates``;
    refused when saved for a different fingerprint, at a step outside 1..``steps`` or with the
    runs split over other than ``devices`` devices."""
    path = checkpoint_dir / STATE_FILE
    arrays = load_arrays(path)
    if str(arrays.get("fingerprint")) != stamp:
        raise CheckpointError(
            f"{path}: saved by a different configuration (groups, training or training layout); "
            "cannot resume"
        )
    step = _step(path, arrays, steps)
    _check_devices(path, arrays, devices)
    runs = [restore_tree(path, arrays, f"g{i}", t) for i, t in enumerate(templates)]
    return step, runs


def check_state(checkpoint_dir: Path, steps: int, devices: int) -> None:
    """Refuse a saved state that cannot be read, was saved at a step outside 1..``steps`` or
    with the runs split over other than ``devices`` devices (a missing one is fine: the run
    starts from scratch). Run before anything else starts."""
    path = checkpoint_dir / STATE_FILE
    if path.exists():
        arrays = load_arrays(path)
        _step(path, arrays, steps)
        _check_devices(path, arrays, devices)


def _step(path: Path, arrays: dict[str, np.ndarray], steps: int) -> int:
    step = arrays.get("step")
    if step is None or step.shape != () or step.dtype.kind != "i" or not 1 <= int(step) <= steps:
        raise CheckpointError(f"{path}: expected a step in 1..{steps:,}, got {step!r}")
    return int(step)


def _check_devices(path: Path, arrays: dict[str, np.ndarray], devices: int) -> None:
    # each device's program is compiled for the runs it holds, and XLA's float32 sums round
    # differently with that shape: only the same split continues a run bit for bit. A state
    # without the count was saved with one device per group.
    saved = arrays.get("devices", np.asarray(1))
    if saved.shape != () or saved.dtype.kind != "i":
        raise CheckpointError(f"{path}: expected a device count, got {saved!r}")
    if int(saved) != devices:
        raise CheckpointError(
            f"{path}: saved with the runs split over {int(saved)} device(s), this run splits "
            f"them over {devices}; resume with --devices {int(saved)} (results depend on the split)"
        )


def save_record(checkpoint_dir: Path, step: int, record: Any) -> None:
    """One evaluation's record (any pytree of arrays), as it comes."""
    save_arrays(checkpoint_dir / EVALS_DIR / f"{step:08d}.npz", tree_arrays("r", record))


def load_record(checkpoint_dir: Path, step: int, template: Any) -> Any:
    path = checkpoint_dir / EVALS_DIR / f"{step:08d}.npz"
    return restore_tree(path, load_arrays(path), "r", template)


def check_finite(path: Path, run: Any) -> None:
    """A run that has not diverged has finite parameters; NaN or inf in one is a damaged file."""
    alive = np.asarray(run.diverged_at) < 0
    for leaf in jax.tree.leaves(run.params):
        finite = np.isfinite(np.asarray(leaf)).reshape(len(alive), -1).all(axis=1)
        if np.any(alive & ~finite):
            raise CheckpointError(
                f"{path}: NaN or inf parameters in a run that has not diverged; the file is "
                "damaged, start the run again with --overwrite"
            )
