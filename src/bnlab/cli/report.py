"""`bnlab report DIR...`: one report from several run directories."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bnlab.errors import ConfigError
from bnlab.experiments.merge import merged_report
from bnlab.files import atomic_write_text


def report(
    directories: Annotated[
        list[Path], typer.Argument(help="Run directories written by bnlab (reproduce, analyze).")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The merged report to write. Default: report-<time>.md."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
) -> None:
    """Merge run directories into one Markdown report: a table of every network's final test
    accuracy, then each run's report (claims beside measurements) with its figures linked."""
    out = out if out is not None else fresh_path(f"report-{datetime.now():%Y%m%d-%H%M%S}", ".md")
    check_out_file(out, overwrite)
    text = merged_report(directories, out)
    try:
        atomic_write_text(out, text)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    print(f"wrote {out} ({len(directories)} run directories)")


def check_out_file(out: Path, overwrite: bool) -> None:
    """--out must name a file (a directory, or a name under a file, is refused) that is new
    unless ``overwrite``."""
    if out.is_dir():
        raise ConfigError(f"--out {out}: expected a file, got a directory")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"--out {out}: {out.parent} is a file, expected a directory")
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out}: file exists; pass --overwrite to replace it")


def fresh_path(stem: str, suffix: str) -> Path:
    """``stem`` + ``suffix`` in the working directory, or stem-2, stem-3, ... when taken."""
    path, k = Path(stem + suffix), 1
    while path.exists():
        k += 1
        path = Path(f"{stem}-{k}{suffix}")
    return path
