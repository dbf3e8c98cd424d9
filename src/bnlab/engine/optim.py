"""Optimisers from optax, configured to match the frameworks the experiments come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import optax


@dataclass(frozen=True)
class OptimizerSpec:
    """``rmsprop`` with Keras 3's defaults (lr 1e-3, rho 0.9, eps 1e-7, no momentum) or ``sgd``."""

    name: Literal["rmsprop", "sgd"] = "rmsprop"
    lr: float = 1e-3
    rho: float = 0.9
    eps: float = 1e-7
    momentum: float = 0.0


def make_optimizer(spec: OptimizerSpec) -> optax.GradientTransformation:
    if spec.name == "rmsprop":
        # Keras: v = rho v + (1 - rho) g^2;  w -= lr g / sqrt(v + eps)  (eps inside the root,
        # v starts at 0). optax's rmsprop with eps_in_sqrt=True and initial_scale=0 is the same.
        return optax.rmsprop(
            spec.lr,
            decay=spec.rho,
            eps=spec.eps,
            initial_scale=0.0,
            eps_in_sqrt=True,
            momentum=spec.momentum or None,
        )
    return optax.sgd(spec.lr, momentum=spec.momentum or None)
