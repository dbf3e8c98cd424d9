"""Figure 1 of Ioffe & Szegedy (2015): the experiment, its claims and its report."""

from bnlab.experiments.figure1.experiment import FIGURE1, Figure1, model_summaries

__all__ = ["FIGURE1", "Figure1", "model_summaries"]
