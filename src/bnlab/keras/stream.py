"""Side-effect-free forward passes of a Keras model over mini-batches, on any backend.

``model.stateless_call`` runs the model on copies of its variables and returns the updated state
instead of assigning it, so nothing here changes the model: not its weights, not BN's moving
statistics, not its RNG state. On JAX the step is jitted (one compilation per batch shape); on
torch it runs under ``torch.no_grad()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from bnlab.errors import ConfigError


def num_examples(x: Any) -> int:
    """The number of examples in ``x``: an array, or a list/dict of arrays for several inputs."""
    leaves = keras.tree.flatten(x)
    if not leaves or not all(hasattr(v, "shape") and len(v.shape) >= 1 for v in leaves):
        raise ConfigError(
            f"x: expected an array (or a list/dict of arrays) of examples, got {type(x).__name__}"
        )
    return int(leaves[0].shape[0])


def labels_of(y: Any) -> np.ndarray:
    """Class indices from integer labels or one-hot rows."""
    y = np.asarray(keras.ops.convert_to_numpy(y))
    return np.argmax(y, axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)


def take(x: Any, start: int, stop: int) -> Any:
    """Examples ``start:stop`` of every array in ``x`` (a slice: memory independent of len(x))."""
    return keras.tree.map_structure(lambda v: v[start:stop], x)


def spans(n: int, batch_size: int, *, keep_last: bool) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive batches of ``batch_size``; the last smaller one if asked."""
    full = n // batch_size
    for i in range(full):
        yield i * batch_size, (i + 1) * batch_size
    if keep_last and n % batch_size:
        yield full * batch_size, n


def no_grad() -> contextlib.AbstractContextManager:
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


class StatelessForward:
    """``step(x)`` runs ``model(x, training=training)`` on copies of the model's variables and
    returns (outputs as numpy, the new non-trainable state). The state carries over from step to
    step (RNG seeds advance as in training), after ``reset`` (index -> value) is applied to it;
    the model itself never changes."""

    def __init__(
        self, model: keras.Model, *, training: bool, reset: dict[int, Any] | None = None
    ) -> None:
        self.model = model
        self.sync()
        self.reset = reset or {}

        def step(trainable: list, state: list, x: Any) -> tuple[Any, list]:
            return model.stateless_call(trainable, state, x, training=training)

        self.call: Callable = step
        if keras.backend.backend() == "jax":
            import jax

            self.call = jax.jit(step)

    def sync(self) -> None:
        """Take the model's current variables (after it trained on), keeping the compiled step."""
        self.trainable = [v.value for v in self.model.trainable_variables]
        self.state = [v.value for v in self.model.non_trainable_variables]

    def __call__(self, x: Any) -> tuple[Any, list]:
        state = [self.reset.get(i, v) for i, v in enumerate(self.state)]
        with no_grad():
            outputs, self.state = self.call(self.trainable, state, x)
        return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs), self.state
