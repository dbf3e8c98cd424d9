"""The BN math: pure, jit/vmap-friendly functions; running statistics passed in and returned."""

from bnlab.core.backward import Backward
from bnlab.core.batchnorm import (
    DEFAULT_BACKWARD,
    BatchNormState,
    batch_norm_eval,
    batch_norm_train,
    check_options,
    init_state,
    update_running_stats,
)
from bnlab.core.population import (
    apply_affine,
    inference_affine,
    population_from_moments,
    population_stats,
)
from bnlab.core.stats import Moments, batch_stats, feature_axes, normalize, stats_dtype

__all__ = [
    "DEFAULT_BACKWARD",
    "Backward",
    "BatchNormState",
    "Moments",
    "apply_affine",
    "batch_norm_eval",
    "batch_norm_train",
    "batch_stats",
    "check_options",
    "feature_axes",
    "inference_affine",
    "init_state",
    "normalize",
    "population_from_moments",
    "population_stats",
    "stats_dtype",
    "update_running_stats",
]
