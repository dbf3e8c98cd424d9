"""Every config field in words, in one place: the CLI's option help (:mod:`bnlab.cli.options`
adds each preset's default) and the report's setup rows. A new config field needs its dataclass
field in :mod:`bnlab.experiments.config` and one line in FIELD_HELP; the report shows it (in words
where SETUP_ROWS has a row for it, else as it is).
"""

from __future__ import annotations

from typing import Any

from bnlab.engine.model import ACTIVATIONS
from bnlab.outputs.report import show_value

# field -> its option's help: what it is and the convention of its value
FIELD_HELP: dict[str, str] = {
    "variants": "Networks to train, comma-separated: baseline (no BN), bn.",
    "conv": (
        "Convolution and pooling layers before the hidden Dense layers, comma-separated: "
        "conv:FEATURES:KERNEL[:STRIDE[:same|valid]], maxpool:WINDOW[:STRIDE], avgpool:... "
        "(NHWC; BN per channel)."
    ),
    "hidden": "Hidden layer sizes, comma-separated.",
    "activation": f"Activation: {', '.join(ACTIVATIONS)}.",
    "bn_placement": "BN 'before' the activation (the paper: z = g(BN(Wu))) or 'after' it.",
    "bias_before_bn": "Keep the Dense bias in front of BN (the notebook) or drop it (the paper).",
    "init": "Weights: glorot_uniform (Keras's Dense default) or gaussian N(0, init_std^2).",
    "init_std": "Std of the gaussian init.",
    "input": "Pixels: scale (x / 255) or binary (1 where x / 255 > threshold).",
    "threshold": "Binarisation threshold, in [0, 1] of the pixel range.",
    "optimizer": "rmsprop (Keras's) or sgd.",
    "lr": "Learning rate.",
    "rho": "RMSprop decay of the squared-gradient average.",
    "opt_eps": "RMSprop epsilon, inside the square root (Keras's convention).",
    "momentum": "Optimiser momentum (0: none).",
    "batch_size": "Examples per mini-batch (the BN batch).",
    "steps": "Training length in steps.",
    "eval_every": "Steps between measurements (test set, percentiles, histograms).",
    "bn_eps": "BN epsilon, added to the variance.",
    "bn_momentum": (
        "Weight of the NEWEST batch in BN's running statistics (PyTorch's convention; Keras's "
        "momentum 0.99 is bnlab's 0.01)."
    ),
    "seeds": "Seeds per network, trained together.",
    "first_seed": "The first seed (then +1, +2...).",
    "hist_examples": "Test images whose hidden-layer values go into the TensorBoard histograms.",
    "data_dir": "A directory of MNIST-format IDX files. Default: the embedded MNIST.",
}


# The report's setup rows: fields in words, several to a row where they belong together.
EVAL_STATISTICS = (
    'during training, the moving averages (Algorithm 2: "using moving averages instead, we can '
    "track the accuracy of a model as it trains\"); at the end, Algorithm 2's population "
    "statistics, and for comparison the test batch's own statistics (batch {batch} and 1), as the "
    "notebook's layer did"
)


def _init(c: dict[str, Any]) -> str:
    if c.get("init") == "gaussian":
        return f"gaussian N(0, {show_value(c.get('init_std'))}^2), zero biases"
    return f"{c.get('init')} (Keras's Dense default), zero biases"


def _input(c: dict[str, Any]) -> str:
    if c.get("input") == "binary":
        return f"binary: 1 where pixel / 255 > {show_value(c.get('threshold'))}, else 0"
    return "pixel / 255, in [0, 1]"


def _optimizer(c: dict[str, Any]) -> str:
    name = str(c.get("optimizer"))
    if name == "rmsprop":
        details = f"rho {show_value(c.get('rho'))}, eps {show_value(c.get('opt_eps'))}"
        details += (
            f", momentum {show_value(c['momentum'])}" if c.get("momentum") else ", no momentum"
        )
        return f"RMSprop ({details})"
    return "SGD" + (f" with momentum {show_value(c['momentum'])}" if c.get("momentum") else "")


def _bn(c: dict[str, Any]) -> str:
    place = {"before": "before", "after": "after"}.get(c.get("bn_placement"), "?")
    bias = "kept (as the notebook)" if c.get("bias_before_bn") else "dropped (as the paper)"
    return f"{place} each {c.get('activation', 'activation')}; Dense bias in front of BN {bias}"


# (label, config keys the row shows, how to write it); rows whose keys are absent are left out.
SETUP_ROWS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("preset", ("preset",), lambda c: show_value(c["preset"])),
    ("networks", ("variants",), lambda c: show_value(c["variants"])),
    (
        "convolutions",
        ("conv",),
        lambda c: ", ".join(c["conv"]) + " (NHWC, BN per channel)" if c["conv"] else "none",
    ),
    (
        "hidden layers",
        ("hidden", "activation"),
        lambda c: f"{show_value(c['hidden'])} units, {c['activation']}",
    ),
    ("weight init", ("init", "init_std"), _init),
    ("input", ("input", "threshold"), _input),
    ("optimiser", ("optimizer", "rho", "opt_eps", "momentum"), _optimizer),
    ("learning rate", ("lr",), lambda c: show_value(c["lr"])),
    ("batch size", ("batch_size",), lambda c: show_value(c["batch_size"])),
    ("training steps", ("steps",), lambda c: f"{c['steps']:,}"),
    ("evaluation every", ("eval_every",), lambda c: f"{c['eval_every']:,} steps"),
    (
        "seeds",
        ("seeds", "first_seed"),
        lambda c: f"{c['seeds']} (from seed {c.get('first_seed', 0)})",
    ),
    ("BN placement", ("bn_placement", "bias_before_bn"), _bn),
    ("BN eps", ("bn_eps",), lambda c: show_value(c["bn_eps"])),
    (
        "BN momentum",
        ("bn_momentum",),
        lambda c: (
            f"{show_value(c['bn_momentum'])} (weight of the newest batch, PyTorch's convention)"
        ),
    ),
    (
        "evaluation statistics",
        ("batch_size",),
        lambda c: EVAL_STATISTICS.format(batch=c["batch_size"]),
    ),
    ("data", ("data_dir",), lambda c: c["data_dir"] or "the embedded MNIST"),
    (
        "histograms",
        ("hist_examples",),
        lambda c: (
            f"hidden-layer values of the first {c['hist_examples']} test images (TensorBoard)"
        ),
    ),
)


def setup_rows(config: dict[str, Any]) -> list[list[str]]:
    """Each known setting in words, then any other top-level setting as it is."""
    rows, shown = [], set()
    without_bn = config.get("variants") == ["baseline"]
    for label, keys, write in SETUP_ROWS:
        if keys[0] in config and not (without_bn and label.startswith("BN")):
            rows.append([label, write(config)])
            shown.update(keys)
    rows += [[key, show_value(value)] for key, value in config.items() if key not in shown]
    return rows
