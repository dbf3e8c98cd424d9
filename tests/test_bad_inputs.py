"""The project's own bad-input suite (issue 10, item 8): every bad input a user can give bnlab is
one line on stderr starting "bnlab: error: ", exit status 2, no traceback, and nothing left behind.

Categories (each a parametrised list):
1. CLI values of every command: wrong types, out of range, nan/inf, huge, empty, unknown choices,
   duplicated list entries, unknown options, missing arguments;
2. sweep files (TOML): syntax, unknown keys, wrong types, empty, NaN/inf, huge grids, a BOM;
3. data files (--data-dir): broken IDX files, wrong image sizes, too few examples, a directory,
   FIFO or symlink loop in place of a file, damaged gzip;
4. checkpoints (--resume): a damaged, deleted or foreign state.npz;
5. run directories (`bnlab report`): missing or damaged config/metrics/status, wrong experiment;
6. paths: --out under a file, too long, under /proc, empty, on a read-only or full filesystem;
7. multi-host options of `bnlab sweep`: malformed coordinators, unreachable ones (a time-out);
8. huge values, refused before anything is allocated (memory capped; the memory estimate);
9. values that make no sense (NaN noise, non-finite ranges, repeated multipliers...).

Most cases run in this process (bnlab_here) with the training engine replaced by a stop sign: a
value bnlab must refuse is refused before anything is trained or compiled, and one it wrongly
accepts fails the case at once instead of training. Cases that may allocate without bound, hang
or start jax.distributed when bnlab gets them wrong run in a forked child with a memory cap and a
time limit (bnlab_isolated); read-only and full filesystems are tmpfs mounts in a private mount
namespace (unshare), skipped where they cannot be made.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import socket
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers.bad_inputs import (
    STEMS,
    TRAINING,
    TrainingStarted,
    assert_isolated_user_error,
    assert_user_error,
    bnlab_here,
    bnlab_isolated,
    bnlab_script,
    forbid_training,
    idx,
    idx_header,
    snapshot,
    toml_text,
    write_dataset,
)

HUGE = "99999999999999999999999"
INT64_MAX = "9223372036854775807"
# a sweep that is valid (and tiny), for the cases about the sweep command's own options
OK_SWEEP = "steps = 20\neval_every = 10\nhidden = [8]\n"
# a short training, for the cases that must be refused before it starts
SHORT = ("--steps", "20", "--eval-every", "10")


def case(args, *keys, id):
    """One parametrised case: the command line (placeholders {out}, {tmp}, {sweep}, {file},
    {dir}) and what its message must name (a tuple: any one of them)."""
    return pytest.param(list(args), keys, id=id)


def _fill(args: list[str], paths: dict[str, Path]) -> list[str]:
    out = []
    for a in args:
        for name, path in paths.items():
            a = a.replace("{" + name + "}", str(path))
        out.append(a)
    return out


def refused_here(
    capsys, monkeypatch, tmp_path: Path, args: list[str], keys, run: Path | None = None
) -> str:
    """Run ``args`` in this process from an empty working directory, with training forbidden;
    assert a one-line user error naming ``keys`` and that nothing was written: neither in the
    working directory (default run directories, reports) nor at {out}/{out}.md, nor in {dir}
    and {file}. {run}: ``run``, a finished run directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    forbid_training(monkeypatch)
    (tmp_path / "ok.toml").write_text(OK_SWEEP)
    (tmp_path / "file").write_text("a plain file\n")
    (tmp_path / "dir").mkdir(exist_ok=True)
    paths = {
        "out": tmp_path / "out",
        "sweep": tmp_path / "ok.toml",
        "file": tmp_path / "file",
        "dir": tmp_path / "dir",
        "tmp": tmp_path,
        **({"run": run} if run is not None else {}),
    }
    keys = [
        tuple(_fill(list(k), paths)) if isinstance(k, tuple) else _fill([k], paths)[0] for k in keys
    ]
    watched = [cwd, tmp_path / "out", tmp_path / "out.md", tmp_path / "dir", tmp_path / "file"]
    before = [snapshot(p) for p in watched]
    code, stderr = bnlab_here(capsys, monkeypatch, *_fill(args, paths))
    assert_user_error(code, stderr, *keys)
    assert [snapshot(p) for p in watched] == before, "something was written"
    return stderr


# =================================================================================================
# 1. CLI values of every command
# =================================================================================================
INT_BAD = ["x", "1.5", "nan", "inf", "-1", "0", "", HUGE, INT64_MAX]
REPRODUCE_INTS = {
    "--steps": INT_BAD,
    "--epochs": INT_BAD,
    "--batch-size": [*INT_BAD, "1", "60001"],
    "--eval-every": INT_BAD,
    "--seeds": INT_BAD,
    "--hist-examples": INT_BAD,
    "--first-seed": ["x", "1.5", "nan", "-1", "", HUGE, INT64_MAX],
}
POSITIVE_FLOAT_BAD = ["x", "nan", "inf", "-inf", "1e400", "0", "-1", ""]
UNIT_FLOAT_BAD = ["x", "nan", "inf", "-0.5", "1.5", ""]
REPRODUCE_FLOATS = {
    "--lr": POSITIVE_FLOAT_BAD,
    "--init-std": POSITIVE_FLOAT_BAD,
    "--bn-eps": POSITIVE_FLOAT_BAD,
    "--opt-eps": POSITIVE_FLOAT_BAD,
    "--threshold": UNIT_FLOAT_BAD,
    "--rho": UNIT_FLOAT_BAD,
    "--bn-momentum": UNIT_FLOAT_BAD,
    "--momentum": ["nan", "1", "-0.1", "inf"],
}
REPRODUCE_CHOICES = {
    "--preset": ["", "foo", "PAPER", " seed"],
    "--activation": ["", "softmax"],
    "--bn-placement": ["", "none", "middle"],
    "--init": ["", "he"],
    "--input": ["", "raw"],
    "--optimizer": ["", "adam"],
    "--variants": ["", "bn,bn", "baseline,,bn", "foo", "bn,", "none"],
    "--hidden": ["", "0", "-1", "100,x", "100,,100", "1.5", "100;100", HUGE, "65537"],
    # a kernel or pool larger than its input, zero features or strides, no such layer
    "--conv": [
        "conv:6:30:1:valid",
        "conv:6:5:1:valid,maxpool:2,conv:16:5:1:valid,maxpool:2,conv:8:5:1:valid",
        "maxpool:29",
        "conv:0:5",
        "conv:6:5:0",
        "maxpool:2:0",
        "dense:10",
        "conv:6:5:1:full",
        "conv:6",
    ],
}


def short_but(option: str) -> list[str]:
    """SHORT without what ``option`` sets itself (--epochs sets the steps): the case's value is
    the only one of its kind on the command line."""
    drop = {"--epochs": "--steps"}.get(option, option)
    pairs = [SHORT[i : i + 2] for i in range(0, len(SHORT), 2)]
    return [a for pair in pairs if pair[0] != drop for a in pair]


