"""A network's identity in an experiment: a typed record, from which its metrics.json name and its
display label are derived, here and nowhere else. Nothing parses a name back into a network."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bnlab.core.noise import NoiseConfig
from bnlab.engine import ModelSpec
from bnlab.errors import ConfigError

if TYPE_CHECKING:
    from bnlab.experiments.config import ExperimentConfig

# what the normalization layer computes: nothing, BN (Algorithm 1), or Santurkar et al.'s
# normalization by the average l_p norm (Sec. 3.3)
Norm = Literal["none", "bn", "lp1", "lp2", "lpinf"]
NORMS: dict[str, tuple[str, str]] = {
    # norm -> (name in metrics.json, label)
    "none": ("baseline", "without BN"),
    "bn": ("bn", "with BN"),
    "lp1": ("lp1", "l1 normalization"),
    "lp2": ("lp2", "l2 normalization"),
    "lpinf": ("lpinf", "l∞ normalization"),
}


@dataclass(frozen=True)
class Network:
    """``norm``: the normalization layer; ``placement``: "before" or "after" the activation, or
    None for the config's ``bn_placement`` (then not part of the name); ``noise``: Santurkar et
    al.'s noise after the normalization (or where it would be); ``lr_multiplier``: this network's
    learning rate as a multiple of the config's, or None when the experiment has one rate."""

    norm: Norm = "none"
    placement: Literal["before", "after"] | None = None
    noise: bool = False
    lr_multiplier: float | None = None

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ConfigError(
                f"network norm: expected one of {', '.join(NORMS)}, got {self.norm!r}"
            )
        if self.placement not in (None, "before", "after"):
            raise ConfigError(
                f"network placement: expected before or after, got {self.placement!r}"
            )
        if self.lr_multiplier is not None and not 0 < self.lr_multiplier < float("inf"):
            raise ConfigError(
                f"lr multiplier: expected a finite number > 0, got {self.lr_multiplier}"
            )

    @property
    def variant(self) -> str:
        """The network's name in metrics.json and TensorBoard: baseline, bn, noisy_bn,
        baseline_noisy, lp2, bn_after, bn-x5, ..."""
        name = NORMS[self.norm][0]
        if self.noise:
            name = "noisy_bn" if self.norm == "bn" else f"{name}_noisy"
        if self.placement is not None:
            name += f"_{self.placement}"
        if self.lr_multiplier is not None:
            name += f"-x{self.lr_multiplier:g}"
        return name

    @property
    def label(self) -> str:
        """How figures and reports call the network."""
        text = NORMS[self.norm][1]
        if self.noise:
            text = "noisy BN" if self.norm == "bn" else f"{text}, noise added"
        if self.placement is not None:
            text += f" ({self.placement} the activation)"
        if self.lr_multiplier is not None:
            text += f", lr x{self.lr_multiplier:g}"
        return text

    @property
    def normalized(self) -> bool:
        return self.norm != "none"

    def model_spec(self, config: ExperimentConfig, noise: NoiseConfig | None = None) -> ModelSpec:
        """The config's MLP with this network's normalization, placement and noise (``noise``:
        the constants, default Santurkar et al.'s)."""
        placement = self.placement or config.bn_placement
        spec = config.model_spec("none" if self.norm == "none" else placement)
        if self.norm not in ("none", "bn"):
            spec = dataclasses.replace(spec, norm=self.norm)
        if self.noise:
            spec = dataclasses.replace(spec, noise=noise or NoiseConfig())
        return spec


WITHOUT_BN, WITH_BN = Network(), Network("bn")
# the config field ``variants`` names these
VARIANTS = {"baseline": WITHOUT_BN, "bn": WITH_BN}
