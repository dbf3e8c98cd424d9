"""Checkpoints as plain .npz archives: arrays only, loaded with ``allow_pickle=False``.

A pytree is stored as its leaves (``prefix/0``, ``prefix/1``, ...) and rebuilt on a template of
the same structure, so nothing but numbers is ever read back. Writes are atomic: a run killed
while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bnlab.errors import BnlabError
from bnlab.outputs.files import atomic_write_bytes


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
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None


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
        if value.shape != leaf.shape or value.dtype != leaf.dtype:
            raise CheckpointError(
                f"{path}: {name} is {value.dtype}{list(value.shape)}, "
                f"expected {leaf.dtype}{list(leaf.shape)}"
            )
        restored.append(value)
    return jax.tree.unflatten(treedef, restored)
