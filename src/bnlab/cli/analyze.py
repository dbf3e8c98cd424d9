"""`bnlab analyze ...`: Santurkar et al.'s experiments and the learning-rate sweep on the engine.

Every subcommand takes the same run options (--out, --seeds, --steps/--epochs, ...) and a few of
its own; the commands are built from one function and a list of those extra options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bnlab.cli.progress import training_progress
from bnlab.cli.reproduce import build_config
from bnlab.core.noise import NoiseConfig
from bnlab.errors import ConfigError
from bnlab.experiments.analyses.config import ANALYSES, AnalysisConfig
from bnlab.experiments.analyses.report import analysis_verdicts
from bnlab.experiments.analyses.run import AnalysisResult, prepare_analysis, run_analysis
from bnlab.experiments.analyses.verdicts import final_accuracy
from bnlab.experiments.presets import PAPER
from bnlab.outputs import series as S
from bnlab.outputs.claims import AGREEMENT

analyze_app = typer.Typer(
    help="Santurkar et al. (2018)'s analyses of BN, and Ioffe & Szegedy's learning-rate claim, "
    "on the paper preset's MLP. Each writes a run directory with a report.",
    no_args_is_help=True,
)


def _option(annotation: Any, help_text: str, *names: str) -> Any:
    return Annotated[annotation, typer.Option(*names, help=help_text)]


# name -> (type, help): the options every analysis takes (None: the analysis's default)
RUN_OPTIONS: dict[str, tuple[Any, str]] = {
    "seeds": (int | None, "Seeds per network, trained together."),
    "steps": (int | None, "Training length in steps."),
    "epochs": (int | None, "Training length in epochs (1,000 steps of 60)."),
    "eval_every": (int | None, "Steps between measurements."),
    "lr": (float | None, "SGD learning rate (x1). Default 0.5."),
    "first_seed": (int | None, "The first seed (then +1, +2...)."),
}
LANDSCAPE_OPTIONS = {
    "step_range": (str | None, "Step sizes as multiples of the lr: LOW,HIGH. Default 0.5,4."),
    "step_count": (int | None, "Number of step sizes. Default 8."),
}
NOISE_OPTIONS = {
    "noise_mean": (str | None, "Range of the per-step mean mu_t: LOW,HIGH. Default -0.5,0.5."),
    "noise_scale": (str | None, "Range of the per-step scale sigma_t: LOW,HIGH. Default 1,1.25."),
    "noise_jitter": (float | None, "Half-width of m_ij around mu_t. Default 0.1."),
    "noise_std": (float | None, "Std of s_ij around sigma_t. Default 0.1."),
}
SWEEP_OPTIONS = {
    "multipliers": (str | None, "Learning-rate multipliers, comma-separated. Default 1,5,30."),
    "target": (
        str | None,
        "Target test accuracy, or 'baseline': the x1 baseline's best (the paper's). Default 0.93.",
    ),
}


def _floats(option: str, text: str | None, count: int | None = None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise ConfigError(f"{option}: expected {count} comma-separated numbers, got {text!r}")
    return values


def _landscape_settings(step_range: str | None, step_count: int | None) -> dict[str, Any]:
    return dict(landscape_range=_floats("--step-range", step_range, 2), landscape_steps=step_count)


def _noise_settings(noise_mean, noise_scale, noise_jitter, noise_std) -> dict[str, Any]:
    d = NoiseConfig()
    mean = _floats("--noise-mean", noise_mean, 2) or (d.mean_low, d.mean_high)
    scale = _floats("--noise-scale", noise_scale, 2) or (d.scale_low, d.scale_high)
    jitter = d.mean_jitter if noise_jitter is None else noise_jitter
    std = d.scale_std if noise_std is None else noise_std
    return dict(noise=NoiseConfig(*mean, *scale, jitter, std))


def _sweep_settings(multipliers: str | None, target: str | None) -> dict[str, Any]:
    if target is not None and target != "baseline":
        target = _floats("--target", target, 1)[0]
    return dict(lr_multipliers=_floats("--multipliers", multipliers), target=target)


def make_config(analysis: str, run_options: dict[str, Any], **settings: Any) -> AnalysisConfig:
    """The analysis's defaults with the options given (None: not given) applied and validated."""
    run_options = dict(run_options)
    epochs = run_options.pop("epochs", None)
    base = PAPER.replace(**ANALYSES[analysis][1])
    experiment = build_config(None, epochs, run_options, base)
    given = {k: v for k, v in settings.items() if v is not None}
    return AnalysisConfig(analysis, experiment, **given).validate()


