"""`bnlab report DIR...` on hand-made run directories (no training), and on a tiny real sweep."""

from __future__ import annotations

import json

import numpy as np
import pytest
from merge_fixtures import (
    SWEEP_FILE,
    figure1_config,
    hand_made_sweep,
    reproduce_metrics,
    write_run,
)
from typer.testing import CliRunner

from bnlab.cli import app
from bnlab.data import DataError
from bnlab.errors import BnlabError, ConfigError
from bnlab.experiments import PAPER, SWEEP, parse_sweep, run_experiment
from bnlab.experiments.merge import merged_report


def test_merges_a_reproduction_and_an_analysis(tmp_path, dirs):
    text = merged_report(list(dirs), tmp_path / "merged.md")
    lines = text.splitlines()
    assert lines[0] == "# bnlab report: 2 run directories"
    # each run is named by config.json's "experiment" (and the reproduction's preset)
    assert f"## 1. `{dirs[0]}` (figure1 (paper))" in lines
    assert f"## 2. `{dirs[1]}` (ics)" in lines
    # each run's own report, its title two levels down
    assert any(line.startswith("### bnlab: Figure 1 of Ioffe & Szegedy (2015)") for line in lines)
    assert any(line.startswith("### bnlab analyze ics:") for line in lines)
    # an analysis links each of its figures by stem
    assert "![ics](runs/ics/ics.png)" in text
    assert "](runs/paper/figure1.png)" in text


def test_overview_has_every_network_with_its_final_accuracy(tmp_path, dirs):
    text = merged_report(list(dirs), tmp_path / "merged.md")
    rows = [line for line in text.splitlines() if line.startswith(("| 1 | `", "| 2 | `"))]
    # reproduce fixture: baseline seeds end at 0.92 and 0.94, BN at 0.97 and 0.99
    assert rows[0].endswith("| without BN | 2 | 20,000 | 0.9300 | 0 |")
    assert rows[1].endswith("| with BN | 2 | 20,000 | 0.9800 | 0 |")
    assert rows[2].endswith("| without BN | 2 | 300 | 0.9000 | 0 |")
    assert len(rows) == 4


def test_a_directory_without_metrics_is_refused(tmp_path, dirs):
    (dirs[1] / "metrics.json").unlink()
    with pytest.raises(DataError, match=r"metrics.json: file not found"):
        merged_report(list(dirs), tmp_path / "merged.md")


def test_no_directory_is_refused(tmp_path):
    with pytest.raises(DataError, match="expected at least one run directory"):
        merged_report([], tmp_path / "merged.md")


@pytest.mark.parametrize(
    ("config", "found"),
    [
        # a run directory of an older bnlab: the flat config without "experiment"
        (PAPER.to_dict(), "None"),
        ({"experiment": "reproduce", **PAPER.to_dict()}, "'reproduce'"),
        ({"experiment": ["figure1"], **PAPER.to_dict()}, r"\['figure1'\]"),
    ],
)
def test_a_config_without_a_known_experiment_is_refused_in_one_line(tmp_path, config, found):
    old = write_run(tmp_path / "runs" / "old", config, reproduce_metrics())
    with pytest.raises(ConfigError) as info:
        merged_report([old], tmp_path / "merged.md")
    message = str(info.value)
    assert isinstance(info.value, BnlabError)  # the CLI prints it on one line and exits 2
    assert "\n" not in message
    assert message.startswith(f'{old / "config.json"}: expected "experiment": one of figure1, ')
    assert message.endswith(f"got {found}".replace("\\", ""))


