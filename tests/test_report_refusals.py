"""`bnlab report` refuses, in one line with exit 2 and writing nothing, a run directory of
another kind, metrics out of shape, deeply nested JSON, an unfinished run, a bad --out."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from merge_fixtures import (
    figure1_config,
    hand_made_sweep,
    ics_config,
    ics_metrics,
    reproduce_metrics,
    write_run,
)

from bnlab.cli import main
from bnlab.experiments.merge import merged_report
from bnlab.outputs.rundir import STATUS_FILE

# --- refused in one line, exit 2: another kind, out-of-shape metrics, deep JSON, unfinished ---


def report_error(capsys, monkeypatch, tmp_path, directory, out=None):
    """`bnlab report DIRECTORY --out OUT` in this process: it must fail in one line with exit 2,
    writing nothing; its message."""
    out = tmp_path / "merged.md" if out is None else out
    monkeypatch.setattr(sys, "argv", ["bnlab", "report", str(directory), "--out", str(out)])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("bnlab: error: ") and not (tmp_path / "merged.md").exists()
    return stderr.removeprefix("bnlab: error: ").removesuffix("\n")


ICS_AS_LR = {**ics_config(), "experiment": "lr-sweep", "analysis": "lr-sweep"}


@pytest.mark.parametrize(
    ("config", "metrics", "file", "message"),
    [
        *(
            (figure1_config(), {"analysis": a, **reproduce_metrics()}, "metrics", f"got {a!r}")
            for a in ("foo", 5, "ics")
        ),
        (figure1_config(), reproduce_metrics("seed"), "metrics", "\"preset\": expected 'paper'"),
        ({**ics_config(), "experiment": "lr-sweep"}, ics_metrics(), "config", "got 'ics'"),
        (ICS_AS_LR, ics_metrics(), "metrics", "\"analysis\": expected 'lr-sweep' ("),
        (ICS_AS_LR, {**ics_metrics(), "analysis": "lr-sweep"}, "metrics", "runs[0].variant: "),
    ],
)
def test_files_of_another_kind_are_refused(
    tmp_path, capsys, monkeypatch, config, metrics, file, message
):
    run = write_run(tmp_path / "run", config, metrics)
    found = report_error(capsys, monkeypatch, tmp_path, run)
    assert found.startswith(f"{run / file}.json: ") and message in found
    assert '(config.json says "experiment": ' in found or "networks of this" in found


def _changed(run=0, text=None, **change):
    metrics = reproduce_metrics()
    metrics["runs"][run].update(change)
    return json.dumps(metrics) if text is None else json.dumps(metrics).replace("12345.5", text)


ACC, NUM = "expected an accuracy in [0, 1] or null, found", "expected a finite number or null"


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (_changed(test_accuracy=[1e308, 0.9]), f"runs[0].test_accuracy[0]: {ACC} 1e+308"),
        (_changed(test_accuracy=[0.9, -5]), f"runs[0].test_accuracy[1]: {ACC} -5"),
        (_changed(test_accuracy=[0.9, 7]), f"runs[0].test_accuracy[1]: {ACC} 7"),
        (_changed(2, population_test_accuracy=1.5), f"runs[2].population_test_accuracy: {ACC} 1.5"),
        (
            _changed(2, batch_stats_test_accuracy={"1": 2}),
            f"runs[2].batch_stats_test_accuracy.1: {ACC} 2",
        ),
        (_changed(test_loss=[12345.5, 1], text="1e400"), f"runs[0].test_loss[0]: {NUM}, found inf"),
        (_changed(steps=[0, 10]), "runs[0].steps[0]: expected a positive step, found 0"),
        (
            _changed(test_loss=[12345.5, 1], text="1" + "0" * 400),
            f"runs[0].test_loss[0]: {NUM}, found 1{'0' * 59}",
        ),
        (_changed(steps=[1, 2**63]), f"runs[0].steps[1]: expected a positive step, found {2**63}"),
        (_changed(diverged_at=-3), "runs[0].diverged_at: expected null or a step, found -3"),
        (
            _changed(ics={"distance": {"2": [0.1, "x"]}}),
            f"runs[0].ics.distance.2[1]: {NUM}, found 'x'",
        ),
        (_changed(percentiles=[1, 2]), "runs[0].percentiles: expected an object, found list"),
        (
            {"grid": {"lr": [0.1]}, **reproduce_metrics()},
            "runs[0].cell: expected a value for each grid axis (lr), found None",
        ),
        (
            {"runs": [{k: 0 for k in ("variant", "seed", "steps")}]},
            'runs[0]: missing key "test_accuracy"',
        ),
    ],
)
def test_metrics_out_of_shape_are_refused(tmp_path, capsys, monkeypatch, metrics, message):
    run = write_run(tmp_path / "run", figure1_config(), metrics)
    if isinstance(metrics, str):
        (run / "metrics.json").write_text(metrics)
    assert report_error(capsys, monkeypatch, tmp_path, run) == f"{run / 'metrics.json'}: {message}"


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("metrics.json", "[" * 200_000 + "]" * 200_000),
        ("metrics.json", '{"runs": ' + "[" * 40 + "]" * 40 + "}"),
        ("config.json", '{"experiment": ' + '{"a": ' * 200_000 + "1" + "}" * 200_001),
    ],
)
def test_deeply_nested_json_is_refused(tmp_path, capsys, monkeypatch, file, text):
    run = write_run(tmp_path / "run", figure1_config(), reproduce_metrics())
    (run / file).write_text(text)
    found = report_error(capsys, monkeypatch, tmp_path, run)
    assert found == f"{run / file}: nested too deeply (expected at most 32 levels)"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (os.mkfifo, "{run}/metrics.json: not a regular file (a FIFO), expected a JSON file"),
        (Path.mkdir, "{run}/metrics.json: is a directory, expected a JSON file"),
        (None, "x" * 100 + "... (5,000 characters): file name too long"),
    ],
)
def test_what_stands_in_for_a_run_file_is_named(tmp_path, capsys, monkeypatch, make, message):
    run = write_run(tmp_path / "run", figure1_config(), reproduce_metrics())
    (run / "metrics.json").unlink()
    if make is not None:
        make(run / "metrics.json")  # a FIFO is never opened: no hang
    found = report_error(capsys, monkeypatch, tmp_path, run if make else "x" * 5000)
    assert found == message.format(run=run)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"status": "running"}, "{run}: an incomplete run (status.json says 'running'); "),
        ({"status": "failed"}, "{run}: an incomplete run (status.json says 'failed'); resume it"),
        ({}, "{run}: an incomplete run (status.json says None); resume it with --resume or rem"),
        ([1], "{run}/status.json: expected a JSON object, found list"),
        ({"status": "complete"}, None),  # a finished run
        (None, None),  # a run directory of a bnlab from before status.json
    ],
)
def test_an_unfinished_run_is_refused(tmp_path, capsys, monkeypatch, status, message):
    run = write_run(tmp_path / "run", figure1_config(), reproduce_metrics())
    if status is not None:
        (run / STATUS_FILE).write_text(json.dumps(status))
    if message is None:
        assert merged_report([run], tmp_path / "m.md").startswith("# bnlab report: 1 run")
    else:
        assert report_error(capsys, monkeypatch, tmp_path, run).startswith(message.format(run=run))


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        ({"train_s": "x"}, "timing.json: train_s: expected a non-negative number, found 'x'"),
        ({"devices": 0}, "timing.json: devices: expected a positive integer, found 0"),
        ({"machine": [1]}, "timing.json: machine: expected an object, found list"),
        ({"train_s": 1.0}, "run: expected 'compile_s' in its files (the sweep report reads it)"),
    ],
)
def test_timing_out_of_shape_is_refused(tmp_path, capsys, monkeypatch, timing, message):
    run = hand_made_sweep(tmp_path / "run")
    (run / "timing.json").write_text(json.dumps(timing))
    assert report_error(capsys, monkeypatch, tmp_path, run).endswith(message)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("", "--out .: expected a file, got a directory"),
        ("{tmp}", "--out {tmp}: expected a file, got a directory"),
        (
            "{tmp}/file/merged.md",
            "--out {tmp}/file/merged.md: {tmp}/file is a file, expected a directory",
        ),
        ("{tmp}/file", "--out {tmp}/file: file exists; pass --overwrite to replace it"),
    ],
)
def test_an_out_that_is_not_a_new_file_is_refused(
    tmp_path, capsys, monkeypatch, dirs, out, message
):
    (tmp_path / "file").write_text("mine")
    out = out.format(tmp=tmp_path)
    assert report_error(capsys, monkeypatch, tmp_path, dirs[0], out) == message.format(tmp=tmp_path)
    assert (tmp_path / "file").read_text() == "mine"
