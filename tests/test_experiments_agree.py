"""Every experiment's outputs agree with the metrics they came from (issue 9): each network in
metrics.json is in every figure's legend with its own colour and in the report, and the numbers the
report prints for a network are the ones computed here, independently, from metrics.json."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bnlab.engine.devices import default_mesh
from bnlab.experiments import EXPERIMENTS, FIGURE1, SWEEP, parse_sweep, preset, run_experiment
from bnlab.experiments.santurkar import Analysis

TINY = {"steps": 20, "eval_every": 10, "seeds": 2}


def tiny_config(experiment):
    if experiment is FIGURE1:
        return preset("paper").replace(**TINY)
    if experiment is SWEEP:
        data = {"preset": "seed", "steps": 20, "eval_every": 10, "seeds": [0, 1]}
        return parse_sweep({**data, "grid": {"lr": [0.001, 0.003]}}, "tiny.toml")
    assert isinstance(experiment, Analysis)
    return experiment.default_config(**TINY)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every registered experiment, run once at a tiny size."""
    out = {}
    for name, experiment in EXPERIMENTS.items():
        directory = tmp_path_factory.mktemp(name)
        mesh = default_mesh() if experiment.shards_runs else None
        out[name] = run_experiment(experiment, tiny_config(experiment), directory, mesh=mesh)
    return out


NAMES = list(EXPERIMENTS)


def legends(svg: str) -> list[tuple[list[str], list[str]]]:
    """(texts, line colours) of each legend in a matplotlib SVG (text is kept as comments)."""
    chunks = re.split(r'<g id="legend_\d+">', svg)[1:]
    out = []
    for chunk in chunks:
        chunk = chunk.split('<g id="axes_', 1)[0]
        texts = re.findall(r"<!-- (.*?) -->", chunk)
        colours = re.findall(r"stroke: (#[0-9a-f]{6})", chunk)
        out.append((texts, colours))
    return out


def _shows(text: str, label: str) -> bool:
    return text == label or text.startswith(label + " (")


@pytest.mark.parametrize("name", NAMES)
def test_every_network_is_in_every_figure_legend_with_its_own_colour(runs, name):
    run = runs[name]
    labels = run.experiment.labels(run.config)
    variants = {r["variant"] for r in run.metrics["runs"]}
    assert variants == set(labels)
    svgs = sorted(run.out_dir.glob("*.svg"))
    assert [p.stem for p in svgs] == sorted(run.experiment.figure_stems)
    for path in svgs:
        found = legends(path.read_text())
        network_legends = [
            (texts, colours)
            for texts, colours in found
            if any(_shows(t, label) for t in texts for label in labels.values())
        ]
        assert network_legends, f"{path.name}: no legend names the networks"
        for texts, colours in network_legends:
            shown = [label for label in labels.values() if any(_shows(t, label) for t in texts)]
            assert shown == list(labels.values()), f"{path.name}: legend shows {shown}"
            network_colours = [c for c in colours if c not in ("#000000", "#cccccc", "#ffffff")]
            assert len(set(network_colours)) >= len(labels), f"{path.name}: {network_colours}"


def _independent_mean_std(values: list) -> str:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if v.size == 1:
        return f"{v[0]:.4f}"
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


def _table_row(report: str, first_cell: str, header_has: list[str]) -> list[str]:
    """The cells of the row starting with ``first_cell`` in the first table whose header has
    every string of ``header_has``."""
    for table in re.findall(r"(?:^\|.*\|\n)+", report, flags=re.MULTILINE):
        lines = table.strip().splitlines()
        if not all(h in lines[0] for h in header_has):
            continue
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == first_cell:
                return cells
    raise AssertionError(f"no row {first_cell!r} in a table with {header_has}")


@pytest.mark.parametrize("name", [n for n in NAMES if n != SWEEP.name])
def test_report_accuracy_table_prints_the_metrics_means(runs, name):
    run = runs[name]
    labels = run.experiment.labels(run.config)
    report = (run.out_dir / "report.md").read_text()
    metrics = json.loads((run.out_dir / "metrics.json").read_text())
    last = max(s for r in metrics["runs"] for s in r["steps"])
    cells = _table_row(report, f"{last:,}", ["steps", *labels.values()])
    for cell, variant in zip(cells[1:], labels, strict=True):
        runs_of = [r for r in metrics["runs"] if r["variant"] == variant]
        expected = _independent_mean_std([r["test_accuracy"][-1] for r in runs_of])
        assert cell == expected, f"{labels[variant]}"


def test_sweep_report_prints_each_cells_mean_from_the_metrics(runs):
    run = runs[SWEEP.name]
    labels = run.experiment.labels(run.config)
    report = (run.out_dir / "report.md").read_text()
    metrics = json.loads((run.out_dir / "metrics.json").read_text())
    for lr in (0.001, 0.003):
        for variant, label in labels.items():
            finals = [
                r["test_accuracy"][-1]
                for r in metrics["runs"]
                if r["variant"] == variant and r["lr"] == lr
            ]
            row = f"| {lr:g} | {label} | 2 | {_independent_mean_std(finals)} | 0 of 2 |"
            assert row in report


@pytest.mark.parametrize("name", NAMES)
def test_report_names_every_network(runs, name):
    run = runs[name]
    report = (run.out_dir / "report.md").read_text()
    for label in run.experiment.labels(run.config).values():
        assert label in report


@pytest.mark.parametrize("name", NAMES)
def test_report_rendered_again_from_the_files_is_the_same(runs, name):
    """`bnlab report` renders a run directory from its files as the run did (timing aside)."""
    from bnlab.experiments.merge import load

    run = runs[name]
    loaded, experiment, config = load(run.out_dir)
    assert experiment is run.experiment
    assert config == run.config
    again = experiment.report(config, loaded.metrics, loaded.timing)
    assert again == (run.out_dir / "report.md").read_text()
