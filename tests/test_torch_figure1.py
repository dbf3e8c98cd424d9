"""bnlab.torch.Figure1Recorder: its default layers, records against a hand computation, that it
leaves the module as it was, its steps, accuracy, TensorBoard logs, figures and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import tensorboard_read as tb
from torch import nn

from bnlab.errors import ConfigError
from bnlab.torch import Figure1Recorder, figure1

PCTS = ("15", "50", "85")


def data(n: int = 200, features: int = 20, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(n, features), torch.randint(0, classes, (n,))


def bn_net() -> nn.Sequential:
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Linear(20, 8), nn.BatchNorm1d(8), nn.Sigmoid(),
        nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Sigmoid(),
        nn.Linear(8, 3),
    )  # fmt: skip
    with torch.no_grad():  # running statistics away from (0, 1), so eval mode matters
        for i in (1, 4):
            net[i].running_mean.uniform_(-0.5, 0.5)
            net[i].running_var.uniform_(0.5, 2.0)
    return net


def plain_net() -> nn.Sequential:
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Linear(20, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 3)
    )


def percentiles_at(rec: Figure1Recorder, tap: str, i: int) -> np.ndarray:
    return np.array([rec.log.taps[tap].percentiles[q][i] for q in PCTS])


def test_default_taps_are_the_activations_after_bn_else_the_last_one():
    x, _ = data()
    assert Figure1Recorder(bn_net(), x).layers == ["2", "5"]
    assert Figure1Recorder(plain_net(), x).layers == ["3"]
    with pytest.raises(ConfigError, match="layers: expected an activation module"):
        Figure1Recorder(nn.Sequential(nn.Linear(20, 3)), x)


def test_step_zero_percentiles_match_a_hand_computation():
    x, _ = data()
    net = bn_net()
    rec = Figure1Recorder(net, x, batch_size=64)
    net.eval()
    with torch.no_grad():
        first = net[1](net[0](x))
        second = net[4](net[3](net[2](first)))
    for tap, values in (("2", first), ("5", second)):
        values = values.numpy()
        unit = rec.log.taps[tap].unit
        medians = np.median(values, axis=0)
        assert unit == int(np.argsort(medians, kind="stable")[(values.shape[1] - 1) // 2])
        expected = np.percentile(values[:, unit], [15, 50, 85])
        np.testing.assert_allclose(percentiles_at(rec, tap, 0), expected, rtol=0, atol=1e-6)


def test_conv_percentiles_are_over_every_position_of_a_channel():
    torch.manual_seed(3)
    x = torch.randn(10, 2, 6, 6)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    rec = Figure1Recorder(net, x, batch_size=4)
    assert rec.layers == ["2"]
    with torch.no_grad():
        values = net.eval()[1](net[0](x)).numpy()  # (10, 4, 4, 4)
    by_channel = np.moveaxis(values, 1, -1).reshape(-1, 4)
    assert by_channel.shape == (10 * 4 * 4, 4)
    unit = rec.log.taps["2"].unit
    expected = np.percentile(by_channel[:, unit], [15, 50, 85])
    np.testing.assert_allclose(percentiles_at(rec, "2", 0), expected, rtol=0, atol=1e-6)


def test_recording_leaves_the_module_unchanged():
    x, y = data()
    net = bn_net().train()
    net[3].eval()  # a submodule in eval mode stays so
    flags = [m.training for m in net.modules()]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rec = Figure1Recorder(net, validation_data=(x, y), every_n_steps=1)
    rec.after_step()  # every_n_steps=1: a second record
    assert rec.log.steps == [0, 1]
    assert [m.training for m in net.modules()] == flags
    after = net.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k


def test_after_step_records_every_n_steps_and_close_the_last():
    x, y = data()
    net = bn_net()
    rec = Figure1Recorder(net, x, every_n_steps=3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(8):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        rec.after_step()
    assert rec.log.steps == [0, 3, 6]
    rec.close()
    assert rec.log.steps == [0, 3, 6, 8]
    assert net.training
    first = percentiles_at(rec, "5", 0)
    assert not np.allclose(percentiles_at(rec, "5", -1), first)  # training moved them
    rec.close()
    assert rec.log.steps == [0, 3, 6, 8]


def test_validation_accuracy_matches_a_hand_computation():
    x, y = data()
    net = bn_net()
    with torch.no_grad():
        expected = float((net.eval()(x).argmax(-1) == y).double().mean())
    net.train()
    onehot = nn.functional.one_hot(y, 3)
    assert Figure1Recorder(net, validation_data=(x, y)).log.accuracy == [expected]
    assert Figure1Recorder(net, validation_data=(x, onehot)).log.accuracy == [expected]
    other = Figure1Recorder(net, x[:50], validation_data=(x, y.numpy()), batch_size=32)
    assert other.log.accuracy == [pytest.approx(expected, abs=1e-12)]
    assert 0 < expected < 1


def test_tensorboard_logs_have_percentiles_and_histograms(tmp_path):
    x, y = data()
    rec = Figure1Recorder(bn_net(), validation_data=(x, y), every_n_steps=2, log_dir=tmp_path)
    for _ in range(4):
        rec.after_step()
    rec.close()
    acc = tb.read(tmp_path)
    scalars = tb.tags(acc, "scalars")
    for layer in ("2", "5"):
        for q in PCTS:
            assert f"{layer}/p{q}" in scalars
        assert tb.steps(acc, f"{layer}/p50") == [0, 2, 4]
        assert tb.steps(acc, f"{layer}/input") == [0, 2, 4]
        assert f"{layer}/input" in tb.tags(acc, "histograms")
        assert f"{layer}/output" in tb.tags(acc, "histograms")
    got = [v for _, v in tb.scalars(acc, "5/p50")]
    assert got == pytest.approx(rec.log.taps["5"].percentiles["50"], abs=1e-6)
    assert "accuracy/validation" in scalars


def test_figure1_of_two_recorders(tmp_path):
    x, y = data()
    recs = [
        Figure1Recorder(net, validation_data=(x, y), name=name)
        for name, net in (("bn", bn_net()), ("plain", plain_net()))
    ]
    for rec in recs:
        rec.close()
    paths = figure1(recs, tmp_path)
    assert sorted(p.name for p in paths) == ["figure1.json", "figure1.png", "figure1.svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    runs = json.loads((tmp_path / "figure1.json").read_text())["runs"]
    variants = {run["variant"] for run in runs}
    assert variants == {"bn", "bn: 2", "bn: 5", "plain", "plain: 3"}
    own = recs[0].figure(tmp_path / "own")
    assert sorted(p.name for p in own) == ["figure1.json", "figure1.png", "figure1.svg"]


def test_bad_options_are_config_errors():
    x, _ = data()
    with pytest.raises(ConfigError, match=r"layers: expected names .* got 'nope'; .*'0', '1'"):
        Figure1Recorder(bn_net(), x, layers=["nope"])
    with pytest.raises(ConfigError, match="every_n_steps: expected a positive integer, got 0"):
        Figure1Recorder(bn_net(), x, every_n_steps=0)
    with pytest.raises(ConfigError, match="batch_size: expected a positive integer, got True"):
        Figure1Recorder(bn_net(), x, batch_size=True)
    with pytest.raises(ConfigError, match="probe: expected probe inputs or validation_data"):
        Figure1Recorder(bn_net())
