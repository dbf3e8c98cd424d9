"""The IDX loader: the embedded MNIST, and small IDX files written here, valid and broken."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_fixtures import bnlab_here

from bnlab.data import DataError, check_trainable, class_counts, load_mnist
from bnlab.data.idx import parse_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    header = bytes([0, 0, magic_type, array.ndim])
    return header + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()


def write_dataset(
    directory: Path,
    n_train: int = 12,
    n_test: int = 5,
    gz: bool = True,
    image_shape: tuple[int, int] = (28, 28),
) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *image_shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,), dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *image_shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (n_test,), dtype=np.uint8),
    }
    for stem, array in arrays.items():
        payload = idx(array)
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / stem).write_bytes(payload)
    return arrays


def test_embedded_mnist_has_the_standard_counts_and_checksums():
    data = load_mnist()
    assert data.x_train.shape == (60000, 28, 28) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (10000, 28, 28)
    assert class_counts(data.y_train) == TRAIN_COUNTS
    assert class_counts(data.y_test) == TEST_COUNTS
    assert data.checksum_verified


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_user_directory_round_trips_exact_arrays(tmp_path, gz):
    arrays = write_dataset(tmp_path, gz=gz)
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.x_train, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.x_test, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert not data.checksum_verified


def _truncate(path: Path) -> None:
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload[:-7]))


def _wrong_magic(path: Path) -> None:
    payload = bytearray(gzip.decompress(path.read_bytes()))
    payload[2] = 0x0D  # float32 type code
    path.write_bytes(gzip.compress(bytes(payload)))


def _bad_gzip(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:20])


def _label_out_of_range(path: Path) -> None:
    path.write_bytes(gzip.compress(idx(np.full((12,), 10, np.uint8))))


def _trailing_data(path: Path) -> None:
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b"\0"))


def _tiny_header(path: Path) -> None:
    path.write_bytes(gzip.compress(b"\0\0"))


@pytest.mark.parametrize(
    ("stem", "corrupt", "message"),
    [
        (
            "train-images-idx3-ubyte",
            _truncate,
            "truncated: header says 12 x 28 x 28 = 9408 bytes of images, the file holds 9401",
        ),
        (
            "train-images-idx3-ubyte",
            _wrong_magic,
            "bad magic number 0x00000d03, expected 0x00000803",
        ),
        ("t10k-images-idx3-ubyte", _bad_gzip, "not a valid gzip file"),
        ("train-labels-idx1-ubyte", _label_out_of_range, "label 10 out of range, expected 0..9"),
        (
            "t10k-labels-idx1-ubyte",
            _trailing_data,
            "trailing data: header says 5 bytes of labels, the file holds 6",
        ),
        (
            "t10k-labels-idx1-ubyte",
            _tiny_header,
            "truncated: 2 bytes, expected at least a 4-byte header",
        ),
    ],
)
def test_broken_file_raises_data_error_naming_file_and_problem(tmp_path, stem, corrupt, message):
    write_dataset(tmp_path)
    corrupt(tmp_path / f"{stem}.gz")
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    assert str(err.value).startswith(str(tmp_path / stem))
    assert message in str(err.value)


def test_missing_file_is_named(tmp_path):
    write_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\[\.gz\]: file not found"):
        load_mnist(tmp_path)


def test_tampered_embedded_copy_fails_its_checksum(tmp_path, monkeypatch):
    arrays = write_dataset(tmp_path)
    assert arrays  # a valid dataset, but not the recorded MNIST bytes
    monkeypatch.setattr("bnlab.data.embedded_dir", lambda: tmp_path)
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz: SHA-256 [0-9a-f]{64}, expected ba89"
    ):
        load_mnist()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bnlab", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_data_info_prints_counts_and_checksum_status():
    result = run_cli("data", "info")
    assert result.returncode == 0, result.stderr
    assert "60,000" in result.stdout and "10,000" in result.stdout
    assert "5923 6742 5958 6131 5842 5421 5918" in result.stdout.replace("\n│", "")
    assert "SHA-256 of all four files verified" in result.stdout


def test_cli_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout == "bnlab 0.1.0\n"


# --- headers too large for a fixed-width product, and each file's own problem ----------------


BIG = "2147483648 x 2147483648 x 4 = 18446744073709551616 bytes of images"


@pytest.mark.parametrize(
    ("sizes", "body", "message"),
    [
        # 2^31 x 2^31 x 4 = 2^64 wraps to 0 in int64 and matched an empty file
        ((2**31, 2**31, 4), 0, f"truncated: header says {BIG}, the file holds 0"),
        ((2**32 - 1,) * 3, 16, "header says 4294967295 x 4294967295 x 4294967295 = "),
        ((0, 28, 28), 3, "trailing data: header says 0 x 28 x 28 = 0 bytes of images, the file"),
    ],
)
def test_header_sizes_are_multiplied_in_python_ints(sizes, body, message):
    path = Path("/data/train-images-idx3-ubyte")
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in sizes)
    with pytest.raises(DataError) as err:
        parse_idx(header + bytes(body), path, 3)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def _socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (Path.mkdir, "is a directory, expected an IDX file"),
        (os.mkfifo, "not a regular file (a FIFO), expected an IDX file"),  # and no hang
        (_socket, "not a regular file (a socket), expected an IDX file"),
        (lambda p: p.symlink_to(p.name), "symlink loop"),
        (lambda p: p.symlink_to("gone"), "broken symlink (to gone)"),
    ],
)
def test_what_stands_in_for_a_file_is_named(tmp_path, make, message):
    write_dataset(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.unlink()
    make(path)
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    assert str(err.value) == f"{path}: {message}"


ONE_PER_IMAGE = "labels; expected one label per image"


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        # a short images file: its own header disagrees with its size, so it is the one blamed
        (lambda a: idx(a)[:-100], idx, "{x}: truncated: header says 5 x 28 x 28 = 3920 bytes"),
        # two well-formed files that disagree: both named, with both counts
        (lambda a: idx(a[:4]), idx, "{x} holds 4 images but {y} holds 5 " + ONE_PER_IMAGE),
        (idx, lambda a: idx(np.tile(a, 2)), "{x} holds 5 images but {y} holds 10 " + ONE_PER_IMAGE),
    ],
)
def test_a_count_disagreement_blames_the_right_file(tmp_path, images, labels, message):
    arrays = write_dataset(tmp_path, gz=False)
    x, y = tmp_path / "t10k-images-idx3-ubyte", tmp_path / "t10k-labels-idx1-ubyte"
    x.write_bytes(images(arrays[x.name]))
    y.write_bytes(labels(arrays[y.name]))
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    assert str(err.value).startswith(message.format(x=x, y=y))


# --- data the networks cannot train on (checked before anything is compiled) -------------------


SHAPE = "expected 28x28 images (the networks take 784 inputs), got"
TRAIN, TEST = "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"


@pytest.mark.parametrize(
    ("layout", "batch_size", "message", "file"),
    [
        ({"image_shape": (10, 10)}, 6, f"{SHAPE} 10x10", TRAIN),
        ({"image_shape": (28, 29)}, 6, f"{SHAPE} 28x29", TRAIN),
        ({"n_train": 0}, 6, "expected at least 6 training examples (one batch), got 0", TRAIN),
        ({"n_train": 12}, 60, "expected at least 60 training examples (one batch), got 12", TRAIN),
        ({"n_test": 0}, 6, "expected at least 1 test example, got 0", TEST),
    ],
)
def test_untrainable_data_is_refused_in_one_line(tmp_path, layout, batch_size, message, file):
    write_dataset(tmp_path, **layout)
    data = load_mnist(tmp_path)  # a well-formed directory: loading it is fine
    with pytest.raises(DataError) as err:
        check_trainable(data, batch_size=batch_size)
    assert str(err.value) == f"--data-dir {tmp_path}: {message} in {tmp_path / file}"


def test_trainable_data_passes(tmp_path):
    write_dataset(tmp_path, n_train=12, n_test=1)
    check_trainable(load_mnist(tmp_path), batch_size=12)
    check_trainable(load_mnist(), batch_size=60)


@pytest.mark.parametrize(
    ("data_dir", "message"),
    [
        ("x" * 5000, f"--data-dir {'x' * 100}... (5,000 characters): file name too long"),
        ("{tmp}/nope", "--data-dir {tmp}/nope: directory not found"),
        ("{tmp}/file", "--data-dir {tmp}/file: not a directory"),
        ("{tmp}/loop", "--data-dir {tmp}/loop: symlink loop"),
        ("{tmp}", "{tmp}/train-images-idx3-ubyte.gz: bad magic number 0x00000d03, expected "),
    ],
)
def test_cli_bad_data_dir_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, data_dir, message):
    write_dataset(tmp_path)
    _wrong_magic(tmp_path / "train-images-idx3-ubyte.gz")
    (tmp_path / "file").write_text("")
    (tmp_path / "loop").symlink_to("loop")
    code, stderr = bnlab_here(
        capsys, monkeypatch, "data", "info", "--data-dir", data_dir.format(tmp=tmp_path)
    )
    assert code == 2 and stderr.count("\n") == 1
    assert stderr.startswith(f"bnlab: error: {message.format(tmp=tmp_path)}")