CLI_CASES = [
    case(
        ["reproduce", option, value, *short_but(option), "--out", "{out}"],
        option,
        id=f"reproduce {option}={value!r}",
    )
    for table in (REPRODUCE_INTS, REPRODUCE_FLOATS, REPRODUCE_CHOICES)
    for option, values in table.items()
    for value in values
]
CLI_CASES += [
    case(
        ["reproduce", "--data-dir", "", *SHORT, "--out", "{out}"],
        "--data-dir",
        id="reproduce --data-dir=''",
    ),
    case(
        ["reproduce", "--data-dir", "/nonexistent/bnlab-data", *SHORT, "--out", "{out}"],
        "/nonexistent/bnlab-data",
        id="reproduce --data-dir=missing",
    ),
    case(["reproduce", "--bogus", "--out", "{out}"], "--bogus", id="reproduce unknown option"),
    case(["reproduce", "--step", "20", "--out", "{out}"], "--step", id="reproduce misspelt option"),
    case(
        ["reproduce", "--out", "{out}", "--steps"], "--steps", id="reproduce --steps without value"
    ),
    case(["reproduce", *SHORT, "--out"], "--out", id="reproduce --out without value"),
    case(["reproduce", *SHORT, "--out", "{out}", "extra"], "extra", id="reproduce extra argument"),
    case(
        ["reproduce", *SHORT, "--resume=yes", "--out", "{out}"],
        "--resume",
        id="reproduce flag with a value",
    ),
    case(
        ["reproduce", "--epochs", "1", "--steps", "10", "--out", "{out}"],
        "--epochs",
        id="reproduce --epochs and --steps",
    ),
    case(
        ["reproduce", *SHORT, "--resume", "--overwrite", "--out", "{out}"],
        "--resume",
        id="reproduce --resume and --overwrite",
    ),
    # summary
    *(
        case(["summary", "--hidden", v], "--hidden", id=f"summary --hidden={v!r}")
        for v in ["", "0", "-5", "x", "100,,100", HUGE]
    ),
    case(["summary", "--conv", "conv:6:29:1:valid"], "--conv", id="summary --conv too large"),
    case(["summary", "--bn-placement", ""], "--bn-placement", id="summary --bn-placement=''"),
    case(["summary", "--bn-placement", "none"], "--bn-placement", id="summary --bn-placement=none"),
    case(["summary", "--preset", ""], "--preset", id="summary --preset=''"),
    case(["summary", "--preset", "foo"], "--preset", id="summary --preset=foo"),
    case(["summary", "--steps", "10"], "--steps", id="summary option of another command"),
    case(["summary", "--out", "{out}"], "--out", id="summary --out"),
    case(["summary", "--bias-before-bn=x"], "--bias-before-bn", id="summary flag with a value"),
    # sweep
    case(["sweep"], "config", id="sweep without a file"),
    case(
        ["sweep", "/nonexistent/s.toml", "--out", "{out}"],
        "/nonexistent/s.toml",
        id="sweep missing file",
    ),
    case(["sweep", "{dir}", "--out", "{out}"], "{dir}", id="sweep a directory"),
    case(["sweep", "{sweep}", "{sweep}", "--out", "{out}"], "ok.toml", id="sweep two files"),
    case(["sweep", "{sweep}", "--bogus", "--out", "{out}"], "--bogus", id="sweep unknown option"),
    case(["sweep", "{sweep}", "--out"], "--out", id="sweep --out without value"),
    *(
        case(
            ["sweep", "{sweep}", "--devices", v, "--out", "{out}"],
            "--devices",
            id=f"sweep --devices={v!r}",
        )
        for v in ["0", "-1", "x", "", "99999", HUGE]
    ),
    case(
        ["sweep", "{sweep}", "--num-processes", "x", "--out", "{out}"],
        "--num-processes",
        id="sweep --num-processes=x",
    ),
    case(
        ["sweep", "{sweep}", "--process-id", "1.5", "--out", "{out}"],
        "--process-id",
        id="sweep --process-id=1.5",
    ),
    # report
    case(["report"], "directories", id="report without directories"),
    case(
        ["report", "/nonexistent/run", "--out", "{out}.md"],
        "/nonexistent/run",
        id="report missing directory",
    ),
    case(["report", "{file}", "--out", "{out}.md"], "file", id="report a file"),
    case(["report", "{dir}", "--out", "{out}.md"], "{dir}", id="report an empty directory"),
    case(["report", "{dir}", "--out"], "--out", id="report --out without value"),
    case(
        ["report", "{dir}", "--bogus", "--out", "{out}.md"], "--bogus", id="report unknown option"
    ),
    # data
    case(
        ["data", "info", "--data-dir", "/nonexistent/bnlab-data"],
        "/nonexistent/bnlab-data",
        id="data info missing dir",
    ),
    case(["data", "info", "--data-dir", ""], "--data-dir", id="data info --data-dir=''"),
    case(["data", "info", "--data-dir", "{file}"], "file", id="data info --data-dir=a file"),
    case(
        ["data", "info", "--data-dir", "{dir}"], "train-images-idx3-ubyte", id="data info empty dir"
    ),
    case(["data", "info", "--bogus"], "--bogus", id="data info unknown option"),
    case(["data", "info", "extra"], "extra", id="data info extra argument"),
    case(["data", "info", "--data-dir"], "--data-dir", id="data info --data-dir without value"),
    case(["data", "check"], "check", id="data check (no such command)"),
    # top level
    case(["nosuch"], "nosuch", id="unknown command"),
    case(["--bogus"], "--bogus", id="unknown top-level option"),
    case(["analyze", "nosuch"], "nosuch", id="unknown analysis"),
]

ANALYSES = ["noisy-bn", "ics", "landscape", "lp-norm", "lr-sweep", "convnet-lr", "placement"]
ANALYSIS_RUN_BAD = {
    "--seeds": ["0", "x", "1e23"],
    "--steps": ["0", INT64_MAX],
    "--epochs": ["-1", "10000000000000"],
    "--eval-every": ["0"],
    "--lr": ["nan", "inf", "0", "1e400"],
    "--first-seed": ["-1", "99999999999999"],
}
CLI_CASES += (
    [
        case(
            ["analyze", name, option, value, "--out", "{out}"],
            option,
            id=f"{name} {option}={value!r}",
        )
        for name in ANALYSES
        for option, values in ANALYSIS_RUN_BAD.items()
        for value in values
    ]
    + [
        case(["analyze", name, "--bogus", "--out", "{out}"], "--bogus", id=f"{name} unknown option")
        for name in ANALYSES
    ]
    + [
        case(
            ["analyze", name, "--preset", "seed", "--out", "{out}"],
            "--preset",
            id=f"{name} --preset (not an option)",
        )
        for name in ANALYSES
    ]
)


@pytest.mark.parametrize(("args", "keys"), CLI_CASES)
def test_cli_value(tmp_path, capsys, monkeypatch, args, keys):
    refused_here(capsys, monkeypatch, tmp_path, args, keys)


