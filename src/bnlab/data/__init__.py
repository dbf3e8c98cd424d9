"""MNIST-format data: the embedded MNIST copy, or any directory of the four IDX files.

>>> data = load_mnist()            # the copy shipped inside bnlab, checked against its SHA-256
>>> data.x_train.shape, data.x_train.dtype
((60000, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from bnlab.data.idx import DataError, parse_idx, read_bytes, show_path, stat_error

__all__ = [
    "EMBEDDED_SHA256",
    "MNIST",
    "DataError",
    "check_trainable",
    "embedded_dir",
    "load_mnist",
]

NUM_CLASSES = 10
FILES = {
    "x_train": ("train-images-idx3-ubyte", 3),
    "y_train": ("train-labels-idx1-ubyte", 1),
    "x_test": ("t10k-images-idx3-ubyte", 3),
    "y_test": ("t10k-labels-idx1-ubyte", 1),
}
# SHA-256 of the decompressed IDX files that scripts/build_mnist.py writes; they equal the
# original MNIST distribution's files.
EMBEDDED_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@dataclass(frozen=True)
class MNIST:
    """Images as uint8 (N, 28, 28) and labels as uint8 (N,), straight from the IDX files."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    checksum_verified: bool
    # field ("x_train", ...) -> the file it was read from
    files: dict[str, str] = field(default_factory=dict, compare=False)


def embedded_dir() -> Path:
    return Path(str(resources.files("bnlab.data") / "mnist"))


def _check_directory(directory: Path, name: str) -> None:
    """``directory`` must be a directory; ``name`` is the option that gave it."""
    try:
        mode = os.stat(directory).st_mode
    except OSError as e:
        raise DataError(f"{name} {stat_error(directory, e, 'directory')}") from None
    if not stat.S_ISDIR(mode):
        raise DataError(f"{name} {show_path(directory)}: not a directory")


def _find(directory: Path, stem: str) -> Path:
    """The gzip or raw file of ``stem``: any entry of that name counts (a directory, FIFO or
    symlink loop there is refused by name when it is read)."""
    for name in (stem + ".gz", stem):
        if os.path.lexists(directory / name):
            return directory / name
    raise DataError(f"{directory / stem}[.gz]: file not found")


def _check_counts(paths: dict[str, Path], arrays: dict[str, np.ndarray], split: str) -> None:
    """Two well-formed files of a split must agree on the number of examples; the message names
    both (each file's own size was checked against its header when it was parsed)."""
    images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{paths[f'x_{split}']} holds {images.shape[0]} images but {paths[f'y_{split}']} "
            f"holds {labels.shape[0]} labels; expected one label per image"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(
            f"{paths[f'y_{split}']}: label {int(labels.max())} out of range, "
            f"expected 0..{NUM_CLASSES - 1}"
        )


def load_mnist(data_dir: str | Path | None = None, *, name: str = "--data-dir") -> MNIST:
    """Load the four MNIST IDX files (gzip or raw) from ``data_dir``, or the embedded copy.

    Checks magic numbers, dimensions, file sizes, that image and label counts agree and that labels
    lie in 0..9; the embedded copy is also checked against recorded SHA-256 values. Any problem
    raises :class:`DataError` naming the file (and ``name``, the option that gave ``data_dir``,
    when the directory itself is the problem).
    """
    embedded = data_dir is None
    directory = embedded_dir() if embedded else Path(data_dir)
    _check_directory(directory, "embedded data" if embedded else name)
    paths = {key: _find(directory, stem) for key, (stem, _) in FILES.items()}
    arrays: dict[str, np.ndarray] = {}
    for key, (stem, ndim) in FILES.items():
        payload = read_bytes(paths[key])
        if embedded:
            digest = hashlib.sha256(payload).hexdigest()
            if digest != EMBEDDED_SHA256[stem]:
                raise DataError(f"{paths[key]}: SHA-256 {digest}, expected {EMBEDDED_SHA256[stem]}")
        arrays[key] = parse_idx(payload, paths[key], ndim)
    for split in ("train", "test"):
        _check_counts(paths, arrays, split)
    files = {key: str(path) for key, path in paths.items()}
    return MNIST(**arrays, source=str(directory), checksum_verified=embedded, files=files)


def check_trainable(
    data: MNIST,
    *,
    batch_size: int,
    image_shape: tuple[int, ...] = (28, 28),
    name: str = "--data-dir",
) -> None:
    """Refuse data the networks cannot train on, before anything is compiled: images of another
    size than ``image_shape``, fewer training examples than one batch, or no test examples."""
    where = f"{name} {show_path(data.source)}"
    for key in ("x_train", "x_test"):
        got = tuple(getattr(data, key).shape[1:])
        if got != tuple(image_shape):
            raise DataError(
                f"{where}: expected {_dims(image_shape)} images (the networks take "
                f"{math.prod(image_shape)} inputs), got {_dims(got)} in {_file(data, key)}"
            )
    n_train, n_test = len(data.y_train), len(data.y_test)
    if n_train < max(batch_size, 1):
        raise DataError(
            f"{where}: expected at least {batch_size} training examples (one batch), "
            f"got {n_train} in {_file(data, 'x_train')}"
        )
    if n_test == 0:
        raise DataError(
            f"{where}: expected at least 1 test example, got 0 in {_file(data, 'x_test')}"
        )


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _file(data: MNIST, key: str) -> str:
    """The file ``key`` of ``data`` was read from (its stem in the source when unknown)."""
    return data.files.get(key) or str(Path(data.source) / FILES[key][0])


def class_counts(labels: np.ndarray) -> list[int]:
    return np.bincount(labels, minlength=NUM_CLASSES).tolist()
