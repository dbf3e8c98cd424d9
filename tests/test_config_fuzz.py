"""Random values thrown at the config layer (issue 10, item 8): the experiment's config
(``ExperimentConfig.from_dict`` / ``.replace``), sweep files (TOML text made from random fields,
random text, random bytes) and each analysis's config (``config_from_dict``, its CLI options'
``settings_from_options``, ``default_config``). Each either gives a valid config or raises
:class:`bnlab.errors.BnlabError`, the one user-facing error type; anything else (TypeError,
OverflowError, RecursionError, MemoryError...) is a bug.

"Valid" means usable as it stands: every field of its declared type, integers within int32 (the
engine's counters and seeds), floats finite in float32 (the engine's precision), config.json
writable (strict JSON) and read back to the same config, and the engine's specs buildable.

Each example runs with the process's private memory capped at 64 MiB over what it holds, so
that a value that makes the config layer allocate without bound (``seeds = 1000000000`` in a
sweep file) fails its example with MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import resource
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.bad_inputs import private_memory, toml_value
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bnlab.errors import BnlabError
from bnlab.experiments.config import ExperimentConfig
from bnlab.experiments.presets import PRESETS
from bnlab.experiments.registry import ANALYSES
from bnlab.experiments.santurkar import AnalysisConfig
from bnlab.experiments.sweep import SweepConfig, load_sweep

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INT32 = (-(2**31), 2**31 - 1)
FIELDS = {f.name: f for f in dataclasses.fields(ExperimentConfig)}


HEADROOM = 64 * 2**20


@contextmanager
def memory_cap():
    """Cap this process's private memory at HEADROOM over what it holds now, for one example."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = private_memory() + HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- values ------------------------------------------------------------------------------------
SPECIAL_INTS = [0, 1, -1, 2, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, 10**23, 60_001]
SPECIAL_FLOATS = [
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    1e39,
    5e-324,
    1e-50,
    -0.0,
    0.5,
    1.0,
    1e-3,
]
NAMES = ["", " ", "seed", "paper", "bn", "baseline", "sigmoid", "before", "after", "none", "sgd"]
NAMES += ["rmsprop", "gaussian", "glorot_uniform", "binary", "scale", "nan", "inf", "1e400", "ics"]

ints = st.one_of(
    st.integers(-5, 200), st.integers(-(2**70), 2**70), st.integers(), st.sampled_from(SPECIAL_INTS)
)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(SPECIAL_FLOATS))
texts = st.one_of(st.text(max_size=12), st.sampled_from(NAMES))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(st.one_of(st.integers(-2, 70_000), st.sampled_from(NAMES)), min_size=1, max_size=4),
    st.dictionaries(st.text(max_size=5), scalars, max_size=3),
)
field_names = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=8))


# --- what a valid config is --------------------------------------------------------------------
def _fits_int32(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and INT32[0] <= v <= INT32[1]


def _finite_float32(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        as_float = float(v)
    except OverflowError:
        return False
    with np.errstate(over="ignore"):
        return math.isfinite(as_float) and bool(np.isfinite(np.float32(as_float)))


def assert_valid_field(name: str, value: Any, default: Any) -> None:
    shown = f"{name} = {value!r}"
    if name == "data_dir":
        assert value is None or isinstance(value, str), shown
    elif isinstance(default, bool):
        assert isinstance(value, bool), shown
    elif isinstance(default, int):
        assert _fits_int32(value), shown
    elif isinstance(default, float):
        assert _finite_float32(value), shown
    elif isinstance(default, str):
        assert isinstance(value, str), shown
    elif isinstance(default, tuple):
        # every tuple field but conv (empty: an MLP) needs a value
        assert isinstance(value, tuple) and (value or name == "conv"), shown
        item_ok = _fits_int32 if name == "hidden" else (lambda v: isinstance(v, str))
        assert all(item_ok(v) for v in value), shown


def assert_valid_experiment_config(config: Any) -> None:
    assert isinstance(config, ExperimentConfig), config
    for name, f in FIELDS.items():
        assert_valid_field(name, getattr(config, name), f.default)
    text = json.dumps(config.to_dict(), allow_nan=False)  # config.json
    assert ExperimentConfig.from_dict(json.loads(text)) == config
    assert config.first_seed + config.seeds - 1 <= INT32[1]
    config.train_spec()
    for bn in ("none", "before", "after"):
        config.model_spec(bn)


def _config_or_user_error(make, check) -> None:
    """``make()`` gives a config that passes ``check``, or raises BnlabError (with its memory
    capped: a MemoryError is a failure too, not the machine's memory gone)."""
    with memory_cap():
        try:
            made = make()
        except BnlabError:
            return
        check(made)


# --- ExperimentConfig --------------------------------------------------------------------------
@FUZZ
@given(st.dictionaries(field_names, values, max_size=6))
def test_experiment_config_from_dict(data):
    _config_or_user_error(lambda: ExperimentConfig.from_dict(data), assert_valid_experiment_config)


@FUZZ
@given(st.sampled_from(sorted(PRESETS)), st.dictionaries(field_names, values, max_size=5))
def test_experiment_config_replace(name, overrides):
    base = PRESETS[name]
    _config_or_user_error(lambda: base.replace(**overrides), assert_valid_experiment_config)


@pytest.mark.parametrize("name", sorted(FIELDS))
@FUZZ
@given(value=values)
def test_experiment_config_every_field_alone(name, value):
    """One field at a time from a preset's config.json: the other fields are valid."""
    data = {**PRESETS["paper"].to_dict(), name: value}
    _config_or_user_error(lambda: ExperimentConfig.from_dict(data), assert_valid_experiment_config)


# --- sweep files -------------------------------------------------------------------------------
toml_scalars = st.one_of(st.booleans(), ints, floats, texts)
toml_values = st.one_of(
    toml_scalars,
    st.lists(toml_scalars, max_size=4),
    st.lists(st.lists(st.integers(-2, 70_000), max_size=3), max_size=3),
    st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), toml_scalars, max_size=2),
)
sweep_keys = st.one_of(
    st.sampled_from([*sorted(FIELDS), "seeds", "preset", "grid"]),
    st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
)
grid_axes = st.dictionaries(
    st.one_of(st.sampled_from(sorted(FIELDS)), st.from_regex(r"[a-z_]{1,6}", fullmatch=True)),
    st.one_of(st.lists(toml_scalars, max_size=3), st.lists(st.lists(ints, max_size=2), max_size=3)),
    max_size=3,
)