def test_report_without_out_writes_a_fresh_file_each_time(tmp_path, dirs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(app, ["report", str(dirs[0]), str(dirs[1])])
    assert first.exit_code == 0, first.output
    (written,) = tmp_path.glob("report-*.md")
    before = written.read_text()
    # a second report with no --out needs no --overwrite: it writes a second, different file
    second = runner.invoke(app, ["report", str(dirs[0]), str(dirs[1])])
    assert second.exit_code == 0, second.output
    found = sorted(tmp_path.glob("report-*.md"))
    assert len(found) == 2 and written in found
    (new,) = (p for p in found if p != written)
    assert f"wrote {written.name}" in first.output and f"wrote {new.name}" in second.output
    assert written.read_text() == before  # the first is left as it was
    assert new.read_text().startswith("# bnlab report: 2 run directories")


# --- a sweep beside a reproduction -------------------------------------------------------------


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """A tiny real sweep (2 learning rates x 2 networks x 2 seeds, 20 steps), trained once."""
    from bnlab.engine.devices import default_mesh

    directory = tmp_path_factory.mktemp("real") / "runs" / "sweep"
    sweep = parse_sweep(SWEEP_FILE, "t.toml")
    run_experiment(SWEEP, sweep, directory, mesh=default_mesh())
    return directory


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.slow), "hand-made"])
def sweep_dir(request, tmp_path):
    if request.param == "real":
        return request.getfixturevalue("real_sweep")
    return hand_made_sweep(tmp_path / "runs" / "sweep")


def _cell_means(directory):
    """(lr, variant) -> mean over seeds of the final test accuracy, from metrics.json."""
    finals = {}
    for run in json.loads((directory / "metrics.json").read_text())["runs"]:
        key = (run["cell"]["lr"], run["variant"])
        finals.setdefault(key, []).append(run["test_accuracy"][-1])
    assert all(len(v) == 2 for v in finals.values())
    return {k: float(np.mean(v)) for k, v in finals.items()}


def test_sweep_beside_a_reproduction_keeps_its_cells(sweep_dir):
    base = sweep_dir.parent.parent
    reproduction = write_run(base / "runs" / "paper", figure1_config(), reproduce_metrics())
    text = merged_report([reproduction, sweep_dir], base / "merged.md")
    lines = text.splitlines()
    assert f"## 2. `{sweep_dir}` (sweep (sweep-t))" in lines
    assert "### bnlab sweep: `t.toml`, preset `seed`" in lines

    labels = {"baseline": "without BN", "bn": "with BN"}
    means = _cell_means(sweep_dir)
    # the overview: one row per cell and network, each of its 2 seeds, not one per network
    overview = [line for line in lines if line.startswith("| 2 | `")]
    assert len(overview) == 4
    for row, ((lr, variant), mean) in zip(overview, means.items(), strict=True):
        assert row.endswith(f"| {labels[variant]}, lr={lr:g} | 2 | 20 | {mean:.4f} | 0 |"), row

    # the sweep's own per-cell table: a row per cell and network
    table = [line for line in lines if line.startswith(("| 0.001 | ", "| 0.003 | "))]
    assert len(table) == 4
    for row, ((lr, variant), mean) in zip(table, means.items(), strict=True):
        assert row.startswith(f"| {lr:g} | {labels[variant]} | 2 | {mean:.4f} ± "), row
        assert row.endswith("| 0 of 2 |")
    # no row averages the two learning rates into one
    for variant in labels:
        pooled = np.mean([m for (_, v), m in means.items() if v == variant])
        assert not any(f"| {labels[variant]} | 4 |" in line for line in lines)
        assert not any(
            line.endswith(f"| {labels[variant]} | 4 | 20 | {pooled:.4f} | 0 |") for line in lines
        )

    # the sweep links its own figure, never Figure 1's; the reproduction links Figure 1
    rel = f"runs/{sweep_dir.name}"
    assert f"![Final test accuracy per grid cell]({rel}/sweep.png)" in text
    assert f"]({rel}/figure1.png)" not in text
    assert f"](runs/{reproduction.name}/figure1.png)" in text
    section = text.split(f"## 2. `{sweep_dir}`", 1)[1]
    assert "figure1.png" not in section
