"""`bnlab reproduce` and `bnlab summary`: Figure 1 of the BN paper, and its two networks' layers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bnlab.cli.progress import training_progress
from bnlab.engine.devices import enable_compile_cache
from bnlab.errors import ConfigError
from bnlab.experiments.presets import ExperimentConfig, preset
from bnlab.experiments.reproduce import (
    ReproduceResult,
    model_summaries,
    prepare_reproduce,
    run_reproduce,
    saved_config,
)

PresetOpt = Annotated[
    str | None, typer.Option("--preset", help="seed (the notebook) or paper (Section 4.1).")
]
HiddenOpt = Annotated[
    str | None, typer.Option("--hidden", help="Hidden layer sizes, comma-separated: 100,100,100.")
]
PlacementOpt = Annotated[
    str | None, typer.Option("--bn-placement", help="BN 'before' or 'after' the activation.")
]
BiasOpt = Annotated[
    bool | None,
    typer.Option("--bias-before-bn/--no-bias-before-bn", help="Keep the Dense bias before BN."),
]


def _ints(option: str, text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated integers, got {text!r}") from None


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(v.strip() for v in text.split(","))


def build_config(
    preset_name: str | None, epochs: int | None, overrides: dict[str, Any], base=None
) -> ExperimentConfig:
    """The preset (or ``base``, a resumed run's config) with the options given on the command
    line applied; ``--epochs`` is converted to steps at the resolved batch size."""
    config = base if base is not None else preset(preset_name or "seed")
    if base is not None and preset_name is not None and preset_name != base.preset:
        raise ConfigError(
            f"--preset: the run being resumed is {base.preset!r}, got {preset_name!r}"
        )
    if epochs is not None:
        if overrides.get("steps") is not None:
            raise ConfigError("--epochs and --steps: expected one of them, got both")
        if epochs < 1:
            raise ConfigError(f"--epochs: expected at least 1, got {epochs}")
        batch = overrides.get("batch_size") or config.batch_size
        overrides = {
            **overrides,
            "steps": epochs * ExperimentConfig(batch_size=batch).steps_per_epoch(),
        }
    return config.replace(**overrides)


def reproduce(
    preset_name: PresetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory. Default: runs/<preset>-<time>.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run in --out.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the bnlab run already in --out.")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Training length in epochs.")] = None,
    steps: Annotated[int | None, typer.Option(help="Training length in steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per network, trained together.")] = None,
    first_seed: Annotated[int | None, typer.Option(help="The first seed (then +1, +2...).")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between measurements.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per mini-batch.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="rmsprop or sgd.")] = None,
    rho: Annotated[float | None, typer.Option(help="RMSprop decay.")] = None,
    opt_eps: Annotated[
        float | None, typer.Option(help="RMSprop epsilon (inside the root).")
    ] = None,
    momentum: Annotated[float | None, typer.Option(help="Optimiser momentum (0: none).")] = None,
    init: Annotated[str | None, typer.Option(help="glorot_uniform or gaussian.")] = None,
    init_std: Annotated[float | None, typer.Option(help="Std of the gaussian init.")] = None,
    input_mode: Annotated[str | None, typer.Option("--input", help="scale or binary.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Binarisation threshold.")] = None,
    activation: Annotated[str | None, typer.Option(help="sigmoid, tanh or relu.")] = None,
    hidden: HiddenOpt = None,
    bn_placement: PlacementOpt = None,
    bias_before_bn: BiasOpt = None,
    bn_eps: Annotated[float | None, typer.Option(help="BN epsilon.")] = None,
    bn_momentum: Annotated[
        float | None, typer.Option(help="Weight of a new batch in BN's running statistics.")
    ] = None,
    variants: Annotated[
        str | None, typer.Option(help="Networks to train, comma-separated: baseline,bn.")
    ] = None,
    hist_examples: Annotated[
        int | None, typer.Option(help="Test images in the TensorBoard histograms.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="MNIST-format IDX directory. Default: embedded MNIST.")
    ] = None,
) -> None:
    """Train the networks of Figure 1 (without and with BN) and write metrics, TensorBoard logs,
    the figure and a report."""
    overrides = dict(
        steps=steps,
        lr=lr,
        seeds=seeds,
        first_seed=first_seed,
        eval_every=eval_every,
        batch_size=batch_size,
        optimizer=optimizer,
        rho=rho,
        opt_eps=opt_eps,
        momentum=momentum,
        init=init,
        init_std=init_std,
        input=input_mode,
        threshold=threshold,
        activation=activation,
        hidden=_ints("--hidden", hidden),
        bn_placement=bn_placement,
        bias_before_bn=bias_before_bn,
        bn_eps=bn_eps,
        bn_momentum=bn_momentum,
        variants=_names(variants),
        hist_examples=hist_examples,
        data_dir=None if data_dir is None else str(data_dir),
    )
    base = saved_config(out) if resume and out is not None else None
    config = build_config(preset_name, epochs, overrides, base)
    prepared = prepare_reproduce(config, out, resume=resume, overwrite=overwrite)
    enable_compile_cache()
    with training_progress(f"{config.preset}: training", config.steps) as progress:
        result = run_reproduce(prepared, progress=progress)
    print_summary(result, Console())


def _mean_std(values: list[float | None]) -> str:
    import numpy as np

    kept = np.array([v for v in values if v is not None], dtype=float)
    if not len(kept):
        return "-"
    if len(kept) == 1:
        return f"{kept[0]:.4f}"
    return f"{kept.mean():.4f} ± {kept.std(ddof=1):.4f}"


def print_summary(result: ReproduceResult, console: Console) -> None:
    """One screen: final accuracies per network, time, and where every file is."""
    runs = result.metrics["runs"]
    table = Table(
        title=f"Test accuracy after {result.config.steps:,} steps (mean ± std over seeds)"
    )
    for col in ("network", "seeds", "moving averages", "population (Alg. 2)", "batch stats 60/1"):
        table.add_column(col, justify="left" if col == "network" else "right")
    b = str(result.config.batch_size)
    for variant in result.config.variants:
        rs = [r for r in runs if r["variant"] == variant]
        diverged = sum(r["diverged_at"] is not None for r in rs)
        last = [r["test_accuracy"][-1] if r["test_accuracy"] else None for r in rs]
        has_bn = "population_test_accuracy" in rs[0]
        table.add_row(
            variant + (f" ({diverged} diverged)" if diverged else ""),
            str(len(rs)),
            _mean_std(last),
            _mean_std([r["population_test_accuracy"] for r in rs]) if has_bn else "-",
            (
                _mean_std([r["batch_stats_test_accuracy"][b] for r in rs])
                + " / "
                + _mean_std([r["batch_stats_test_accuracy"]["1"] for r in rs])
            )
            if has_bn
            else "-",
        )
    console.print(table)
    t = result.timing
    console.print(
        f"time: {t['total_s']:.1f} s in all (training {t['train_s']:.1f} s, compiling "
        f"{t['compile_s']:.1f} s, on {t['devices']} CPU device(s)); peak memory "
        f"{t['peak_rss_mb']:.0f} MB"
    )
    for name, path in result.files.items():
        console.print(f"{name:>12}: {path}")
    if "tensorboard" in result.files:
        console.print(f"view the logs: tensorboard --logdir {result.files['tensorboard']}")


def summary(
    preset_name: PresetOpt = None,
    hidden: HiddenOpt = None,
    bn_placement: PlacementOpt = None,
    bias_before_bn: BiasOpt = None,
) -> None:
    """Keras-like layer tables (name, output shape, parameters) of the preset's two networks."""
    config = build_config(
        preset_name,
        None,
        dict(
            hidden=_ints("--hidden", hidden),
            bn_placement=bn_placement,
            bias_before_bn=bias_before_bn,
        ),
    )
    console = Console()
    for variant, rows in model_summaries(config).items():
        table = Table(title=f'Model: "{variant}" (preset {config.preset})')
        table.add_column("Layer")
        table.add_column("Output Shape")
        table.add_column("Param #", justify="right")
        for name, shape, params in rows:
            table.add_row(name, shape, f"{params:,}")
        console.print(table)
        console.print(f"Total params: {sum(r[2] for r in rows):,}")
        if config.model_spec(variant).has_bn:
            state = 2 * sum(config.hidden)
            console.print(f"BN running statistics (state, not parameters): {state:,} values")