# =================================================================================================
# 2. sweep files (TOML)
# =================================================================================================
TOML_CASES = [
    # syntax
    case(["steps = \n"], "sweep.toml", id="toml value missing"),
    case(["[grid\nlr = [0.1]\n"], "sweep.toml", id="toml unclosed table"),
    case(["[grid]\nlr = [0.1, \n"], "sweep.toml", id="toml unclosed list"),
    case(["steps = 20\nsteps = 30\n"], "sweep.toml", id="toml duplicated key"),
    case(
        ["[grid]\nlr = [0.1]\n[grid]\nbn_eps = [1e-5]\n"], "sweep.toml", id="toml duplicated table"
    ),
    case(["= 3\n"], "sweep.toml", id="toml key missing"),
    case(["lr = 0.1 0.2\n"], "sweep.toml", id="toml two values"),
    case(["steps = 20\x00\n"], "sweep.toml", id="toml NUL byte"),
    case([b"steps = 20\n\x80\x81\xfe\n"], "sweep.toml", id="toml invalid UTF-8"),
    case(["steps = 20\n".encode("utf-16")], "sweep.toml", id="toml UTF-16"),
    case(
        ["lr = " + "[" * 100_000 + "]" * 100_000 + "\n"],
        "sweep.toml",
        id="toml nested 100,000 deep",
    ),
    case(
        ["x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n"],
        "sweep.toml",
        id="toml inline tables 50,000 deep",
    ),
    case(["\ufeff\ufeffsteps = 20\n"], "sweep.toml", id="toml two byte-order marks"),
    # unknown keys and tables
    case(["stepz = 20\n"], "stepz", id="toml unknown key"),
    case(["[grid]\nfoo = [1, 2]\n"], "foo", id="toml unknown grid axis"),
    case(["steps = 20\n[other]\nx = 1\n"], "other", id="toml unknown table"),
    case(["grid = 3\n"], "grid", id="toml grid not a table"),
    case(["[grid.lr]\nx = 1\n"], "grid.lr", id="toml grid axis a table"),
    case(["[grid]\nsteps = [10, 20]\n"], "grid.steps", id="toml steps as an axis"),
    case(["[grid]\nseeds = [1, 2]\n"], "grid.seeds", id="toml seeds as an axis"),
    case(["[grid]\npreset = ['seed', 'paper']\n"], "grid.preset", id="toml preset as an axis"),
    # wrong types
    case(['steps = "20"\n'], "steps", id="toml steps a string"),
    case(["steps = 20.5\n"], "steps", id="toml steps a float"),
    case(["steps = true\n"], "steps", id="toml steps a bool"),
    case(["steps = 2020-01-01\n"], "steps", id="toml steps a date"),
    case(["steps = [20]\n"], "steps", id="toml steps a list"),
    case(["lr = 'fast'\n"], "lr", id="toml lr a string"),
    case(["lr = true\n"], "lr", id="toml lr a bool"),
    case(["hidden = 100\n"], "hidden", id="toml hidden an int"),
    case(["hidden = [100, 'x']\n"], "hidden", id="toml hidden mixed"),
    case(["hidden = [[100]]\n"], "hidden", id="toml hidden nested"),
    case(["hidden = []\n"], "hidden", id="toml hidden empty"),
    case(['conv = ["conv:6:40:1:valid"]\n'], "conv", id="toml conv kernel beyond the image"),
    case(["conv = [6]\n"], "conv", id="toml conv a number"),
    case(["variants = 'bn'\n"], "variants", id="toml variants a string"),
    case(["variants = ['bn', 'bn']\n"], "variants", id="toml variants duplicated"),
    case(["bias_before_bn = 1\n"], "bias_before_bn", id="toml bool an int"),
    case(["activation = 'softmax'\n"], "activation", id="toml unknown activation"),
    case(["batch_size = 1\n"], ("batch_size", "--batch-size"), id="toml batch of 1"),
    case(["seeds = 'two'\n"], "seeds", id="toml seeds a string"),
    case(["seeds = [0, 0]\n"], "seeds", id="toml seeds duplicated"),
    case(["seeds = []\n"], "seeds", id="toml seeds empty list"),
    case(["seeds = 0\n"], "seeds", id="toml seeds 0"),
    case(["seeds = -3\n"], "seeds", id="toml seeds negative"),
    case(["seeds = true\n"], "seeds", id="toml seeds a bool"),
    case(["seeds = 2.5\n"], "seeds", id="toml seeds a float"),
    case(["seeds = [0, -1]\n"], "seeds", id="toml seeds list negative"),
    case(["seeds = [0, 3000000000]\n"], "seeds", id="toml seed beyond int32"),
    case(["preset = 5\n"], "preset", id="toml preset an int"),
    case(["preset = 'foo'\n"], "preset", id="toml unknown preset"),
    case(["preset = ''\n"], "preset", id="toml empty preset"),
    case(["first_seed = -1\n"], ("first_seed", "--first-seed"), id="toml first_seed negative"),
    case(
        ["seeds = [0, 1]\nfirst_seed = 3\n"], "first_seed", id="toml first_seed beside a seeds list"
    ),
    case(["data_dir = 5\n"], "data_dir", id="toml data_dir an int"),
    case(["[grid]\nlr = 0.1\n"], "grid.lr", id="toml axis not a list"),
    case(["[grid]\nlr = []\n"], "grid.lr", id="toml axis empty"),
    case(["[grid]\nlr = [0.1, 0.1]\n"], "grid.lr", id="toml axis repeated value"),
    case(["[grid]\nlr = [0.1, '0.2']\n"], "grid.lr", id="toml axis mixed types"),
    case(["lr = 0.1\n[grid]\nlr = [0.1, 0.2]\n"], "lr", id="toml field in two places"),
    case(["[grid]\nhidden = [100, 200]\n"], "grid.hidden", id="toml hidden axis of ints"),
    case(
        ["[grid]\nactivation = ['sigmoid', 'softmax']\n"],
        "activation",
        id="toml bad value in a cell",
    ),
    case(["[grid]\nbatch_size = [60, 1]\n"], "batch_size", id="toml bad batch in a cell"),
    # empty
    case([""], "sweep.toml", id="toml empty file"),
    case(["# only a comment\n"], "sweep.toml", id="toml comment only"),
    case(["  \n\n\t\n"], "sweep.toml", id="toml whitespace only"),
    case(["[grid]\n"], "sweep.toml", id="toml empty grid only"),
    # NaN, inf and beyond
    case(["lr = nan\n"], "lr", id="toml lr nan"),
    case(["lr = inf\n"], "lr", id="toml lr inf"),
    case(["lr = -inf\n"], "lr", id="toml lr -inf"),
    case(["lr = 1e400\n"], "lr", id="toml lr 1e400"),
    case(["init_std = inf\n"], "init_std", id="toml init_std inf"),
    case(["threshold = nan\n"], "threshold", id="toml threshold nan"),
    case(["momentum = inf\n"], "momentum", id="toml momentum inf"),
    case(["[grid]\nlr = [0.1, nan]\n"], "lr", id="toml grid lr nan"),
    case(["[grid]\nbn_eps = [inf]\n"], "bn_eps", id="toml grid bn_eps inf"),
    case(["steps = 1000000000000\n"], "steps", id="toml steps 1e12"),
    case([f"steps = {INT64_MAX}\n"], "steps", id="toml steps int64 max"),
    case(["steps = 99999999999999999999999\n"], "sweep.toml", id="toml integer beyond int64"),
    case(
        ["first_seed = 2147483647\nseeds = 2\n"],
        ("first_seed", "seeds"),
        id="toml seeds beyond int32",
    ),
    case(["hidden = [99999999999999999999]\n"], "sweep.toml", id="toml hidden beyond int64"),
    # where the data is
    case(
        ['data_dir = "/nonexistent/bnlab-data"\n'],
        ("data_dir", "sweep.toml"),
        id="toml data_dir nowhere",
    ),
    case(
        ['[grid]\ndata_dir = ["/nonexistent/a", "/nonexistent/b"]\n'],
        ("data_dir", "sweep.toml"),
        id="toml grid data_dir nowhere",
    ),
    case(['data_dir = ""\n'], ("data_dir", "sweep.toml"), id="toml data_dir empty"),
    # a byte-order mark is read past: the error after it is the one reported
    case(
        [b"\xef\xbb\xbf[grid]\nlr = [0.1, 0.1]\n"], "grid.lr", id="toml BOM then a repeated value"
    ),
    case([b"\xef\xbb\xbfstepz = 20\n"], "stepz", id="toml BOM then an unknown key"),
]


@pytest.mark.parametrize(("content", "keys"), TOML_CASES)
def test_sweep_file(tmp_path, capsys, monkeypatch, content, keys):
    (content,) = content
    path = tmp_path / "sweep.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    refused_here(capsys, monkeypatch, tmp_path, ["sweep", str(path), "--out", "{out}"], keys)


def test_sweep_file_with_a_byte_order_mark_is_accepted(tmp_path):
    """The BOM (Windows editors) is not part of the TOML: the file is read as without it."""
    from bnlab.experiments import load_sweep

    path = tmp_path / "sweep.toml"
    path.write_bytes(
        b"\xef\xbb\xbf" + b"steps = 20\neval_every = 10\n[grid]\nlr = [0.001, 0.003]\n"
    )
    sweep = load_sweep(path)
    assert sweep.base.steps == 20 and sweep.base.eval_every == 10
    assert sweep.grid == {"lr": (0.001, 0.003)}


def _many(n: int, start: float = 1e-4) -> list[float]:
    return [start * (1 + i / n) for i in range(n)]


# sweep files that grow without bound when not refused: run in a child, memory capped
HUGE_TOML_CASES = [
    case([toml_text({"seeds": 1_000_000_000})], "seeds", id="toml seeds 1e9"),
    case(
        [
            toml_text(
                {"steps": 20, "eval_every": 10},
                {"lr": _many(10_000), "bn_eps": _many(10_000, 1e-6)},
            )
        ],
        "grid",
        id="toml grid 10,000 x 10,000",
    ),
    case(
        [toml_text({"steps": 20, "eval_every": 10}, {"lr": _many(10_000)})],
        ("grid", "--skip-resource-check"),
        id="toml 10,000 learning rates",
    ),
    case(
        [toml_text({"hidden": [100] * 5000, "steps": 20, "eval_every": 10})],
        "hidden",
        id="toml 5,000 hidden layers",
    ),
    case(
        [toml_text({"seeds": 100_000_000, "steps": 20, "eval_every": 10})],
        ("seeds", "--skip-resource-check"),
        id="toml seeds 1e8",
    ),
]


@pytest.mark.parametrize(("content", "keys"), HUGE_TOML_CASES)
def test_sweep_file_too_large(tmp_path, content, keys):
    (content,) = content
    path = tmp_path / "sweep.toml"
    path.write_text(content)
    out = tmp_path / "out"
    outcome = bnlab_isolated("sweep", str(path), "--out", str(out), cwd=tmp_path, timeout=60)
    assert_isolated_user_error(outcome, *keys)
    assert not out.exists()


def test_sweep_file_a_fifo_is_refused_not_waited_on(tmp_path):
    """A FIFO with no writer blocks a reader forever."""
    path = tmp_path / "sweep.toml"
    os.mkfifo(path)
    out = tmp_path / "out"
    outcome = bnlab_isolated("sweep", str(path), "--out", str(out), cwd=tmp_path, timeout=30)
    assert_isolated_user_error(outcome, "sweep.toml")
    assert not out.exists()


def test_sweep_file_a_symlink_loop(tmp_path, capsys, monkeypatch):
    path = tmp_path / "sweep.toml"
    path.symlink_to(path)
    refused_here(
        capsys, monkeypatch, tmp_path, ["sweep", str(path), "--out", "{out}"], ["sweep.toml"]
    )


