"""`bnlab report DIR...` on hand-made run directories (no training)."""

from __future__ import annotations

import json

import pytest
from analysis_fixtures import ics_metrics
from outputs_fixtures import metrics as reproduce_metrics

from bnlab.data import DataError
from bnlab.experiments.analyses import default_config
from bnlab.experiments.merge import merged_report
from bnlab.experiments.presets import PAPER


def write_run(directory, config, metrics):
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory


@pytest.fixture
def dirs(tmp_path):
    reproduce = write_run(tmp_path / "runs" / "paper", PAPER.to_dict(), reproduce_metrics())
    ics = write_run(tmp_path / "runs" / "ics", default_config("ics").to_dict(), ics_metrics())
    return reproduce, ics


def test_merges_a_reproduction_and_an_analysis(tmp_path, dirs):
    text = merged_report(list(dirs), tmp_path / "merged.md")
    lines = text.splitlines()
    assert lines[0] == "# bnlab report: 2 run directories"
    assert f"## 1. `{dirs[0]}` (reproduce (paper))" in lines
    assert f"## 2. `{dirs[1]}` (analyze ics)" in lines
    # each run's own report, its title two levels down
    assert any(line.startswith("### bnlab: Figure 1 of Ioffe & Szegedy (2015)") for line in lines)
    assert any(line.startswith("### bnlab analyze ics:") for line in lines)
    assert "![ICS per layer](runs/ics/ics.png)" in text
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
