"""Santurkar et al. (2018)'s analyses of BN, and Ioffe & Szegedy's learning-rate and placement
claims, as experiments on the `paper` preset's MLP: one file each, over the shared
:class:`~bnlab.experiments.santurkar.common.Analysis`; :mod:`bnlab.experiments.registry` lists
them."""

from bnlab.experiments.santurkar.common import Analysis, AnalysisConfig

__all__ = ["Analysis", "AnalysisConfig"]
