"""MNIST-format data: the embedded MNIST copy, or any directory of the four IDX files.

>>> data = load_mnist()            # the copy shipped inside bnlab, checked against its SHA-256
>>> data.x_train.shape, data.x_train.dtype
((60000, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from bnlab.data.idx import DataError, parse_idx, read_bytes

__all__ = ["EMBEDDED_SHA256", "MNIST", "DataError", "embedded_dir", "load_mnist"]

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


def embedded_dir() -> Path:
    return Path(str(resources.files("bnlab.data") / "mnist"))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory / stem}[.gz]: file not found")


def load_mnist(data_dir: str | Path | None = None) -> MNIST:
    """Load the four MNIST IDX files (gzip or raw) from ``data_dir``, or the embedded copy.

    Checks magic numbers, dimensions, file sizes, that image and label counts agree and that labels
    lie in 0..9; the embedded copy is also checked against recorded SHA-256 values. Any problem
    raises :class:`DataError` naming the file.
    """
    embedded = data_dir is None
    directory = embedded_dir() if embedded else Path(data_dir)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    arrays: dict[str, np.ndarray] = {}
    for field, (stem, ndim) in FILES.items():
        path = _find(directory, stem)
        payload = read_bytes(path)
        if embedded:
            digest = hashlib.sha256(payload).hexdigest()
            if digest != EMBEDDED_SHA256[stem]:
                raise DataError(f"{path}: SHA-256 {digest}, expected {EMBEDDED_SHA256[stem]}")
        arrays[field] = parse_idx(payload, path, ndim)
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        label_path = _find(directory, FILES[f"y_{split}"][0])
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{label_path}: {labels.shape[0]} labels, expected {images.shape[0]} "
                f"to match {_find(directory, FILES[f'x_{split}'][0]).name}"
            )
        if labels.size and labels.max() >= NUM_CLASSES:
            raise DataError(
                f"{label_path}: label {int(labels.max())} out of range, "
                f"expected 0..{NUM_CLASSES - 1}"
            )
    return MNIST(**arrays, source=str(directory), checksum_verified=embedded)


def class_counts(labels: np.ndarray) -> list[int]:
    return np.bincount(labels, minlength=NUM_CLASSES).tolist()
