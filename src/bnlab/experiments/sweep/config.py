"""The sweep file: a preset, overrides of its fields, the seeds and a ``[grid]`` of field values,
checked field by field (see :mod:`bnlab.experiments.sweep` and docs/sweep.md). Every problem is a
one-line :class:`ConfigError` naming the file and the field.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bnlab.errors import ConfigError
from bnlab.experiments.config import INT32_MAX, MAX_SEEDS, ExperimentConfig, brief_repr
from bnlab.experiments.presets import preset
from bnlab.experiments.sweep.layout import check_setting
from bnlab.files import read_user_text
from bnlab.outputs.report import show_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


# a grid axis of more values than this is a typo or a generated file gone wrong
MAX_AXIS = 10_000
# runs of one sweep (cells x variants x seeds): each is a network trained in memory at once
MAX_RUNS = 100_000

# fields that are not grid axes, and why
NOT_AXES = {
    "preset": "a sweep has one preset; run one sweep per preset",
    "seeds": "seeds are given at the top level (seeds = [0, 1] or seeds = 2)",
    "first_seed": "seeds are given at the top level (seeds = [0, 1] or seeds = 2)",
    "variants": "every cell trains every variant; set variants at the top level",
    "steps": "every run is measured along the way (eval_every); set steps at the top level",
    "layout": "a sweep trains in one layout; set layout at the top level",
}


def _kind(name: str, default: Any) -> str:
    if name == "data_dir":
        return "str"
    if isinstance(default, tuple):
        return "ints" if name == "hidden" else "strs"
    return type(default).__name__


KINDS = {f.name: _kind(f.name, f.default) for f in fields(ExperimentConfig)}
EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "ints": "a list of integers",
    "strs": "a list of strings",
}


def _typed(kind: str, value: Any) -> tuple[bool, Any]:
    """Whether ``value`` (from TOML) is of ``kind``, and the value as the config holds it."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int":
        return is_int, value
    if kind == "float":
        ok = isinstance(value, float) or (is_int and abs(value) < 2**1000)
        return ok, float(value) if ok else value
    if kind == "str":
        return isinstance(value, str), value
    if kind == "bool":
        return isinstance(value, bool), value
    item = int if kind == "ints" else str
    ok = isinstance(value, list) and all(
        isinstance(v, item) and not isinstance(v, bool) for v in value
    )
    return ok, tuple(value) if ok else value


