"""bnlab.core against torch.nn.BatchNorm1d/2d (CPU, float64). Same conventions (momentum weighs
the new batch, unbiased running variance, momentum=None cumulative); layouts translated NHWC ->
NCHW. Tolerance 1e-12 absolute: both compute in float64, only the order of operations differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle_cases import (
    SHAPE_IDS,
    SHAPES,
    assert_close,
    check_gradients,
    check_inference,
    check_training,
    eval_core,
    make_case,
    run_core,
)


def to_torch(x: np.ndarray) -> torch.Tensor:
    """Channels-last NumPy -> channels-first torch (N, C) or (N, C, H, W)."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.permute(0, 3, 1, 2) if t.ndim == 4 else t


def from_torch(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    return (t.permute(0, 2, 3, 1) if t.ndim == 4 else t).numpy()


class Torch:
    name, atol, eps = "torch", 1e-12, 1e-5

    def core_kwargs(self, momentum):
        return {"momentum": momentum}  # the same convention

    def layer(self, case, momentum, **kwargs):
        cls = torch.nn.BatchNorm2d if case.xs.ndim == 5 else torch.nn.BatchNorm1d
        c = case.gamma.shape[0]
        layer = cls(c, eps=self.eps, momentum=momentum, dtype=torch.float64, **kwargs)
        if layer.affine:
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(case.gamma))
                layer.bias.copy_(torch.from_numpy(case.beta))
        return layer

    def steps(self, case, layer):
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

    def evaluate(self, layer, x):
        layer.eval()
        with torch.no_grad():
            return from_torch(layer(to_torch(x)))


TORCH = Torch()
SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
MOMENTA = pytest.mark.parametrize("momentum", [0.1, None], ids=["0.1", "None"])


@SHAPE
@MOMENTA
def test_training_outputs_and_running_stats_match_torch(x64, shape, momentum):
    check_training(TORCH, shape, momentum)


@SHAPE
@pytest.mark.parametrize("backward", ["paper", "autodiff"])
def test_gradients_match_torch(x64, shape, backward):
    check_gradients(TORCH, shape, 0.1, backward)


@SHAPE
@MOMENTA
def test_inference_after_training_matches_torch(x64, shape, momentum):
    check_inference(TORCH, shape, momentum)


@MOMENTA
def test_batch_counter_matches_torch(x64, momentum):
    case = make_case(SHAPES[0])
    ours = run_core(case, momentum=momentum)
    theirs = TORCH.steps(case, TORCH.layer(case, momentum))
    assert [int(o.state.num_batches_tracked) for o in ours] == [t["count"] for t in theirs]


@SHAPE
def test_untracked_statistics_match_torch_at_inference(x64, shape):
    case = make_case(shape, seed=3)
    layer = TORCH.layer(case, 0.1, track_running_stats=False)
    ours = eval_core(case, None, eps=TORCH.eps, track_running_stats=False)
    expected = TORCH.evaluate(layer, case.x_test)
    assert_close("torch", "y (eval, track_running_stats=False)", ours, expected, TORCH.atol)


def test_one_value_per_channel_raises_in_both(x64):
    case = make_case((1, 5))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        TORCH.layer(case, 0.1)(to_torch(case.xs[0]))
    with pytest.raises(ValueError, match=r"Expected more .* got input size \(1, 5\)"):
        run_core(case)
