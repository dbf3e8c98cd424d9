"""A real TensorBoard server (``tensorboard --logdir``, its fast loader as users get it) on a
sweep's logs, read through its HTTP data API: runs, tag descriptions, scalars equal to
metrics.json, histograms, and the HParams dashboard's sessions compared by their curves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from bnlab.experiments import SWEEP, load_sweep, run_experiment

SWEEP_FILE = """
preset = "seed"
steps = 40
eval_every = 20
hidden = [16]
seeds = [0]
[grid]
lr = [0.001, 0.01]
"""
RUNS = ["baseline-lr0.001-seed0", "baseline-lr0.01-seed0", "bn-lr0.001-seed0", "bn-lr0.01-seed0"]


def _get(base: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The sweep's run directory and the base URL of a TensorBoard serving its logs."""
    tmp = tmp_path_factory.mktemp("tb")
    (tmp / "lr.toml").write_text(SWEEP_FILE)
    out = tmp / "run"
    run_experiment(SWEEP, load_sweep(tmp / "lr.toml"), out)
    tensorboard = shutil.which("tensorboard")
    assert tensorboard, "tensorboard is a dependency of bnlab"
    child = subprocess.Popen(
        [tensorboard, "--logdir", str(out / "tensorboard"), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = None
        deadline = time.monotonic() + 120
        for line in child.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if found:
                base = found.group(1)
                break
            assert time.monotonic() < deadline, "TensorBoard did not start"
        assert base, "TensorBoard exited before it served"
        # the loader reads the files after the server starts: wait for every run's sessions
        while len(_sessions(base)) < len(RUNS):
            assert time.monotonic() < deadline, "TensorBoard did not load the runs"
            time.sleep(0.5)
        yield out, base
    finally:
        child.kill()
        child.wait()


def _sessions(base: str) -> list[dict]:
    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [{"hparam": "network"}, {"hparam": "lr"}],
        "startIndex": 0,
        "sliceSize": 100,
    }
    groups = _get(base, "/data/plugin/hparams/session_groups", request).get("sessionGroups", [])
    return [s for g in groups for s in g["sessions"]]


def _metrics(out: Path) -> dict[str, dict]:
    metrics = json.loads((out / "metrics.json").read_text())
    return {f"{r['variant']}-lr{r['lr']:g}-seed{r['seed']}": r for r in metrics["runs"]}


def test_every_run_is_served(server):
    _, base = server
    assert sorted(_get(base, "/data/runs")) == [".", *RUNS]


def test_every_tag_has_its_description(server):
    _, base = server
    for plugin in ("scalars", "histograms"):
        served = _get(base, f"/data/plugin/{plugin}/tags")
        for run in RUNS:
            for tag, info in served[run].items():
                assert len(info["description"]) > 40, (plugin, run, tag)
    scalars = _get(base, "/data/plugin/scalars/tags")["bn-lr0.01-seed0"]
    assert "running averages" in scalars["accuracy/test"]["description"]


@pytest.mark.parametrize(
    ("tag", "key"),
    [("accuracy/test", "test_accuracy"), ("accuracy/train", "train_accuracy")],
)
def test_served_curves_equal_metrics_json(server, tag, key):
    out, base = server
    for name, run in _metrics(out).items():
        points = _get(base, f"/data/plugin/scalars/scalars?run={name}&tag={tag}")
        assert [step for _, step, _ in points] == run["steps"] == [20, 40]
        assert [value for _, _, value in points] == pytest.approx(run[key], rel=1e-7)


def test_learning_rate_is_each_runs_own(server):
    _, base = server
    for name in RUNS:
        points = _get(base, f"/data/plugin/scalars/scalars?run={name}&tag=optimizer/learning_rate")
        lr = float(name.split("-lr")[1].split("-")[0])
        assert [v for _, _, v in points] == pytest.approx([lr, lr], rel=1e-7)


@pytest.mark.parametrize(
    ("run", "tag", "count"),
    [
        ("bn-lr0.01-seed0", "layer1/kernel", 784 * 16),
        ("bn-lr0.01-seed0", "layer1/moving_variance", 16),
        ("bn-lr0.01-seed0", "layer1/gamma", 16),
        ("baseline-lr0.001-seed0", "output/logits", 10_000 * 10),
        ("baseline-lr0.001-seed0", "layer1/sigmoid_input", 20 * 16),
    ],
)
def test_histograms_hold_every_value(server, run, tag, count):
    _, base = server
    served = _get(base, f"/data/plugin/histograms/histograms?run={run}&tag={tag}")
    assert [step for _, step, _ in served] == [20, 40]
    for _, _, buckets in served:
        assert sum(c for _, _, c in buckets) == count
        assert all(left <= right for left, right, _ in buckets)


def test_hparams_dashboard_compares_the_grid(server):
    out, base = server
    experiment = _get(base, "/data/plugin/hparams/experiment", {"experimentName": ""})
    infos = {i["name"]: i.get("domainDiscrete") for i in experiment["hparamInfos"]}
    assert infos == {"network": ["without BN", "with BN"], "lr": [0.001, 0.01], "seed": [0.0]}
    metric_tags = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert metric_tags == ["accuracy/test", "accuracy/train", "loss/test", "loss/train"]
    metrics = _metrics(out)
    sessions = {s["name"]: s for s in _sessions(base)}
    assert sorted(sessions) == RUNS
    for name, session in sessions.items():
        values = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
        assert values["accuracy/test"] == pytest.approx(metrics[name]["test_accuracy"][-1])
        assert values["loss/train"] == pytest.approx(metrics[name]["train_loss"][-1])
        assert session["status"] == "STATUS_SUCCESS"