def _toml_inline(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_inline(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml_inline(v) for v in value) + "]"
    return toml_value(value)


def _sweep_text(fields: dict[str, Any], grid: dict[str, Any] | None) -> str:
    lines = [f"{json.dumps(k)} = {_toml_inline(v)}" for k, v in fields.items() if k != "grid"]
    if grid is not None:
        lines.append("[grid]")
        lines += [f"{json.dumps(k)} = {_toml_inline(v)}" for k, v in grid.items()]
    return "\n".join(lines) + "\n"


def assert_valid_sweep(sweep: Any) -> None:
    assert isinstance(sweep, SweepConfig), sweep
    assert_valid_experiment_config(sweep.base)
    seeds = sweep.seeds
    assert isinstance(seeds, tuple) and seeds, seeds
    # (without allocating by the number of seeds: the checks are the config layer's to pass)
    assert all(_fits_int32(s) and s >= 0 for s in seeds), f"a seed beyond int32 in {seeds!r:.80}"
    cells = sweep.cells()
    assert cells
    for cell in cells:
        assert_valid_experiment_config(sweep.cell_config(cell))
    if len(seeds) <= 10_000:
        assert len(set(seeds)) == len(seeds), seeds
        text = json.dumps(sweep.to_dict(), allow_nan=False)  # config.json
        assert SweepConfig.from_dict(json.loads(text)) == sweep


def _assume_no_seed_count_in_the_costly_band(fields: dict[str, Any]) -> None:
    """Leave out ``seeds = N`` with 10**6 < N < 2**31: a count the config layer may accept (the
    run's memory check refuses it later) but whose seeds cost seconds and gigabytes to list. That
    the sweep file's layer lists them before any check is test_bad_inputs' case (seeds 1e8, 1e9);
    here it would only make each example's time depend on the process's free memory."""
    seeds = fields.get("seeds")
    costly = isinstance(seeds, int) and not isinstance(seeds, bool) and 10**6 < seeds < 2**31
    assume(not costly)


def _load(folder: Path, payload: bytes) -> Any:
    path = folder / "sweep.toml"
    path.write_bytes(payload)
    return load_sweep(path)


@FUZZ
@given(
    st.dictionaries(sweep_keys, toml_values, max_size=5),
    st.one_of(st.none(), grid_axes),
    st.booleans(),
)
def test_sweep_file_from_random_fields(folder, fields, grid, bom):
    _assume_no_seed_count_in_the_costly_band(fields)
    text = _sweep_text(fields, grid)
    payload = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    _config_or_user_error(lambda: _load(folder, payload), assert_valid_sweep)


SWEEP_FIELDS = sorted(FIELDS)


@pytest.mark.parametrize("name", SWEEP_FIELDS)
@FUZZ
@given(value=toml_values, on_the_grid=st.booleans())
def test_sweep_file_every_field_alone(folder, name, value, on_the_grid):
    """One field at a time, at the top level or as the grid's one axis, beside a short run."""
    _assume_no_seed_count_in_the_costly_band({name: value})
    fields = {"steps": 20, "eval_every": 10}
    fields.pop(name, None)
    if on_the_grid:
        grid = {name: value if isinstance(value, list) else [value]}
        text = _sweep_text(fields, grid)
    else:
        text = _sweep_text({**fields, name: value}, None)
    _config_or_user_error(lambda: _load(folder, text.encode("utf-8")), assert_valid_sweep)


@FUZZ
@given(st.text(max_size=200))
def test_sweep_file_of_random_text(folder, text):
    _config_or_user_error(lambda: _load(folder, text.encode("utf-8")), assert_valid_sweep)


@FUZZ
@given(st.binary(max_size=200))
def test_sweep_file_of_random_bytes(folder, payload):
    _config_or_user_error(lambda: _load(folder, payload), assert_valid_sweep)


@FUZZ
@given(
    st.lists(
        st.sampled_from(["steps = 20\n", "[grid]\n", "lr = [", "1e-3, ", "]\n", "seeds = ", "2\n"]),
        max_size=12,
    ).map("".join)
)
def test_sweep_file_of_shuffled_pieces(folder, text):
    _config_or_user_error(lambda: _load(folder, text.encode("utf-8")), assert_valid_sweep)


# --- each analysis's config --------------------------------------------------------------------
analyses = st.sampled_from(ANALYSES)


def _settings_fields(analysis) -> list[str]:
    kind = analysis.settings_type
    return [f.name for f in dataclasses.fields(kind)] if kind is not None else []


def assert_valid_analysis_config(analysis, config: Any) -> None:
    assert isinstance(config, AnalysisConfig), config
    assert_valid_experiment_config(config.base)
    if analysis.settings_type is None:
        assert config.settings is None
    else:
        assert isinstance(config.settings, analysis.settings_type), config.settings
        _assert_numbers_finite(dataclasses.asdict(config.settings))
    text = json.dumps(analysis.config_to_dict(config), allow_nan=False)  # config.json
    data = {k: v for k, v in json.loads(text).items() if k != "experiment"}
    assert analysis.config_from_dict(data) == config
    analysis.networks(config)


def _assert_numbers_finite(tree: Any) -> None:
    if isinstance(tree, dict):
        for v in tree.values():
            _assert_numbers_finite(v)
    elif isinstance(tree, list | tuple):
        for v in tree:
            _assert_numbers_finite(v)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        assert _finite_float32(tree) or _fits_int32(tree), tree


@st.composite
def analysis_dicts(draw):
    analysis = draw(analyses)
    base = PRESETS["paper"].to_dict()
    base.update(draw(st.dictionaries(st.sampled_from(sorted(FIELDS)), values, max_size=2)))
    names = _settings_fields(analysis)
    keys = st.one_of(st.sampled_from(names), st.text(max_size=6)) if names else st.text(max_size=6)
    nested = st.dictionaries(
        st.one_of(
            st.sampled_from(
                ["mean_low", "mean_high", "scale_low", "scale_high", "mean_jitter", "scale_std"]
            ),
            st.text(max_size=4),
        ),
        scalars,
        max_size=6,
    )
    settings_ = draw(st.dictionaries(keys, st.one_of(values, nested), max_size=3))
    data = {"analysis": analysis.name, "base": base, "settings": settings_}
    return analysis, data


@FUZZ
@given(analysis_dicts())
def test_analysis_config_from_dict(pair):
    analysis, data = pair
    _config_or_user_error(
        lambda: analysis.config_from_dict(data),
        lambda config: assert_valid_analysis_config(analysis, config),
    )


numbers_text = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(["nan", "inf", "-inf", "1e400", "1e308", "x", "", " ", "0", "1", "-1"]),
    ),
    max_size=4,
).map(",".join)


