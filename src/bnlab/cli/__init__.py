"""The `bnlab` command: a thin layer that parses options and calls the importable API.

Every user error (a bad file, an out-of-range option) is a :class:`bnlab.errors.BnlabError`;
``main`` prints it as one line on stderr and exits with status 2, like a usage error.
"""

from __future__ import annotations

import sys

import typer

from bnlab import __version__
from bnlab.cli.analyze import analyze_app
from bnlab.cli.data import data_app
from bnlab.cli.report import report
from bnlab.cli.reproduce import reproduce, summary
from bnlab.cli.sweep import sweep
from bnlab.errors import BnlabError

app = typer.Typer(
    name="bnlab",
    help="Batch Normalization as Ioffe & Szegedy (2015) specify it, and the experiments around it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # click's plain help: flags shown as flags, no rich markup eating "[...]"
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")
app.command("reproduce")(reproduce)
app.command("summary")(summary)
app.command("sweep")(sweep)
app.add_typer(analyze_app, name="analyze")
app.command("report")(report)


def _print_version(value: bool) -> None:
    if value:
        print(f"bnlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Batch Normalization as Ioffe & Szegedy (2015) specify it, and the experiments around it."""


def main() -> None:
    try:
        app()
    except BnlabError as e:
        print(f"bnlab: error: {e}", file=sys.stderr)
        sys.exit(2)
