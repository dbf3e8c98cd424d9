"""The training engine: a step against PyTorch, RMSprop against Keras, the schedule, determinism,
vmapped seeds against separate runs, divergence, the evaluations against numpy oracles, and the
measures' pytrees and keys."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bnlab.data import MNIST, load_mnist
from bnlab.engine import (
    InputSpec,
    ModelSpec,
    OptimizerSpec,
    RunGroup,
    TrainSpec,
    batch_stats_accuracy,
    choose_unit,
    init_bn_state,
    init_params,
    make_optimizer,
    make_segment,
    population_state,
    prepare,
    run_keys,
    schedule,
    to_device,
    train_groups,
)
from bnlab.engine.train import init_run

SMALL = ModelSpec(hidden=(16, 12))
SMALL_BN = ModelSpec(hidden=(16, 12), bn="before", bias_before_bn=False)


@pytest.fixture(scope="module")
def mnist_small() -> MNIST:
    m = load_mnist()
    return MNIST(
        m.x_train[:600], m.y_train[:600], m.x_test[:300], m.y_test[:300], "first 600", False
    )


@pytest.mark.parametrize(
    ("steps", "eval_every", "epoch", "expected"),
    [
        (2500, 1000, 1000, [(0, 1000), (1000, 2000), (2000, 2500)]),
        (2000, 700, 1000, [(0, 700), (700, 1000), (1000, 1400), (1400, 2000)]),
        (30, 10, 10, [(0, 10), (10, 20), (20, 30)]),
        (5, 10, 3, [(0, 3), (3, 5)]),
    ],
)
def test_schedule_cuts_at_evaluations_and_epochs(steps, eval_every, epoch, expected):
    assert schedule(steps, eval_every, epoch) == expected


def _torch_step(spec: ModelSpec, params, state, x, y, lr):
    """One SGD step of the same network in PyTorch (float64): F.batch_norm in training mode,
    momentum 0.1, unbiased running variance; cross-entropy from logits."""
    import torch
    import torch.nn.functional as F

    tp = [
        {
            k: torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True)
            for k, v in p.items()
        }
        for p in params
    ]
    running = [
        (
            torch.tensor(np.asarray(s.running_mean), dtype=torch.float64),
            torch.tensor(np.asarray(s.running_var), dtype=torch.float64),
        )
        for s in state
    ]
    h = torch.tensor(x, dtype=torch.float64)
    for i, p in enumerate(tp):
        h = h @ p["w"] + (p["b"] if "b" in p else 0)
        if i == len(tp) - 1:
            break
        if spec.has_bn:
            h = F.batch_norm(
                h, *running[i], p["gamma"], p["beta"], training=True, momentum=0.1, eps=spec.eps
            )
        h = torch.sigmoid(h)
    loss = F.cross_entropy(h, torch.tensor(y, dtype=torch.long))
    loss.backward()
    new = [{k: (v - lr * v.grad).detach().numpy() for k, v in p.items()} for p in tp]
    return float(loss.detach()), new, [(m.numpy(), v.numpy()) for m, v in running]


@pytest.mark.parametrize(
    "spec",
    [SMALL, SMALL_BN, ModelSpec(hidden=(16, 12), bn="before")],
    ids=["plain", "bn", "bn+bias"],
)
@pytest.mark.parametrize(
    "inputs", [InputSpec("scale"), InputSpec("binary", 0.5)], ids=["scale", "binary"]
)
def test_one_sgd_step_matches_pytorch(spec, inputs, mnist_small):
    """The engine's step (its own batch from the permutation, inputs made from uint8 inside the
    step) gives the same loss, parameters and running statistics as PyTorch in float64."""
    lr = 0.5
    train = TrainSpec(optimizer=OptimizerSpec("sgd", lr), inputs=inputs, batch_size=60)
    data = to_device(
        mnist_small.x_train, mnist_small.y_train, mnist_small.x_test, mnist_small.y_test
    )
    keys = run_keys(4)
    segment, opt = make_segment(spec, train)
    params, state = init_params(spec, keys.init)
    run = segment(init_run(params, state, opt), keys, jnp.int32(0), data, 1)

    idx = np.asarray(jax.random.permutation(jax.random.fold_in(keys.data, 0), 600))[:60]
    x = np.asarray(prepare(data.x_train[idx], inputs))
    if inputs.mode == "binary":
        np.testing.assert_array_equal(
            x, (mnist_small.x_train[idx].reshape(60, -1) > 127.5).astype(np.float32)
        )
    loss, new_params, new_running = _torch_step(
        spec, params, state, x, mnist_small.y_train[idx], lr
    )
    assert float(run.loss_sum) == pytest.approx(loss, rel=1e-5)
    for ours, theirs in zip(run.params, new_params, strict=True):
        for k in theirs:
            np.testing.assert_allclose(np.asarray(ours[k]), theirs[k], rtol=1e-4, atol=1e-6)
    for s, (m, v) in zip(run.bn_state, new_running, strict=True):
        np.testing.assert_allclose(np.asarray(s.running_mean), m, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.asarray(s.running_var), v, rtol=1e-4, atol=1e-6)


def test_rmsprop_matches_keras():
    """optax configured by OptimizerSpec() follows keras.optimizers.RMSprop() (Keras 3 defaults)
    step for step."""
    import keras

    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((5, 3)).astype(np.float32)
    grads = [rng.standard_normal((5, 3)).astype(np.float32) * 10.0**k for k in (-3, -1, 0, 1, 2)]
    var = keras.Variable(w0)
    keras_opt = keras.optimizers.RMSprop()
    opt = make_optimizer(OptimizerSpec())
    w = jnp.asarray(w0)
    state = opt.init(w)
    for g in grads:
        keras_opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
        updates, state = opt.update(jnp.asarray(g), state, w)
        w = w + updates
        np.testing.assert_allclose(np.asarray(w), np.asarray(var.value), rtol=2e-6, atol=1e-8)


def _curves(results):
    return [(r.network, r.seed, r.curves, r.percentiles, r.finals, r.diverged_at) for r in results]


def test_same_seed_gives_identical_metrics(mnist_small):
    train = TrainSpec(steps=25, eval_every=10, batch_size=60)
    groups = [RunGroup("baseline", SMALL, (0, 1)), RunGroup("bn", SMALL_BN, (0, 1))]
    first, _ = train_groups(groups, train, mnist_small)
    second, _ = train_groups(groups, train, mnist_small)
    assert _curves(first) == _curves(second)
    assert first[0].curves != first[1].curves  # two seeds: two different runs


def test_vmapped_seeds_equal_separate_runs(mnist_small):
    train = TrainSpec(steps=20, eval_every=10, batch_size=60)
    together, _ = train_groups([RunGroup("bn", SMALL_BN, (3, 5))], train, mnist_small)
    apart = [
        train_groups([RunGroup("bn", SMALL_BN, (s,))], train, mnist_small)[0][0] for s in (3, 5)
    ]
    for a, b in zip(together, apart, strict=True):
        assert a.seed == b.seed and a.percentile_unit == b.percentile_unit
        for name in ("test_accuracy", "test_loss", "train_loss"):
            np.testing.assert_allclose(a.curves[name], b.curves[name], rtol=1e-5)
        for q in a.percentiles:
            np.testing.assert_allclose(a.percentiles[q], b.percentiles[q], rtol=1e-4, atol=1e-5)


def test_diverged_run_is_recorded_and_others_finish(mnist_small):
    """SGD with lr 1e38 overflows the weights in the first update: the loss of step 2 is NaN.
    That run's curves are null from step 2 on; the run beside it trains normally."""
    train = TrainSpec(steps=20, eval_every=10, batch_size=60)
    groups = [
        RunGroup("baseline", SMALL, (0,), optimizer=OptimizerSpec("sgd", 1e38)),
        RunGroup("bn", SMALL_BN, (0,)),
    ]
    (bad, good), _ = train_groups(groups, train, mnist_small)
    assert bad.diverged_at == 2
    assert bad.curves["test_accuracy"] == [None, None]
    assert bad.percentiles == {"15": [None, None], "50": [None, None], "85": [None, None]}
    assert good.diverged_at is None
    assert all(isinstance(v, float) for v in good.curves["test_accuracy"])
    assert set(good.finals) == {
        "population_test_accuracy",
        "population_test_loss",
        "batch_stats_test_accuracy/60",
        "batch_stats_test_accuracy/1",
    }


