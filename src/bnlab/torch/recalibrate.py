"""Algorithm 2 for a trained PyTorch module: population statistics over training mini-batches.

The paper's inference step: with the network's parameters fixed, "process multiple training
mini-batches B, each of size m, and average over them": E[x] = E_B[mu_B] and
Var[x] = m/(m-1) * E_B[sigma2_B]. :func:`recalibrate` runs the module in training mode under
``torch.no_grad`` over the batches, reads each BN layer's input with a forward pre-hook, and keeps
running sums in float64 (memory independent of the number of batches).

Batches of different sizes: Algorithm 2 as written has one m. Here each batch is weighted equally
and its variance gets its own correction m_i/(m_i - 1) (the mean of the Bessel-corrected batch
variances, fvcore's PreciseBN convention); for equal sizes that is exactly m/(m-1) E_B[sigma2_B].
``torch.optim.swa_utils.update_bn`` also weights batches equally, so the two agree for any sizes up
to rounding; they differ from a per-example average (which would weight a small last batch less).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from bnlab.errors import ConfigError
from bnlab.torch.layers import batch_input, bn_layers, check_not_distributed, moments, restored


class _Sums:
    """Running float64 sums of one layer's batch means and (biased, corrected) variances."""

    def __init__(self, name: str) -> None:
        self.name, self.k, self.batch = name, 0, 0
        self.mean = self.var = self.var_unbiased = None

    def add(self, x: torch.Tensor) -> None:
        mean, var, m = moments(x)
        if m < 2:
            raise ConfigError(
                f"batches: batch {self.batch} gives BN layer {self.name!r} {m} value(s) per "
                f"channel (input shape {tuple(x.shape)}); Algorithm 2 needs m > 1"
            )
        unbiased = var * (m / (m - 1))
        if self.mean is None:
            self.mean, self.var, self.var_unbiased = mean, var, unbiased
        else:
            self.mean, self.var = self.mean + mean, self.var + var
            self.var_unbiased = self.var_unbiased + unbiased
        self.k += 1


def recalibrate(
    module: torch.nn.Module, batches: Iterable[object], *, unbiased: bool = True
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Set every BN layer's running statistics to Algorithm 2's population statistics.

    ``module``: any ``torch.nn.Module`` with BN layers (subclasses of
    ``torch.nn.modules.batchnorm._BatchNorm`` that track running statistics: BatchNorm1d/2d/3d,
    and SyncBatchNorm on one process, where PyTorch runs it as plain BN; under a process group of
    several processes it is refused). ``batches``: an iterable of input tensors, or of
    (input, target, ...) tuples/lists whose first item is the input (as ``update_bn`` accepts),
    read once; each input is moved to the device of the BN layers' statistics.

    The module runs in training mode (so Dropout is active, as in ``update_bn``) with its
    parameters fixed. Each BN layer gets ``running_mean`` = the average of its batch means and
    ``running_var`` = the average of m_i/(m_i - 1) times the biased batch variances, each batch
    weighted equally (``unbiased=False``: the average of the biased batch variances), where m_i is
    the number of values per channel in batch i (N, N*L, N*H*W or N*D*H*W).
    ``num_batches_tracked`` becomes the number of batches averaged (the count a ``momentum=None``
    cumulative average would hold, as in ``bnlab.core.population_from_moments``). A layer run
    several times per forward counts each call as a batch. Nothing else changes: parameters, other
    buffers and every submodule's train/eval flag are as before (on error the running statistics
    are left as they were too).

    Returns {qualified layer name: (mean, var)} as float64 tensors (the buffers hold them cast to
    their own dtype). Raises ConfigError (a ValueError) for a module without BN layers, no
    batches, a batch giving a layer a single value per channel, or a layer no batch reached.
    """
    if not isinstance(unbiased, bool):
        raise ConfigError(f"unbiased: expected True or False, got {unbiased!r}")
    layers = bn_layers(module)
    check_not_distributed(layers)
    device = next(iter(layers.values())).running_mean.device
    sums = {n: _Sums(n) for n in layers}

    def hook(name: str):
        def record(layer: _BatchNorm, args: tuple) -> None:
            sums[name].add(args[0])

        return record

    handles = [layer.register_forward_pre_hook(hook(n)) for n, layer in layers.items()]
    count = 0
    try:
        with restored(module, layers), torch.no_grad():
            module.train()
            for count, item in enumerate(batches, start=1):
                x = batch_input(item, count - 1)
                for s in sums.values():
                    s.batch = count - 1
                module(x.to(device))
    finally:
        for h in handles:
            h.remove()
    if count == 0:
        raise ConfigError("batches: no batches; Algorithm 2 needs at least one mini-batch")
    missing = [n for n, s in sums.items() if s.k == 0]
    if missing:
        raise ConfigError(f"batches: no batch reached BN layer(s) {missing} in the forward pass")
    out = {}
    with torch.no_grad():
        for n, layer in layers.items():
            s = sums[n]
            mean = s.mean / s.k
            var = (s.var_unbiased if unbiased else s.var) / s.k
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
            if layer.num_batches_tracked is not None:
                layer.num_batches_tracked.fill_(s.k)
            out[n] = (mean, var)
    return out
