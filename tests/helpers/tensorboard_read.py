"""Event files read back as TensorBoard itself reads them when it has no fast loader
(``plugin_event_accumulator``, every summary as a tensor of its plugin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.util import tensor_util


def read(logdir: Path) -> EventAccumulator:
    every = {"scalars": 0, "histograms": 0, "text": 0, "hparams": 0}
    acc = EventAccumulator(str(logdir), size_guidance={"tensors": 0}, tensor_size_guidance=every)
    return acc.Reload()


def tags(acc: EventAccumulator, plugin: str) -> list[str]:
    return sorted(acc.PluginTagToContent(plugin)) if plugin in acc.ActivePlugins() else []


def values(acc: EventAccumulator, tag: str) -> list[tuple[int, np.ndarray]]:
    return [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(step, float(v)) for step, v in values(acc, tag)]


def steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Tensors(tag)]


def walls(acc: EventAccumulator, tag: str) -> list[float]:
    return [e.wall_time for e in acc.Tensors(tag)]


def text(acc: EventAccumulator, tag: str) -> list[tuple[int, str]]:
    return [(step, v.item().decode()) for step, v in values(acc, f"{tag}/text_summary")]


def description(acc: EventAccumulator, tag: str) -> str:
    return acc.SummaryMetadata(tag).summary_description


def every_series(acc: EventAccumulator) -> dict[str, list[int]]:
    """Each tag's steps, in file order."""
    return {t: steps(acc, t) for t in acc.Tags()["tensors"]}
