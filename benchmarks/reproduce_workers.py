"""One framework training the Figure 1 networks for N steps; run by bench_reproduce.py in a child
process per (framework, variant), so imports, threads and peak memory do not mix.

Every worker trains the 784-100-100-100-10 sigmoid MLP, without BN ("baseline") or with BN before
each sigmoid ("bn"), batch 60, RMSprop with Keras's defaults, float32, on the real MNIST, and
excludes compilation / warm-up from ``train_s``. It prints one JSON line.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

BATCH = 60
SIZES = (784, 100, 100, 100, 10)
LR, RHO, EPS, BN_EPS = 1e-3, 0.9, 1e-7, 1e-5
WARMUP_STEPS = 100


def mnist_float() -> tuple[np.ndarray, np.ndarray]:
    from bnlab.data import load_mnist

    data = load_mnist()
    return (data.x_train.reshape(-1, 784).astype(np.float32) / 255.0, data.y_train.astype(np.int64))


def matmuls_s(sizes: tuple[int, ...], batch: int, steps: int, warmup: int = WARMUP_STEPS) -> float:
    """Seconds for ``steps`` steps of only an MLP's training matmuls, in float32: per layer the
    forward x @ W and the weight gradient x.T @ dz, and dz @ W.T for every layer but the first."""
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((a, b), dtype=np.float32) for a, b in itertools.pairwise(sizes)]
    acts = [rng.standard_normal((batch, n), dtype=np.float32) for n in sizes]
    grads_w = [np.empty_like(w) for w in ws]
    grads_x = [np.empty((batch, n), np.float32) for n in sizes]

    def step():
        for i, w in enumerate(ws):
            np.matmul(acts[i], w, out=acts[i + 1])
        for i in reversed(range(len(ws))):
            np.matmul(acts[i].T, acts[i + 1], out=grads_w[i])
            if i > 0:
                np.matmul(acts[i + 1], ws[i].T, out=grads_x[i])

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t


def blas_floor(variant: str, steps: int) -> dict:
    """The Figure 1 network's matmuls (:func:`matmuls_s`). BN adds no matmul, so both variants
    have the same floor."""
    return {"train_s": matmuls_s(SIZES, BATCH, steps)}


def one_thread_floor_s(steps: int) -> float:
    """:func:`blas_floor` for ``steps`` steps in a child process with one BLAS thread (the
    thread count holds only if set before numpy starts): the floor issue 13 defines."""
    import subprocess

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "blas", "bn", str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["train_s"]


def bnlab_engine(variant: str, steps: int) -> dict:
    """bnlab's engine: one compiled lax.scan per epoch segment. ``variant`` "both" trains the two
    networks together as `bnlab reproduce` does (its own device layout)."""
    from bnlab.data import load_mnist
    from bnlab.engine import ModelSpec, OptimizerSpec, RunGroup, TrainSpec, train_groups
    from bnlab.engine.devices import cpu_devices

    def group(name: str) -> RunGroup:
        bn = "before" if name == "bn" else "none"
        return RunGroup(name, ModelSpec(bn=bn, init="glorot_uniform", eps=BN_EPS), (0,))

    groups = [group("baseline"), group("bn")] if variant == "both" else [group(variant)]
    train = TrainSpec(
        optimizer=OptimizerSpec("rmsprop", lr=LR, rho=RHO, eps=EPS),
        batch_size=BATCH,
        steps=steps,
        eval_every=steps,
    )
    # one XLA CPU device per group, as `bnlab reproduce` sets up (must precede any JAX work)
    devices = cpu_devices(len(groups))
    _, timing = train_groups(groups, train, load_mnist(), devices=devices)
    return {"train_s": timing.train_s, "warmup_s": timing.compile_s, "runs": len(groups)}


def keras_fit(variant: str, steps: int) -> dict:
    """The notebook's model and compile call, Keras 3 on JAX, trained with model.fit."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    # BENCH_KERAS_BN=bnlab: the same model with bnlab.keras.BatchNormalization
    if os.environ.get("BENCH_KERAS_BN") == "bnlab":
        from bnlab.keras import BatchNormalization
    else:
        BatchNormalization = keras.layers.BatchNormalization

    x, y = mnist_float()
    layers: list = [keras.Input((784,))]
    for n in SIZES[1:-1]:
        if variant == "bn":
            layers += [
                keras.layers.Dense(n),
                BatchNormalization(epsilon=BN_EPS),
                keras.layers.Activation("sigmoid"),
            ]
        else:
            layers.append(keras.layers.Dense(n, activation="sigmoid"))
    model = keras.Sequential([*layers, keras.layers.Dense(SIZES[-1])])
    model.compile(
        optimizer=keras.optimizers.RMSprop(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    t = time.perf_counter()
    model.fit(x[: WARMUP_STEPS * BATCH], y[: WARMUP_STEPS * BATCH], batch_size=BATCH, verbose=0)
    warmup = time.perf_counter() - t
    epochs, rows = _epochs(steps, len(x))
    t = time.perf_counter()
    model.fit(x[:rows], y[:rows], batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0)
    return {"train_s": time.perf_counter() - t, "warmup_s": warmup}


def _epochs(steps: int, n: int) -> tuple[int, int]:
    """Epochs and rows so that fit makes exactly ``steps`` steps of BATCH."""
    per_epoch = n // BATCH
    if steps % per_epoch == 0:
        return steps // per_epoch, per_epoch * BATCH
    if steps < per_epoch:
        return 1, steps * BATCH
    raise SystemExit(f"--steps must be below {per_epoch} or a multiple of it, got {steps}")


def torch_loop(variant: str, steps: int) -> dict:
    import torch
    from torch import nn

    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", os.cpu_count() or 1)))
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in mnist_float())
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(SIZES[:-1]):
        layers.append(nn.Linear(a, b))
        if variant == "bn":
            # Keras momentum 0.99 is PyTorch's 0.01 (weight of the newest batch)
            layers.append(nn.BatchNorm1d(b, eps=BN_EPS, momentum=0.01))
        layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers, nn.Linear(SIZES[-2], SIZES[-1]))
    opt = torch.optim.RMSprop(model.parameters(), lr=LR, alpha=RHO, eps=EPS)
    loss_fn = nn.CrossEntropyLoss()
    per_epoch = len(x) // BATCH

    def run(n: int) -> None:
        for t in range(n):
            if t % per_epoch == 0:
                perm = torch.randperm(len(x))
            idx = perm[(t % per_epoch) * BATCH : (t % per_epoch + 1) * BATCH]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return _timed(run, steps)