def _option_values(analysis) -> st.SearchStrategy:
    options = {}
    for name, (kind, _help) in analysis.options.items():
        args = typing.get_args(kind)
        if float in args:
            options[name] = st.one_of(st.none(), floats)
        elif int in args:
            options[name] = st.one_of(st.none(), ints)
        else:
            options[name] = st.one_of(st.none(), numbers_text, texts)
    return st.fixed_dictionaries(options)


@st.composite
def analysis_options(draw):
    analysis = draw(st.sampled_from([a for a in ANALYSES if a.options]))
    return analysis, draw(_option_values(analysis))


@FUZZ
@given(analysis_options())
def test_analysis_settings_from_options(pair):
    analysis, options = pair
    assume(any(v is not None for v in options.values()))  # the CLI calls it only then

    def make():
        return AnalysisConfig(
            analysis.default_config().base, analysis.settings_from_options(**options)
        )

    _config_or_user_error(make, lambda config: assert_valid_analysis_config(analysis, config))


@FUZZ
@given(analyses, st.dictionaries(st.sampled_from(sorted(FIELDS)), values, max_size=4))
def test_analysis_default_config_with_overrides(analysis, overrides):
    _config_or_user_error(
        lambda: analysis.default_config(**overrides),
        lambda config: assert_valid_analysis_config(analysis, config),
    )
