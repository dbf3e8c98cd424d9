"""`bnlab reproduce` and `bnlab summary`: Figure 1 of the BN paper, and its two networks' layers.

Their options are made from the config's fields (:mod:`bnlab.cli.options`), so every field is an
option, with each preset's default in its help.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bnlab.cli.options import (
    KEYWORD,
    field_parameters,
    field_values,
    out_option,
    quiet_option,
    skip_resources_option,
)
from bnlab.cli.progress import Plan, training_progress
from bnlab.cli.signals import stop_on_signals
from bnlab.engine.devices import enable_compile_cache
from bnlab.errors import ConfigError
from bnlab.experiments import FIGURE1, ExperimentRun, model_summaries
from bnlab.experiments.config import INT32_MAX, ExperimentConfig
from bnlab.experiments.fields import FIELD_HELP
from bnlab.experiments.network import VARIANTS
from bnlab.experiments.presets import preset
from bnlab.experiments.run import prepare_experiment, run_experiment
from bnlab.experiments.rundir import saved_config
from bnlab.outputs.report_tables import param_totals
from bnlab.outputs.series import show_mean_std

PRESET_HELP = "seed (the notebook's setup) or paper (Section 4.1). [default: seed]"
# the config fields `bnlab summary` takes (the networks' shapes)
SHAPE_FIELDS = ["conv", "hidden", "activation", "bn_placement", "bias_before_bn"]
RUN_FIELDS = list(FIELD_HELP)


def _option(annotation: Any, name: str, help_text: str, default: Any = None) -> Any:
    return inspect.Parameter(
        name.removeprefix("--").replace("-", "_"),
        KEYWORD,
        default=default,
        annotation=Annotated[annotation, typer.Option(name, help=help_text)],
    )


PRESET = inspect.Parameter(
    "preset_name",
    KEYWORD,
    default=None,
    annotation=Annotated[str | None, typer.Option("--preset", help=PRESET_HELP)],
)


def build_config(
    preset_name: str | None, epochs: int | None, overrides: dict[str, Any], base=None
) -> ExperimentConfig:
    """The preset (or ``base``, a resumed run's config) with the options given on the command
    line applied; ``--epochs`` is converted to steps at the resolved batch size."""
    config = base if base is not None else preset("seed" if preset_name is None else preset_name)
    if base is not None and preset_name is not None and preset_name != base.preset:
        raise ConfigError(
            f"--preset: the run being resumed is {base.preset!r}, got {preset_name!r}"
        )
    if epochs is not None:
        if overrides.get("steps") is not None:
            raise ConfigError("--epochs and --steps: expected one of them, got both")
        batch = overrides.get("batch_size") or config.batch_size
        per_epoch = ExperimentConfig(batch_size=batch).steps_per_epoch()
        if not 1 <= epochs <= INT32_MAX // per_epoch:
            raise ConfigError(
                f"--epochs: expected 1..{INT32_MAX // per_epoch:,} (steps counted as int32), "
                f"got {epochs}"
            )
        overrides = {
            **overrides,
            "steps": epochs * per_epoch,
        }
    return config.replace(**overrides)


def reproduce(**kwargs: Any) -> None:
    """Train the networks of Figure 1 (without and with BN) and write metrics, TensorBoard logs,
    the figure and a report."""
    preset_name, out, epochs = kwargs.pop("preset_name"), kwargs.pop("out"), kwargs.pop("epochs")
    resume, overwrite = kwargs.pop("resume"), kwargs.pop("overwrite")
    check_resources = not kwargs.pop("skip_resource_check")
    quiet = kwargs.pop("quiet")
    overrides = field_values(kwargs, RUN_FIELDS)
    base = saved_config(FIGURE1, out) if resume and out is not None else None
    config = build_config(preset_name, epochs, overrides, base)
    warn_momentum(config)
    prepared = prepare_experiment(
        FIGURE1, config, out, resume=resume, overwrite=overwrite, check_resources=check_resources
    )
    enable_compile_cache()
    with (
        stop_on_signals() as stop,
        training_progress(f"{config.preset}: training", Plan.of(prepared), quiet=quiet) as progress,
    ):
        result = run_experiment(prepared, progress=progress, stop=stop)
    print_summary(result, Console())


reproduce.__signature__ = inspect.Signature(  # typer reads the options from here
    [
        PRESET,
        inspect.Parameter(
            "out",
            KEYWORD,
            default=None,
            annotation=Annotated[
                Path | None, out_option("Run directory. [default: runs/<preset>-<time>]")
            ],
        ),
        _option(bool, "--resume", "Continue the interrupted run in --out.", False),
        _option(bool, "--overwrite", "Replace the bnlab run already in --out.", False),
        inspect.Parameter(
            "skip_resource_check",
            KEYWORD,
            default=False,
            annotation=Annotated[bool, skip_resources_option()],
        ),
        inspect.Parameter(
            "quiet", KEYWORD, default=False, annotation=Annotated[bool, quiet_option()]
        ),
        _option(int | None, "--epochs", "Training length in epochs (instead of --steps)."),
        *field_parameters(RUN_FIELDS),
    ]
)


def warn_momentum(config: ExperimentConfig) -> None:
    """A BN momentum above 0.5 is most likely Keras's convention given to bnlab's."""
    if config.bn_momentum > 0.5:
        print(
            f"bnlab: warning: --bn-momentum {config.bn_momentum:g} is the weight of the newest "
            "batch (PyTorch's convention): the running statistics then follow the last few "
            f"batches; Keras's momentum {config.bn_momentum:g} is bnlab's "
            f"{1 - config.bn_momentum:.2g}",
            file=sys.stderr,
        )


def print_summary(result: ExperimentRun, console: Console) -> None:
    """One screen: final accuracies per network, time, and where every file is."""
    runs = result.metrics["runs"]
    table = Table(
        title=f"Test accuracy after {result.config.steps:,} steps (mean ± std over seeds)"
    )
    for col in ("network", "seeds", "moving averages", "population (Alg. 2)", "batch stats 60/1"):
        table.add_column(col, justify="left" if col == "network" else "right")
    b = str(result.config.batch_size)
    labels = FIGURE1.labels(result.config)
    for variant, label in labels.items():
        rs = [r for r in runs if r["variant"] == variant]
        diverged = sum(r["diverged_at"] is not None for r in rs)
        last = [r["test_accuracy"][-1] if r["test_accuracy"] else None for r in rs]
        has_bn = "population_test_accuracy" in rs[0]
        table.add_row(
            label + (f" ({diverged} diverged)" if diverged else ""),
            str(len(rs)),
            show_mean_std(last),
            show_mean_std([r["population_test_accuracy"] for r in rs]) if has_bn else "-",
            (
                show_mean_std([r["batch_stats_test_accuracy"][b] for r in rs])
                + " / "
                + show_mean_std([r["batch_stats_test_accuracy"]["1"] for r in rs])
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


def summary(**kwargs: Any) -> None:
    """Keras's model summaries (layer, output shape, parameters; total, trainable and
    non-trainable) of the preset's two networks."""
    preset_name = kwargs.pop("preset_name")
    config = build_config(preset_name, None, field_values(kwargs, SHAPE_FIELDS))
    console = Console()
    for variant, rows in model_summaries(config).items():
        network = VARIANTS[variant]
        table = Table(title=f'Model: "{variant}" ({network.label}, preset {config.preset})')
        table.add_column("Layer")
        table.add_column("Output Shape")
        table.add_column("Param #", justify="right")
        for row in rows:
            table.add_row(row.name, row.shape, f"{row.params:,}")
        console.print(table)
        for line in param_totals(rows):
            console.print(line)


summary.__signature__ = inspect.Signature([PRESET, *field_parameters(SHAPE_FIELDS)])