# =================================================================================================
# 3. data files (--data-dir)
# =================================================================================================
def _payload(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def _put(directory: Path, key: str, payload: bytes) -> None:
    (directory / f"{STEMS[key]}.gz").write_bytes(gzip.compress(payload))


def _edit(key: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        _put(directory, key, change(_payload(directory / f"{STEMS[key]}.gz")))

    return damage


def _replace(key: str, payload: bytes) -> Callable[[Path], None]:
    return lambda d: _put(d, key, payload)


def _raw(key: str, raw: bytes) -> Callable[[Path], None]:
    """The .gz file's own bytes (not gzip-compressed)."""
    return lambda d: (d / f"{STEMS[key]}.gz").write_bytes(raw)


def _magic(type_code: int, ndim: int) -> Callable[[bytes], bytes]:
    return lambda p: bytes([0, 0, type_code, ndim]) + p[4:]


def _directory_instead(key: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        (d / f"{STEMS[key]}.gz").unlink()
        (d / f"{STEMS[key]}.gz").mkdir()

    return damage


def _symlink_loop(key: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        path = d / f"{STEMS[key]}.gz"
        path.unlink()
        path.symlink_to(path.name)

    return damage


def _dangling(key: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        path = d / f"{STEMS[key]}.gz"
        path.unlink()
        path.symlink_to("nowhere.gz")

    return damage


def _bad_crc(key: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        path = d / f"{STEMS[key]}.gz"
        raw = bytearray(path.read_bytes())
        raw[-8] ^= 0xFF  # the CRC-32 of the trailer
        path.write_bytes(bytes(raw))

    return damage


def _rng_bytes(n: int) -> bytes:
    return np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()


# broken files: bnlab data info and bnlab reproduce refuse them, naming the file
DATA_FILE_CASES = [
    ("train images truncated", _edit("x_train", lambda p: p[:-7]), STEMS["x_train"]),
    ("test images truncated", _edit("x_test", lambda p: p[:-100]), STEMS["x_test"]),
    ("test images header only", _edit("x_test", lambda p: p[:16]), STEMS["x_test"]),
    *(
        (f"{STEMS[k]} zero bytes", _replace(k, b""), STEMS[k])
        for k in ("x_train", "y_train", "x_test", "y_test")
    ),
    ("train labels .gz of zero bytes", _raw("y_train", b""), STEMS["y_train"]),
    ("images wrong type code", _edit("x_train", _magic(0x0D, 3)), STEMS["x_train"]),
    ("images 2 dimensions", _edit("x_train", _magic(0x08, 2)), STEMS["x_train"]),
    ("labels 3 dimensions", _edit("y_test", _magic(0x08, 3)), STEMS["y_test"]),
    ("labels magic 0xffffffff", _edit("y_train", lambda p: b"\xff" * 4 + p[4:]), STEMS["y_train"]),
    (
        "train labels count wrong",
        _replace("y_train", idx(np.zeros(119, np.uint8))),
        STEMS["y_train"],
    ),
    ("test labels count wrong", _replace("y_test", idx(np.zeros(31, np.uint8))), STEMS["y_test"]),
    ("train label 10", _replace("y_train", idx(np.full(120, 10, np.uint8))), STEMS["y_train"]),
    ("test label 255", _replace("y_test", idx(np.full(30, 255, np.uint8))), STEMS["y_test"]),
    ("trailing data", _edit("y_test", lambda p: p + b"\0"), STEMS["y_test"]),
    ("header 2^31 x 2^31 x 4", _replace("x_test", idx_header((2**31, 2**31, 4))), STEMS["x_test"]),
    ("header 2^32-1 cubed", _replace("x_train", idx_header((2**32 - 1,) * 3)), STEMS["x_train"]),
    ("header 2^32 labels", _replace("y_train", idx_header((2**32 - 1,))), STEMS["y_train"]),
    ("header truncated", _replace("y_test", b"\0\0"), STEMS["y_test"]),
    ("header sizes missing", _replace("x_train", bytes([0, 0, 8, 3])), STEMS["x_train"]),
    ("gzip cut short", _raw("x_test", gzip.compress(b"\0" * 1000)[:20]), STEMS["x_test"]),
    ("gzip of random bytes", _raw("y_train", _rng_bytes(4096)), STEMS["y_train"]),
    ("gzip bad CRC", _bad_crc("x_train"), STEMS["x_train"]),
    ("a directory in place of a file", _directory_instead("x_train"), STEMS["x_train"]),
    ("a symlink loop", _symlink_loop("y_train"), STEMS["y_train"]),
    ("a dangling symlink", _dangling("y_test"), STEMS["y_test"]),
]
# what the message must say beyond the file's name, and what it must not ("file not found" for
# a file that is there)
SAYS = {"a directory in place of a file": "directory"}
NOT_FOUND_IS_WRONG = {"a directory in place of a file", "a symlink loop"}


@pytest.mark.parametrize("command", ["data info", "reproduce"])
@pytest.mark.parametrize(
    ("what", "damage", "key"), [pytest.param(i, d, k, id=i) for i, d, k in DATA_FILE_CASES]
)
def test_data_file(tmp_path, capsys, monkeypatch, command, what, damage, key):
    data = write_dataset(tmp_path / "data")
    damage(data)
    args = ["data", "info"] if command == "data info" else ["reproduce", *SHORT, "--out", "{out}"]
    stderr = refused_here(capsys, monkeypatch, tmp_path, [*args, "--data-dir", str(data)], [key])
    if what in NOT_FOUND_IS_WRONG:
        assert "not found" not in stderr, stderr
    if what in SAYS:
        assert SAYS[what] in stderr, stderr


# data bnlab can read but not train on: refused by reproduce before anything is compiled
def _dataset(**kwargs) -> Callable[[Path], Path]:
    return lambda d: write_dataset(d, **kwargs)


def _test_images_10x10(d: Path) -> Path:
    write_dataset(d)
    _put(d, "x_test", idx(np.zeros((30, 10, 10), np.uint8)))
    return d


DATA_SHAPE_CASES = [
    pytest.param(_dataset(image=(10, 10)), [], ("--data-dir", STEMS["x_train"]), id="10x10 images"),
    pytest.param(_dataset(image=(28, 29)), [], ("--data-dir", STEMS["x_train"]), id="28x29 images"),
    pytest.param(_test_images_10x10, [], (STEMS["x_test"],), id="10x10 test images only"),
    pytest.param(
        _dataset(n_train=0), [], ("--data-dir", STEMS["x_train"]), id="zero training examples"
    ),
    pytest.param(_dataset(n_test=0), [], ("--data-dir", STEMS["x_test"]), id="zero test examples"),
    pytest.param(
        _dataset(n_train=0, n_test=0), [], ("--data-dir", STEMS["x_train"]), id="zero examples"
    ),
    pytest.param(
        _dataset(n_train=30),
        [],
        ("--data-dir", "--batch-size", STEMS["x_train"]),
        id="fewer than one batch",
    ),
    pytest.param(
        _dataset(n_train=119),
        ["--batch-size", "120"],
        ("--batch-size", "--data-dir"),
        id="fewer than --batch-size",
    ),
    pytest.param(
        _dataset(n_test=5), [], ("--hist-examples",), id="fewer test images than --hist-examples"
    ),
]


@pytest.mark.parametrize(("make", "extra", "keys"), DATA_SHAPE_CASES)
def test_data_the_networks_cannot_train_on(tmp_path, capsys, monkeypatch, make, extra, keys):
    data = make(tmp_path / "data")
    args = ["reproduce", *SHORT, *extra, "--out", "{out}", "--data-dir", str(data)]
    refused_here(capsys, monkeypatch, tmp_path, args, [keys])


DATA_DIR_CASES = [
    case(
        ["data", "info", "--data-dir", "{tmp}/" + "d" * 5000],
        ("--data-dir", "too long"),
        id="data info --data-dir of 5,000 characters",
    ),
    case(
        ["reproduce", *SHORT, "--out", "{out}", "--data-dir", "{tmp}/" + "d" * 300],
        ("--data-dir", "too long"),
        id="reproduce --data-dir 300-character name",
    ),
    case(
        ["reproduce", *SHORT, "--out", "{out}", "--data-dir", "{file}"],
        ("file",),
        id="reproduce --data-dir a file",
    ),
    case(
        ["reproduce", *SHORT, "--out", "{out}", "--data-dir", "{dir}"],
        (STEMS["x_train"],),
        id="reproduce --data-dir empty",
    ),
    case(
        ["reproduce", *SHORT, "--out", "{out}", "--data-dir", "/proc/self"],
        ("/proc/self",),
        id="reproduce --data-dir /proc/self",
    ),
]


@pytest.mark.parametrize(("args", "keys"), DATA_DIR_CASES)
def test_data_dir(tmp_path, capsys, monkeypatch, args, keys):
    refused_here(capsys, monkeypatch, tmp_path, args, keys)


@pytest.mark.parametrize("command", ["data info", "reproduce"])
def test_data_file_a_fifo_is_refused_not_waited_on(tmp_path, command):
    data = write_dataset(tmp_path / "data")
    fifo = data / f"{STEMS['y_test']}.gz"
    fifo.unlink()
    os.mkfifo(fifo)
    out = tmp_path / "out"
    args = ["data", "info"] if command == "data info" else ["reproduce", *SHORT, "--out", str(out)]
    outcome = bnlab_isolated(*args, "--data-dir", str(data), cwd=tmp_path, timeout=30)
    assert_isolated_user_error(outcome, STEMS["y_test"])
    assert "not found" not in outcome.stderr
    assert not out.exists()


def test_control_the_small_dataset_is_valid(tmp_path, capsys, monkeypatch):
    """The suite's own dataset passes every check (so each case fails for its damage)."""
    data = write_dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert bnlab_here(capsys, monkeypatch, "data", "info", "--data-dir", str(data))[0] == 0
    forbid_training(monkeypatch)
    args = ["reproduce", *SHORT, "--out", str(tmp_path / "out"), "--data-dir", str(data)]
    code, stderr = bnlab_here(capsys, monkeypatch, *args)
    assert code == TRAINING, stderr


# =================================================================================================
# 4. checkpoints (--resume) and 5. run directories (bnlab report): a run trained once
# =================================================================================================
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A short `bnlab reproduce` run and a short `bnlab analyze ics` run, trained once."""
    root = tmp_path_factory.mktemp("trained")
    runs = {
        "reproduce": ["reproduce", *SHORT],
        "ics": ["analyze", "ics", *SHORT, "--seeds", "1"],
    }
    for name, args in runs.items():
        outcome = bnlab_isolated(
            *args, "--out", str(root / name), cwd=root, forbid=False, headroom=None, timeout=600
        )
        if outcome.code != 0:
            pytest.fail(f"training the suite's {name} run failed: {outcome.describe()}")
    return {name: root / name for name in runs}


def _npz(path: Path, change: Callable[[dict], dict]) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    buffer = io.BytesIO()
    np.savez(buffer, **change(arrays))
    path.write_bytes(buffer.getvalue())


def _state(change: Callable[[dict], dict]) -> Callable[[Path], None]:
    return lambda run: _npz(run / "training_state" / "state.npz", change)


def _set(name: str, value) -> Callable[[dict], dict]:
    return lambda a: {**a, name: np.asarray(value)}


def _drop(name: str) -> Callable[[dict], dict]:
    return lambda a: {k: v for k, v in a.items() if k != name}


def _write(relative: str, payload: bytes) -> Callable[[Path], None]:
    return lambda run: (run / relative).write_bytes(payload)


def _delete(relative: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / relative
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()

    return damage


def _not_a_npz(run: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "not arrays")
    (run / "training_state" / "state.npz").write_bytes(buffer.getvalue())


def _object_array(run: Path) -> None:
    """An npz holding a pickled object array (loading it would run pickle)."""
    path = run / "training_state" / "state.npz"
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["g0/0"] = np.array([{"a": 1}], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def _truncate(relative: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / relative
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return damage


def _state_a_directory(run: Path) -> None:
    (run / "training_state" / "state.npz").unlink()
    (run / "training_state" / "state.npz").mkdir()


def _state_a_loop(run: Path) -> None:
    path = run / "training_state" / "state.npz"
    path.unlink()
    path.symlink_to("state.npz")


def _state_folder_a_file(run: Path) -> None:
    shutil.rmtree(run / "training_state")
    (run / "training_state").write_text("not a directory\n")


def _json(relative: str, change: Callable[[object], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / relative
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return damage


STATE = "state.npz"
CHECKPOINT_CASES = [
    pytest.param(_write("training_state/state.npz", b""), (STATE,), id="zero bytes"),
    pytest.param(_truncate("training_state/state.npz"), (STATE,), id="truncated"),
    pytest.param(_write("training_state/state.npz", _rng_bytes(4096)), (STATE,), id="random bytes"),
    pytest.param(
        _write("training_state/state.npz", b"PK\x03\x04garbage"),
        (STATE,),
        id="zip header then garbage",
    ),
    pytest.param(_not_a_npz, (STATE,), id="a zip of text"),
    pytest.param(_object_array, (STATE,), id="a pickled object array"),
    pytest.param(_state(_drop("g0/0")), (STATE,), id="missing a parameter"),
    pytest.param(_state(_drop("g1/39")), (STATE,), id="missing the last array"),
    pytest.param(_state(_drop("step")), (STATE,), id="missing the step"),
    pytest.param(_state(_drop("fingerprint")), (STATE,), id="missing the fingerprint"),
    pytest.param(_state(_set("step", -5)), (STATE,), id="step -5"),
    pytest.param(_state(_set("step", 0)), (STATE,), id="step 0"),
    pytest.param(_state(_set("step", 21)), (STATE,), id="step beyond the run"),
    pytest.param(_state(_set("step", 2**40)), (STATE,), id="step 2^40"),
    pytest.param(_state(_set("step", 10.0)), (STATE,), id="step a float"),
    pytest.param(_state(_set("step", "10")), (STATE,), id="step a string"),
    pytest.param(_state(_set("step", [10, 10])), (STATE,), id="step a list"),
    pytest.param(_state(_set("fingerprint", "0" * 64)), (STATE,), id="another configuration"),
    pytest.param(_state(_set("devices", 2)), (STATE, "--devices 2"), id="saved on 2 devices"),
    pytest.param(_state(_set("devices", 1.0)), (STATE, "device count"), id="devices a float"),
    pytest.param(_state(_set("g0/1", np.zeros((1, 3, 3), np.float32))), (STATE,), id="wrong shape"),
    pytest.param(
        _state(_set("g0/1", np.zeros((1, 784, 100), np.float64))), (STATE,), id="wrong dtype"
    ),
    pytest.param(
        _state(_set("g0/1", np.full((1, 784, 100), np.nan, np.float32))), (STATE,), id="NaN weights"
    ),
    pytest.param(
        _state(_set("g1/0", np.full((1, 100), np.inf, np.float32))), (STATE,), id="inf parameters"
    ),
    pytest.param(
        _delete("training_state/state.npz"), (STATE, "training_state"), id="state deleted"
    ),
    pytest.param(_delete("training_state"), ("training_state",), id="state folder deleted"),
    pytest.param(_state_folder_a_file, ("training_state",), id="state folder a file"),
    pytest.param(_state_a_directory, (STATE,), id="state a directory"),
    pytest.param(_state_a_loop, (STATE,), id="state a symlink loop"),
    pytest.param(
        _write("training_state/evals/00000010.npz", b""),
        ("00000010.npz",),
        id="evaluation record zero bytes",
    ),
    pytest.param(_delete("config.json"), ("config.json",), id="config.json deleted"),
    pytest.param(_write("config.json", b"{"), ("config.json",), id="config.json bad JSON"),
    pytest.param(
        _json("config.json", lambda c: {**c, "experiment": "ics"}),
        ("ics",),
        id="config.json of another experiment",
    ),
    pytest.param(
        _json("config.json", lambda c: {**c, "steps": -5}),
        ("config.json", "steps"),
        id="config.json steps -5",
    ),
    pytest.param(
        _json("config.json", lambda c: {**c, "lr": "fast"}),
        ("config.json", "lr"),
        id="config.json lr a string",
    ),
    pytest.param(
        _json("config.json", lambda c: {**c, "hidden": ["x"]}),
        ("config.json", "hidden"),
        id="config.json hidden of strings",
    ),
    pytest.param(
        _json("config.json", lambda c: {**c, "color": "red"}),
        ("config.json", "color"),
        id="config.json unknown field",
    ),
]


def _copy_run(source: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(source, run, symlinks=True)
    return run


@pytest.mark.parametrize(("damage", "keys"), CHECKPOINT_CASES)
def test_checkpoint(trained, tmp_path, capsys, monkeypatch, damage, keys):
    run = _copy_run(trained["reproduce"], tmp_path)
    damage(run)
    before = snapshot(run)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code, stderr = bnlab_here(capsys, monkeypatch, "reproduce", "--out", str(run), "--resume")
    assert_user_error(code, stderr, *keys)
    assert snapshot(run) == before, "the refused run directory was changed"
    assert list(cwd.iterdir()) == []


def test_control_an_intact_checkpoint_resumes(trained, tmp_path, capsys, monkeypatch):
    run = _copy_run(trained["reproduce"], tmp_path)
    monkeypatch.chdir(tmp_path)
    code, stderr = bnlab_here(capsys, monkeypatch, "reproduce", "--out", str(run), "--resume")
    assert code == 0, stderr


def _status(value) -> Callable[[Path], None]:
    return _write("status.json", json.dumps(value).encode())


def _metrics_runs(change: Callable[[list], list]) -> Callable[[Path], None]:
    return _json("metrics.json", lambda m: {**m, "runs": change(m["runs"])})


def _accuracy(value) -> Callable[[Path], None]:
    def change(runs):
        runs[0]["test_accuracy"] = [runs[0]["test_accuracy"][0], value]
        return runs

    return _metrics_runs(change)


def _as_ics(trained: dict[str, Path]) -> Callable[[Path], None]:
    """A reproduce run whose config.json is an ICS run's: ICS over Figure 1's metrics."""
    return lambda run: shutil.copy(trained["ics"] / "config.json", run / "config.json")


def _relabel(experiment: str) -> Callable[[Path], None]:
    return _json("config.json", lambda c: {**c, "experiment": experiment, "analysis": experiment})


CONFIG, METRICS = "config.json", "metrics.json"
REPORT_CASES = [
    pytest.param("reproduce", _delete("config.json"), (CONFIG,), id="config.json missing"),
    pytest.param("reproduce", _write("config.json", b"{"), (CONFIG,), id="config.json bad JSON"),
    pytest.param("reproduce", _write("config.json", b""), (CONFIG,), id="config.json empty"),
    pytest.param("reproduce", _write("config.json", b"[]"), (CONFIG,), id="config.json a list"),
    pytest.param(
        "reproduce", _write("config.json", b"\xff\xfe{}"), (CONFIG,), id="config.json not UTF-8"
    ),
    pytest.param(
        "reproduce",
        _json("config.json", lambda c: {**c, "experiment": "foo"}),
        (CONFIG,),
        id="experiment foo",
    ),
    pytest.param(
        "reproduce",
        _json("config.json", lambda c: {**c, "experiment": 5}),
        (CONFIG,),
        id="experiment 5",
    ),
    pytest.param(
        "reproduce",
        _json("config.json", lambda c: {k: v for k, v in c.items() if k != "experiment"}),
        (CONFIG,),
        id="experiment missing",
    ),
    pytest.param(
        "reproduce",
        _json("config.json", lambda c: {**c, "experiment": "ics"}),
        (CONFIG,),
        id="experiment ics over a reproduce config",
    ),
    pytest.param(
        "reproduce", "as-ics", (CONFIG, METRICS), id="an ICS config over reproduce metrics"
    ),
    pytest.param(
        "ics", _relabel("lr-sweep"), (CONFIG, METRICS), id="an ICS run relabelled lr-sweep"
    ),
    pytest.param("ics", _relabel("reproduce"), (CONFIG,), id="an ICS run relabelled reproduce"),
    pytest.param(
        "ics",
        _json("config.json", lambda c: {**c, "analysis": "foo"}),
        (CONFIG,),
        id="config analysis foo",
    ),
    pytest.param(
        "ics",
        _json("metrics.json", lambda m: {**m, "analysis": "foo"}),
        (METRICS,),
        id="metrics analysis foo",
    ),
    pytest.param(
        "ics",
        _json("metrics.json", lambda m: {**m, "analysis": 5}),
        (METRICS,),
        id="metrics analysis 5",
    ),
    pytest.param("reproduce", _delete("metrics.json"), (METRICS,), id="metrics.json missing"),
    pytest.param(
        "reproduce",
        _write("metrics.json", b"[" * 200_000 + b"]" * 200_000),
        (METRICS,),
        id="metrics.json nested 200,000 deep",
    ),
    pytest.param(
        "reproduce",
        _write("metrics.json", b'{"runs": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001),
        (METRICS,),
        id="metrics.json objects nested 100,000 deep",
    ),
    pytest.param(
        "reproduce", _write("metrics.json", b'{"runs": NaN}'), (METRICS,), id="metrics.json NaN"
    ),
    pytest.param("reproduce", _metrics_runs(lambda r: []), (METRICS,), id="metrics no runs"),
    pytest.param("reproduce", _accuracy(1e308), (METRICS,), id="accuracy 1e308"),
    pytest.param("reproduce", _accuracy(-5), (METRICS,), id="accuracy -5"),
    pytest.param("reproduce", _accuracy(7), (METRICS,), id="accuracy 7"),
    pytest.param("reproduce", _accuracy("0.9"), (METRICS,), id="accuracy a string"),
    pytest.param(
        "reproduce",
        _metrics_runs(lambda r: [{**x, "variant": "foo"} for x in r]),
        (METRICS,),
        id="unknown variant",
    ),
    pytest.param(
        "reproduce",
        _metrics_runs(lambda r: [{**x, "steps": [20, 10]} for x in r]),
        (METRICS,),
        id="steps decreasing",
    ),
    pytest.param(
        "reproduce",
        _metrics_runs(lambda r: [{**x, "steps": [10, 20, 30]} for x in r]),
        (METRICS,),
        id="steps longer than the curves",
    ),
    pytest.param(
        "reproduce",
        _metrics_runs(lambda r: [{**x, "diverged_at": "soon"} for x in r]),
        (METRICS,),
        id="diverged_at a string",
    ),
    pytest.param(
        "reproduce", _status({"status": "running"}), ("status.json", "running"), id="status running"
    ),
    pytest.param(
        "reproduce", _status({"status": "failed"}), ("status.json", "failed"), id="status failed"
    ),
    pytest.param("reproduce", _status({}), ("status.json",), id="status empty object"),
    pytest.param("reproduce", _status(["complete"]), ("status.json",), id="status a list"),
    pytest.param("reproduce", _write("status.json", b"{"), ("status.json",), id="status bad JSON"),
    pytest.param(
        "reproduce", _write("timing.json", b"[1, 2]"), ("timing.json",), id="timing.json a list"
    ),
    pytest.param(
        "reproduce",
        _json("timing.json", lambda t: {**t, "total_s": -1}),
        ("timing.json",),
        id="timing negative",
    ),
]


@pytest.mark.parametrize(("which", "damage", "keys"), REPORT_CASES)
def test_report_run_directory(trained, tmp_path, capsys, monkeypatch, which, damage, keys):
    run = _copy_run(trained[which], tmp_path)
    (_as_ics(trained) if damage == "as-ics" else damage)(run)
    before = snapshot(run)
    out = tmp_path / "report.md"
    refused_here(capsys, monkeypatch, tmp_path, ["report", str(run), "--out", str(out)], [keys])
    assert not out.exists()
    assert snapshot(run) == before


@pytest.mark.parametrize("which", ["reproduce", "ics"])
def test_control_the_trained_runs_report(trained, tmp_path, capsys, monkeypatch, which):
    run = _copy_run(trained[which], tmp_path)
    monkeypatch.chdir(tmp_path)
    code, stderr = bnlab_here(
        capsys, monkeypatch, "report", str(run), "--out", str(tmp_path / "r.md")
    )
    assert code == 0, stderr


# =================================================================================================
# 6. paths
# =================================================================================================
LONG = "n" * 300
PATH_CASES = [
    case(["reproduce", *SHORT, "--out", "{file}/run"], "{file}", id="reproduce --out under a file"),
    case(["analyze", "ics", *SHORT, "--out", "{file}/run"], "{file}", id="ics --out under a file"),
    case(["sweep", "{sweep}", "--out", "{file}/run"], "{file}", id="sweep --out under a file"),
    case(
        ["report", "{run}", "--out", "{file}/report.md"], "{file}", id="report --out under a file"
    ),
    case(
        ["reproduce", *SHORT, "--out", f"{{tmp}}/{LONG}"],
        ("--out", "too long"),
        id="reproduce --out 300-character name",
    ),
    case(
        ["analyze", "landscape", *SHORT, "--out", f"{{tmp}}/{LONG}/run"],
        ("--out", "too long"),
        id="landscape --out 300-character folder",
    ),
    case(
        ["sweep", "{sweep}", "--out", f"{{tmp}}/{LONG}"],
        ("--out", "too long"),
        id="sweep --out 300-character name",
    ),
    case(
        ["report", "{run}", "--out", f"{{tmp}}/{LONG}.md"],
        ("--out", "too long"),
        id="report --out 300-character name",
    ),
    case(
        ["reproduce", *SHORT, "--out", "/proc/bnlab-run"],
        "/proc/bnlab-run",
        id="reproduce --out under /proc",
    ),
    case(
        ["analyze", "placement", *SHORT, "--out", "/proc/bnlab-run"],
        "/proc/bnlab-run",
        id="placement --out under /proc",
    ),
    case(
        ["sweep", "{sweep}", "--out", "/proc/bnlab-run"],
        "/proc/bnlab-run",
        id="sweep --out under /proc",
    ),
    case(
        ["report", "{run}", "--out", "/proc/bnlab-report.md"],
        "/proc/bnlab-report.md",
        id="report --out under /proc",
    ),
    case(["reproduce", *SHORT, "--out", ""], "--out", id="reproduce --out ''"),
    case(["analyze", "lr-sweep", *SHORT, "--out", ""], "--out", id="lr-sweep --out ''"),
    case(["sweep", "{sweep}", "--out", ""], "--out", id="sweep --out ''"),
    case(["report", "{run}", "--out", ""], "--out", id="report --out ''"),
    case(["reproduce", *SHORT, "--out", "   "], "--out", id="reproduce --out blank"),
    case(["reproduce", *SHORT, "--out", "/dev/null"], "/dev/null", id="reproduce --out /dev/null"),
    case(["reproduce", *SHORT, "--out", "{file}"], "{file}", id="reproduce --out a file"),
    case(
        ["reproduce", *SHORT, "--out", "{dir}"],
        "{dir}",
        id="reproduce --out a folder of other files",
    ),
    case(
        ["reproduce", *SHORT, "--overwrite", "--out", "{dir}"],
        "{dir}",
        id="reproduce --overwrite a folder of other files",
    ),
    case(["report", "{run}", "--out", "{dir}"], "{dir}", id="report --out a folder"),
    case(["report", "{run}", "--out", "{file}"], "{file}", id="report --out an existing file"),
]


@pytest.mark.parametrize(("args", "keys"), PATH_CASES)
def test_path(trained, tmp_path, capsys, monkeypatch, args, keys):
    """{dir} holds a file of the user's, which must survive untouched; {run} is a finished run
    (what `bnlab report` reads)."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "notes.txt").write_text("the user's own file\n")
    refused_here(capsys, monkeypatch, tmp_path, args, keys, run=trained["reproduce"])
    assert (tmp_path / "dir" / "notes.txt").read_text() == "the user's own file\n"


def _unshare(script: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def mounts(tmp_path_factory) -> None:
    """Skip unless a tmpfs can be mounted in a private mount namespace (unshare -rm)."""
    where = tmp_path_factory.mktemp("mount-probe")
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: cannot mount a read-only or small filesystem")
    try:
        probe = _unshare(
            'mount -t tmpfs -o size=64k tmpfs "$D" && touch "$D/x"', {"D": str(where)}, 30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"unshare -rm failed: {e}")
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace: {probe.stderr.strip()[:200]}")


def _run_in_mount(tmp_path: Path, options: str, args: list[str], timeout: float = 120, fill=False):
    """`bnlab ARGS` with a tmpfs mounted (``options``) at tmp_path/mnt, in a private mount
    namespace; returns the result and what tmp_path/mnt/run held afterwards (seen from inside)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    seen = tmp_path / "seen"
    seen.mkdir()
    script = (
        'mount -t tmpfs -o "$OPTS" tmpfs "$MNT" || exit 97\n'
        + ('dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null\n' if fill else "")
        + '"$BNLAB" "$@"; rc=$?\n'
        'if [ -e "$MNT/run" ]; then ls -A "$MNT/run" > "$SEEN/listing"; '
        'cat "$MNT/run/status.json" > "$SEEN/status.json" 2>/dev/null; fi\n'
        'find "$MNT" -mindepth 1 > "$SEEN/mnt"\n'
        "exit $rc\n"
    )
    env = {"OPTS": options, "MNT": str(mnt), "SEEN": str(seen), "BNLAB": bnlab_script()}
    try:
        result = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, "sh", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"bnlab {' '.join(args)} did not end within {timeout} s (a hang): {e}")
    if result.returncode == 97:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()[:200]}")
    return result, seen


def _sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text("steps = 200\neval_every = 10\n[grid]\nlr = [0.001, 0.002]\n")
    return path


READ_ONLY_CASES = [
    pytest.param(["reproduce", *SHORT, "--out", "{mnt}/run"], id="reproduce"),
    pytest.param(["analyze", "ics", *SHORT, "--out", "{mnt}/run"], id="analyze ics"),
    pytest.param(["sweep", "{sweep}", "--out", "{mnt}/run"], id="sweep"),
    pytest.param(["report", "{run}", "--out", "{mnt}/report.md"], id="report"),
]


@pytest.mark.parametrize("args", READ_ONLY_CASES)
def test_out_on_a_read_only_filesystem(mounts, trained, tmp_path, args):
    paths = {"mnt": tmp_path / "mnt", "sweep": _sweep_file(tmp_path), "run": trained["reproduce"]}
    result, seen = _run_in_mount(tmp_path, "ro,size=1m", _fill(args, paths))
    assert_user_error(result.returncode, result.stderr, str(tmp_path / "mnt"))
    assert (seen / "mnt").read_text() == "", "written on a read-only filesystem?"


DISK_FULL_CASES = [
    pytest.param(["reproduce", *SHORT, "--out", "{mnt}/run"], False, False, id="reproduce"),
    pytest.param(
        ["reproduce", *SHORT, "--skip-resource-check", "--out", "{mnt}/run"],
        False,
        True,
        id="reproduce past the disk check",
    ),
    pytest.param(
        ["analyze", "ics", *SHORT, "--skip-resource-check", "--out", "{mnt}/run"],
        False,
        True,
        id="analyze ics past the disk check",
    ),
    pytest.param(
        ["sweep", "{sweep}", "--skip-resource-check", "--out", "{mnt}/run"],
        False,
        True,
        marks=pytest.mark.slow,
        id="sweep past the disk check",
    ),
    pytest.param(["report", "{run}", "--out", "{mnt}/report.md"], True, False, id="report"),
]


@pytest.mark.parametrize(("args", "fill", "started"), DISK_FULL_CASES)
def test_out_on_a_full_disk(mounts, trained, tmp_path, args, fill, started):
    """No hang, one error line, and a run directory that is absent or says it is not complete
    (and no half-written report, no .tmp leftovers). ``started``: the run gets past the disk
    check (--skip-resource-check) and trains until the disk fills; its progress lines may come
    before the error, which must be the last line and the only one."""
    paths = {"mnt": tmp_path / "mnt", "sweep": _sweep_file(tmp_path), "run": trained["reproduce"]}
    result, seen = _run_in_mount(tmp_path, "size=300k", _fill(args, paths), fill=fill)
    stderr = result.stderr
    if started:
        *progress, last = stderr.splitlines(keepends=True) or [""]
        shown = f"stderr {stderr[-1500:]!r}"
        assert not [line for line in progress if "bnlab:" in line or "Traceback" in line], shown
        stderr = last
    assert_user_error(result.returncode, stderr, ("No space", "disk", str(tmp_path / "mnt")))
    if (seen / "listing").exists():
        assert "status.json" in (seen / "listing").read_text().split(), "nothing says incomplete"
        status = json.loads((seen / "status.json").read_text())
        assert status.get("status") != "complete", status
    written = (seen / "mnt").read_text().splitlines()
    assert not [n for n in written if n.endswith("/report.md")], written
    assert not [n for n in written if n.endswith(".tmp")], written


# =================================================================================================
# 7. multi-host options of bnlab sweep
# =================================================================================================
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bad_coordinator(value: str, name: str):
    """A --coordinator value that is refused before anything starts (one process, id 0)."""
    args = ["--coordinator", value, "--num-processes", "1", "--process-id", "0"]
    return pytest.param(args, "--coordinator", id=name)


MULTI_HOST_FORMAT = [
    _bad_coordinator("", "coordinator ''"),
    _bad_coordinator("localhost", "coordinator without port"),
    _bad_coordinator("localhost:99999", "port 99999"),
    _bad_coordinator("localhost:0", "port 0"),
    _bad_coordinator("localhost:-1", "port -1"),
    _bad_coordinator("localhost:http", "port a name"),
    _bad_coordinator(":1234", "host missing"),
    _bad_coordinator("a b:1234", "host with a space"),
    pytest.param(["--coordinator", "localhost:1234"], "--num-processes", id="coordinator alone"),
    pytest.param(
        ["--num-processes", "2", "--process-id", "0"], "--coordinator", id="no coordinator"
    ),
    pytest.param(
        ["--coordinator", "localhost:1234", "--num-processes", "0", "--process-id", "0"],
        "--num-processes",
        id="0 processes",
    ),
    pytest.param(
        ["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "-1"],
        "--process-id",
        id="process id -1",
    ),
    pytest.param(
        ["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "2"],
        "--process-id",
        id="process id = count",
    ),
    pytest.param(
        ["--coordinator", "localhost:1234", "--num-processes", HUGE, "--process-id", "0"],
        "--num-processes",
        id="processes huge",
    ),
]


@pytest.mark.parametrize(("options", "key"), MULTI_HOST_FORMAT)
def test_multi_host_option(tmp_path, options, key):
    """Refused before jax.distributed starts (in a child: a wrongly accepted value would start it
    in this process, or wait)."""
    path = tmp_path / "sweep.toml"
    path.write_text(OK_SWEEP)
    out = tmp_path / "out"
    outcome = bnlab_isolated(
        "sweep", str(path), *options, "--out", str(out), cwd=tmp_path, timeout=60
    )
    assert_isolated_user_error(outcome, key)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            ["--coordinator", "notahost.invalid:1234", "--num-processes", "1", "--process-id", "0"],
            id="unresolvable coordinator",
        ),
        pytest.param(
            [
                "--coordinator",
                "127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                "1",
                "--startup-timeout",
                "10",
            ],
            id="process 1 without process 0",
        ),
    ],
)
def test_multi_host_start_up_times_out(tmp_path, options):
    """A coordinator that never answers is a one-line error naming it, after a start-up time-out
    (not a silent wait)."""
    path = tmp_path / "sweep.toml"
    path.write_text(OK_SWEEP)
    options = [o.replace("{port}", str(_free_port())) for o in options]
    out = tmp_path / "out"
    outcome = bnlab_isolated(
        "sweep", str(path), *options, "--out", str(out), cwd=tmp_path, timeout=180
    )
    assert_isolated_user_error(outcome, options[1])
    assert not out.exists()


# =================================================================================================
# 8. huge values: refused before anything is allocated (a child, its memory capped at +3 GiB)
# =================================================================================================
LAYERS_5000 = ",".join(["100"] * 5000)
HUGE_CASES = [
    case(["reproduce", "--steps", INT64_MAX], "--steps", id="reproduce --steps int64 max"),
    case(["reproduce", "--epochs", "10000000000000"], "--epochs", id="reproduce --epochs 1e13"),
    case(["reproduce", "--seeds", "100000000"], "--seeds", id="reproduce --seeds 1e8"),
    case(["reproduce", "--seeds", "2147483647"], "--seeds", id="reproduce --seeds int32 max"),
    case(
        ["reproduce", "--hidden", LAYERS_5000, *SHORT],
        "--hidden",
        id="reproduce 5,000 hidden layers",
    ),
    case(
        ["reproduce", "--first-seed", "99999999999999"],
        "--first-seed",
        id="reproduce --first-seed 1e14",
    ),
    case(
        ["reproduce", "--hist-examples", "2000000000", *SHORT],
        "--hist-examples",
        id="reproduce --hist-examples 2e9",
    ),
    case(
        ["reproduce", "--eval-every", "1", "--steps", "2147483647"],
        ("--eval-every", "--skip-resource-check"),
        id="reproduce 2^31 evaluations",
    ),
    case(
        ["analyze", "landscape", "--step-count", "100000000", *SHORT],
        "--step-count",
        id="landscape --step-count 1e8",
    ),
    case(
        ["analyze", "lp-norm", "--step-count", "100000000", *SHORT],
        "--step-count",
        id="lp-norm --step-count 1e8",
    ),
    case(["analyze", "ics", "--seeds", "1e23"], "--seeds", id="ics --seeds 1e23"),
    case(
        ["analyze", "ics", "--first-seed", "99999999999999"],
        "--first-seed",
        id="ics --first-seed 1e14",
    ),
    case(
        ["analyze", "noisy-bn", "--seeds", "100000000", *SHORT],
        "--seeds",
        id="noisy-bn --seeds 1e8",
    ),
    case(
        [
            "analyze",
            "lr-sweep",
            "--multipliers",
            ",".join(str(1 + i / 1e5) for i in range(20_000)),
            *SHORT,
        ],
        ("--multipliers", "--skip-resource-check"),
        id="lr-sweep 20,000 multipliers",
    ),
    case(["summary", "--hidden", HUGE], "--hidden", id="summary --hidden 1e23"),
    case(["summary", "--hidden", LAYERS_5000], "--hidden", id="summary 5,000 hidden layers"),
]


@pytest.mark.parametrize(("args", "keys"), HUGE_CASES)
def test_huge_value(tmp_path, args, keys):
    out = tmp_path / "out"
    takes_out = args[0] != "summary"
    full = [*args, "--out", str(out)] if takes_out else args
    outcome = bnlab_isolated(*full, cwd=tmp_path, timeout=60)
    assert_isolated_user_error(outcome, *keys)
    assert not out.exists()
    assert os.listdir(tmp_path) == []  # (out is absent) nothing in the working directory either


ESTIMATE = re.compile(r"\d[\d,.]*\s*[KMGTPE]i?B")
MEMORY_CASES = [
    pytest.param(
        ["reproduce", "--hidden", "65536,65536,65536", "--seeds", "1000", *SHORT],
        id="reproduce 3 x 65,536 units x 1,000 seeds",
    ),
    pytest.param(["analyze", "ics", "--seeds", "10000", *SHORT], id="ics 10,000 seeds"),
    pytest.param(
        ["reproduce", "--eval-every", "1", "--steps", "10000000"],
        id="reproduce 10,000,000 evaluations, each with its histograms",
    ),
]


@pytest.mark.parametrize("args", MEMORY_CASES)
def test_a_run_larger_than_memory_is_refused_with_its_estimate(tmp_path, args):
    out = tmp_path / "out"
    outcome = bnlab_isolated(*args, "--out", str(out), cwd=tmp_path, timeout=60)
    assert_isolated_user_error(outcome, "--skip-resource-check")
    assert ESTIMATE.search(outcome.stderr), f"no estimate in {outcome.stderr!r}"
    assert not out.exists()


# =================================================================================================
# 9. values that make no sense
# =================================================================================================
NONSENSE_CASES = [
    *(
        case(
            ["analyze", "noisy-bn", "--noise-mean", v, "--out", "{out}"],
            "--noise-mean",
            id=f"noisy-bn --noise-mean={v!r}",
        )
        for v in [
            "nan,nan",
            "inf,inf",
            "0,inf",
            "-inf,0",
            "1",
            "x,y",
            "0.5,-0.5",
            "",
            "1,2,3",
            "1e400,1e400",
        ]
    ),
    *(
        case(
            ["analyze", "noisy-bn", "--noise-scale", v, "--out", "{out}"],
            "--noise-scale",
            id=f"noisy-bn --noise-scale={v!r}",
        )
        for v in ["-1,-0.5", "0,1", "0,0", "2,1", "inf,inf", "1,nan", "1", ""]
    ),
    *(
        case(
            ["analyze", "noisy-bn", "--noise-jitter", v, "--out", "{out}"],
            "--noise-jitter",
            id=f"noisy-bn --noise-jitter={v!r}",
        )
        for v in ["nan", "-1", "inf", "x"]
    ),
    *(
        case(
            ["analyze", "noisy-bn", "--noise-std", v, "--out", "{out}"],
            "--noise-std",
            id=f"noisy-bn --noise-std={v!r}",
        )
        for v in ["nan", "-0.1", "inf", "1e400"]
    ),
    *(
        case(
            ["analyze", name, "--step-range", v, "--out", "{out}"],
            "--step-range",
            id=f"{name} --step-range={v!r}",
        )
        for name in ("landscape", "lp-norm")
        for v in ["0.5,inf", "0,1", "-1,2", "4,0.5", "1", "x,y", "", "nan,1", "1e-400,1"]
    ),
    *(
        case(
            ["analyze", name, "--step-count", v, "--out", "{out}"],
            "--step-count",
            id=f"{name} --step-count={v!r}",
        )
        for name in ("landscape", "lp-norm")
        for v in ["0", "-1", "x", "1.5"]
    ),
    *(
        case(
            ["analyze", "lr-sweep", "--multipliers", v, "--out", "{out}"],
            "--multipliers",
            id=f"lr-sweep --multipliers={v!r}",
        )
        for v in ["1,1", "1,1.0", "", "0", "-1", "nan", "1,inf", "x", "1,,2", "1e400"]
    ),
    *(
        case(
            ["analyze", "lr-sweep", "--target", v, "--out", "{out}"],
            "--target",
            id=f"lr-sweep --target={v!r}",
        )
        for v in ["0", "2", "nan", "foo", "-0.5", "", "inf", "0.5,0.6"]
    ),
    case(
        ["analyze", "lr-sweep", "--lr", "10", "--multipliers", "1e308", "--out", "{out}"],
        "--multipliers",
        "10",
        id="lr-sweep --lr 10 x 1e308",
    ),
    case(
        ["analyze", "lr-sweep", "--lr", "1e30", "--multipliers", "1,1e10", "--out", "{out}"],
        "--multipliers",
        id="lr-sweep lr x multiplier beyond float32",
    ),
    case(["reproduce", "--preset", ""], "--preset", id="reproduce --preset ''"),
    case(
        ["reproduce", "--hist-examples", "100000", *SHORT, "--out", "{out}"],
        "--hist-examples",
        id="reproduce --hist-examples 100000",
    ),
    case(
        ["reproduce", "--hist-examples", "10001", *SHORT, "--out", "{out}"],
        "--hist-examples",
        id="reproduce --hist-examples 10001",
    ),
    case(["reproduce", "--resume", *SHORT], "--resume", id="reproduce --resume without --out"),
    *(
        case(["analyze", name, "--resume"], "--resume", id=f"{name} --resume without --out")
        for name in ANALYSES
    ),
    case(
        ["reproduce", "--lr", "1e39", *SHORT, "--out", "{out}"],
        "--lr",
        id="reproduce --lr beyond float32",
    ),
    case(
        ["reproduce", "--init", "gaussian", "--init-std", "1e39", *SHORT, "--out", "{out}"],
        "--init-std",
        id="reproduce --init-std beyond float32",
    ),
    case(
        ["reproduce", "--bn-eps", "1e-50", *SHORT, "--out", "{out}"],
        "--bn-eps",
        id="reproduce --bn-eps below float32",
    ),
]


@pytest.mark.parametrize(("args", "keys"), NONSENSE_CASES)
def test_nonsense_value(tmp_path, capsys, monkeypatch, args, keys):
    refused_here(capsys, monkeypatch, tmp_path, args, keys)


def test_training_is_forbidden_in_this_suite(monkeypatch):
    """The stop sign works: an accepted command line reaches it (and fails a case at once)."""
    forbid_training(monkeypatch)
    import bnlab.experiments.run as run

    with pytest.raises(TrainingStarted):
        run.train_groups()
