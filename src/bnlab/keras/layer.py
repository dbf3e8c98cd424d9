"""A drop-in Keras 3 ``BatchNormalization`` layer built on bnlab's equations.

Written with ``keras.ops`` only, so it runs on any Keras backend (tested on JAX, torch and
numpy). The arithmetic is :mod:`bnlab.core.equations` (the same lines the JAX core runs); this
module only chooses Keras's conventions. Importing it needs Keras 3
(``pip install 'bnlab[keras]'``).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from bnlab.core import equations as eq
from bnlab.core.batchnorm import check_options
from bnlab.core.stats import feature_axes

_INITIALIZERS = ("beta_initializer", "gamma_initializer")
_MOVING_INITIALIZERS = ("moving_mean_initializer", "moving_variance_initializer")


@keras.saving.register_keras_serializable(package="bnlab")
class BatchNormalization(keras.layers.Layer):
    """Batch Normalization (Ioffe & Szegedy 2015, Algorithm 1) with Keras 3's conventions.

    Same arguments, defaults, weights and ``training`` behaviour as
    ``keras.layers.BatchNormalization``, and a drop-in for the seed notebook's ``BatchNorm1D``
    (which, unlike this layer, also used batch statistics at test time and had no moving averages).

    Differences from :mod:`bnlab.core` (PyTorch's conventions), each a Keras convention:

    - ``momentum`` (default 0.99) weighs the OLD value: ``moving = momentum * moving +
      (1 - momentum) * batch``. The core's momentum (default 0.1) weighs the new batch; this layer
      hands the core's running-average equation the weight ``1 - momentum``.
    - ``epsilon`` defaults to 1e-3 (core: ``eps=1e-5``).
    - ``moving_variance`` is the BIASED batch variance averaged (core: unbiased, m/(m-1)), so it
      is not Algorithm 2's Var[x]; there is no cumulative (``momentum=None``) mode.
    - ``center``/``scale`` switch beta/gamma (core: pass ``None`` for either).
    - The train/eval switch is ``call(training=...)``; with ``trainable=False`` the layer runs in
      inference mode even when ``training=True`` (Keras's fine-tuning convention).
    - Variance by the corrected two-pass algorithm, like the core; Keras's JAX backend uses
      ``jnp.var`` and then folds normalization into ``x * a + b``, which in float32 loses digits
      when |mean| >> std. Statistics are float32 for float16/bfloat16 inputs in both; float64
      inputs are computed in float64 here, in float32 by Keras (its ``result_type(float64,
      "float32")`` is float32).
    - Not supported (Keras has them): ``mask``, ``renorm``, ``synchronized``. No one-value-per-
      channel error in training (Keras returns beta there); the core raises.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_options(momentum, epsilon, eps_name="epsilon")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape: tuple) -> None:
        axis, self._reduce = feature_axes(len(input_shape), self.axis)
        shape = (input_shape[axis],)

        def weight(name: str, initializer: Any, trainable: bool, **extra: Any) -> Any:
            return self.add_weight(
                shape=shape,
                name=name,
                initializer=initializer,
                trainable=trainable,
                autocast=False,
                **extra,
            )

        if self.scale:
            self.gamma = weight(
                "gamma",
                self.gamma_initializer,
                True,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
            )
        if self.center:
            self.beta = weight(
                "beta",
                self.beta_initializer,
                True,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
            )
        self.moving_mean = weight("moving_mean", self.moving_mean_initializer, False)
        self.moving_variance = weight("moving_variance", self.moving_variance_initializer, False)
        self.input_spec = keras.layers.InputSpec(ndim=len(input_shape), axes={axis: shape[0]})

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        axis = self.axis % len(inputs.shape)
        # float16/bfloat16 inputs get float32 statistics, float64 keeps float64 (as in the core)
        dtype = "float64" if keras.backend.standardize_dtype(inputs.dtype) == "float64" else None
        x = ops.cast(inputs, dtype or "float32")
        gamma = None if self.gamma is None else ops.cast(self.gamma, x.dtype)
        beta = None if self.beta is None else ops.cast(self.beta, x.dtype)
        if training and self.trainable:
            mean = eq.batch_mean(x, self._reduce, ops)
            var = eq.batch_var(x, mean, axis, self._reduce, ops)
            # Keras's momentum weighs the old value: the new batch's weight is 1 - momentum
            weight = 1.0 - self.momentum
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
                old = ops.cast(moving, x.dtype)
                new = eq.moving_average(old, ops.stop_gradient(batch), weight)
                moving.assign(ops.cast(new, moving.dtype))
        else:
            mean = ops.cast(self.moving_mean, x.dtype)
            var = ops.cast(self.moving_variance, x.dtype)
        xhat = eq.standardize(x, mean, var, self.epsilon, axis, ops)
        return ops.cast(eq.scale_shift(xhat, gamma, beta, axis, ops), self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        feature_axes(len(input_shape), self.axis)
        return input_shape

    def get_config(self) -> dict:
        serial = keras.initializers.serialize
        config = {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **{name: serial(getattr(self, name)) for name in _INITIALIZERS + _MOVING_INITIALIZERS},
            "beta_regularizer": keras.regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": keras.regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": keras.constraints.serialize(self.beta_constraint),
            "gamma_constraint": keras.constraints.serialize(self.gamma_constraint),
        }
        return {**super().get_config(), **config}
