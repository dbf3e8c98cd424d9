"""CLI options made from the config's fields (bnlab.experiments.config.FIELD_HELP): one option per
field, its help with each preset's default, and the parsing of list values. A new config field is
an option of every command that takes config fields, with no edit here."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from bnlab.errors import ConfigError
from bnlab.experiments.config import ExperimentConfig
from bnlab.experiments.fields import FIELD_HELP
from bnlab.experiments.presets import PRESETS

KEYWORD = inspect.Parameter.KEYWORD_ONLY
TYPES = {f.name: f.type for f in fields(ExperimentConfig)}
# fields whose option is spelled differently from the field (a Python keyword or builtin)
PARAMETER = {"input": "input_mode"}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _defaults(name: str) -> str:
    """ "[seed: 0.001; paper: 0.5]" (or "[default: 60]" when every preset agrees)."""
    shown = {p: _show(getattr(c, name)) for p, c in PRESETS.items()}
    if len(set(shown.values())) == 1:
        return f"[default: {next(iter(shown.values()))}]"
    return "[default: " + ", ".join(f"{v} ({p})" for p, v in shown.items()) + "]"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return (
        "embedded MNIST"
        if value is None
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def _annotation(name: str, help_text: str) -> Any:
    kind = TYPES[name]
    if "bool" in kind:
        return Annotated[
            bool | None, typer.Option(f"{flag(name)}/--no-{flag(name)[2:]}", help=help_text)
        ]
    if "int" in kind and "tuple" not in kind:
        option_type = int | None
    elif "float" in kind:
        option_type = float | None
    elif name == "data_dir":
        # the name as given: typer's Path would turn an empty one into "." (the working directory)
        return Annotated[str | None, typer.Option(flag(name), help=help_text, metavar="DIR")]
    else:
        option_type = str | None  # strings, and lists given comma-separated
    return Annotated[option_type, typer.Option(flag(name), help=help_text)]


def field_parameters(names: list[str], help_suffix: dict[str, str] | None = None) -> list:
    """Keyword parameters (for a command's __signature__) for the config fields ``names``."""
    return [
        inspect.Parameter(
            PARAMETER.get(name, name),
            KEYWORD,
            default=None,
            annotation=_annotation(
                name,
                f"{FIELD_HELP[name]} {(help_suffix or {}).get(name, _defaults(name))}",
            ),
        )
        for name in names
    ]


def field_values(kwargs: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The config overrides given on the command line (None: not given), lists parsed."""
    out = {}
    for name in names:
        value = kwargs.pop(PARAMETER.get(name, name))
        kind = TYPES[name]
        if value is not None and "tuple" in kind:
            value = _list(name, value, int if "int" in kind else str)
        elif value is not None and name == "data_dir":
            value = str(value)
        out[name] = value
    return out


def _list(name: str, text: str, item: type) -> tuple:
    try:
        return tuple(item(v.strip()) for v in text.split(","))
    except ValueError:
        kind = "integers" if item is int else "names"
        raise ConfigError(f"{flag(name)}: expected comma-separated {kind}, got {text!r}") from None


def nonempty_path(value: str) -> Path:
    """A path option's value; an empty one (``--out ''``) would silently mean ".": refused."""
    if not value.strip():
        raise typer.BadParameter("expected a path, got an empty name")
    return Path(value)


def out_option(help_text: str) -> Any:
    """``--out DIR``, refusing an empty name."""
    return typer.Option("--out", help=help_text, parser=nonempty_path)


SKIP_RESOURCES_HELP = (
    "Start even when the run's estimated memory or disk use exceeds what is available."
)


def skip_resources_option() -> Any:
    return typer.Option("--skip-resource-check", help=SKIP_RESOURCES_HELP)


QUIET_HELP = "No progress output: only the summary at the end (and errors)."


def quiet_option() -> Any:
    return typer.Option("--quiet", "-q", help=QUIET_HELP)
