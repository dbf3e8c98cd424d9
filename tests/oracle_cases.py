"""Shared inputs and the worst-difference record for the oracle tests (tests/test_oracles_*.py).

Inputs are channels-last, (N, C) or (N, H, W, C); each oracle test translates to its framework's
layout. Every comparison goes through :func:`assert_close`, which records the worst absolute
difference per oracle and quantity so benchmarks/oracle_diffs.py can quote it.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from bnlab.core import BatchNormState, batch_norm_eval, batch_norm_train, init_state

SHAPES = [(16, 5), (4, 3, 3, 5)]
SHAPE_IDS = ["N,C", "N,H,W,C"]
STEPS = 3

# oracle -> quantity -> worst |ours - oracle| seen in this session
WORST: dict[str, dict[str, float]] = {}


class Case(NamedTuple):
    xs: np.ndarray  # (STEPS, *shape): one training mini-batch per step
    ws: np.ndarray  # (STEPS, *shape): loss weights, loss = sum(y * w)
    gamma: np.ndarray
    beta: np.ndarray
    x_test: np.ndarray  # an inference batch of the same shape


def make_case(shape: tuple[int, ...], seed: int = 0, dtype: str = "float64") -> Case:
    rng = np.random.default_rng(seed)
    c = shape[-1]

    def draw(*s):
        return rng.normal(size=s).astype(dtype)

    return Case(
        xs=(rng.normal(1.5, 2.0, (STEPS, *shape))).astype(dtype),
        ws=draw(STEPS, *shape),
        gamma=rng.normal(1.0, 0.3, c).astype(dtype),
        beta=rng.normal(0.0, 0.3, c).astype(dtype),
        x_test=(rng.normal(1.5, 2.0, shape)).astype(dtype),
    )


def assert_close(oracle: str, quantity: str, ours, theirs, atol: float) -> None:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (oracle, quantity, ours.shape, theirs.shape)
    diff = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    record = WORST.setdefault(oracle, {})
    record[quantity] = max(record.get(quantity, 0.0), diff)
    assert diff <= atol, f"{oracle} {quantity}: max |diff| {diff:.3g} > tolerance {atol:g}"


class Step(NamedTuple):
    y: np.ndarray
    dx: np.ndarray
    dgamma: np.ndarray
    dbeta: np.ndarray
    state: BatchNormState


def run_core(case: Case, **kwargs) -> list[Step]:
    """bnlab's training steps on ``case`` (kwargs go to batch_norm_train): outputs, gradients of
    sum(y * w) and the running statistics after each step."""
    state = init_state(case.gamma.shape[0], case.xs.dtype)
    steps = []
    for x, w in zip(case.xs, case.ws, strict=True):

        def loss(x, gamma, beta, state=state, w=w):
            y, new = batch_norm_train(x, gamma, beta, state, **kwargs)
            return jnp.sum(y * w), (y, new)

        grads, (y, state) = jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(
            jnp.asarray(x), jnp.asarray(case.gamma), jnp.asarray(case.beta)
        )
        steps.append(Step(np.asarray(y), *(np.asarray(g) for g in grads), state))
    return steps


def eval_core(case: Case, state: BatchNormState, **kwargs) -> np.ndarray:
    y = batch_norm_eval(
        jnp.asarray(case.x_test), jnp.asarray(case.gamma), jnp.asarray(case.beta), state, **kwargs
    )
    return np.asarray(y)


class Oracle(Protocol):
    """One framework's BN layer, with bnlab's conventions translated to it."""

    name: str
    atol: float  # the tolerance stated in each oracle test file, and why
    eps: float

    def core_kwargs(self, momentum: Any) -> dict: ...  # the framework's momentum -> bnlab's
    def layer(self, case: Case, momentum: Any) -> Any: ...
    def steps(self, case: Case, layer: Any) -> list[dict]: ...  # y, dx, dgamma, dbeta, running_*
    def evaluate(self, layer: Any, x: np.ndarray) -> Any: ...  # inference after the steps


def check_training(oracle: Oracle, shape: tuple[int, ...], momentum: Any) -> None:
    """Each of STEPS training steps: the output and the running statistics."""
    case = make_case(shape)
    ours = run_core(case, eps=oracle.eps, **oracle.core_kwargs(momentum))
    theirs = oracle.steps(case, oracle.layer(case, momentum))
    for o, t in zip(ours, theirs, strict=True):
        assert_close(oracle.name, "y (train)", o.y, t["y"], oracle.atol)
        assert_close(
            oracle.name, "running_mean", o.state.running_mean, t["running_mean"], oracle.atol
        )
        assert_close(oracle.name, "running_var", o.state.running_var, t["running_var"], oracle.atol)


def check_gradients(oracle: Oracle, shape: tuple[int, ...], momentum: Any, backward: str) -> None:
    """Each step's gradients of sum(y * w) wrt x, gamma and beta."""
    case = make_case(shape, seed=1)
    ours = run_core(case, eps=oracle.eps, backward=backward, **oracle.core_kwargs(momentum))
    theirs = oracle.steps(case, oracle.layer(case, momentum))
    for o, t in zip(ours, theirs, strict=True):
        for name in ("dx", "dgamma", "dbeta"):
            assert_close(oracle.name, name, getattr(o, name), t[name], oracle.atol)


def check_inference(oracle: Oracle, shape: tuple[int, ...], momentum: Any) -> None:
    """Inference after the training steps, on a batch and on a batch of one."""
    case = make_case(shape, seed=2)
    state = run_core(case, eps=oracle.eps, **oracle.core_kwargs(momentum))[-1].state
    layer = oracle.layer(case, momentum)
    oracle.steps(case, layer)
    for label, x in (("y (eval)", case.x_test), ("y (eval, batch of one)", case.x_test[:1])):
        ours = eval_core(case._replace(x_test=x), state, eps=oracle.eps)
        assert_close(oracle.name, label, ours, oracle.evaluate(layer, x), oracle.atol)
