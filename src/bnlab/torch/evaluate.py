"""The test-time pitfall, checked: accuracy with the running averages beside batch statistics.

The seed notebook's hand-written BN layer normalised test batches with their own statistics.
:func:`evaluate_batch_statistics` scores a module both ways so a user sees how much their model
depends on its test batch.

How batch statistics are applied: the module runs in eval mode (Dropout off, as at test time) and a
forward pre-hook on each BN layer writes that test batch's per-channel mean and biased variance
(float64, cast to the buffer's dtype) into the layer's running statistics just before it
normalises, so the layer computes Algorithm 1's (x - mu_B) / sqrt(sigma2_B + eps) * gamma + beta,
the same output as a training-mode forward, with nothing learned from the test batch afterwards
(the running statistics are restored). This also defines batch size 1 where PyTorch's training
mode refuses it ("Expected more than 1 value per channel when training"): a BatchNorm1d layer on
(N, C) input then sees one value per channel, mu_B = x and sigma2_B = 0, and outputs beta whatever
the input, so the prediction no longer depends on the image. That is what normalising a single
test example with its own statistics does, and is reported as such (for BatchNorm2d/3d the
statistics are over the example's H*W (D*H*W) values and stay informative). BN layers built with
``track_running_stats=False`` are left alone: PyTorch already normalises them with batch statistics
in eval mode (and refuses one value per channel there).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from bnlab.errors import ConfigError
from bnlab.torch.layers import bn_layers, check_not_distributed, moments, restored

CHUNK = 10_000  # examples per forward pass with the running averages (batch-independent)


def _correct(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, size: int) -> int:
    hits = 0
    for start in range(0, len(x), size):
        logits = module(x[start : start + size])
        hits += int((logits.argmax(dim=1) == y[start : start + size]).sum())
    return hits


def _use_batch_stats(layer: _BatchNorm, args: tuple) -> None:
    mean, var, m = moments(args[0])
    if m < 1:
        raise ConfigError(f"x: input shape {tuple(args[0].shape)} has no values per channel")
    layer.running_mean.copy_(mean)
    layer.running_var.copy_(var)


def evaluate_batch_statistics(
    module: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_sizes: Iterable[int] = (60, 1),
) -> dict[str, object]:
    """Accuracy of ``module`` on (``x``, ``y``) with its running averages and with batch statistics.

    ``x``: inputs (N, ...) as one tensor; ``y``: integer labels (N,); a prediction is the argmax
    of the module's output over dim 1. "running_averages" is the eval-mode accuracy;
    "batch_statistics"[b] the accuracy when ``x`` is split into consecutive test batches of ``b``
    examples (the last may be smaller) and every BN layer normalises each batch with that batch's
    own mean and biased variance (see the module docstring, batch size 1 included). Nothing in
    the module changes: running statistics and train/eval flags are restored.

    Returns {"running_averages": acc, "batch_statistics": {b: acc, ...}}, accuracies in [0, 1].
    """
    layers = bn_layers(module)
    check_not_distributed(layers)
    sizes = list(batch_sizes)
    bad = [b for b in sizes if isinstance(b, bool) or not isinstance(b, int) or b < 1]
    if not sizes or bad:
        raise ConfigError(f"batch_sizes: expected positive integers, got {tuple(sizes)}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ConfigError("x, y: expected tensors")
    if len(x) == 0 or len(x) != len(y) or y.ndim != 1:
        raise ConfigError(
            f"x, y: expected N >= 1 inputs and N labels, got shapes {tuple(x.shape)}, "
            f"{tuple(y.shape)}"
        )
    device = next(iter(layers.values())).running_mean.device
    x, y = x.to(device), y.to(device)
    accuracy: dict[int, float] = {}
    with restored(module, layers), torch.no_grad():
        module.eval()
        running = _correct(module, x, y, CHUNK) / len(x)
        handles = [layer.register_forward_pre_hook(_use_batch_stats) for layer in layers.values()]
        try:
            for b in sizes:
                accuracy[b] = _correct(module, x, y, b) / len(x)
        finally:
            for h in handles:
                h.remove()
    return {"running_averages": running, "batch_statistics": accuracy}
