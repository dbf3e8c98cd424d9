"""bnlab's BN tools for PyTorch models: Algorithm 2 and the test-time pitfall, for any nn.Module.

:func:`recalibrate` sets every BN layer's running statistics to the paper's population statistics
over training mini-batches; :func:`evaluate_batch_statistics` scores a model with its running
averages beside batch statistics at test time; :class:`Figure1Recorder` records Figure 1 for a
module as it trains. Needs PyTorch (``pip install 'bnlab[torch]'``).
"""

try:
    import torch  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without PyTorch
    raise ImportError("bnlab.torch needs PyTorch: pip install 'bnlab[torch]'") from error

from bnlab.torch.evaluate import evaluate_batch_statistics
from bnlab.torch.figure1 import Figure1Recorder, figure1
from bnlab.torch.recalibrate import recalibrate

__all__ = ["Figure1Recorder", "evaluate_batch_statistics", "figure1", "recalibrate"]
