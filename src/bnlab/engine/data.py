"""The data as the engine holds it: uint8 images on the device, turned into inputs inside the step.

Keeping the pixels as uint8 (47 MB for MNIST's training set) and converting the 60 images of a
step inside the compiled program means nothing crosses from the host while training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp
import numpy as np

from bnlab.errors import ConfigError, check_choice

InputMode = Literal["scale", "binary"]
INPUT_MODES: tuple[str, ...] = get_args(InputMode)


@dataclass(frozen=True)
class InputSpec:
    """``scale``: pixels / 255 in [0, 1] (the notebook). ``binary``: 1 where pixel / 255 exceeds
    ``threshold``, else 0 (the paper's "28x28 binary image")."""

    mode: InputMode = "scale"
    threshold: float = 0.5

    def __post_init__(self) -> None:
        check_choice("InputSpec.mode", self.mode, INPUT_MODES)
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"InputSpec.threshold: expected [0, 1], got {self.threshold!r}")


class DeviceData(NamedTuple):
    """Flattened uint8 images (N, D) and int32 labels (N,), for training and for test."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array

    @property
    def num_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def in_features(self) -> int:
        return self.x_train.shape[1]


def to_device(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    device: jax.Device | None = None,
) -> DeviceData:
    """Flatten images to (N, D) and place the four arrays on ``device`` (uint8 stays uint8)."""
    arrays = []
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if x.dtype != np.uint8:
            raise ConfigError(f"images must be uint8, got {x.dtype}")
        arrays += [x.reshape(len(x), -1), y.astype(np.int32)]
    return DeviceData(*(jax.device_put(a, device) for a in arrays))


def prepare(x: jax.Array, spec: InputSpec) -> jax.Array:
    """uint8 pixels -> float32 network inputs."""
    scaled = x.astype(jnp.float32) / 255.0
    if spec.mode == "binary":
        return (scaled > spec.threshold).astype(jnp.float32)
    return scaled
