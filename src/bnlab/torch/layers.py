"""What the torch tools share: finding BN layers, reading a batch, per-channel moments, and
putting a module's modes and running statistics back as they were."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from bnlab.errors import ConfigError

STATS = ("running_mean", "running_var", "num_batches_tracked")


def bn_layers(module: torch.nn.Module, *, name: str = "module") -> dict[str, _BatchNorm]:
    """{qualified name: layer} of every BN layer of ``module`` that keeps running statistics
    (BatchNorm1d/2d/3d, SyncBatchNorm, lazy and custom subclasses of ``_BatchNorm``), in
    ``named_modules`` order; the module itself is named ``""``. None is a ConfigError."""
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"{name}: expected a torch.nn.Module, got {type(module).__name__}")
    layers = {
        n: m
        for n, m in module.named_modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.running_mean is not None
    }
    if not layers:
        raise ConfigError(
            f"{name}: no BatchNorm layers with running statistics (torch.nn.modules.batchnorm."
            f"_BatchNorm, track_running_stats=True) in {type(module).__name__}"
        )
    return layers


def batch_input(item: object, index: int, *, name: str = "batches") -> torch.Tensor:
    """The input of one batch: the item itself, or the first entry of a (input, target, ...) tuple
    or list, as ``torch.optim.swa_utils.update_bn`` accepts."""
    if isinstance(item, (tuple, list)):
        if not item:
            raise ConfigError(f"{name}: batch {index} is an empty {type(item).__name__}")
        item = item[0]
    if not isinstance(item, torch.Tensor):
        raise ConfigError(
            f"{name}: batch {index} is a {type(item).__name__}, expected a tensor or an "
            "(input, target) tuple"
        )
    return item


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel (dim 1) mean and biased variance in float64 over every other dim, and m, the
    number of values per channel (N, N*L, N*H*W or N*D*H*W)."""
    x = x.detach().to(torch.float64)
    dims = [d for d in range(x.ndim) if d != 1]
    m = x.numel() // x.shape[1] if x.ndim >= 2 and x.shape[1] else 0
    mean = x.mean(dim=dims)
    var = x.var(dim=dims, correction=0) if m > 0 else torch.full_like(mean, float("nan"))
    return mean, var, m


def check_not_distributed(layers: dict[str, _BatchNorm]) -> None:
    """SyncBatchNorm runs as plain BN on one process (no process group initialised, or a world of
    one); across several processes it normalises with statistics gathered over all of them, which
    hooks on one process cannot see, so that case is refused."""
    dist = torch.distributed
    for n, layer in layers.items():
        if isinstance(layer, torch.nn.SyncBatchNorm) and dist.is_available():
            if dist.is_initialized():
                group = layer.process_group or dist.group.WORLD
                if dist.get_world_size(group) > 1:
                    raise ConfigError(
                        f"module: SyncBatchNorm layer {n!r} synchronises over "
                        f"{dist.get_world_size(group)} processes; bnlab.torch supports it on one "
                        "process only (convert it to BatchNorm or run without a process group)"
                    )


@contextmanager
def restored(module: torch.nn.Module, layers: dict[str, _BatchNorm]) -> Iterator[None]:
    """Put back every submodule's train/eval flag and the BN layers' running statistics on exit
    (on error too); the caller overwrites the statistics it means to change after this exits."""
    modes = [(m, m.training) for m in module.modules()]
    saved = {
        n: {s: getattr(layer, s).clone() for s in STATS if getattr(layer, s) is not None}
        for n, layer in layers.items()
    }
    try:
        yield
    finally:
        with torch.no_grad():
            for n, layer in layers.items():
                for s, value in saved[n].items():
                    getattr(layer, s).copy_(value)
        for m, training in modes:
            m.training = training
