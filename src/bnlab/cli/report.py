"""`bnlab report DIR...`: one report from several run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bnlab.errors import ConfigError
from bnlab.experiments.merge import merged_report
from bnlab.outputs.files import atomic_write_text


def report(
    directories: Annotated[
        list[Path], typer.Argument(help="Run directories written by bnlab (reproduce, analyze).")
    ],
    out: Annotated[Path, typer.Option("--out", help="The merged report to write.")] = Path(
        "report.md"
    ),
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
) -> None:
    """Merge run directories into one Markdown report: a table of every network's final test
    accuracy, then each run's report (claims beside measurements) with its figures linked."""
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out}: file exists; pass --overwrite to replace it")
    if out.exists() and not out.is_file():
        raise ConfigError(f"--out {out}: expected a file, got a directory")
    text = merged_report(directories, out)
    atomic_write_text(out, text)
    print(f"wrote {out} ({len(directories)} run directories)")