@dataclass(frozen=True)
class SweepConfig:
    """A parsed sweep file: the base config (preset + overrides), the seeds and the grid axes."""

    source: str
    base: ExperimentConfig
    seeds: tuple[int, ...]
    grid: dict[str, tuple[Any, ...]]
    layout: str = "auto"  # how devices train their runs (bnlab.experiments.sweep.layout)

    def cells(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values, the first axis varying slowest."""
        names = list(self.grid)
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]

    def cell_config(self, cell: dict[str, Any]) -> ExperimentConfig:
        return self.base.replace(**cell, seeds=len(self.seeds), first_seed=min(self.seeds))

    def to_dict(self) -> dict[str, Any]:
        """The sweep as config.json holds it: the file, the base config, seeds and grid."""
        return {
            "source": self.source,
            "preset": self.base.preset,
            "seeds": list(self.seeds),
            "layout": self.layout,
            "grid": {
                k: [list(v) if isinstance(v, tuple) else v for v in vs]
                for k, vs in self.grid.items()
            },
            "base": self.base.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepConfig:
        grid = {
            k: tuple(_typed(KINDS[k], v)[1] for v in values) for k, values in data["grid"].items()
        }
        base = ExperimentConfig.from_dict(data["base"])
        # a sweep from before the layout field trained vmapped
        return cls(data["source"], base, tuple(data["seeds"]), grid, data.get("layout", "vmapped"))


def cell_label(cell: dict[str, Any]) -> str:
    """``lr=0.001, hidden=100-100``."""
    return ", ".join(f"{k}={show_cell_value(v)}" for k, v in cell.items()) or "(no grid)"


def show_cell_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "-".join(map(str, value))
    return show_value(value)


def _error(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {message}")


def _field_value(source: str, where: str, name: str, value: Any) -> Any:
    ok, typed = _typed(KINDS[name], value)
    if not ok:
        raise _error(source, where, f"expected {EXPECTED[KINDS[name]]}, got {brief_repr(value)}")
    return typed


def parse_sweep(data: dict[str, Any], source: str = "<sweep>") -> SweepConfig:
    """Check a parsed TOML document and build the sweep; every problem is a ConfigError naming
    ``source`` and the field."""
    data = dict(data)
    name = data.pop("preset", "seed")
    if not isinstance(name, str):
        raise _error(source, "preset", f"expected a string, got {name!r}")
    try:
        base = preset(name)
    except ConfigError as e:
        raise _error(source, "preset", str(e).removeprefix("--preset: ")) from None
    layout = check_setting(source, data.pop("layout", "auto"))
    grid_table = data.pop("grid", {})
    if not isinstance(grid_table, dict):
        raise _error(source, "grid", f"expected a table [grid], got {grid_table!r}")
    seeds_value = data.pop("seeds", None)
    if seeds_value is None and not data and not grid_table:
        raise _error(source, "steps", "expected a sweep (fields or a [grid]); the file has none")
    if isinstance(seeds_value, list) and "first_seed" in data:
        raise _error(source, "first_seed", "a seeds list names its seeds; give one or the other")
    overrides: dict[str, Any] = {}
    for key, value in data.items():
        if key not in KINDS or key in ("preset", "seeds"):
            raise _error(source, key, f"unknown field; expected one of {_known()}")
        overrides[key] = _field_value(source, key, key, value)
    seeds = _seeds(source, seeds_value, overrides.pop("first_seed", 0))
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_table.items():
        where = f"grid.{key}"
        if key in NOT_AXES:
            raise _error(source, where, f"not a grid axis: {NOT_AXES[key]}")
        if key not in KINDS:
            raise _error(source, where, f"unknown field; expected one of {_known()}")
        if key in overrides:
            raise _error(source, where, "also set at the top level; give it in one place")
        if not isinstance(values, list):
            raise _error(source, where, f"expected a list of values, got {values!r}")
        if not values:
            raise _error(source, where, "expected at least one value, got an empty list")
        if len(values) > MAX_AXIS:
            many = f"expected at most {MAX_AXIS:,} values, got {len(values):,}"
            raise _error(source, where, many)
        typed = tuple(_field_value(source, f"{where}[{i}]", key, v) for i, v in enumerate(values))
        if len(set(typed)) != len(typed):
            raise _error(source, where, f"expected distinct values, got {brief_repr(values)}")
        grid[key] = typed
    _check_data_dirs(source, overrides, grid)
    try:
        base = base.replace(**overrides, seeds=len(seeds), first_seed=min(seeds))
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    cells = math.prod(len(values) for values in grid.values())
    runs = cells * len(base.variants) * len(seeds)
    if runs > MAX_RUNS:
        raise _error(
            source,
            "grid",
            f"expected at most {MAX_RUNS:,} runs (cells x variants x seeds), got {runs:,} "
            f"({cells:,} cells x {len(base.variants)} variants x {len(seeds):,} seeds)",
        )
    sweep = SweepConfig(source, base, seeds, grid, layout)
    for cell in sweep.cells():
        try:
            sweep.cell_config(cell)
        except ConfigError as e:
            raise ConfigError(f"{source}: grid cell {cell_label(cell)}: {e}") from None
    return sweep


def _known() -> str:
    top = ("preset", "seeds", "layout", "[grid]")
    return ", ".join([*top, *(k for k in KINDS if k not in top)])


def _seeds(source: str, value: Any, first: int) -> tuple[int, ...]:
    """The seeds: ``first`` alone, a count from ``first`` or a list; each checked (count and
    size) before any list is built."""
    if value is None:
        return (first,)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _error(source, "seeds", f"expected a count of at least 1, got {value}")
        if value > MAX_SEEDS:
            raise _error(
                source, "seeds", f"expected a count 1..{MAX_SEEDS:,}, got {brief_repr(value)}"
            )
        return tuple(range(first, first + value))
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    )
    if not ok:
        raise _error(
            source,
            "seeds",
            f"expected a count or a non-empty list of seeds >= 0, got {brief_repr(value)}",
        )
    if len(value) > MAX_SEEDS:
        raise _error(source, "seeds", f"expected at most {MAX_SEEDS:,} seeds, got {len(value):,}")
    beyond = [v for v in value if v > INT32_MAX]
    if beyond:
        raise _error(
            source,
            "seeds",
            f"expected seeds in 0..{INT32_MAX:,} (int32), got {brief_repr(beyond[0])}",
        )
    if len(set(value)) != len(value):
        raise _error(source, "seeds", f"expected distinct seeds, got {brief_repr(value)}")
    return tuple(value)


def _check_data_dirs(source: str, overrides: dict[str, Any], grid: dict[str, tuple]) -> None:
    """Every ``data_dir`` of the file names an existing directory (said here, naming the file
    and the field, rather than when the data is loaded)."""
    named = [("data_dir", overrides["data_dir"])] if "data_dir" in overrides else []
    named += [(f"grid.data_dir[{i}]", d) for i, d in enumerate(grid.get("data_dir", ()))]
    for where, directory in named:
        if not directory.strip():
            raise _error(source, where, "expected a directory, got an empty name")
        try:
            found = Path(directory).is_dir()
        except (OSError, ValueError) as e:  # a name too long, a NUL byte
            shown = f"{brief_repr(directory)} ({e})"
            raise _error(source, where, f"expected a directory, got {shown}") from None
        if not found:
            what = "not a directory" if Path(directory).exists() else "no such directory"
            raise _error(
                source,
                where,
                f"expected a directory of MNIST-format IDX files, got {brief_repr(directory)} "
                f"({what})",
            )


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and check a sweep file (TOML)."""
    path = Path(path)
    # a byte-order mark (Windows editors) is not part of the TOML
    text = read_user_text(path, ConfigError).removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except (RecursionError, MemoryError):  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    return parse_sweep(data, str(path))
