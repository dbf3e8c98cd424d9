"""Algorithm 1's equations and the running-average rule, written once for any array namespace.

``xp`` is ``jax.numpy`` for the core and ``keras.ops`` for :mod:`bnlab.keras`, so the two share
the arithmetic and differ only in conventions (which momentum, biased or unbiased variance), which
each caller states. Both namespaces spell these operations the same way.
"""

from __future__ import annotations

from typing import Any


def per_feature(v: Any, ndim: int, axis: int, xp: Any) -> Any:
    """Reshape a per-feature vector so it broadcasts along ``axis`` of an ``ndim``-d input."""
    shape = [1] * ndim
    shape[axis] = -1
    return xp.reshape(v, shape)


def batch_mean(x: Any, reduce: tuple[int, ...], xp: Any) -> Any:
    # mu_B = (1/m) sum_i x_i
    return xp.mean(x, axis=reduce)


def centered_moments(x: Any, mean: Any, axis: int, reduce: tuple[int, ...], xp: Any) -> tuple:
    """Second pass over the batch: the mean deviation from ``mean`` (0 in exact arithmetic, the
    rounding error of ``mean`` in practice) and the mean squared deviation."""
    deviation = x - per_feature(mean, x.ndim, axis, xp)
    return xp.mean(deviation, axis=reduce), xp.mean(xp.square(deviation), axis=reduce)


def corrected_var(mean_deviation: Any, mean_square_deviation: Any) -> Any:
    """Biased variance by the corrected two-pass algorithm (Chan, Golub & LeVeque 1983), never
    E[x^2] - E[x]^2, which cancels catastrophically when |mean| >> std. The correction removes the
    rounding error of mu_B: in float32 a mean of 1e4 is only known to ~5e-4, which alone would
    put a 0.25% error on a variance of 1e-4."""
    # sigma2_B = (1/m) sum_i (x_i - mu_B)^2  -  ((1/m) sum_i (x_i - mu_B))^2   [second term = 0]
    return mean_square_deviation - mean_deviation * mean_deviation


def batch_var(x: Any, mean: Any, axis: int, reduce: tuple[int, ...], xp: Any) -> Any:
    """Biased batch variance of x around its batch mean ``mean``, as :func:`corrected_var`."""
    return corrected_var(*centered_moments(x, mean, axis, reduce, xp))


def standardize(x: Any, mean: Any, var: Any, eps: float, axis: int, xp: Any) -> Any:
    """``mean`` and ``var`` are per-feature vectors in x's precision."""
    mean, var = per_feature(mean, x.ndim, axis, xp), per_feature(var, x.ndim, axis, xp)
    # xhat_i = (x_i - mu_B) / sqrt(sigma2_B + eps)
    return (x - mean) / xp.sqrt(var + eps)


def scale_shift(xhat: Any, gamma: Any | None, beta: Any | None, axis: int, xp: Any) -> Any:
    """``gamma``/``beta`` None means that half of the affine map is off (1 and 0)."""
    # y_i = gamma * xhat_i + beta
    y = xhat
    if gamma is not None:
        y = y * per_feature(gamma, xhat.ndim, axis, xp)
    if beta is not None:
        y = y + per_feature(beta, xhat.ndim, axis, xp)
    return y


def unbiased_var(var: Any, m: Any) -> Any:
    # Var[x] = m / (m - 1) * sigma2_B   (Algorithm 2, and PyTorch's running variance)
    return var * (m / (m - 1))


def moving_average(old: Any, new: Any, weight: Any) -> Any:
    """``weight`` is the weight of the NEW value: PyTorch's momentum, Keras's ``1 - momentum``."""
    # running <- (1 - weight) * running + weight * batch
    return (1 - weight) * old + weight * new
