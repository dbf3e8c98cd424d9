"""bnlab: Batch Normalization as Ioffe & Szegedy (2015) specify it, and the experiments on it."""

__version__ = "0.1.0"
