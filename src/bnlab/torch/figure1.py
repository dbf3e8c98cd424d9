"""Figure 1 of Ioffe & Szegedy (2015) for the user's own PyTorch module, the twin of
``bnlab.keras.Figure1Callback`` for a hand-written training loop.

``Figure1Recorder`` records, when built (before training) and every ``every_n_steps`` calls of
:meth:`Figure1Recorder.after_step`, the input of chosen submodules over a fixed probe set with the
module in eval mode (BN with its running averages), read with forward hooks, and hands it to
:class:`bnlab.outputs.probe_log.ProbeLog` (the typical unit's {15, 50, 85}th percentiles,
TensorBoard scalars and histograms). A convolution's (N, C, ...) values go channels last: a unit
is a channel, its positions count as examples. :func:`figure1` draws several recorders in one
figure. Which submodules (``layers=None``): each activation module whose preceding leaf module
(in ``named_modules`` order) is a BN layer, or else the last activation module.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from bnlab.errors import ConfigError
from bnlab.outputs.probe_log import ProbeLog
from bnlab.outputs.probe_log import figure1 as draw_figure1
from bnlab.torch.layers import restored

nn = torch.nn
ACTIVATIONS = (
    nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus, nn.ReLU6,
    nn.Hardtanh, nn.PReLU, nn.SELU, nn.CELU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.LogSigmoid,
)  # fmt: skip


def default_taps(module: nn.Module) -> list[str]:
    """Each activation module right after a BN layer, or else the last activation module."""
    leaves = [(n, m) for n, m in module.named_modules() if n and not any(m.children())]
    after_bn = [
        n
        for (_, before), (n, m) in itertools.pairwise(leaves)
        if isinstance(m, ACTIVATIONS) and isinstance(before, _BatchNorm)
    ]
    if after_bn:
        return after_bn
    activations = [n for n, m in module.named_modules() if n and isinstance(m, ACTIVATIONS)]
    if activations:
        return activations[-1:]
    raise ConfigError(
        f"layers: expected an activation module to tap by default, got none in "
        f"{type(module).__name__}; name the layers to record"
    )


def _tensor(value: Any, option: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    raise ConfigError(f"{option}: expected a tensor or numpy array, got {type(value).__name__}")


def _numpy(t: torch.Tensor) -> np.ndarray:
    """Host float values, channels last for a (N, C, ...) tensor."""
    t = t.detach().cpu()
    values = (t if t.dtype == torch.float64 else t.float()).numpy()
    return np.moveaxis(values, 1, -1) if values.ndim >= 3 else values


def labels_of(y: Any) -> np.ndarray:
    """Class indices from integer labels or one-hot rows."""
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return np.argmax(y, axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)


class Figure1Recorder:
    """Records Figure 1's curves for ``module`` as it trains (see the module's docstring).

    ``probe``: the fixed inputs the percentiles and histograms are taken over (default:
    ``validation_data``'s). ``validation_data``: ``(x, y)`` for panel (a), labels as integers or
    one-hot; a prediction is the argmax of the module's output over its last axis. ``layers``:
    qualified names from ``module.named_modules()``. ``log_dir``: TensorBoard logs. Records step 0
    when built, where each layer's typical unit is chosen; call :meth:`after_step` after each
    ``optimizer.step()`` and :meth:`close` at the end. Recording changes nothing in the module:
    every submodule's train/eval flag is put back.
    """

    def __init__(
        self,
        module: nn.Module,
        probe: Any = None,
        *,
        layers: Sequence[str] | None = None,
        every_n_steps: int = 100,
        validation_data: tuple[Any, Any] | None = None,
        log_dir: str | Path | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise ConfigError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
        if probe is None and validation_data is None:
            raise ConfigError("probe: expected probe inputs or validation_data, got neither")
        if validation_data is not None and len(validation_data) != 2:
            raise ConfigError(f"validation_data: expected (x, y), got {len(validation_data)} items")
        for option, value in (("every_n_steps", every_n_steps), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{option}: expected a positive integer, got {value!r}")
        self.module = module
        self.validation = None
        if validation_data is not None:
            x, y = validation_data
            self.validation = (_tensor(x, "validation_data"), labels_of(y))
        self.probe = self.validation[0] if probe is None else _tensor(probe, "probe")
        modules = dict(module.named_modules())
        self.layers = default_taps(module) if layers is None else list(layers)
        for tap in self.layers or [None]:
            if not tap or tap not in modules:
                raise ConfigError(
                    f"layers: expected names of the module's submodules, got {tap!r}; "
                    f"its submodules: {[n for n in modules if n]}"
                )
        self._modules = {tap: modules[tap] for tap in self.layers}
        self.every_n_steps = every_n_steps
        self.batch_size = batch_size
        self.step = 0
        self.log = ProbeLog(name or type(module).__name__, log_dir)
        self.record()

    def _device(self) -> torch.device:
        first = next(itertools.chain(self.module.parameters(), self.module.buffers()), None)
        return torch.device("cpu") if first is None else first.device

    def _run(self, x: torch.Tensor, taps: bool) -> tuple[dict, dict, np.ndarray | None]:
        """(inputs, outputs) of the tapped modules and the module's output over ``x``."""
        ins, outs = ({tap: [] for tap in self.layers} for _ in "io")

        def hook(tap: str):
            def keep(_: nn.Module, args: tuple, output: Any) -> None:
                ins[tap].append(_numpy(args[0]))
                if isinstance(output, torch.Tensor):
                    outs[tap].append(_numpy(output))

            return keep

        items = self._modules.items() if taps else ()
        handles = [m.register_forward_hook(hook(tap)) for tap, m in items]
        results = []
        try:
            with restored(self.module, {}), torch.no_grad():
                self.module.eval()
                for start in range(0, len(x), self.batch_size):
                    out = self.module(x[start : start + self.batch_size].to(self._device()))
                    if self.validation is not None and isinstance(out, torch.Tensor):
                        results.append(out.detach().cpu().double().numpy())
        finally:
            for h in handles:
                h.remove()
        logits = np.concatenate(results) if results else None
        join = {t: np.concatenate(v) for t, v in ins.items() if v}
        return join, {t: np.concatenate(v) for t, v in outs.items() if v}, logits

    def record(self) -> None:
        """Record the module now, at the current step."""
        inputs, outputs, logits = self._run(self.probe, taps=True)
        missing = [tap for tap in self.layers if tap not in inputs]
        if missing:
            raise ConfigError(f"layers: the forward pass over the probe never reached {missing}")
        accuracy = None
        if self.validation is not None:
            x, labels = self.validation
            if x is not self.probe:
                logits = self._run(x, taps=False)[2]
            if logits is None:
                raise ConfigError(
                    "validation_data: expected the module to return a tensor of class scores, "
                    "got another output; leave validation_data out and pass probe inputs"
                )
            accuracy = float(np.mean(np.argmax(logits, axis=-1) == labels))
        self.log.record(self.step, inputs, outputs, accuracy)

    def after_step(self) -> None:
        """Count one training step; record when the count is a multiple of ``every_n_steps``."""
        self.step += 1
        if self.step % self.every_n_steps == 0:
            self.record()

    def close(self) -> None:
        """Record the current step if it was not, and close the TensorBoard file."""
        if not self.log.steps or self.log.steps[-1] != self.step:
            self.record()
        self.log.close()

    def figure(self, out_dir: str | Path, *, last_only: bool = False) -> list[Path]:
        """Draw this module's Figure 1 into ``out_dir`` (every tapped layer by default)."""
        return draw_figure1([self.log], out_dir, last_only=last_only)


def figure1(
    recorders: Sequence[Figure1Recorder], out_dir: str | Path, stem: str = "figure1"
) -> list[Path]:
    """Figure 1 for several modules (e.g. without and with BN): (a) their validation accuracy,
    then per module its last tapped layer, the paper's last hidden layer."""
    return draw_figure1([r.log for r in recorders], out_dir, stem)
