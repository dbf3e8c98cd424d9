"""Time a jitted training step of the paper's MNIST network (784-100-100-100-10, sigmoid, BN on
every hidden layer) with BN's backward pass from the paper (custom VJP) versus JAX autodiff.

Steps run inside one jitted lax.scan, like the engine. The two variants alternate within one run
so they share the machine's load; the medians over repeats and their ratio are printed.

    python benchmarks/backward_paper_vs_autodiff.py [--batch 60] [--steps 500] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from bnlab.core import batch_norm_train, init_state

SIZES = (784, 100, 100, 100, 10)


def init(key):
    keys = jax.random.split(key, len(SIZES) - 1)
    ws = [
        0.1 * jax.random.normal(k, (a, b))
        for k, a, b in zip(keys, SIZES[:-1], SIZES[1:], strict=True)
    ]
    hidden = SIZES[1:-1]
    params = {
        "w": ws,
        "gamma": [jnp.ones(n) for n in hidden],
        "beta": [jnp.zeros(n) for n in hidden],
    }
    return params, [init_state(n) for n in hidden]


def make_train(backward: str, steps: int):
    def loss(params, states, x, y):
        h, new_states = x, []
        for i, s in enumerate(states):
            z = h @ params["w"][i]
            z, s = batch_norm_train(z, params["gamma"][i], params["beta"][i], s, backward=backward)
            h = jax.nn.sigmoid(z)
            new_states.append(s)
        logits = h @ params["w"][-1]
        ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))
        return ce, new_states

    def step(carry, batch):
        params, states = carry
        (value, states), grads = jax.value_and_grad(loss, has_aux=True)(params, states, *batch)
        params = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
        return (params, states), value

    @jax.jit
    def train(params, states, xs, ys):
        return jax.lax.scan(step, (params, states), (xs, ys))

    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=60)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    xs = jax.random.uniform(kx, (args.steps, args.batch, 784))
    ys = jax.random.randint(ky, (args.steps, args.batch), 0, 10)
    params, states = init(kp)
    variants = {b: make_train(b, args.steps) for b in ("paper", "autodiff")}
    losses = {}
    for name, train in variants.items():  # compile, and check both compute the same training
        _, values = jax.block_until_ready(train(params, states, xs, ys))
        losses[name] = values
    diff = float(jnp.max(jnp.abs(losses["paper"] - losses["autodiff"])))
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, train in variants.items():
            t0 = time.perf_counter()
            jax.block_until_ready(train(params, states, xs, ys))
            times[name].append((time.perf_counter() - t0) / args.steps * 1e6)
    med = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    print(f"device={jax.devices()[0].platform} batch={args.batch} steps={args.steps}")
    for name in variants:
        print(f"{name:9s} median {med[name]:8.1f} us/step, best {best[name]:8.1f} us/step")
    print(
        f"paper / autodiff time ratio: median {med['paper'] / med['autodiff']:.3f}, "
        f"best {best['paper'] / best['autodiff']:.3f}"
    )
    print(f"max |loss difference| over {args.steps} steps: {diff:.3g}")


if __name__ == "__main__":
    main()
