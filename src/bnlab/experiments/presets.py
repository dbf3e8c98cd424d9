"""The presets: the seed notebook's configuration, the paper's (Section 4.1), and a
convolutional network (LeNet-5) for BN per channel."""

from __future__ import annotations

from bnlab.errors import ConfigError
from bnlab.experiments.config import ExperimentConfig

SEED = ExperimentConfig(preset="seed")
"""The seed notebook exactly: Keras Dense layers (Glorot-uniform weights, zero biases, bias kept
in front of BN), BN before the sigmoid with eps 1e-5 (the notebook writes ``10e-6``), RMSprop with
Keras's defaults (lr 1e-3, rho 0.9, eps 1e-7 inside the square root), softmax cross-entropy from
logits, batches of 60, 50 epochs = 50,000 steps, pixels / 255. The notebook's shuffle buffer of
100 is replaced by a full permutation per epoch. Parameters: 99,710 without BN, 100,310 with."""

PAPER = ExperimentConfig(
    preset="paper",
    bias_before_bn=False,
    init="gaussian",
    init_std=0.01,
    input="binary",
    threshold=0.5,
    optimizer="sgd",
    lr=0.5,
)
"""Ioffe & Szegedy's Section 4.1 with the choices the paper leaves open:
- binary input: a pixel is 1 when pixel / 255 > 0.5 -- the midpoint of the range, which keeps the
  strokes and drops the anti-aliased rim;
- weights N(0, 0.01^2) ("small random Gaussian values"), biases 0; the BN network has no bias in
  front of BN (Section 3.2: it is cancelled by the mean subtraction), gamma 1, beta 0;
- plain SGD with lr 0.5: large enough that the baseline, whose tiny initial weights give vanishing
  sigmoid gradients, leaves the initial plateau within the first 10k steps (with lr 0.1 it is
  still near chance at 10k steps, 0.098), as public reproductions of Figure 1 use (SGD lr 0.5).
  Measured before bnlab (shared/reference/papers.md): 0.9632 without BN, 0.9742 with, at 50k.
Batches of 60 for 50,000 steps, as the paper states."""

CONVNET = ExperimentConfig(
    preset="convnet",
    conv=("conv:6:5:1:valid", "maxpool:2", "conv:16:5:1:valid", "maxpool:2"),
    hidden=(120, 84),
    activation="relu",
    bias_before_bn=False,
    steps=6_000,
    eval_every=500,
)
"""LeNet-5 (LeCun et al. 1998) on MNIST's 28x28 images: 6 5x5 filters (VALID) -> 2x2 max pooling
-> 16 5x5 filters -> 2x2 max pooling -> Dense 120 -> Dense 84 -> 10, ReLU, with BN per channel
before each activation (no bias in front of BN). The smallest classic convolutional network: its
step costs ~40x the MLP's multiply-adds (about 280k per image), so at ~10 ms a step on one core the
two networks train 6,000 steps (6 epochs) side by side in under 3 minutes on this project's 2-core
machine. The seed's RMSprop (lr 1e-3), Keras's Glorot-uniform weights, batches of 60. Parameters:
44,426 without BN, 44,652 with."""

PRESETS: dict[str, ExperimentConfig] = {"seed": SEED, "paper": PAPER, "convnet": CONVNET}


def preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        raise ConfigError(f"--preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    return PRESETS[name]