def print_summary(result: AnalysisResult, console: Console) -> None:
    """Final test accuracy per network, the verdicts, time, and where the files are."""
    metrics = result.metrics
    table = Table(title=f"bnlab analyze {result.config.analysis}: final test accuracy (mean)")
    for column in ("network", "test accuracy", "diverged seeds"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for v in S.variants(metrics):
        table.add_row(
            S.label(v), f"{final_accuracy(metrics, v):.4f}", str(len(S.diverged(metrics, v)))
        )
    console.print(table)
    for v in analysis_verdicts(result.config.to_dict(), metrics):
        console.print(f"- {v.name}: {AGREEMENT[v.agrees]} ({v.ours})")
    console.print(f"time: {result.timing['total_s']:.1f} s in all")
    for name in ("report", "metrics", "tensorboard"):
        console.print(f"{name:>12}: {result.files[name]}")
    console.print(f"view the logs: tensorboard --logdir {result.files['tensorboard']}")


def _run(config: AnalysisConfig, out: Path | None, overwrite: bool) -> None:
    prepared = prepare_analysis(config, out, overwrite=overwrite)
    phases = len(config.lr_multipliers) if config.analysis == "lr-sweep" else 1
    with training_progress(f"analyze {config.analysis}", config.experiment.steps * phases) as bar:
        result = run_analysis(prepared, progress=lambda s, _t, latest: bar(s, latest))
    print_summary(result, Console())


def _command(
    analysis: str,
    doc: str,
    options: dict[str, tuple[Any, str]] | None = None,
    settings: Callable[..., dict[str, Any]] = dict,
) -> Callable[..., None]:
    """A subcommand: the run options, ``options`` turned into ``settings`` of the analysis."""
    options = options or {}

    def command(out: Path | None, overwrite: bool, **kwargs: Any) -> None:
        run_options = {k: kwargs.pop(k) for k in RUN_OPTIONS}
        _run(make_config(analysis, run_options, **settings(**kwargs)), out, overwrite)

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "out",
            keyword,
            default=None,
            annotation=_option(
                Path | None, "Run directory. Default: runs/<analysis>-<time>.", "--out"
            ),
        ),
        inspect.Parameter(
            "overwrite",
            keyword,
            default=False,
            annotation=_option(bool, "Replace the bnlab run already in --out.", "--overwrite"),
        ),
    ]
    params += [
        inspect.Parameter(name, keyword, default=None, annotation=_option(kind, text))
        for name, (kind, text) in {**RUN_OPTIONS, **options}.items()
    ]
    command.__signature__ = inspect.Signature(params)  # typer reads the options from here
    command.__doc__ = doc
    command.__name__ = analysis.replace("-", "_")
    return command


COMMANDS = {
    "noisy-bn": _command(
        "noisy-bn",
        "Standard, BN, noisy BN and standard + noise: accuracy and a sigmoid input's percentiles.",
        NOISE_OPTIONS,
        _noise_settings,
    ),
    "ics": _command(
        "ics", "Internal covariate shift (Definition 2.1) per layer over training, standard vs BN."
    ),
    "landscape": _command(
        "landscape",
        "Loss variation, gradient predictiveness and beta-smoothness along the gradient.",
        LANDSCAPE_OPTIONS,
        _landscape_settings,
    ),
    "lp-norm": _command(
        "lp-norm",
        "l1, l2 and l_inf normalization beside BN and the baseline: accuracy and landscape.",
        LANDSCAPE_OPTIONS,
        _landscape_settings,
    ),
    "lr-sweep": _command(
        "lr-sweep",
        "SGD at several learning rates, without and with BN: steps to a target, best accuracy.",
        SWEEP_OPTIONS,
        _sweep_settings,
    ),
}
for _name, _function in COMMANDS.items():
    analyze_app.command(_name)(_function)
