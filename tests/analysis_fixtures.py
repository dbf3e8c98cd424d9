"""Hand-made metrics of the analyses: numbers chosen so every verdict can be checked by hand."""

from __future__ import annotations

from typing import Any

STEPS = [100, 200, 300]


def run(variant: str, seed: int, acc: list[Any], **extra: Any) -> dict[str, Any]:
    out = {
        "variant": variant,
        "seed": seed,
        "steps": list(STEPS),
        "test_accuracy": acc,
        "test_loss": [1.0 - a for a in acc],
        "train_loss": [1.0 - a for a in acc],
        "diverged_at": None,
    }
    out.update(extra)
    return out


def percentiles(p50: list[float], spread: list[float] | None = None) -> dict[str, list[float]]:
    """15/50/85th percentiles around ``p50``, the 15-85 spread 2 unless given per step."""
    half = [s / 2 for s in spread] if spread is not None else [1.0] * len(p50)
    return {
        "15": [p - h for p, h in zip(p50, half, strict=True)],
        "50": p50,
        "85": [p + h for p, h in zip(p50, half, strict=True)],
    }


def noisy_metrics() -> dict[str, Any]:
    """Final accuracy: baseline 0.90, BN 0.97, noisy BN 0.96, baseline + noise 0.85. Percentile
    moves per evaluation: baseline 0.5, BN 0.1, noisy BN 1.0, baseline + noise 2.0."""
    return {
        "runs": [
            run("baseline", 0, [0.8, 0.85, 0.9], percentiles=percentiles([0.0, 0.5, 1.0])),
            run("bn", 0, [0.9, 0.95, 0.97], percentiles=percentiles([0.0, 0.1, 0.2])),
            run("noisy_bn", 0, [0.9, 0.94, 0.96], percentiles=percentiles([0.0, 1.0, 0.0])),
            run("baseline_noisy", 0, [0.7, 0.8, 0.85], percentiles=percentiles([0.0, 2.0, 0.0])),
        ]
    }


def one_evaluation(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` cut to their first evaluation step (every curve, percentiles included)."""

    def first(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: first(v) for k, v in value.items()}
        return value[:1] if isinstance(value, list) else value

    return {**metrics, "runs": [first(r) for r in metrics["runs"]]}


def ics(distance: list[float], cosine: list[float]) -> dict[str, Any]:
    """The same ICS at every step, per layer 1..3 (layer 1's is 0 and 1)."""
    return {
        "distance": {str(k + 1): [d] * len(STEPS) for k, d in enumerate([0.0, *distance])},
        "cosine": {str(k + 1): [c] * len(STEPS) for k, c in enumerate([1.0, *cosine])},
    }


def ics_metrics() -> dict[str, Any]:
    """BN/standard ICS ratio: layer 2 x2, layer 3 x0.5; cos: BN lower in layer 2, higher in 3."""
    return {
        "runs": [
            run("baseline", s, [0.9, 0.9, 0.9], ics=ics([1.0, 2.0], [0.9, 0.5])) for s in (0, 1)
        ]
        + [run("bn", s, [0.9, 0.9, 0.9], ics=ics([2.0, 1.0], [0.8, 0.9])) for s in (0, 1)]
    }


def landscape(loss: tuple[float, float], change_max: list[float], beta: float) -> dict[str, Any]:
    n = len(STEPS)
    return {
        "loss_min": [loss[0]] * n,
        "loss_max": [loss[1]] * n,
        "grad_change_min": [c / 2 for c in change_max],
        "grad_change_max": change_max,
        "beta_smoothness": [beta] * n,
    }


def landscape_metrics() -> dict[str, Any]:
    """Standard: loss range 1.0, gradient change 100/10/10, beta 50. BN: range 0.1, change
    1/1/2, beta 5. l1: range 2.0 (wider), change 5, beta 10."""
    return {
        "runs": [
            run(
                "baseline", 0, [0.8, 0.85, 0.9], landscape=landscape((1.0, 2.0), [100, 10, 10], 50)
            ),
            run("bn", 0, [0.9, 0.95, 0.97], landscape=landscape((1.0, 1.1), [1, 1, 2], 5)),
            run("lp1", 0, [0.9, 0.95, 0.965], landscape=landscape((1.0, 3.0), [5, 5, 5], 10)),
        ]
    }


def lp_norm_metrics() -> dict[str, Any]:
    """landscape_metrics, with l2 and l-inf normalization measuring as l1 does."""
    metrics = landscape_metrics()
    (lp1,) = (r for r in metrics["runs"] if r["variant"] == "lp1")
    extra = [{**lp1, "variant": v} for v in ("lp2", "lpinf")]
    return {"runs": [*metrics["runs"], *extra]}


def placement_metrics() -> dict[str, Any]:
    """Final accuracy: baseline 0.90, BN before 0.97, BN after 0.95. Median move (max - min):
    before 0.2, after 1.0; 15-85 spread move: before 0, after 2."""
    return {
        "runs": [
            run("baseline", 0, [0.8, 0.85, 0.9], percentiles=percentiles([0.0, 0.5, 1.0])),
            run("bn_before", 0, [0.9, 0.95, 0.97], percentiles=percentiles([0.0, 0.1, 0.2])),
            run(
                "bn_after",
                0,
                [0.9, 0.93, 0.95],
                percentiles=percentiles([0.0, 1.0, 0.5], spread=[2.0, 3.0, 4.0]),
            ),
        ]
    }
