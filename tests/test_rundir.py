import json

import pytest
from outputs_fixtures import diverged_metrics

from bnlab.data import DataError
from bnlab.files import atomic_write_json
from bnlab.outputs.rundir import load_run_dir

CONFIG = {"experiment": "figure1", "preset": "seed"}


def _write(tmp_path, metrics=None, config=None):
    atomic_write_json(tmp_path / "config.json", CONFIG if config is None else config)
    if metrics is not None:
        (tmp_path / "metrics.json").write_text(
            metrics if isinstance(metrics, str) else json.dumps(metrics)
        )
    return tmp_path


def test_loads_config_and_metrics(tmp_path):
    run = load_run_dir(_write(tmp_path, diverged_metrics()))
    assert run.path == tmp_path
    assert run.config == CONFIG
    assert run.metrics == diverged_metrics()
    assert run.timing == {}


def test_timing_is_read_when_present(tmp_path):
    _write(tmp_path, diverged_metrics())
    atomic_write_json(tmp_path / "timing.json", {"train_s": 12.5, "devices": 2})
    assert load_run_dir(tmp_path).timing == {"train_s": 12.5, "devices": 2}


def test_malformed_timing_is_named(tmp_path):
    _write(tmp_path, diverged_metrics())
    (tmp_path / "timing.json").write_text("[1]")
    with pytest.raises(DataError, match=r"timing\.json: expected a JSON object, found list"):
        load_run_dir(tmp_path)


def _broken(**change):
    m = diverged_metrics()
    m["runs"][0].update(change)
    return m


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (None, r"metrics\.json: file not found"),
        ("{", r"metrics\.json: not valid JSON"),
        ('{"runs": [{"test_accuracy": NaN}]}', r"metrics\.json: not valid JSON \(NaN is not"),
        ("[]", r"metrics\.json: expected a JSON object, found list"),
        ({"runs": []}, r'expected a non-empty list "runs"'),
        ({"runs": [{"variant": "bn", "seed": 0}]}, r'runs\[0\]: missing key "steps"'),
        (_broken(seed="0"), r"runs\[0\]\.seed: expected an integer, found '0'"),
        (_broken(steps=[2, 1]), r"runs\[0\]\.steps: expected strictly increasing steps"),
        (
            _broken(test_accuracy=[0.5]),
            r"runs\[0\]\.test_accuracy: expected a list of 2 values \(one per step\), 1 values",
        ),
        (
            _broken(percentiles={"50": [0.1, "x"]}),
            r"runs\[0\]\.percentiles\.50\[1\]: expected a finite number or null, found 'x'",
        ),
        (_broken(diverged_at="soon"), r"runs\[0\]\.diverged_at: expected null or a step"),
    ],
)
def test_bad_metrics_raise_data_error_naming_the_file(tmp_path, metrics, message):
    _write(tmp_path, metrics)
    with pytest.raises(DataError, match=message) as info:
        load_run_dir(tmp_path)
    assert str(info.value).startswith(str(tmp_path / "metrics.json"))


def test_missing_config_is_named(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(diverged_metrics()))
    with pytest.raises(DataError, match=r"config\.json: file not found"):
        load_run_dir(tmp_path)


def test_not_a_directory(tmp_path):
    with pytest.raises(
        DataError, match=r"nope: not a directory \(expected a bnlab run directory\)"
    ):
        load_run_dir(tmp_path / "nope")
