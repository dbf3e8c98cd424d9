"""What every TensorBoard tag of a run means: the tag names, and the description each tag's first
event carries (data, BN mode, which unit and why), shown behind TensorBoard's info icon."""

from __future__ import annotations

import re

# metrics.json key -> TensorBoard tag, for the curves recorded at every evaluation step
CURVE_TAGS = {
    "test_accuracy": "accuracy/test",
    "train_accuracy": "accuracy/train",
    "test_loss": "loss/test",
    "train_loss": "loss/train",
}
LEARNING_RATE_TAG = "optimizer/learning_rate"
PERCENTILE_TAG = "typical_unit_input/p{q}"
STATUS_TAG = "run/status"
SKIPPED_TAG = "run/skipped_histograms"
FINAL_TAG = "run/final"

_EVAL = (
    "the test set in evaluation mode (a BN network with its running averages, the moving mean "
    "and variance kept during training, not the batch's statistics; no noise)"
)
DESCRIPTIONS = {
    "accuracy/test": f"Accuracy on {_EVAL}.",
    "accuracy/train": (
        "Accuracy on the first 10,000 training images (a fixed subset, in file order), in "
        "evaluation mode as accuracy/test is: running averages, no noise; so that the two curves "
        "differ only in the data. Not the mean accuracy of the training batches."
    ),
    LEARNING_RATE_TAG: (
        "The optimiser's learning rate, as Keras's epoch_learning_rate shows it: constant over "
        "the run (bnlab's optimisers have no schedule); a sweep's runs differ in it."
    ),
    "loss/test": f"Cross-entropy on {_EVAL}.",
    "loss/train": (
        "Mean cross-entropy of the training mini-batches since the previous evaluation, as the "
        "steps computed it (BN with each batch's own statistics, a noisy network's noise "
        "included); non-finite steps left out."
    ),
    STATUS_TAG: "Whether and at which step the run diverged; nothing is written after it.",
    SKIPPED_TAG: "Histograms left out because their values were NaN, inf or too large to bin.",
    FINAL_TAG: "The run's final numbers: the last evaluation and the end-of-training ones.",
}
# curve tag -> how the final table calls it
CURVE_NAMES = {
    "accuracy/test": "test accuracy, BN with its running averages",
    "accuracy/train": "training accuracy (first 10,000 images), BN with its running averages",
    "loss/test": "test loss, BN with its running averages",
    "loss/train": "training loss, mean since the previous evaluation",
}
UNIT_WHY = (
    "unit {unit} of the last hidden layer, its typical unit: at initialisation, over the test set, "
    "the unit whose median pre-activation (Wu + b) is the middle one of the layer's medians "
    "(neither among the most saturated units nor an outlier), fixed before training as in the "
    "paper's Figure 1(b, c)"
)
PERCENTILE_DESCRIPTION = (
    "The {q}th percentile of the activation's input (BN's output when BN comes before the "
    "activation) over {data}, of " + UNIT_WHY + "."
)
_HIST = re.compile(r"layer(\d+)/(\w+)_input")
_LAYER = re.compile(r"(layer(\d+)|output)/(\w+)")
# a layer's histogram (other than its inputs) -> what it holds ({where}: which layer)
LAYER_VALUES = {
    "kernel": "The Dense kernel W of {where} (every weight)",
    "bias": "The Dense bias b of {where}",
    "gamma": "BN's scale gamma of {where} (one per unit)",
    "beta": "BN's shift beta of {where} (one per unit)",
    "moving_mean": (
        "BN's running mean of {where} (one per unit): the moving average of the batch means "
        "that evaluation mode normalises with"
    ),
    "moving_variance": (
        "BN's running variance of {where} (one per unit): the moving average of the unbiased "
        "batch variances that evaluation mode normalises with"
    ),
    "logits": "The logits of every class of every image of " + _EVAL,
}
# final evaluation name (before any "/size") -> how the final table calls it
FINAL_NAMES = {
    "population_test_accuracy": "test accuracy, BN with Algorithm 2's population statistics",
    "population_test_loss": "test loss, BN with Algorithm 2's population statistics",
    "batch_stats_test_accuracy": "test accuracy, BN with each test batch's own statistics, "
    "batches of {size} (as the seed notebook's layer did)",
}


def describe(tag: str, unit: int | None = None, examples: int | None = None) -> str:
    """What ``tag`` shows (``unit``: the run's typical unit; ``examples``: images per histogram)."""
    if tag in DESCRIPTIONS:
        return DESCRIPTIONS[tag]
    q = re.fullmatch(PERCENTILE_TAG.format(q=r"(\d+)"), tag)
    if q:
        return PERCENTILE_DESCRIPTION.format(q=q.group(1), data=_EVAL, unit=unit)
    h = _HIST.fullmatch(tag)
    if h:
        what = "BN's input (Wu, + b if kept)" if h.group(2) == "bn" else f"The {h.group(2)}'s input"
        on = f"the first {examples} images of " if examples else ""
        return f"{what} of every unit of hidden layer {h.group(1)}, on {on}{_EVAL}."
    layer = _LAYER.fullmatch(tag)
    if layer and layer.group(3) in LAYER_VALUES:
        where = f"hidden layer {layer.group(2)}" if layer.group(2) else "the output layer"
        return LAYER_VALUES[layer.group(3)].format(where=where) + ", at each evaluation."
    return f"The experiment's measure {tag!r} at each evaluation (its report.md says how)."
