"""`bnlab sweep CONFIG.toml`: a grid of runs as programs sharded over every device, each device
training its runs vmapped or one after another (the file's ``layout``; default: as measured)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bnlab.cli.options import out_option, quiet_option, skip_resources_option
from bnlab.cli.progress import Plan, training_progress
from bnlab.cli.signals import stop_on_signals
from bnlab.errors import ConfigError

# hosts of one multi-host run; jax.distributed counts them as int32, and a larger number is a typo
MAX_PROCESSES = 1024


def start_distributed(
    coordinator: str | None, num_processes: int | None, process_id: int | None, timeout: int = 300
):
    """Join a multi-host run (docs/sweep.md) before JAX starts; nothing when none is asked."""
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if not any(given):
        return
    if not all(given):
        raise ConfigError(
            "--coordinator, --num-processes, --process-id: expected all three or none, got "
            + ", ".join(
                n
                for n, g in zip(("coordinator", "num-processes", "process-id"), given, strict=True)
                if g
            )
        )
    if not 1 <= num_processes <= MAX_PROCESSES:
        raise ConfigError(
            f"--num-processes: expected 1..{MAX_PROCESSES:,} (hosts), got {num_processes}"
        )
    if not 0 <= process_id < num_processes:
        raise ConfigError(
            f"--process-id: expected 0 <= id < --num-processes ({num_processes}), got {process_id}"
        )
    host, port = _host_port(coordinator)
    if not 1 <= timeout <= 86_400:
        raise ConfigError(f"--startup-timeout: expected 1..86400 seconds, got {timeout}")
    try:
        socket.getaddrinfo(host, port)
    except OSError as e:
        raise ConfigError(f"--coordinator {coordinator}: unknown host ({e.strerror})") from None
    if process_id > 0:
        # JAX's client aborts the whole process (no exception) when process 0 never answers
        _wait_for(host, port, timeout, coordinator)
    import jax

    jax.distributed.initialize(
        f"{host}:{port}", num_processes, process_id, initialization_timeout=timeout
    )


def _wait_for(host: str, port: int, timeout: int, coordinator: str) -> None:
    """Until process 0's coordinator accepts a connection, or refuse after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=min(5.0, timeout)).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"--coordinator {coordinator}: process 0 did not answer within {timeout} s "
                    "(--startup-timeout); start it first, with the same --coordinator"
                ) from None
            time.sleep(0.5)


def _host_port(coordinator: str) -> tuple[str, int]:
    host, sep, port = coordinator.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65_535:
        raise ConfigError(
            f"--coordinator: expected HOST:PORT with a port in 1..65535, got {coordinator!r}"
        )
    return host, int(port)


def sweep(
    config: Annotated[Path, typer.Argument(help="The sweep file (TOML); see docs/sweep.md.")],
    out: Annotated[
        Path | None, out_option("Run directory. Default: runs/sweep-<name>-<time>.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the bnlab sweep already in --out.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the interrupted sweep in --out (same file, one process, same devices).",
        ),
    ] = False,
    coordinator: Annotated[
        str | None, typer.Option(help="Multi-host: process 0's HOST:PORT (jax.distributed).")
    ] = None,
    num_processes: Annotated[int | None, typer.Option(help="Multi-host: number of hosts.")] = None,
    process_id: Annotated[int | None, typer.Option(help="Multi-host: this host's index.")] = None,
    skip_resource_check: Annotated[bool, skip_resources_option()] = False,
    quiet: Annotated[bool, quiet_option()] = False,
    startup_timeout: Annotated[
        int, typer.Option(help="Multi-host: seconds to wait for every process to join.")
    ] = 300,
    devices: Annotated[
        int | None, typer.Option(help="Use the first N devices (default: all; CPU: one per core).")
    ] = None,
) -> None:
    """Train every cell of a grid (seeds x learning rates x variants x any config field) and
    write one run directory with a summary per cell."""
    import jax

    from bnlab.engine.devices import default_mesh, enable_compile_cache
    from bnlab.experiments import SWEEP, load_sweep
    from bnlab.experiments.run import prepare_experiment, run_experiment

    sweep_config = load_sweep(config)
    start_distributed(coordinator, num_processes, process_id, startup_timeout)
    mesh = default_mesh(devices)
    prepared = prepare_experiment(
        SWEEP,
        sweep_config,
        out,
        resume=resume,
        overwrite=overwrite,
        mesh=mesh,
        check_resources=not skip_resource_check,
    )
    enable_compile_cache()
    with (
        stop_on_signals(_continue_command(config, devices)) as stop,
        training_progress(
            f"sweep {config.name}: training", Plan.of(prepared), quiet=quiet
        ) as update,
    ):

        def steps_only(step: int, total: int, latest) -> None:
            # a grid has too many networks for one line: steps only ({} at an evaluation)
            update(step, total, None if latest is None else {})

        # hosts stop together or not at all: a signal reaches one process only
        alone = jax.process_count() == 1
        result = run_experiment(prepared, progress=steps_only, stop=stop if alone else None)

    if jax.process_index() == 0:
        print_summary(result, Console())


def _continue_command(config: Path, devices: int | None) -> list[str]:
    """What continues an interrupted sweep, before --out and --resume: the same file, and the
    same device count (a checkpoint resumes only on as many devices)."""
    return ["sweep", str(config), *(["--devices", str(devices)] if devices is not None else [])]


def print_summary(result, console: Console) -> None:
    """The per-cell table, speed, and where the files are."""
    from bnlab.experiments.sweep.config import show_cell_value
    from bnlab.experiments.sweep.report import cell_rows

    axes = list(result.config.grid)
    labels = result.experiment.labels(result.config)
    table = Table(title="Final test accuracy per grid cell (mean ± std over seeds)")
    for col in (*axes, "network", "runs", "test accuracy", "diverged"):
        table.add_column(col, justify="left" if col == "network" else "right")
    for r in cell_rows(result.metrics, axes):
        table.add_row(
            *(show_cell_value(r["cell"][a]) for a in axes),
            labels[r["variant"]],
            str(r["seeds"]),
            r["mean_std"],
            str(len(r["diverged"])),
        )
    console.print(table)
    t = result.timing
    speed = t.get("runs_x_steps_per_s")
    console.print(
        f"{t['runs']} runs in {t['programs']} program group(s) on {t['devices']} device(s)"
        f" ({'/'.join(sorted({c['layout'] for c in t['layout']['programs']}))}): "
        f"training {t['train_s']:.1f} s"
        + (f" ({speed:,.0f} run-steps/s)" if speed else "")
        + f", compiling {t['compile_s']:.1f} s, {t['total_s']:.1f} s in all"
    )
    for name, path in result.files.items():
        console.print(f"{name:>12}: {path}")
    if "tensorboard" in result.files:
        console.print(f"view the logs: tensorboard --logdir {result.files['tensorboard']}")
