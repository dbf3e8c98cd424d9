"""The engine's model with l_p normalization in BN's place and with Santurkar's noise after it,
against the core functions applied by hand."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

from bnlab.core import batch_norm_train
from bnlab.core.lp_norm import lp_norm_eval, lp_norm_train
from bnlab.core.noise import NoiseConfig, add_noise
from bnlab.engine import ModelSpec, forward, init_params

SPEC = ModelSpec(in_features=6, hidden=(5, 4), num_classes=3, bn="before", bias_before_bn=False)
X = jax.random.uniform(jax.random.PRNGKey(3), (8, 6))
KEY = jax.random.PRNGKey(11)


def setup(spec):
    params, state = init_params(spec, jax.random.key(0))
    return params, state


def by_hand(spec, params, state, x, norm, key=None):
    """The forward pass written out: Dense, normalization, [noise], sigmoid; the taps' act input."""
    acts = []
    h = x
    for layer, p in enumerate(params[:-1]):
        h = h @ p["w"]
        if "gamma" in p:
            h = norm(h, p, state[layer])
        if key is not None:
            h = add_noise(jax.random.fold_in(key, layer), h, spec.noise)
        acts.append(h)
        h = jax.nn.sigmoid(h)
    return h @ params[-1]["w"] + params[-1]["b"], acts


@pytest.mark.parametrize(("norm", "p"), [("lp1", 1.0), ("lp2", 2.0), ("lpinf", math.inf)])
@pytest.mark.parametrize("mode", ["train", "running"])
def test_lp_normalization_replaces_bn(norm, p, mode):
    spec = dataclasses.replace(SPEC, norm=norm)
    params, state = setup(spec)
    if mode == "train":

        def f(h, q, s):
            return lp_norm_train(h, q["gamma"], q["beta"], s, p=p, eps=spec.eps)[0]
    else:

        def f(h, q, s):
            return lp_norm_eval(h, q["gamma"], q["beta"], s, p=p, eps=spec.eps)

    out = forward(spec, params, state, X, mode)
    logits, acts = by_hand(spec, params, state, X, f)
    np.testing.assert_allclose(np.asarray(out.logits), np.asarray(logits), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(out.taps[-1]["act_input"]), np.asarray(acts[-1]), rtol=1e-6, atol=1e-6
    )


def test_lp2_network_is_the_bn_network():
    params, state = setup(SPEC)
    bn = forward(SPEC, params, state, X, "train")
    lp2 = forward(dataclasses.replace(SPEC, norm="lp2"), params, state, X, "train")
    np.testing.assert_allclose(np.asarray(lp2.logits), np.asarray(bn.logits), rtol=1e-5, atol=1e-6)


def bn_train(h, q, s):
    return batch_norm_train(h, q["gamma"], q["beta"], s, eps=SPEC.eps)[0]


@pytest.mark.parametrize("bn", ["before", "none"])
def test_noise_follows_the_normalization_in_training(bn):
    spec = dataclasses.replace(SPEC, bn=bn, noise=NoiseConfig())
    params, state = setup(spec)
    out = forward(spec, params, state, X, "train", key=KEY)
    logits, acts = by_hand(spec, params, state, X, bn_train, key=KEY)
    np.testing.assert_allclose(np.asarray(out.logits), np.asarray(logits), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(out.taps[0]["act_input"]), np.asarray(acts[0]), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(("mode", "key"), [("running", KEY), ("train", None)])
def test_no_noise_at_evaluation_or_without_a_key(mode, key):
    noisy = dataclasses.replace(SPEC, noise=NoiseConfig())
    params, state = setup(noisy)
    with_noise = forward(noisy, params, state, X, mode, key=key)
    without = forward(SPEC, params, state, X, mode)
    np.testing.assert_array_equal(np.asarray(with_noise.logits), np.asarray(without.logits))
