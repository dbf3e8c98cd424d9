"""The training engine: an MLP or a convolutional network with optional BN, trained by one
compiled program per group of runs.

>>> from bnlab.engine import ModelSpec, RunGroup, TrainSpec, train_groups
"""

from bnlab.engine.data import DeviceData, InputSpec, prepare, to_device
from bnlab.engine.evaluate import (
    PERCENTILES,
    Evaluation,
    Measure,
    batch_stats_accuracy,
    choose_unit,
    evaluate,
    final_evaluation,
    population_state,
)
from bnlab.engine.histograms import BINS, Histogram, histogram
from bnlab.engine.model import (
    Forward,
    ModelSpec,
    cross_entropy,
    forward,
    init_bn_state,
    init_params,
)
from bnlab.engine.optim import OptimizerSpec, make_optimizer
from bnlab.engine.results import Record, RunResult
from bnlab.engine.runner import RunGroup, Stopped, Timing, eval_steps, schedule, train_groups
from bnlab.engine.summary import SummaryRow, count_params, summary_rows
from bnlab.engine.train import RunKeys, RunState, TrainSpec, batch_loss, make_segment, run_keys

__all__ = [
    "BINS",
    "PERCENTILES",
    "DeviceData",
    "Evaluation",
    "Forward",
    "Histogram",
    "InputSpec",
    "Measure",
    "ModelSpec",
    "OptimizerSpec",
    "Record",
    "RunGroup",
    "RunKeys",
    "RunResult",
    "RunState",
    "Stopped",
    "SummaryRow",
    "Timing",
    "TrainSpec",
    "batch_loss",
    "batch_stats_accuracy",
    "choose_unit",
    "count_params",
    "cross_entropy",
    "eval_steps",
    "evaluate",
    "final_evaluation",
    "forward",
    "histogram",
    "init_bn_state",
    "init_params",
    "make_optimizer",
    "make_segment",
    "population_state",
    "prepare",
    "run_keys",
    "schedule",
    "summary_rows",
    "to_device",
    "train_groups",
]
