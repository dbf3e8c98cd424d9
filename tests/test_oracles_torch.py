"""bnlab.core against torch.nn.BatchNorm1d/2d (CPU, float64). Same conventions (momentum weighs
the new batch, unbiased running variance, momentum=None cumulative); layouts translated NHWC ->
NCHW. Tolerance 1e-12 absolute: both compute in float64, only the order of operations differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle_cases import SHAPE_IDS, SHAPES, assert_close, eval_core, make_case, run_core

EPS = 1e-5
ATOL = 1e-12


def to_torch(x: np.ndarray) -> torch.Tensor:
    """Channels-last NumPy -> channels-first torch (N, C) or (N, C, H, W)."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.permute(0, 3, 1, 2) if t.ndim == 4 else t


def from_torch(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    return (t.permute(0, 2, 3, 1) if t.ndim == 4 else t).numpy()


def torch_layer(case, momentum, **kwargs):
    cls = torch.nn.BatchNorm2d if case.xs.ndim == 5 else torch.nn.BatchNorm1d
    layer = cls(case.gamma.shape[0], eps=EPS, momentum=momentum, dtype=torch.float64, **kwargs)
    if layer.affine:
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(case.gamma))
            layer.bias.copy_(torch.from_numpy(case.beta))
    return layer


def torch_steps(case, layer):
    """Training steps in torch: output, gradients of sum(y * w), running statistics."""
    layer.train()
    steps = []
    for x, w in zip(case.xs, case.ws, strict=True):
        layer.zero_grad()
        xt = to_torch(x).requires_grad_(True)
        y = layer(xt)
        (y * to_torch(w)).sum().backward()
        steps.append(
            {
                "y": from_torch(y),
                "dx": from_torch(xt.grad),
                "dgamma": layer.weight.grad.numpy().copy(),
                "dbeta": layer.bias.grad.numpy().copy(),
                "running_mean": layer.running_mean.numpy().copy(),
                "running_var": layer.running_var.numpy().copy(),
                "count": int(layer.num_batches_tracked),
            }
        )
    return steps


MOMENTA = pytest.mark.parametrize("momentum", [0.1, None], ids=["0.1", "None"])
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)


@SHAPE
@MOMENTA
def test_training_outputs_and_running_stats_match_torch(x64, shape, momentum):
    case = make_case(shape)
    ours = run_core(case, momentum=momentum, eps=EPS)
    theirs = torch_steps(case, torch_layer(case, momentum))
    for o, t in zip(ours, theirs, strict=True):
        assert_close("torch", "y (train)", o.y, t["y"], ATOL)
        assert_close("torch", "running_mean", o.state.running_mean, t["running_mean"], ATOL)
        assert_close("torch", "running_var", o.state.running_var, t["running_var"], ATOL)
        assert int(o.state.num_batches_tracked) == t["count"]


@SHAPE
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_gradients_match_torch(x64, shape, backward):
    case = make_case(shape, seed=1)
    ours = run_core(case, eps=EPS, backward=backward)
    theirs = torch_steps(case, torch_layer(case, 0.1))
    for o, t in zip(ours, theirs, strict=True):
        for name in ("dx", "dgamma", "dbeta"):
            assert_close("torch", name, getattr(o, name), t[name], ATOL)


@SHAPE
@MOMENTA
def test_inference_after_training_matches_torch(x64, shape, momentum):
    case = make_case(shape, seed=2)
    ours = run_core(case, momentum=momentum, eps=EPS)
    layer = torch_layer(case, momentum)
    torch_steps(case, layer)
    layer.eval()
    with torch.no_grad():
        expected = from_torch(layer(to_torch(case.x_test)))
        one = from_torch(layer(to_torch(case.x_test[:1])))
    assert_close("torch", "y (eval)", eval_core(case, ours[-1].state, eps=EPS), expected, ATOL)
    one_ours = eval_core(case._replace(x_test=case.x_test[:1]), ours[-1].state, eps=EPS)
    assert_close("torch", "y (eval, batch of one)", one_ours, one, ATOL)


@SHAPE
def test_untracked_statistics_match_torch_at_inference(x64, shape):
    case = make_case(shape, seed=3)
    layer = torch_layer(case, 0.1, track_running_stats=False).eval()
    with torch.no_grad():
        expected = from_torch(layer(to_torch(case.x_test)))
    ours = eval_core(case, None, eps=EPS, track_running_stats=False)
    assert_close("torch", "y (eval, track_running_stats=False)", ours, expected, ATOL)


def test_one_value_per_channel_raises_in_both(x64):
    case = make_case((1, 5))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        torch_layer(case, 0.1)(to_torch(case.xs[0]))
    with pytest.raises(ValueError, match=r"Expected more .* got input size \(1, 5\)"):
        run_core(case)
