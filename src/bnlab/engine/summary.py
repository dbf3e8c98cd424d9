"""A network's layers as ``keras.Model.summary()`` lists them, with Keras's weight counts."""

from __future__ import annotations

import math
from typing import NamedTuple

from bnlab.engine.conv import Conv, Pool, output_shapes
from bnlab.engine.model import ModelSpec, kernel_shapes


class SummaryRow(NamedTuple):
    """One layer as ``keras.Model.summary()`` lists it: its weights (``params``) counted as Keras
    counts them, BN's moving mean and variance included; ``trainable``: those a step updates."""

    name: str
    shape: str
    params: int
    trainable: int


def _shape(*dims: int) -> str:
    return "(None, " + ", ".join(map(str, dims)) + ")"


def summary_rows(spec: ModelSpec) -> list[SummaryRow]:
    """The Keras summary of ``spec``'s network, layer by layer (Conv2D, pooling, Flatten, Dense,
    BN, activation), each layer's name numbered per kind."""
    rows: list[SummaryRow] = []
    kernels = kernel_shapes(spec)
    count: dict[str, int] = {}

    def row(kind: str, shape: str, params: int = 0, trainable: int = 0) -> None:
        count[kind] = count.get(kind, 0) + 1
        rows.append(SummaryRow(f"{kind}_{count[kind]}", shape, params, trainable))

    def weighted(kind: str, layer: int, shape: str) -> None:
        kernel = kernels[layer]
        units = kernel[-1]
        weights = math.prod(kernel) + (units if spec.layer_has_bias(layer) else 0)
        row(kind, shape, weights, weights)
        if layer == len(kernels) - 1:
            return
        # gamma and beta, trained; the moving mean and variance, Keras's non-trainable weights
        if spec.bn == "before":
            row("batch_norm", shape, 4 * units, 2 * units)
        row(spec.activation, shape)
        if spec.bn == "after":
            row("batch_norm", shape, 4 * units, 2 * units)

    layer = 0
    for item, out in zip(spec.conv, output_shapes(spec.image_shape, spec.conv), strict=True):
        if isinstance(item, Conv):
            weighted("conv2d", layer, _shape(*out))
            layer += 1
        elif isinstance(item, Pool):
            row("max_pooling2d" if item.kind == "max" else "average_pooling2d", _shape(*out))
    if spec.conv:
        row("flatten", _shape(spec.flat_features))
    for units in (*spec.hidden, spec.num_classes):
        weighted("dense", layer, _shape(units))
        layer += 1
    return rows


def count_params(spec: ModelSpec) -> int:
    """The trainable parameters (what ``init_params`` returns; BN's running statistics are
    state, kept apart)."""
    return sum(row.trainable for row in summary_rows(spec))
