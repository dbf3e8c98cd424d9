"""The `bnlab` command: a thin layer that parses options and calls the importable API.

Every user error is one line on stderr and exit status 2: bnlab's own
(:class:`bnlab.errors.BnlabError`: a bad file, an out-of-range option), the command line's (an
unknown option, a value of the wrong type) and the system's (a path that cannot be written, a
full disk). Anything else is bnlab's fault: "bnlab: internal error" in one line and exit status 1;
``bnlab --debug ...`` (or BNLAB_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import errno
import os
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


DEBUG = "BNLAB_DEBUG"
# the exit status typer gives a KeyboardInterrupt (128 + SIGINT)
INTERRUPTED = 130


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an internal error (or BNLAB_DEBUG=1)."
    ),
) -> None:
    """Batch Normalization as Ioffe & Szegedy (2015) specify it, and the experiments around it."""
    if debug:
        os.environ[DEBUG] = "1"


def _fail(message: str, code: int) -> None:
    print("bnlab: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(code)


def _command_line_error(e: Exception) -> bool:
    """A usage error of the command-line parser (typer's click): it has an exit code and a
    message, and names the command it happened in."""
    return hasattr(e, "exit_code") and hasattr(e, "format_message") and hasattr(e, "ctx")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except BnlabError as e:
        _fail(f"error: {e}", 2)

    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        # a run's status.json says it is incomplete; --resume continues it from its checkpoint
        hint = "; free some space, then --resume the run" if e.errno == errno.ENOSPC else ""
        _fail(f"error: {e.strerror or e}{where}{hint}", 2)
    except Exception as e:
        if _command_line_error(e):
            if type(e).__name__ == "NoArgsIsHelpError":  # `bnlab` alone: its help
                print(e.format_message(), file=sys.stderr)
                sys.exit(e.exit_code)
            command = e.ctx.command_path if e.ctx is not None else "bnlab"
            _fail(f"error: {e.format_message()} (see '{command} -h')", e.exit_code)
        if type(e).__name__ == "Abort":
            _fail("aborted", 1)
        if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e):
            # past the preflight's estimate (bnlab.experiments.preflight): the options ask for
            # more memory than the machine has
            first = (str(e).strip().splitlines() or ["MemoryError"])[0][:200]
            _fail(f"error: out of memory ({first}); use smaller options", 2)
        if os.environ.get(DEBUG) == "1":
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} (a bug in bnlab; rerun with "
            "`bnlab --debug ...` or BNLAB_DEBUG=1 for the traceback)",
            1,
        )
    if code == INTERRUPTED:
        # typer's answer to a KeyboardInterrupt (a second Ctrl-C during training, or one outside
        # it): stop now, in one line
        _fail("interrupted (an interrupted run continues from its last checkpoint: --resume)", code)
    sys.exit(code or 0)