def _numpy_hidden(params, x, gamma_beta=True):
    """Training-mode forward in float64, returning each BN layer's batch mean and variance."""
    stats = []
    h = x.astype(np.float64)
    for p in params[:-1]:
        h = h @ np.asarray(p["w"], np.float64) + (np.asarray(p["b"]) if "b" in p else 0)
        mean, var = h.mean(0), h.var(0)
        stats.append((mean, var))
        h = (h - mean) / np.sqrt(var + 1e-5) * np.asarray(p["gamma"]) + np.asarray(p["beta"])
        h = 1 / (1 + np.exp(-h))
    return h, stats


def _trained_params(spec, key=0):
    """Initial parameters with noise on every entry, so gamma and beta are not 1 and 0."""
    params, _ = init_params(spec, jax.random.key(key))
    rng = np.random.default_rng(key)
    return jax.tree.map(lambda a: a + 0.2 * rng.standard_normal(a.shape).astype(np.float32), params)


def test_population_statistics_are_algorithm_2(mnist_small):
    """E[x] = mean of the mini-batch means, Var[x] = m/(m-1) x mean of the mini-batch variances,
    over the training set's batches in file order, each layer fed by the layers below in
    training mode."""
    params = _trained_params(SMALL_BN)
    data = to_device(
        mnist_small.x_train, mnist_small.y_train, mnist_small.x_test, mnist_small.y_test
    )
    state = population_state(SMALL_BN, TrainSpec(batch_size=60), params, data)
    x = mnist_small.x_train.reshape(600, -1) / 255.0
    per_batch = [_numpy_hidden(params, x[i : i + 60])[1] for i in range(0, 600, 60)]
    for layer, s in enumerate(state):
        means = np.array([b[layer][0] for b in per_batch])
        variances = np.array([b[layer][1] for b in per_batch])
        np.testing.assert_allclose(np.asarray(s.running_mean), means.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            np.asarray(s.running_var), 60 / 59 * variances.mean(0), rtol=1e-5, atol=1e-6
        )
        assert int(s.num_batches_tracked) == 10


