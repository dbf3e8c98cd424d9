"""The IDX loader: the embedded MNIST, and small IDX files written here, valid and broken."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnlab.data import DataError, class_counts, load_mnist

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    header = bytes([0, 0, magic_type, array.ndim])
    return header + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()


def write_dataset(directory: Path, n_train: int = 12, n_test: int = 5, gz: bool = True) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,), dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
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


def _count_mismatch(path: Path) -> None:
    path.write_bytes(gzip.compress(idx(np.zeros((11,), np.uint8))))


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
            "truncated: 9417 bytes, expected 9424 for shape (12, 28, 28)",
        ),
        (
            "train-images-idx3-ubyte",
            _wrong_magic,
            "bad magic number 0x00000d03, expected 0x00000803",
        ),
        ("t10k-images-idx3-ubyte", _bad_gzip, "not a valid gzip file"),
        ("train-labels-idx1-ubyte", _count_mismatch, "11 labels, expected 12"),
        ("train-labels-idx1-ubyte", _label_out_of_range, "label 10 out of range, expected 0..9"),
        ("t10k-labels-idx1-ubyte", _trailing_data, "trailing data: 14 bytes, expected 13"),
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


def test_cli_bad_data_dir_is_one_line_and_exit_2(tmp_path):
    write_dataset(tmp_path)
    _wrong_magic(tmp_path / "train-images-idx3-ubyte.gz")
    result = run_cli("data", "info", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("bnlab: error: ") and "bad magic number" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout == "bnlab 0.1.0\n"
