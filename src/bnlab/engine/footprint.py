"""What a training job will hold in memory and leave on disk, estimated before anything is
allocated or compiled, so that a run that cannot fit is refused in one line instead of being
killed by the operating system (or filling the disk) minutes later.

The estimate counts what grows with the user's options, from the model's parameter count and the
shapes the engine uses: every run's state (parameters, optimiser slots, gradients), the training
batch's activations, the evaluation's activations on the whole test set (each run's), the
evaluation records kept on the host for the whole run (binned histograms, curves, measures), the
data on each device, and a fixed allowance for the JAX/XLA runtime. It is an estimate, not a
bound: the point is to catch the options that need tens of gigabytes, not to predict RSS to a
megabyte (bnlab's Figure 1 run: estimate ~0.7 GB, measured peak RSS ~0.9 GB).
"""

from __future__ import annotations

from dataclasses import dataclass

from bnlab.engine.conv import output_shapes
from bnlab.engine.histograms import BINS
from bnlab.engine.model import ModelSpec
from bnlab.engine.summary import count_params
from bnlab.engine.train import TrainSpec

FLOAT = 4  # bytes: float32 / int32
# the JAX/XLA runtime, compiled programs and Python itself, measured on an empty run (~0.35 GB)
RUNTIME_BYTES = 400 * 2**20
# a TensorBoard histogram event (64 buckets and their limits, in protobuf) and a scalar event
HISTOGRAM_EVENT_BYTES, SCALAR_EVENT_BYTES = 1_300, 60
# the figures and report of a run directory (PNG + SVG per figure; the largest are ~1 MB)
FIGURE_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Footprint:
    memory: int
    disk: int

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.memory + other.memory, self.disk + other.disk)


def evaluations(train: TrainSpec) -> int:
    """The evaluation points a run of ``train`` records (every eval_every steps and the last)."""
    return train.steps // train.eval_every + (train.steps % train.eval_every != 0)


def run_footprint(model: ModelSpec, train: TrainSpec, runs: int, num_test: int) -> Footprint:
    """``runs`` runs of ``model`` trained together as one group. An experiment's own measures
    record a few numbers per evaluation (their settings are capped) and are not counted."""
    params = count_params(model) + 2 * sum(model.widths)  # + BN's running mean and variance
    # what a checkpoint holds: the parameters and the optimiser's slot
    checkpoint = FLOAT * params * 2
    # in memory also the gradients and the update
    state = 2 * checkpoint
    # values per example: the input, every convolution's and pooling's output, the Dense layers'
    widths = model.in_features + sum(model.hidden) + model.num_classes
    widths += sum(h * w * c for h, w, c in output_shapes(model.image_shape, model.conv))
    # forward values and their gradients, a few buffers per layer
    batch_activations = FLOAT * train.batch_size * widths * 4
    test_activations = FLOAT * num_test * widths * 2
    # per hidden layer: its inputs (BN's and the activation's), kernel and bias, and with BN
    # gamma, beta and the running statistics; the output layer's kernel, bias and logits
    per_layer = 8 if model.has_bn else 3
    histograms_per_eval = len(model.widths) * per_layer + 3
    record = FLOAT * (histograms_per_eval * (BINS + 2) + 8)
    kept = evaluations(train) * record
    memory = runs * (state + batch_activations + test_activations + 2 * kept)
    scalars = evaluations(train) * 10 * SCALAR_EVENT_BYTES
    histograms = evaluations(train) * histograms_per_eval * HISTOGRAM_EVENT_BYTES
    # the checkpoint (written beside the old one, then renamed), the records, TensorBoard
    disk = runs * (2 * checkpoint + kept + scalars + histograms)
    return Footprint(memory, disk)


def data_footprint(num_examples: int, image_values: int, devices: int) -> Footprint:
    """The images and labels on the host and on each device (uint8 pixels, int32 labels)."""
    one = num_examples * (image_values + FLOAT)
    return Footprint(one * (1 + devices), 0)


def fixed_footprint() -> Footprint:
    return Footprint(RUNTIME_BYTES, FIGURE_BYTES)
