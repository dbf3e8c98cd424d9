"""Small hand-made metrics for the output renderers' tests: every number is chosen so the expected
mean ± std can be worked out by hand."""

from __future__ import annotations

from typing import Any

STEPS = [10_000, 20_000]


def run(
    variant: str, seed: int, acc: list[Any], steps: list[int] = STEPS, **extra: Any
) -> dict[str, Any]:
    """One run at ``steps``: the baseline's median sigmoid input moves from -1 to -2 over them,
    BN's stays at 0.5; the 15-85 spread is 2 throughout."""
    n = len(steps)
    p50 = [-1.0 - k / (n - 1) for k in range(n)] if n > 1 else [-1.0]
    p50 = p50 if variant == "baseline" else [0.5] * n
    out = {
        "variant": variant,
        "seed": seed,
        "steps": list(steps),
        "test_accuracy": acc,
        "test_loss": [None if a is None else 1.0 - a for a in acc],
        "train_loss": [None if a is None else 1.0 - a for a in acc],
        "percentiles": {
            "15": [p - 1.0 for p in p50],
            "50": p50,
            "85": [p + 1.0 for p in p50],
        },
        "diverged_at": None,
        "population_test_accuracy": None if acc[-1] is None else acc[-1] + 0.005,
    }
    if variant == "bn":
        out["batch_stats_test_accuracy"] = {"60": 0.9, "1": 0.1}
    out.update(extra)
    return out


def metrics(bn_acc=((0.95, 0.97), (0.97, 0.99)), **bn_extra: Any) -> dict[str, Any]:
    """Baseline: seeds at 0.90/0.92 (10k) and 0.92/0.94 (20k); BN as given."""
    return {
        "runs": [
            run("baseline", 0, [0.90, 0.92]),
            run("baseline", 1, [0.92, 0.94]),
            run("bn", 0, [bn_acc[0][0], bn_acc[1][0]]),
            run("bn", 1, [bn_acc[0][1], bn_acc[1][1]], **bn_extra),
        ]
    }


def checkpoint_metrics(steps: list[int], baseline: list[float], bn: list[float]) -> dict[str, Any]:
    """One seed of each network evaluated at ``steps`` with these test accuracies."""
    return {
        "runs": [
            run("baseline", 0, list(baseline), steps=steps),
            run("bn", 0, list(bn), steps=steps),
        ]
    }


def diverged_metrics() -> dict[str, Any]:
    """BN seed 1 diverged at step 20,000: its value there is null."""
    m = metrics()
    bad = m["runs"][3]
    bad.update(
        diverged_at=20_000,
        test_accuracy=[0.97, None],
        test_loss=[0.03, None],
        train_loss=[0.03, None],
        population_test_accuracy=None,
        batch_stats_test_accuracy={"60": None, "1": None},
    )
    bad["percentiles"] = {"15": [-0.5, None], "50": [0.5, None], "85": [1.5, None]}
    return m
