"""Figure 1 of Ioffe & Szegedy (2015) for the user's own Keras model, as a callback of ``fit``.

``Figure1Callback`` records, before training and every ``every_n_steps`` training steps, the input
of chosen layers over a fixed probe set with the model in inference mode (BN with its moving
averages), hands it to :class:`bnlab.outputs.probe_log.ProbeLog` (the typical unit's {15, 50, 85}th
percentiles, TensorBoard scalars and histograms) and at the end of ``fit`` draws Figure 1 with
bnlab's figure code: panel (a) from ``validation_data``, a percentile panel per tapped layer.
:func:`figure1` draws several models' callbacks in one figure, as the paper compares the network
with and without BN.

Which layers (``layers=None``): the input of each activation layer that follows a BN layer, or
else, of the last hidden layer's activation: a Dense or Conv layer's own ``activation`` (the seed
notebook's ``Dense(100, activation="sigmoid")``) is tapped as ``"<name>.activation"``, its
pre-activation Wu + b, computed by the layer itself with its activation set aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from bnlab.errors import ConfigError
from bnlab.keras.recalibrate import BN_TYPES, check_model
from bnlab.keras.stream import StatelessForward, labels_of, num_examples, spans, take
from bnlab.outputs.probe_log import ProbeLog
from bnlab.outputs.probe_log import figure1 as draw_figure1

ACTIVATION_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
)
FUSED = ".activation"


class PreActivation(keras.layers.Layer):
    """``inner``'s output without its own activation: what its activation receives."""

    def __init__(self, inner: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(name=f"{inner.name}_pre_activation", **kwargs)
        self.inner = inner

    def call(self, x: Any) -> Any:
        activation = self.inner.activation
        self.inner.activation = keras.activations.linear
        try:
            return self.inner.call(x)
        finally:
            self.inner.activation = activation


def fused_activation(layer: keras.layers.Layer) -> bool:
    act = getattr(layer, "activation", None)
    return callable(act) and act is not keras.activations.linear


def producer(layer: keras.layers.Layer) -> Any:
    """The layer whose output feeds ``layer`` (None for a model input or several inputs)."""
    history = getattr(layer.input, "_keras_history", None)
    return None if history is None else history.operation


def default_taps(model: keras.Model) -> list[str]:
    """Each activation layer after a BN layer, or else the last hidden layer's activation."""
    after_bn = [
        layer.name
        for layer in model.layers
        if isinstance(layer, ACTIVATION_LAYERS) and isinstance(producer(layer), BN_TYPES)
    ]
    if after_bn:
        return after_bn
    outputs = {id(t) for t in model.outputs}
    hidden = [layer for layer in model.layers if id(layer.output) not in outputs]
    for layer in reversed(hidden):
        if isinstance(layer, ACTIVATION_LAYERS):
            return [layer.name]
        if fused_activation(layer):
            return [layer.name + FUSED]
    raise ConfigError(
        "layers: expected a hidden layer with an activation to tap by default, got none among "
        f"{[layer.name for layer in model.layers]}; name the layers to record"
    )


def tap_tensors(model: keras.Model, tap: str) -> tuple[Any, Any]:
    """(the tensor recorded, the layer's output) of a tap: a layer's input, or ``name.activation``:
    the input of that layer's own activation."""
    name = tap.removesuffix(FUSED)
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise ConfigError(
            f"layers: expected names of {model.name}'s layers (or '<name>{FUSED}'), got {tap!r}; "
            f"its layers: {[layer.name for layer in model.layers]}"
        ) from None
    if tap.endswith(FUSED):
        if not fused_activation(layer):
            raise ConfigError(
                f"layers: {tap!r}: expected layer {name!r} to have its own activation, it has none"
            )
        return PreActivation(layer)(layer.input), layer.output
    return layer.input, layer.output


class Figure1Callback(keras.callbacks.Callback):
    """Records Figure 1's curves for the model being fit (see the module's docstring).

    ``probe``: the fixed inputs the percentiles and histograms are taken over (e.g. 10,000 test
    images; default: ``validation_data``'s). ``validation_data``: ``(x, y)`` for panel (a),
    labels as integers or one-hot. ``log_dir``: TensorBoard logs; ``figure_dir``: where
    ``figure1.png/.svg/.json`` are written at the end of ``fit``. Steps count on across ``fit``
    calls.
    """

    def __init__(
        self,
        probe: Any = None,
        *,
        layers: Sequence[str] | None = None,
        every_n_steps: int = 100,
        validation_data: tuple[Any, Any] | None = None,
        log_dir: str | Path | None = None,
        figure_dir: str | Path | None = None,
        name: str | None = None,
        batch_size: int = 1000,
    ) -> None:
        super().__init__()
        if probe is None and validation_data is None:
            raise ConfigError("probe: expected probe inputs or validation_data, got neither")
        if validation_data is not None and len(validation_data) != 2:
            raise ConfigError(f"validation_data: expected (x, y), got {len(validation_data)} items")
        for option, value in (("every_n_steps", every_n_steps), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{option}: expected a positive integer, got {value!r}")
        self.probe = validation_data[0] if probe is None else probe
        self.validation = validation_data
        self.layers = None if layers is None else list(layers)
        self.every_n_steps = every_n_steps
        self.batch_size = batch_size
        self.figure_dir = figure_dir
        self.step = 0
        self.log = ProbeLog(name or "model", log_dir)
        self._forward: StatelessForward | None = None
        self._taps: list[str] = []

    def _build(self, model: keras.Model) -> None:
        check_model(model)
        if self.log.name == "model":
            self.log.name = model.name
        self._taps = default_taps(model) if self.layers is None else self.layers
        if not self._taps:
            raise ConfigError("layers: expected at least one layer name, got none")
        tensors = [tap_tensors(model, tap) for tap in self._taps]
        flat = [t for pair in tensors for t in pair]
        # one input as a tensor, not a list of one: called with an array, a list warns
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        probe_model = keras.Model(inputs, [*flat, *model.outputs])
        self._forward = StatelessForward(probe_model, training=False)

    def _run(self, x: Any) -> list[np.ndarray]:
        assert self._forward is not None
        parts = [
            self._forward(take(x, start, stop))[0]
            for start, stop in spans(num_examples(x), self.batch_size, keep_last=True)
        ]
        return [np.concatenate(column) for column in zip(*parts, strict=True)]

    def record(self) -> None:
        """Record the model now, at the current step."""
        model = self.model  # on JAX, reading .model syncs the variables from fit's state
        if self._forward is None:
            self._build(model)
        assert self._forward is not None
        self._forward.sync()
        values = self._run(self.probe)
        n = len(self._taps)
        inputs = dict(zip(self._taps, values[0 : 2 * n : 2], strict=True))
        outputs = dict(zip(self._taps, values[1 : 2 * n : 2], strict=True))
        accuracy = None
        if self.validation is not None:
            x, y = self.validation
            logits = values[2 * n] if x is self.probe else self._run(x)[2 * n]
            accuracy = float(np.mean(np.argmax(logits, axis=-1) == labels_of(y)))
        self.log.record(self.step, inputs, outputs, accuracy)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.log.steps:
            self.record()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        if self.step % self.every_n_steps == 0:
            self.record()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.log.steps[-1] != self.step:
            self.record()
        if self.figure_dir is not None:
            self.figure(self.figure_dir, last_only=False)

    def figure(self, out_dir: str | Path, *, last_only: bool = False) -> list[Path]:
        """Draw this model's Figure 1 into ``out_dir`` (every tapped layer by default)."""
        return draw_figure1([self.log], out_dir, last_only=last_only)


def figure1(
    callbacks: Sequence[Figure1Callback], out_dir: str | Path, stem: str = "figure1"
) -> list[Path]:
    """Figure 1 for several models (e.g. without and with BN): (a) their validation accuracy,
    then per model its last tapped layer, the paper's last hidden layer."""
    return draw_figure1([cb.log for cb in callbacks], out_dir, stem)
