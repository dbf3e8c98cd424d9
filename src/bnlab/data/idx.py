"""Reading IDX files, the format MNIST, Fashion-MNIST and KMNIST are published in.

An IDX file is: two zero bytes, a type code, the number of dimensions d, d big-endian int32 sizes,
then the values in row-major order. bnlab only reads unsigned bytes (type 0x08).
"""

from __future__ import annotations

import errno
import gzip
import math
import os
import stat
import zlib
from pathlib import Path

import numpy as np

from bnlab.errors import BnlabError

UNSIGNED_BYTE = 0x08
# what an IDX file of d dimensions holds, for messages
CONTENTS = {1: "labels", 3: "images"}
# a path longer than LONG_PATH characters is shown by its first SHOWN_CHARS and its length
LONG_PATH, SHOWN_CHARS = 256, 100
SPECIAL_FILES = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class DataError(BnlabError, ValueError):
    """A data file is missing, truncated or not what it should be. The message names the file."""


def show_path(path: str | Path) -> str:
    """``path`` as a message shows it: whole, or its start and length when very long."""
    text = str(path)
    if len(text) <= LONG_PATH:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text):,} characters)"


def stat_error(path: Path, e: OSError, what: str = "file") -> DataError:
    """The DataError for an OSError from stat()ing ``path``, a ``what``."""
    if e.errno == errno.ENOENT and os.path.islink(path):
        return DataError(f"{show_path(path)}: broken symlink (to {os.readlink(path)})")
    if e.errno == errno.ENOENT:
        return DataError(f"{show_path(path)}: {what} not found")
    if e.errno == errno.ELOOP:
        return DataError(f"{show_path(path)}: symlink loop")
    if e.errno == errno.ENAMETOOLONG:
        return DataError(f"{show_path(path)}: file name too long")
    return DataError(f"{show_path(path)}: cannot read ({e.strerror})")


def check_regular_file(path: Path, expected: str = "an IDX file") -> None:
    """Refuse anything but a regular file (after symlinks), without opening it: a FIFO would
    block the reader forever. ``expected`` says what the file should be."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise stat_error(path, e) from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory, expected {expected}")
    if not stat.S_ISREG(mode):
        what = next((name for test, name in SPECIAL_FILES if test(mode)), "a special file")
        raise DataError(f"{path}: not a regular file ({what}), expected {expected}")


def read_bytes(path: Path) -> bytes:
    """The file's contents, decompressed when the name ends in .gz."""
    check_regular_file(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise stat_error(path, e) from None
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e})") from None


def _check_length(payload: bytes, path: Path, shape: tuple[int, ...], header_len: int) -> None:
    """The values after the header must be exactly as many as the header's sizes multiply to
    (in Python ints: sizes up to 2^32 - 1 overflow any fixed-width product)."""
    expected, found = math.prod(shape), len(payload) - header_len
    if found == expected:
        return
    kind = "truncated" if found < expected else "trailing data"
    sizes = " x ".join(map(str, shape)) + (f" = {expected}" if len(shape) > 1 else "")
    what = CONTENTS.get(len(shape), "values")
    raise DataError(f"{path}: {kind}: header says {sizes} bytes of {what}, the file holds {found}")


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
    _check_length(payload, path, shape, header_len)
    return np.frombuffer(payload, dtype=np.uint8, offset=header_len).reshape(shape)
