"""Errors a user can cause: the CLI prints their message on one line to stderr and exits 2."""


class BnlabError(Exception):
    """A problem with the user's input (a file, an option, a config), not a bug in bnlab."""


class ConfigError(BnlabError, ValueError):
    """A configuration value is out of range or of the wrong kind; the message names the option."""


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise a ConfigError naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
