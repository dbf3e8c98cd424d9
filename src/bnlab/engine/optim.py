"""Optimisers from optax, configured to match the frameworks the experiments come from."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from bnlab.errors import ConfigError, check_choice

OPTIMIZERS = ("rmsprop", "sgd")

# OptimizerSpec fields that may take a different value in each run of one compiled program: they
# live in the optimiser state as arrays (optax.inject_hyperparams) instead of in the program.
PER_RUN_FIELDS = ("lr", "rho", "eps")


@dataclass(frozen=True)
class OptimizerSpec:
    """``rmsprop`` with Keras 3's defaults (lr 1e-3, rho 0.9, eps 1e-7, no momentum) or ``sgd``."""

    name: Literal["rmsprop", "sgd"] = "rmsprop"
    lr: float = 1e-3
    rho: float = 0.9
    eps: float = 1e-7
    momentum: float = 0.0

    def __post_init__(self) -> None:
        check_choice("OptimizerSpec.name", self.name, OPTIMIZERS)
        ranges = {"lr": (0, math.inf), "eps": (0, math.inf), "rho": (0, 1), "momentum": (0, 1)}
        for field, (low, high) in ranges.items():
            value = getattr(self, field)
            # per-run values are arrays inside the compiled program (make_optimizer): the
            # config they came from was checked
            if isinstance(value, int | float) and not low <= value <= high:
                raise ConfigError(
                    f"OptimizerSpec.{field}: expected a number in [{low}, {high}], got {value!r}"
                )


def _transform(spec: OptimizerSpec) -> optax.GradientTransformation:
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


def make_optimizer(
    spec: OptimizerSpec, per_run: tuple[str, ...] = ()
) -> optax.GradientTransformation:
    """The optimiser of ``spec``; the fields named in ``per_run`` (of :data:`PER_RUN_FIELDS`)
    become entries of the state's ``hyperparams``, set per run by :func:`set_hyperparams`, with
    ``spec``'s values until then. The updates are bitwise those of the plain optimiser."""
    if not per_run:
        return _transform(spec)
    unknown = sorted(set(per_run) - set(PER_RUN_FIELDS))
    if unknown:
        raise ConfigError(
            f"per-run optimiser fields: expected some of {list(PER_RUN_FIELDS)}, got {unknown}"
        )

    def factory(lr=spec.lr, rho=spec.rho, eps=spec.eps):
        return _transform(dataclasses.replace(spec, lr=lr, rho=rho, eps=eps))

    static = tuple(f for f in PER_RUN_FIELDS if f not in per_run)
    return optax.inject_hyperparams(factory, static_args=static)(
        **{f: getattr(spec, f) for f in per_run}
    )


def set_hyperparams(opt_state, values: Mapping[str, jax.Array]):
    """``opt_state`` (from an optimiser made with ``per_run``) with these hyperparameter values."""
    hyper = dict(opt_state.hyperparams)
    for name, value in values.items():
        hyper[name] = jnp.asarray(value, hyper[name].dtype)
    return opt_state._replace(hyperparams=hyper)
