"""The BN math: pure, jit/vmap-friendly functions; running statistics passed in and returned."""

from bnlab.core.batchnorm import (
    BatchNormState,
    batch_norm_eval,
    batch_norm_train,
    batch_stats,
    feature_axes,
    init_state,
    normalize,
    update_running_stats,
)

__all__ = [
    "BatchNormState",
    "batch_norm_eval",
    "batch_norm_train",
    "batch_stats",
    "feature_axes",
    "init_state",
    "normalize",
    "update_running_stats",
]
