"""A run directory's names and its config.json, for every experiment: what bnlab writes there
(and so what --overwrite may delete), refusing or clearing a directory, which experiment wrote it,
and the config a run was started with (for --resume and `bnlab report`).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from bnlab.engine.checkpoint import STATE_FILE, check_state, has_state
from bnlab.errors import BnlabError, ConfigError
from bnlab.experiments.experiment import Experiment
from bnlab.experiments.registry import EXPERIMENTS
from bnlab.files import atomic_write_bytes, atomic_write_json
from bnlab.outputs.report import REPORT_FILE
from bnlab.outputs.rundir import CONFIG_FILE, METRICS_FILE, STATUS_FILE, TIMING_FILE

CHECKPOINT_DIR, TENSORBOARD_DIR = "training_state", "tensorboard"
# the checkpoints' folder before it was renamed (TensorBoard's projector plugin takes anything
# named "checkpoint" for a TensorFlow checkpoint file): still read on --resume
OLD_CHECKPOINT_DIR = "checkpoint"
RUNNING, FAILED, INTERRUPTED, COMPLETE = "running", "failed", "interrupted", "complete"
# config.json's key naming the experiment that wrote the directory
EXPERIMENT_KEY = "experiment"


def outputs(experiment: Experiment) -> tuple[str, ...]:
    """Every name ``experiment`` writes in its run directory."""
    figures = tuple(f"{stem}.{ext}" for stem in experiment.figure_stems for ext in ("png", "svg"))
    every = (
        CONFIG_FILE,
        STATUS_FILE,
        METRICS_FILE,
        TIMING_FILE,
        TENSORBOARD_DIR,
        REPORT_FILE,
        CHECKPOINT_DIR,
    )
    return every + figures


def written_by_bnlab() -> tuple[str, ...]:
    """Every name any experiment writes in a run directory, or an older bnlab wrote (what
    --overwrite may delete)."""
    names = (n for e in EXPERIMENTS.values() for n in outputs(e))
    return tuple(dict.fromkeys([*names, OLD_CHECKPOINT_DIR]))


def experiment_of(config: dict[str, Any], run_dir: Path) -> Experiment:
    """The experiment that wrote a run directory with this config.json."""
    name = config.get(EXPERIMENT_KEY)
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise ConfigError(
            f'{run_dir / CONFIG_FILE}: expected "{EXPERIMENT_KEY}": one of '
            f"{', '.join(EXPERIMENTS)} (a run directory of this bnlab version), got {name!r}"
        )
    return EXPERIMENTS[name]


def default_out_dir(experiment: Experiment, config: Any) -> Path:
    return Path("runs") / f"{experiment.out_name(config)}-{datetime.now():%Y%m%d-%H%M%S}"


def config_dict(experiment: Experiment, config: Any) -> dict[str, Any]:
    """config.json's content: the experiment's name, then its config."""
    return {EXPERIMENT_KEY: experiment.name, **experiment.config_to_dict(config)}


def saved_config_dict(out_dir: Path) -> dict[str, Any] | None:
    """config.json of a run directory, or None when it has none."""
    path = Path(out_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ConfigError(f"{path}: not a bnlab config (nested too deeply)") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a bnlab config ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def saved_config(experiment: Experiment, out_dir: Path) -> Any | None:
    """The config a run directory of ``experiment`` was started with, or None without one."""
    data = saved_config_dict(out_dir)
    if data is None:
        return None
    name = data.pop(EXPERIMENT_KEY, experiment.name)
    if name != experiment.name:
        raise ConfigError(f"--resume: {out_dir} holds a {name!r} run, expected {experiment.name!r}")
    try:
        return experiment.config_from_dict(data, Path(out_dir))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ConfigError(f"{Path(out_dir) / CONFIG_FILE}: not a {name} config ({e})") from None


def check_resume(experiment: Experiment, config: Any, out_dir: Path, devices: int) -> None:
    """Refuse to resume ``out_dir`` with ``config`` unless it was started with the same config
    and has a readable state saved with each group's runs split over ``devices`` devices."""
    saved = saved_config_dict(out_dir)
    if saved is None:
        raise ConfigError(f"--resume: {out_dir} has no {CONFIG_FILE} to resume from")
    ours = config_dict(experiment, config)
    if saved != ours:
        changed = [
            f"{k} {saved.get(k)!r} -> {ours.get(k)!r}"
            for k in dict.fromkeys([*saved, *ours])
            if saved.get(k) != ours.get(k)
        ]
        raise ConfigError(
            f"--resume: the options differ from {out_dir / CONFIG_FILE}: {'; '.join(changed)}"
        )
    phases = experiment.phases(config)
    for k, phase in enumerate(phases):
        kept = checkpoint_dir(out_dir, k, len(phases))
        # a later phase has no state until it reaches its first checkpoint
        if k == 0 and not has_state(kept):
            raise ConfigError(
                f"--resume: {kept / STATE_FILE} is missing or empty: the run stopped before its "
                "first checkpoint (one epoch) or the file was deleted; nothing to continue, "
                "start it again with --overwrite"
            )
        check_state(kept, phase.train.steps, devices)