@pytest.mark.parametrize("batch_size", [60, 7, 1])
def test_batch_statistics_accuracy_matches_numpy(batch_size, mnist_small):
    """Each test batch (file order, the last one smaller) normalized with its own statistics;
    with batch 1 every BN output is beta, so the network predicts one class for everything."""
    params = _trained_params(SMALL_BN, key=2)
    data = to_device(
        mnist_small.x_train, mnist_small.y_train, mnist_small.x_test, mnist_small.y_test
    )
    got = float(batch_stats_accuracy(SMALL_BN, TrainSpec(), params, data, batch_size))
    x = mnist_small.x_test.reshape(300, -1) / 255.0
    preds = []
    for i in range(0, 300, batch_size):
        h, _ = _numpy_hidden(params, x[i : i + batch_size])
        logits = h @ np.asarray(params[-1]["w"], np.float64) + np.asarray(params[-1]["b"])
        preds.append(logits.argmax(1))
    expected = float(np.mean(np.concatenate(preds) == mnist_small.y_test))
    assert got == pytest.approx(expected, abs=1e-6)
    if batch_size == 1:
        assert len(set(np.concatenate(preds).tolist())) == 1


def test_typical_unit_has_the_median_median(mnist_small):
    params = _trained_params(SMALL)
    data = to_device(
        mnist_small.x_train, mnist_small.y_train, mnist_small.x_test, mnist_small.y_test
    )
    unit = int(choose_unit(SMALL, TrainSpec(), params, data))
    x = mnist_small.x_test.reshape(300, -1) / 255.0
    h = x
    for p in params[:-1]:
        pre = h @ np.asarray(p["w"], np.float64) + np.asarray(p["b"])
        h = 1 / (1 + np.exp(-pre))
    medians = np.median(pre, axis=0)
    assert unit == int(np.argsort(medians)[5])  # 12 units: the lower of the two middle ones
    assert init_bn_state(SMALL) == ()


