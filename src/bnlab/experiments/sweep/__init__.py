"""A grid of configurations as one experiment: the sweep file, the plan, the per-cell report."""

from bnlab.experiments.sweep.config import SweepConfig, load_sweep, parse_sweep
from bnlab.experiments.sweep.experiment import SWEEP, Program, Sweep, plan, program_groups

__all__ = [
    "SWEEP",
    "Program",
    "Sweep",
    "SweepConfig",
    "load_sweep",
    "parse_sweep",
    "plan",
    "program_groups",
]