def checkpoint_dir(out_dir: Path, phase: int, phases: int) -> Path:
    """Where phase ``phase`` of ``phases`` keeps its checkpoints (in a run of an older bnlab,
    under the old folder name)."""
    root = out_dir / CHECKPOINT_DIR
    if not root.exists() and (out_dir / OLD_CHECKPOINT_DIR).is_dir():
        root = out_dir / OLD_CHECKPOINT_DIR
    return root if phases == 1 else root / f"phase{phase}"


def clear_out_dir(out_dir: Path, names: tuple[str, ...], *, overwrite: bool, hint: str) -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``, and then delete only ``names`` (what
    bnlab writes there): a directory holding anything else is never emptied."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: expected a directory, got a file")
    contents = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    if not contents:
        return
    if not overwrite:
        raise ConfigError(
            f"--out {out_dir}: directory is not empty; pass {hint}--overwrite to replace it"
        )
    foreign = [name for name in contents if name not in names]
    if foreign:
        raise ConfigError(
            f"--overwrite: {out_dir} holds files bnlab did not write ({', '.join(foreign[:5])}); "
            "expected a bnlab run directory"
        )
    for name in contents:
        path = out_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def write_status(out_dir: Path, status: str, error: str | None = None) -> None:
    """status.json: "running" from the start, "failed" (with the error) when the run stopped on
    one, "interrupted" when stopped on request (a signal), "complete" once every output is
    written. A directory that does not say "complete" is
    incomplete: --resume continues it, `bnlab report` refuses it."""
    content = {"status": status, "updated": datetime.now().isoformat(timespec="seconds")}
    if error is not None:
        content["error"] = error
    atomic_write_json(Path(out_dir) / STATUS_FILE, content)


def record_failure(out_dir: Path, error: BaseException, previous: bytes | None) -> None:
    """status.json says "failed" and why; if even that cannot be written (the disk is full), the
    "running" written at the start stays, which says incomplete just as well. A resume refused
    for the user's reason (a damaged checkpoint) puts back the status it found (``previous``): a
    finished run stays finished."""
    if isinstance(error, BnlabError) and previous is not None:
        atomic_write_bytes(Path(out_dir) / STATUS_FILE, previous)
        return
    if isinstance(error, KeyboardInterrupt):
        why = "interrupted"
    else:
        why = f"{type(error).__name__}: " + " ".join(str(error).split())
    try:
        write_status(out_dir, FAILED, why)
    except OSError:
        pass


def remove_partial_outputs(out_dir: Path) -> None:
    """What a killed run can leave half-written: the atomic writes' temporary files
    (.<name>.*.tmp, bnlab.files) and TensorBoard's temporary run directories
    (tensorboard/.<run>.*.tmp), which TensorBoard would otherwise list as runs."""
    for tmp in sorted(Path(out_dir).rglob(".*.tmp")):
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
