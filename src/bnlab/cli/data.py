"""`bnlab data ...`: look at the data bnlab trains on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bnlab.cli.options import nonempty_path
from bnlab.data import class_counts, load_mnist

data_app = typer.Typer(
    help="Inspect the embedded MNIST or a directory of IDX files.", no_args_is_help=True
)


@data_app.command("info")
def info(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Directory with the four IDX files (gzip or raw). Default: the embedded MNIST.",
            parser=nonempty_path,
        ),
    ] = None,
) -> None:
    """Counts, shapes, class counts and checksum status of the data."""
    data = load_mnist(data_dir)
    table = Table(title=f"MNIST-format data from {data.source}")
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("shape")
    table.add_column("class counts (0..9)")
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        table.add_row(
            split, f"{len(y):,}", f"{x.shape} {x.dtype}", " ".join(map(str, class_counts(y)))
        )
    console = Console()
    console.print(table)
    if data.checksum_verified:
        console.print("checksum: SHA-256 of all four files verified against the recorded values")
    else:
        console.print("checksum: not checked (a user directory has no recorded values)")
