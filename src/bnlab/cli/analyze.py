"""`bnlab analyze ...`: Santurkar et al.'s experiments and Ioffe & Szegedy's learning-rate and
placement claims on the engine, one subcommand per registered analysis.

Every subcommand takes the same run options (--out, --seeds, --steps/--epochs, ...) and the
analysis's own (its ``options``); the commands are built from the registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from bnlab.cli.options import out_option, quiet_option, skip_resources_option
from bnlab.cli.progress import Plan, training_progress
from bnlab.cli.reproduce import build_config
from bnlab.cli.signals import stop_on_signals
from bnlab.engine.devices import enable_compile_cache
from bnlab.experiments import ANALYSES, ExperimentRun
from bnlab.experiments.run import prepare_experiment, run_experiment
from bnlab.experiments.rundir import saved_config
from bnlab.experiments.santurkar import Analysis, AnalysisConfig
from bnlab.outputs.report import show_value
from bnlab.outputs.verdicts import AGREEMENT

analyze_app = typer.Typer(
    help="Santurkar et al. (2018)'s analyses of BN, and Ioffe & Szegedy's learning-rate and "
    "placement claims, on the paper preset's MLP (convnet-lr: on LeNet-5). Each writes a run "
    "directory with a report.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _option(annotation: Any, help_text: str, *names: str) -> Any:
    return Annotated[annotation, typer.Option(*names, help=help_text)]


# name -> (type, help): the options every analysis takes (None: the analysis's default)
RUN_OPTIONS: dict[str, tuple[Any, str]] = {
    "seeds": (int | None, "Seeds per network, trained together."),
    "steps": (int | None, "Training length in steps."),
    "epochs": (int | None, "Training length in epochs (1,000 steps of 60)."),
    "eval_every": (int | None, "Steps between measurements."),
    "lr": (float | None, "Learning rate (x1)."),
    "init": (
        str | None,
        "Weights: glorot_uniform (Keras's default) or gaussian N(0, 0.01^2) (the paper preset's).",
    ),
    "first_seed": (int | None, "The first seed (then +1, +2...)."),
}


def make_config(
    analysis: Analysis,
    run_options: dict[str, Any],
    settings: Any = None,
    saved: AnalysisConfig | None = None,
) -> AnalysisConfig:
    """The analysis's defaults (or ``saved``, a resumed run's config) with the options given
    (None: not given) applied."""
    run_options = dict(run_options)
    epochs = run_options.pop("epochs", None)
    start = saved or analysis.default_config()
    experiment = build_config(None, epochs, run_options, start.base)
    return AnalysisConfig(experiment, start.settings if settings is None else settings)


def print_summary(result: ExperimentRun, console: Console) -> None:
    """Final test accuracy per network, the verdicts, time, and where the files are."""
    analysis, config, metrics = result.experiment, result.config, result.metrics
    table = Table(title=f"bnlab analyze {analysis.name}: final test accuracy (mean)")
    for column in ("network", "test accuracy", "diverged seeds"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for s in analysis.summary(config, metrics):
        accuracy = f"{s.final_accuracy:.4f}" if np.isfinite(s.final_accuracy) else "—"
        table.add_row(s.label, accuracy, str(s.diverged))
    console.print(table)
    for v in analysis.verdicts(config, metrics):
        console.print(f"- {v.name}: {AGREEMENT[v.agrees]} ({v.ours})")
    console.print(f"time: {result.timing['total_s']:.1f} s in all")
    for name in ("report", "metrics", "tensorboard"):
        console.print(f"{name:>12}: {result.files[name]}")
    console.print(f"view the logs: tensorboard --logdir {result.files['tensorboard']}")


def _run(
    analysis: Analysis,
    config: AnalysisConfig,
    out: Path | None,
    resume: bool,
    overwrite: bool,
    check_resources: bool,
    quiet: bool,
) -> None:
    prepared = prepare_experiment(
        analysis, config, out, resume=resume, overwrite=overwrite, check_resources=check_resources
    )
    enable_compile_cache()
    with (
        stop_on_signals() as stop,
        training_progress(f"analyze {analysis.name}", Plan.of(prepared), quiet=quiet) as bar,
    ):
        result = run_experiment(prepared, progress=bar, stop=stop)
    print_summary(result, Console())


def _command(analysis: Analysis) -> Callable[..., None]:
    """A subcommand: the run options, and the analysis's own turned into its settings."""

    def command(
        out: Path | None,
        resume: bool,
        overwrite: bool,
        skip_resource_check: bool,
        quiet: bool,
        **kwargs: Any,
    ) -> None:
        run_options = {k: kwargs.pop(k) for k in RUN_OPTIONS}
        given = any(v is not None for v in kwargs.values())
        settings = analysis.settings_from_options(**kwargs) if given else None
        saved = saved_config(analysis, out) if resume and out is not None else None
        config = make_config(analysis, run_options, settings, saved)
        _run(analysis, config, out, resume, overwrite, not skip_resource_check, quiet)

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "out",
            keyword,
            default=None,
            annotation=Annotated[
                Path | None, out_option(f"Run directory. Default: runs/{analysis.name}-<time>.")
            ],
        ),
        inspect.Parameter(
            "resume",
            keyword,
            default=False,
            annotation=_option(
                bool, "Continue the interrupted run in --out (its options).", "--resume"
            ),
        ),
        inspect.Parameter(
            "overwrite",
            keyword,
            default=False,
            annotation=_option(bool, "Replace the bnlab run already in --out.", "--overwrite"),
        ),
        inspect.Parameter(
            "skip_resource_check",
            keyword,
            default=False,
            annotation=Annotated[bool, skip_resources_option()],
        ),
        inspect.Parameter(
            "quiet", keyword, default=False, annotation=Annotated[bool, quiet_option()]
        ),
    ]
    base = analysis.default_config().base
    defaults = {
        n: f" [default: {show_value(getattr(base, n))}]" for n in RUN_OPTIONS if hasattr(base, n)
    }
    params += [
        inspect.Parameter(
            name, keyword, default=None, annotation=_option(kind, text + defaults.get(name, ""))
        )
        for name, (kind, text) in {**RUN_OPTIONS, **analysis.options}.items()
    ]
    command.__signature__ = inspect.Signature(params)  # typer reads the options from here
    command.__doc__ = analysis.summary_line
    command.__name__ = analysis.name.replace("-", "_")
    return command


for _analysis in ANALYSES:
    analyze_app.command(_analysis.name)(_command(_analysis))
