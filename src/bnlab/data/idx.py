"""Reading IDX files, the format MNIST, Fashion-MNIST and KMNIST are published in.

An IDX file is: two zero bytes, a type code, the number of dimensions d, d big-endian int32 sizes,
then the values in row-major order. bnlab only reads unsigned bytes (type 0x08).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from bnlab.errors import BnlabError

UNSIGNED_BYTE = 0x08


class DataError(BnlabError, ValueError):
    """A data file is missing, truncated or not what it should be. The message names the file."""


def read_bytes(path: Path) -> bytes:
    """The file's contents, decompressed when the name ends in .gz."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e})") from None


def parse_idx(payload: bytes, path: Path, ndim: int) -> np.ndarray:
    """Decode an IDX payload of unsigned bytes with ``ndim`` dimensions."""
    if len(payload) < 4:
        raise DataError(
            f"{path}: truncated: {len(payload)} bytes, expected at least a 4-byte header"
        )
    magic = int.from_bytes(payload[:4], "big")
    expected_magic = (UNSIGNED_BYTE << 8) | ndim
    if magic != expected_magic:
        raise DataError(
            f"{path}: bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    header_len = 4 + 4 * ndim
    if len(payload) < header_len:
        raise DataError(f"{path}: truncated header: {len(payload)} bytes, expected {header_len}")
    shape = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_len = header_len + int(np.prod(shape, dtype=np.int64))
    if len(payload) != expected_len:
        kind = "truncated" if len(payload) < expected_len else "trailing data"
        raise DataError(
            f"{path}: {kind}: {len(payload)} bytes, expected {expected_len} for shape {shape}"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header_len).reshape(shape)