def _sums(spec, params, bn_state, data, train, key):
    """A measure returning a nested pytree: b.c is exactly twice a (doubling is exact)."""
    a = jnp.sum(params[0]["w"])
    return {"a": a, "b": {"c": 2.0 * jnp.sum(params[0]["w"])}}


def _draw(spec, params, bn_state, data, train, key):
    return jax.random.uniform(key)


def test_measure_pytree_is_recorded_per_step_under_its_keys(mnist_small):
    train = TrainSpec(steps=30, eval_every=10, batch_size=60)
    measures = {"sums": _sums, "draw": _draw}
    groups = [
        RunGroup("baseline", SMALL, (0, 1), measures),
        RunGroup("bn", SMALL_BN, (0,), measures),
    ]
    results, _ = train_groups(groups, train, mnist_small)
    assert [(r.network, r.seed) for r in results] == [("baseline", 0), ("baseline", 1), ("bn", 0)]
    for r in results:
        assert r.steps == [10, 20, 30]
        assert set(r.measures) == {"sums", "draw"}
        sums = r.measures["sums"]
        assert set(sums) == {"a", "b"} and set(sums["b"]) == {"c"}
        a, c = sums["a"], sums["b"]["c"]
        assert len(a) == len(c) == len(r.measures["draw"]) == 3
        assert all(isinstance(v, float) for v in (*a, *c, *r.measures["draw"]))
        assert c == [2.0 * v for v in a]
        assert len(set(a)) == 3  # measured on the parameters of each evaluation step


def test_measure_keys_follow_the_seed_and_the_evaluation_step(mnist_small):
    """A measure's key comes from its run's seed and the evaluation step: the same draws for the
    same seed in another call (whatever the run's place in its group), others at other steps and
    for other seeds."""
    train = TrainSpec(steps=30, eval_every=10, batch_size=60)
    measures = {"draw": _draw}
    first, _ = train_groups([RunGroup("baseline", SMALL, (0, 1), measures)], train, mnist_small)
    second, _ = train_groups([RunGroup("baseline", SMALL, (1, 0), measures)], train, mnist_small)
    draws = {r.seed: r.measures["draw"] for r in first}
    assert {r.seed: r.measures["draw"] for r in second} == draws
    for seed in (0, 1):
        assert len(set(draws[seed])) == 3  # a fresh draw at every step
    assert all(a != b for a, b in zip(draws[0], draws[1], strict=True))


def test_the_report_states_the_engines_divergence_bound():
    from bnlab.engine.train import DIVERGENCE_LOSS
    from bnlab.outputs.series import DIVERGED_WHY

    assert DIVERGED_WHY.endswith(f"exceeded {DIVERGENCE_LOSS:,.0f}")


@pytest.mark.parametrize(("scale", "diverged_at"), [(1.0, -1), (1e5, 1)])
def test_a_finite_loss_above_the_bound_marks_the_run_diverged(scale, diverged_at, mnist_small):
    """Output weights scaled by 1e5 give logits ~1e5 apart: a finite loss far above 1,000, which
    marks the run diverged at step 1 like an inf would; unscaled, the same step is healthy."""
    from bnlab.engine.train import DIVERGENCE_LOSS, batch_loss

    train = TrainSpec(optimizer=OptimizerSpec("sgd", 0.1), batch_size=60)
    data = to_device(
        mnist_small.x_train, mnist_small.y_train, mnist_small.x_test, mnist_small.y_test
    )
    keys = run_keys(0)
    segment, opt = make_segment(SMALL, train)
    params, state = init_params(SMALL, keys.init)
    params = (*params[:-1], {k: v * scale for k, v in params[-1].items()})
    idx = jax.random.permutation(jax.random.fold_in(keys.data, 0), 600)[:60]
    x = prepare(data.x_train[idx], train.inputs)
    loss, _ = batch_loss(SMALL, params, state, x, data.y_train[idx], key=keys.noise)
    assert np.isfinite(float(loss)) and (float(loss) > DIVERGENCE_LOSS) == (scale > 1)
    run = segment(init_run(params, state, opt), keys, jnp.int32(0), data, 1)
    assert int(run.diverged_at) == diverged_at