def flax_nnx(variant: str, steps: int) -> dict:
    """A Flax nnx module and nnx.Optimizer, one nnx.jit-compiled step per Python iteration; the
    batch is gathered on the device from a per-epoch permutation."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            pairs = list(itertools.pairwise(SIZES))
            self.dense = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in pairs])
            self.bn = nnx.List(
                [nnx.BatchNorm(b, epsilon=BN_EPS, rngs=rngs) for _, b in pairs[:-1]]
                if variant == "bn"
                else []
            )

        def __call__(self, h):
            for i, dense in enumerate(self.dense[:-1]):
                h = dense(h)
                if self.bn:
                    h = self.bn[i](h)
                h = jax.nn.sigmoid(h)
            return self.dense[-1](h)

    model = MLP(nnx.Rngs(0))
    tx = optax.rmsprop(LR, decay=RHO, eps=EPS, eps_in_sqrt=True, initial_scale=0.0)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    xs, ys = (jnp.asarray(a) for a in mnist_float())
    per_epoch = xs.shape[0] // BATCH

    @nnx.jit
    def step(model, optimizer, perm, t):
        idx = jax.lax.dynamic_slice_in_dim(perm, t * BATCH, BATCH)

        def loss_fn(model):
            logits = model(xs[idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, ys[idx]).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    def run(n: int) -> None:
        key = jax.random.key(0)
        for t in range(n):
            if t % per_epoch == 0:
                key, sub = jax.random.split(key)
                perm = jax.random.permutation(sub, xs.shape[0])
            loss = step(model, optimizer, perm, jnp.int32(t % per_epoch))
        jax.block_until_ready(loss)

    return _timed(run, steps)


def minimal_program(variant: str):
    """The least a compiled JAX program must do: a functional MLP (BN as batch statistics plus
    running averages), optax RMSprop, the uint8 batch gathered and scaled inside the step, and
    one lax.scan per epoch of steps; no divergence check, no measurements. Returns (the jitted
    ``epoch(carry, key, zeros(n))``, the initial carry, the steps in an epoch)."""
    import jax
    import jax.numpy as jnp
    import optax

    from bnlab.data import load_mnist

    data = load_mnist()
    xs = jnp.asarray(data.x_train.reshape(-1, 784))
    ys = jnp.asarray(data.y_train.astype(np.int32))
    keys = jax.random.split(jax.random.key(0), len(SIZES))
    params = []
    for key, (a, b) in zip(keys, itertools.pairwise(SIZES), strict=False):
        limit = (6.0 / (a + b)) ** 0.5
        p = {"w": jax.random.uniform(key, (a, b), jnp.float32, -limit, limit), "b": jnp.zeros(b)}
        if variant == "bn" and b != SIZES[-1]:
            p.update(gamma=jnp.ones(b), beta=jnp.zeros(b))
        params.append(p)
    stats = [(jnp.zeros(b), jnp.ones(b)) for b in SIZES[1:-1]]
    tx = optax.rmsprop(LR, decay=RHO, eps=EPS, eps_in_sqrt=True, initial_scale=0.0)

    def loss_fn(params, stats, x, y):
        h, new_stats = x, []
        for i, p in enumerate(params):
            h = h @ p["w"] + p["b"]
            if i == len(params) - 1:
                break
            if "gamma" in p:
                mean, var = h.mean(0), h.var(0)
                h = p["gamma"] * (h - mean) / jnp.sqrt(var + BN_EPS) + p["beta"]
                m, v = stats[i]
                new_stats.append((0.99 * m + 0.01 * mean, 0.99 * v + 0.01 * var))
            h = jax.nn.sigmoid(h)
        loss = optax.softmax_cross_entropy_with_integer_labels(h, y).mean()
        return loss, new_stats or stats

    def step(carry, idx):
        params, stats, opt_state = carry
        x = xs[idx].astype(jnp.float32) / 255.0
        (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, ys[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), None

    @jax.jit
    def epoch(carry, key, n):
        perm = jax.random.permutation(key, xs.shape[0])[: n.shape[0] * BATCH]
        return jax.lax.scan(step, carry, perm.reshape(-1, BATCH))[0]

    return epoch, (params, stats, tx.init(params)), xs.shape[0] // BATCH


def jax_scan(variant: str, steps: int) -> dict:
    """:func:`minimal_program` trained for ``steps`` steps, epoch by epoch."""
    import jax
    import jax.numpy as jnp

    epoch, carry, per_epoch = minimal_program(variant)
    lengths = [min(per_epoch, steps - start) for start in range(0, steps, per_epoch)]

    t = time.perf_counter()
    for n in sorted(set(lengths)):  # compile each scan length before the clock starts
        jax.block_until_ready(epoch(carry, jax.random.key(0), jnp.zeros(n)))
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    for e, n in enumerate(lengths):
        carry = epoch(carry, jax.random.key(e), jnp.zeros(n))
    jax.block_until_ready(carry)
    return {"train_s": time.perf_counter() - t, "warmup_s": warmup}


def reproduce_end_to_end(variant: str, steps: int) -> dict:
    """`bnlab reproduce --preset seed` as a user runs it (start-up, compile, training, evaluation,
    TensorBoard, figure, report), timed from outside; ``steps`` None-like 0 means the preset's."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bnlab", "reproduce", "--preset", "seed", "--out", tmp]
        if steps:
            cmd += ["--steps", str(steps)]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        timing = json.loads((Path(tmp) / "timing.json").read_text())
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "train_s": timing["train_s"],
        "warmup_s": timing.get("compile_s"),
        "wall_s": wall,
        "runs": 2,
        "child_peak_rss_mib": child_rss,
    }


def _timed(run: Callable[[int], None], steps: int) -> dict:
    t = time.perf_counter()
    run(WARMUP_STEPS)
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    run(steps)
    return {"train_s": time.perf_counter() - t, "warmup_s": warmup}


WORKERS: dict[str, Callable[[str, int], dict]] = {
    "bnlab": bnlab_engine,
    "blas": blas_floor,
    "keras": keras_fit,
    "torch": torch_loop,
    "flax": flax_nnx,
    "jaxscan": jax_scan,
    "reproduce": reproduce_end_to_end,
}


def main(framework: str, variant: str, steps: int) -> None:
    out = WORKERS[framework](variant, steps)
    out.update(
        framework=framework,
        variant=variant,
        steps=steps,
        # Linux reports ru_maxrss in KiB
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
