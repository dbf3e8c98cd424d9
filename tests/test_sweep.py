"""`bnlab sweep`: the config file's checks, the plan of programs, per-run learning rates, the run
directory (config.json holds the whole sweep; --overwrite replaces an earlier sweep), and one
device against two (own processes) giving the same results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bnlab.engine.devices import run_mesh
from bnlab.engine.optim import OptimizerSpec, make_optimizer, set_hyperparams
from bnlab.errors import ConfigError
from bnlab.experiments import SWEEP, prepare_experiment, run_experiment
from bnlab.experiments.rundir import outputs, saved_config
from bnlab.experiments.sweep import layout as L
from bnlab.experiments.sweep import load_sweep, parse_sweep, plan, program_groups

ISSUE_EXAMPLE = """\
preset = "seed"          # any preset; any config field below it overrides the preset
steps = 400
seeds = [0, 1]
[grid]                   # every combination is one cell; each cell trains both variants
lr = [0.001, 0.003]
"""
SRC = str(Path(__file__).parents[1] / "src")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_issue_example_parses(tmp_path):
    sweep = load_sweep(_write(tmp_path, ISSUE_EXAMPLE))
    assert (sweep.base.preset, sweep.base.steps, sweep.seeds) == ("seed", 400, (0, 1))
    assert sweep.grid == {"lr": (0.001, 0.003)}
    assert sweep.cells() == [{"lr": 0.001}, {"lr": 0.003}]


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("stepz = 3\n", "stepz", "unknown field"),
        ("[grid]\nlrr = [0.1]\n", "grid.lrr", "unknown field"),
        ('steps = "many"\n', "steps", "expected an integer, got 'many'"),
        ("steps = 1.5\n", "steps", "expected an integer, got 1.5"),
        ("[grid]\nlr = []\n", "grid.lr", "expected at least one value, got an empty list"),
        ("[grid]\nlr = 0.1\n", "grid.lr", "expected a list of values, got 0.1"),
        ('[grid]\nlr = [0.1, "x"]\n', "grid.lr[1]", "expected a number, got 'x'"),
        ("[grid]\nlr = [0.1, 0.1]\n", "grid.lr", "expected distinct values"),
        ("[grid]\nseeds = [1, 2]\n", "grid.seeds", "not a grid axis"),
        ("lr = 0.1\n[grid]\nlr = [0.2]\n", "grid.lr", "also set at the top level"),
        ("seeds = [0, 0]\n", "seeds", "expected distinct seeds"),
        ("seeds = 0\n", "seeds", "expected a count of at least 1"),
        ('preset = "nope"\n', "preset", "expected one of seed, paper, convnet, got 'nope'"),
        ("[grid]\nhidden = [[100], 3]\n", "grid.hidden[1]", "expected a list of integers, got 3"),
        ("[grid]\nlr = [0.1, -1.0]\n", "grid cell lr=-1: --lr", "expected a finite number > 0"),
        ("steps = = 3\n", "not valid TOML", ""),
        (
            'layout = "vmap"\n',
            "layout",
            """expected one of "auto", "vmapped", "sequential", got 'vmap'""",
        ),
        ("layout = 1\n", "layout", "got 1"),
        ('[grid]\nlayout = ["vmapped"]\n', "grid.layout", "not a grid axis"),
    ],
)
def test_bad_sweep_file_is_one_line_naming_file_and_field(tmp_path, text, where, says):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {where}") and says in message and "\n" not in message


def test_layout_defaults_to_auto_and_reads_back_from_config_json():
    assert parse_sweep({"steps": 5}, "s.toml").layout == "auto"
    sweep = parse_sweep({"steps": 5, "layout": "sequential"}, "s.toml")
    assert sweep.to_dict()["layout"] == "sequential"
    assert type(sweep).from_dict(sweep.to_dict()) == sweep
    old = {k: v for k, v in sweep.to_dict().items() if k != "layout"}
    assert type(sweep).from_dict(old).layout == "vmapped"  # what a sweep did before the field


def test_auto_layout_takes_the_faster_at_the_nearest_measured_point(monkeypatch):
    """The shipped cpu table covers 1 and 2 devices; another platform has none: vmapped."""
    assert {p.devices for p in L.MEASURED["cpu"]} == {1, 2}
    assert L.choose_layout("auto", "gpu", 1, 16, 100, 60) == L.Choice("vmapped", "unmeasured")
    assert L.choose_layout("sequential", "gpu", 1, 16, 100, 60).reason == "set"
    small = L.Measured(2, 2, 100, 60, vmapped=1.0, sequential=2.0)
    wide = L.Measured(2, 4, 1600, 60, vmapped=2.0, sequential=1.0)
    monkeypatch.setitem(L.MEASURED, "cpu", (small, wide))
    assert L.choose_layout("auto", "cpu", 2, 3, 100, 60) == L.Choice(
        "sequential", "measured", small
    )
    assert L.choose_layout("auto", "cpu", 8, 4, 1000, 60) == L.Choice("vmapped", "measured", wide)
    said = L.describe(L.choose_layout("auto", "cpu", 1, 2, 100, 60).to_dict())
    assert said == (
        "sequential (layout auto: measured nearest, 2 runs of width 100, batch 60 on 2 "
        "device(s): 1 vmapped vs 2 sequential runs x steps/s)"
    )


def test_missing_sweep_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml: file not found"):
        load_sweep(tmp_path / "missing.toml")


def test_learning_rates_share_one_program_per_variant():
    sweep = parse_sweep({"seeds": [0, 1], "grid": {"lr": [0.001, 0.003]}}, "s.toml")
    (program,) = plan(sweep)
    assert program.per_run == ("lr",)
    groups = program_groups(program, sweep.seeds)
    assert [g.network.variant for g in groups] == ["baseline", "bn"]
    assert groups[1].seeds == (0, 1, 0, 1)
    assert groups[1].hyper == {"lr": (0.001, 0.001, 0.003, 0.003)}


@pytest.mark.parametrize(
    ("grid", "programs", "per_run"),
    [
        ({"hidden": [[100], [100, 100]], "lr": [0.1, 0.2]}, 2, ("lr",)),
        ({"rho": [0.9, 0.99], "opt_eps": [1e-7, 1e-5]}, 1, ("rho", "opt_eps")),
        ({"bn_momentum": [0.1, 0.5]}, 2, ()),
        ({"optimizer": ["sgd"], "rho": [0.9, 0.99]}, 2, ()),  # sgd has no rho: not per run
    ],
)
def test_fields_other_than_optimiser_values_give_one_program_each(grid, programs, per_run):
    found = plan(parse_sweep({"grid": grid}, "s.toml"))
    assert len(found) == programs and all(p.per_run == per_run for p in found)


@pytest.mark.parametrize("name", ["rmsprop", "sgd"])
def test_per_run_learning_rate_updates_bitwise_equal_to_plain_optimizer(name):
    spec = OptimizerSpec(name=name, lr=0.003)
    plain, injected = make_optimizer(spec), make_optimizer(OptimizerSpec(name=name), ("lr",))
    w = jax.random.normal(jax.random.key(0), (50, 20))
    s1 = plain.init(w)
    s2 = set_hyperparams(injected.init(w), {"lr": jnp.float32(0.003)})
    w1 = w2 = w
    for k in range(5):
        g = jnp.sin(w1 * (k + 1))
        u1, s1 = plain.update(g, s1, w1)
        u2, s2 = injected.update(g, s2, w2)
        w1, w2 = optax.apply_updates(w1, u1), optax.apply_updates(w2, u2)
    np.testing.assert_array_equal(np.asarray(w1), np.asarray(w2))


TINY_SWEEP = """\
preset = "seed"
steps = 10
eval_every = 10
hist_examples = 2
variants = ["baseline"]
seeds = [0]
[grid]
lr = [0.001]
"""


def test_overwrite_replaces_the_directory_an_earlier_sweep_wrote(tmp_path):
    """Regression: `bnlab sweep CONFIG --out D --overwrite` on a D that an earlier sweep wrote.
    config.json holds the whole sweep (there is no sweep.json) and reads back as the sweep."""
    from typer.testing import CliRunner

    from bnlab.cli import app

    config = _write(tmp_path, TINY_SWEEP)
    sweep = load_sweep(config)
    out = tmp_path / "out"
    first = run_experiment(SWEEP, sweep, out, mesh=run_mesh(jax.devices()[:1]))
    written = sorted(p.name for p in out.iterdir())
    assert set(written) <= set(outputs(SWEEP)) and "sweep.json" not in written
    saved = json.loads((out / "config.json").read_text())
    assert saved == {"experiment": "sweep", **sweep.to_dict()}
    assert saved_config(SWEEP, out) == sweep
    with pytest.raises(ConfigError, match="pass --resume to continue that run or --overwrite"):
        run_experiment(SWEEP, sweep, out, mesh=run_mesh(jax.devices()[:1]))
    done = CliRunner().invoke(
        app, ["sweep", str(config), "--out", str(out), "--overwrite", "--devices", "1"]
    )
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == written
    assert json.loads((out / "metrics.json").read_text()) == first.metrics
    assert json.loads((out / "config.json").read_text()) == saved


RESUMED_SWEEP = """\
preset = "seed"
steps = 20
eval_every = 10
hist_examples = 2
variants = ["baseline"]
seeds = [0, 1]
"""


def test_resumed_sweep_keeps_its_layout_and_records_it(tmp_path, monkeypatch):
    """Stopped after its first segment, the sweep resumes in the layout it chose ("auto": from
    the shipped table, so the same on every machine of the kind); a layout that would differ
    (here: a table changed in between) is refused by the checkpoint. timing.json and report.md
    say which layout trained and the measurement behind it."""
    import threading

    from bnlab.engine.checkpoint import CheckpointError
    from bnlab.experiments.run import RunStopped

    sweep = load_sweep(_write(tmp_path, RESUMED_SWEEP))
    mesh, out = run_mesh(jax.devices()[:1]), tmp_path / "out"
    expected = L.choose_layout("auto", "cpu", 1, 2, 100, 60)
    stop = threading.Event()
    stop.set()
    with pytest.raises(RunStopped):
        run_experiment(SWEEP, sweep, out, mesh=mesh, stop=stop)
    other = "vmapped" if expected.layout == "sequential" else "sequential"
    flipped = L.Measured(1, 2, 100, 60, vmapped=float(other == "vmapped"), sequential=0.5)
    with monkeypatch.context() as m:
        m.setitem(L.MEASURED, "cpu", (flipped,))
        with pytest.raises(CheckpointError, match="training layout"):
            run_experiment(SWEEP, sweep, out, resume=True, mesh=mesh)
    run = run_experiment(SWEEP, sweep, out, resume=True, mesh=mesh)
    timing = json.loads((out / "timing.json").read_text())
    assert timing["layout"] == {
        "setting": "auto",
        "platform": "cpu",
        "programs": [expected.to_dict()],
    }
    report = (out / "report.md").read_text()
    kind = "vmapped programs" if expected.layout == "vmapped" else "sequential programs"
    assert f"trained as 1 group(s) of {kind}" in report
    assert f"Layout: {L.describe(expected.to_dict())}." in report
    assert all(r["steps"] == [10, 20] for r in run.metrics["runs"])


def test_resume_over_several_processes_is_refused(tmp_path, monkeypatch):
    """Under jax.distributed only process 0 writes, on its own disk: such a sweep keeps no
    checkpoints, and --resume says so before it reads anything."""
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    sweep = load_sweep(_write(tmp_path, TINY_SWEEP))
    with pytest.raises(ConfigError) as refused:
        prepare_experiment(SWEEP, sweep, tmp_path / "out", resume=True, mesh=run_mesh())
    assert str(refused.value).startswith(
        "--resume: a run over 2 processes (--num-processes) keeps no checkpoints"
    )
    assert not (tmp_path / "out").exists()


SMALL_SWEEP = """\
preset = "seed"
steps = 30
eval_every = 10
hist_examples = 2
seeds = [0, 1, 2]
[grid]
lr = [0.001, 0.003, 0.01]
"""


# XLA:CPU compiles each device's program for the runs that device holds (9 here on one device,
# 5 on each of two), and its fusion of the per-run reductions (the batch mean of the loss, BN's
# moments) depends on that shape: float32 sums then round differently, by about one ulp
# (measured: at most 2.4e-7 in a loss, 2.2e-6 in a percentile near 1.2, no different test
# prediction at these learning rates).
# Every run's own numbers stay independent of the others'; a chaotic learning rate (0.1 without
# BN) amplifies the ulp over the steps, so this compares stable ones.
RTOL, ATOL, ACCURACY_ATOL = 1e-5, 5e-6, 1e-4  # 1e-4: one test image of 10,000


def _assert_same_runs(one: dict, two: dict) -> None:
    assert len(one["runs"]) == len(two["runs"])
    for a, b in zip(one["runs"], two["runs"], strict=True):
        for key in ("variant", "seed", "lr", "cell", "steps", "diverged_at", "percentile_unit"):
            assert a[key] == b[key]
        for key in ("test_loss", "train_loss", "population_test_loss"):
            np.testing.assert_allclose(a.get(key, 0), b.get(key, 0), rtol=RTOL, atol=ATOL)
        for q in a["percentiles"]:
            np.testing.assert_allclose(
                a["percentiles"][q], b["percentiles"][q], rtol=RTOL, atol=ATOL
            )
        for key in ("test_accuracy", "population_test_accuracy"):
            np.testing.assert_allclose(a.get(key, 0), b.get(key, 0), rtol=0, atol=ACCURACY_ATOL)


def _cli(args: list[str], devices: int) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    }
    return subprocess.run(
        [sys.executable, "-m", "bnlab", "sweep", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> Path:
    """The small sweep on one CPU device, through the CLI in its own process."""
    tmp = tmp_path_factory.mktemp("one_device")
    config = _write(tmp, SMALL_SWEEP)
    done = _cli([str(config), "--out", str(tmp / "out"), "--devices", "1"], 1)
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp / "out"


@pytest.mark.slow
def test_two_devices_give_the_results_of_one_and_the_run_directory(tmp_path, one_device):
    """9 runs per variant: padded to 10 on two devices. Both processes through the CLI."""
    config = _write(tmp_path, SMALL_SWEEP)
    out = tmp_path / "out"
    done = _cli([str(config), "--out", str(out), "--devices", "2"], 2)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((one_device / "timing.json").read_text())["devices"] == 1
    assert json.loads((out / "timing.json").read_text())["devices"] == 2
    one, two = (json.loads((d / "metrics.json").read_text()) for d in (one_device, out))
    _assert_same_runs(one, two)
    runs = two["runs"]
    assert len(runs) == 18 and [r["seed"] for r in runs[:3]] == [0, 1, 2]
    assert [(r["variant"], r["lr"]) for r in runs[::3]] == [
        ("baseline", 0.001),
        ("bn", 0.001),
        ("baseline", 0.003),
        ("bn", 0.003),
        ("baseline", 0.01),
        ("bn", 0.01),
    ]
    assert all(r["steps"] == [10, 20, 30] for r in runs)
    report = (out / "report.md").read_text()
    assert "| lr | network | runs | final test accuracy (mean ± std) | diverged |" in report
    names = sorted(p.name for p in (out / "tensorboard").iterdir() if p.is_dir())
    assert len(names) == 18 and names[0] == "baseline-lr0.001-seed0"
    assert (out / "sweep.png").stat().st_size > 0
    assert "Final test accuracy per grid cell" in done.stdout
    # the whole sweep is in config.json; there is no sweep.json any more
    saved = json.loads((out / "config.json").read_text())
    assert saved == {"experiment": "sweep", **load_sweep(config).to_dict()}
    assert not (out / "sweep.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_results_of_one_and_only_process_0_writes(tmp_path, one_device):
    """jax.distributed on one machine: two processes of one CPU device each, one mesh of two."""
    config = _write(tmp_path, SMALL_SWEEP)
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bnlab",
                "sweep",
                str(config),
                "--out",
                str(tmp_path / f"out{i}"),
                "--coordinator",
                f"localhost:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            env={
                **os.environ,
                "PYTHONPATH": SRC,
                "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert not (tmp_path / "out1").exists()
    assert not (tmp_path / "out0" / "training_state").exists()  # nothing a resume could use
    timing = json.loads((tmp_path / "out0" / "timing.json").read_text())
    assert (timing["processes"], timing["devices"]) == (2, 2)
    one, two = (
        json.loads((d / "metrics.json").read_text()) for d in (one_device, tmp_path / "out0")
    )
    _assert_same_runs(one, two)
    assert "Final test accuracy per grid cell" in outputs[0][0]
    assert "Final test accuracy" not in outputs[1][0]


@pytest.mark.slow
def test_cli_bad_sweep_file_exits_2_with_one_line(tmp_path):
    config = _write(tmp_path, "[grid]\nlr = []\n")
    done = _cli([str(config), "--out", str(tmp_path / "out")], 1)
    assert done.returncode == 2
    assert (
        done.stderr
        == f"bnlab: error: {config}: grid.lr: expected at least one value, got an empty list\n"
    )
    assert not (tmp_path / "out").exists()


CONV_SWEEP = """\
preset = "convnet"
conv = ["conv:2:3:2", "maxpool:2"]
hidden = [8]
steps = 6
eval_every = 3
hist_examples = 2
seeds = [0]
layout = "{layout}"
[grid]
lr = [0.001, 0.01]
"""


def test_a_sweep_trains_convnets_in_either_layout(tmp_path):
    """Regression: a convolution's gradient under shard_map (the sweep's mesh), where the shared
    images do not vary over the devices while the runs do. Both layouts train the same runs to
    the same numbers within the layouts' tolerance."""
    finals = {}
    for layout in ("vmapped", "sequential"):
        (tmp_path / layout).mkdir()
        sweep = load_sweep(_write(tmp_path / layout, CONV_SWEEP.format(layout=layout)))
        out = tmp_path / layout / "out"
        run = run_experiment(SWEEP, sweep, out, mesh=run_mesh(jax.devices()[:1]))
        finals[layout] = [(r["variant"], r["lr"], r["test_loss"]) for r in run.metrics["runs"]]
    assert [(v, lr) for v, lr, _ in finals["sequential"]] == [
        ("baseline", 0.001),
        ("bn", 0.001),
        ("baseline", 0.01),
        ("bn", 0.01),
    ]
    for (_, _, a), (_, _, b) in zip(finals["vmapped"], finals["sequential"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=5e-6)
