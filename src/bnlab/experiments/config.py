"""The MNIST experiment's configurations: the seed notebook's and the paper's (Section 4.1).

One typed, flat config (the fields a user sets, by the names of the CLI options and sweep files);
it validates itself on creation (and on every ``replace``), raising :class:`ConfigError` naming the
option, what it expects and what it got. The engine's specs (ModelSpec, TrainSpec) are built from
it; :mod:`bnlab.experiments.fields` says every field in words (CLI help, report rows).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from bnlab.engine import InputSpec, ModelSpec, OptimizerSpec, TrainSpec
from bnlab.engine.conv import Layer, output_shapes, parse_layer
from bnlab.engine.data import INPUT_MODES
from bnlab.engine.model import ACTIVATIONS, BN_PLACEMENTS, INIT_SCHEMES, BnPlacement
from bnlab.engine.optim import OPTIMIZERS
from bnlab.errors import ConfigError

VARIANTS = ("baseline", "bn")
MNIST_TRAIN = 60_000
# MNIST's images (and those of the MNIST-format datasets --data-dir reads): height, width, channels
IMAGE_SHAPE = (28, 28, 1)
INT32_MAX = 2**31 - 1
# a hidden layer wider than this is a typo, not an MLP for MNIST on this machine
MAX_WIDTH = 65_536
# XLA unrolls every layer into the compiled step: 100 layers compile in ~30 s here; 5,000 grew
# past 6 GB before compiling
MAX_LAYERS = 100
# seeds per network: each is a run held in memory at once; past this the count is a typo
MAX_SEEDS = 10_000
# the engine trains in float32: its largest finite value and its smallest positive normal one
FLOAT32_MAX = 3.4028235e38
FLOAT32_TINY = 1.1754944e-38
# int field -> (lowest, highest, what a value below says, what a value above says)
INT_RANGES = {
    "batch_size": (2, MNIST_TRAIN, "at least 2 (BN needs 2)", f"at most {MNIST_TRAIN}"),
    "steps": (1, INT32_MAX, "at least 1", f"at most {INT32_MAX:,}"),
    "eval_every": (1, INT32_MAX, "at least 1", f"at most {INT32_MAX:,}"),
    "seeds": (1, MAX_SEEDS, "at least 1", f"1..{MAX_SEEDS:,}"),
    "first_seed": (0, INT32_MAX, "at least 0", f"seeds up to {INT32_MAX:,}"),
    "hist_examples": (1, INT32_MAX, "at least 1", f"at most {INT32_MAX:,}"),
}
TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "on or off (true or false)",
    "str": "a name",
    "str | None": "a directory's name",
    "tuple[int, ...]": "comma-separated integers",
    "tuple[str, ...]": "comma-separated names",
}


@dataclass(frozen=True)
class ExperimentConfig:
    """Two networks, 784-100-100-100-10 with sigmoids, without ("baseline") and with BN ("bn")."""

    preset: str = "seed"
    variants: tuple[str, ...] = VARIANTS
    # convolutions and pooling in front of the hidden Dense layers (bnlab.engine.conv's grammar:
    # "conv:6:5:1:valid", "maxpool:2"); empty: an MLP
    conv: tuple[str, ...] = ()
    hidden: tuple[int, ...] = (100, 100, 100)
    activation: str = "sigmoid"
    # where the "bn" variant puts BN: "before" the activation (the paper) or "after" it
    bn_placement: str = "before"
    # the "bn" variant keeps the Dense bias in front of BN (the notebook) or drops it (the paper)
    bias_before_bn: bool = True
    # "glorot_uniform" (Keras's default, zero biases) or "gaussian" N(0, init_std^2)
    init: str = "glorot_uniform"
    init_std: float = 0.01
    # "scale": pixels / 255; "binary": 1 where pixel / 255 > threshold
    input: str = "scale"
    threshold: float = 0.5
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    rho: float = 0.9
    opt_eps: float = 1e-7
    momentum: float = 0.0
    batch_size: int = 60
    steps: int = 50_000
    eval_every: int = 1000
    bn_eps: float = 1e-5
    # PyTorch convention: the weight of the newest batch in the running statistics
    bn_momentum: float = 0.1
    seeds: int = 1
    first_seed: int = 0
    hist_examples: int = 20
    # a directory of MNIST-format IDX files (Fashion-MNIST, KMNIST); None: the embedded MNIST
    data_dir: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> ExperimentConfig:
        """Check every field's type first (so that no comparison below can fail on a wrong type),
        then its range; float fields are held as floats."""
        for f in fields(self):
            value = getattr(self, f.name)
            _check(f.name, value, _is(f.type, value), TYPE_WORDS[f.type])
            if f.type == "float":
                _check(f.name, value, _floatable(value), "a finite number")
                object.__setattr__(self, f.name, float(value))
        # the engine counts steps, evaluations and examples and draws seeds as int32
        for name, (low, high, below, above) in INT_RANGES.items():
            value = getattr(self, name)
            _check(name, value, value >= low, below)
            _check(name, value, value <= high, above)
        highest = INT32_MAX - self.seeds + 1  # the last of the seeds fits int32
        within = f"seeds up to {INT32_MAX:,}: at most {highest:,} with {self.seeds:,} seeds"
        _check("first_seed", self.first_seed, self.first_seed <= highest, within)
        _check("preset", self.preset, bool(self.preset.strip()), "a preset's name")
        if self.data_dir is not None:
            _check("data_dir", self.data_dir, "\0" not in self.data_dir, "a directory's name")
            if not self.data_dir.strip():
                raise ConfigError("--data-dir: expected a directory, got an empty name")
        # the engine trains in float32: a value must neither overflow nor vanish there
        for name in ("lr", "init_std", "bn_eps", "opt_eps"):
            value = getattr(self, name)
            _check(name, value, value > 0, "a finite number > 0")
            ok = FLOAT32_TINY <= value <= FLOAT32_MAX
            _check(name, value, ok, f"a float32 number > 0 ({FLOAT32_TINY:.8g}..{FLOAT32_MAX:.8g})")
        for name in ("rho", "bn_momentum", "threshold"):
            _check(name, getattr(self, name), 0 <= getattr(self, name) <= 1, "in [0, 1]")
        _check("momentum", self.momentum, 0 <= self.momentum < 1, "in [0, 1)")
        _choice("activation", self.activation, tuple(ACTIVATIONS))
        _choice("bn_placement", self.bn_placement, BN_PLACEMENTS[1:])
        _choice("init", self.init, INIT_SCHEMES)
        _choice("input", self.input, INPUT_MODES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _check("hidden", self.hidden, len(self.hidden) >= 1, "at least one layer size")
        layers = f"at most {MAX_LAYERS} layers"
        _check("hidden", f"{len(self.hidden)} layers", len(self.hidden) <= MAX_LAYERS, layers)
        _check("hidden", self.hidden, all(n >= 1 for n in self.hidden), "sizes >= 1")
        _check("hidden", self.hidden, max(self.hidden) <= MAX_WIDTH, f"sizes <= {MAX_WIDTH:,}")
        self.conv_layers()  # each layer parsed and every shape checked, naming --conv
        _check("variants", self.variants, len(self.variants) >= 1, "at least one variant")
        for v in self.variants:
            _choice("variants", v, VARIANTS)
        _check("variants", self.variants, len(set(self.variants)) == len(self.variants), "unique")
        return self

    def replace(self, **overrides: Any) -> ExperimentConfig:
        """A copy with ``overrides`` applied (None values ignored), validated."""
        known = {f.name for f in fields(self)}
        for name in overrides:
            if name not in known:
                raise ConfigError(f"unknown config field {name!r}; expected one of {sorted(known)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **given)

    def conv_layers(self) -> tuple[Layer, ...]:
        """The ``conv`` field's layers, parsed, their output shapes checked from MNIST's 28x28
        images; a ConfigError naming --conv and the layer otherwise."""
        _check(
            "conv",
            f"{len(self.conv)} layers",
            len(self.conv) <= MAX_LAYERS,
            f"at most {MAX_LAYERS} layers",
        )
        layers = tuple(parse_layer(text) for text in self.conv)
        output_shapes(IMAGE_SHAPE, layers)
        return layers

    def model_spec(self, bn: BnPlacement) -> ModelSpec:
        """The network of this config with BN ``bn`` ("none", "before" or "after" the
        activation)."""
        return ModelSpec(
            conv=self.conv_layers(),
            hidden=self.hidden,
            activation=self.activation,
            bn=bn,
            bias_before_bn=self.bias_before_bn,
            init=self.init,
            init_std=self.init_std,
            eps=self.bn_eps,
            momentum=self.bn_momentum,
        )

    def train_spec(self) -> TrainSpec:
        return TrainSpec(
            optimizer=OptimizerSpec(self.optimizer, self.lr, self.rho, self.opt_eps, self.momentum),
            inputs=InputSpec(self.input, self.threshold),
            batch_size=self.batch_size,
            steps=self.steps,
            eval_every=self.eval_every,
            hist_examples=self.hist_examples,
        )

    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.first_seed, self.first_seed + self.seeds))

    def steps_per_epoch(self) -> int:
        return MNIST_TRAIN // self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """The config of ``data`` (config.json's); a missing field is the default, a null one
        (None) is refused like any value of the wrong type."""
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a table of fields, got {brief_repr(data)}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(str(k) for k in set(data) - set(known))
        if unknown:
            raise ConfigError(f"config has unknown fields {brief_repr(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        option = "--" + name.replace("_", "-")
        raise ConfigError(f"{option}: expected {expected}, got {brief_repr(value)}")


def brief_repr(value: Any) -> str:
    """``value`` for a one-line message: its repr, cut short (a list of 5,000 sizes, a huge int)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        if value.bit_length() < 1000:
            return f"{value:.3g}"
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python prints
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 80 else text[:60] + f"... ({len(text):,} characters)"


def _is(kind: str, value: Any) -> bool:
    """Whether ``value`` is of the field type ``kind`` (its annotation): bools are not numbers."""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "str | None":
        return value is None or isinstance(value, str)
    item = kind.removeprefix("tuple[").removesuffix(", ...]")
    return isinstance(value, tuple) and all(_is(item, v) for v in value)


def is_number(value: Any) -> bool:
    """An int or a float (not a bool) that is finite as a float (an int past float64 is not)."""
    return _is("float", value) and _floatable(value)


def _floatable(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int past float64
        return False


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    _check(name, value, value in choices, "one of " + ", ".join(choices))
