"""bnlab for Keras 3 models (any backend): a drop-in ``BatchNormalization`` layer built on bnlab's
equations, Algorithm 2's population statistics for a trained model (:func:`recalibrate`), the
test-time pitfall checked (:func:`evaluate_batch_statistics`) and Figure 1 for the model being fit
(:class:`Figure1Callback`, :func:`figure1`).

Needs Keras 3: ``pip install 'bnlab[keras]'``. A saved ``.keras`` model that uses the layer loads
after ``import bnlab.keras`` (which registers it as ``bnlab>BatchNormalization``), or with
``custom_objects={"BatchNormalization": bnlab.keras.BatchNormalization}``.
"""

from __future__ import annotations

_NEEDS_KERAS = "bnlab.keras needs Keras 3: pip install 'bnlab[keras]'"

try:
    import keras
except ImportError as err:
    # Keras itself missing; any other import error (e.g. KERAS_BACKEND=tensorflow without
    # TensorFlow) is re-raised as it is, since installing Keras would not fix it
    if err.name is not None and err.name.split(".")[0] != "keras":
        raise
    raise ImportError(_NEEDS_KERAS) from err
if int(keras.__version__.split(".")[0]) < 3:
    raise ImportError(f"{_NEEDS_KERAS} (found Keras {keras.__version__})")

from bnlab.keras.figure1 import Figure1Callback, figure1  # noqa: E402
from bnlab.keras.layer import BatchNormalization  # noqa: E402
from bnlab.keras.recalibrate import evaluate_batch_statistics, recalibrate  # noqa: E402

__all__ = [
    "BatchNormalization",
    "Figure1Callback",
    "evaluate_batch_statistics",
    "figure1",
    "recalibrate",
]
