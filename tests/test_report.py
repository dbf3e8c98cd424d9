import re

import pytest
from outputs_fixtures import checkpoint_metrics, diverged_metrics, metrics

from bnlab.experiments import FIGURE1, PAPER, SEED, model_summaries
from bnlab.experiments.fields import setup_rows
from bnlab.experiments.figure1.report import render_report
from bnlab.outputs.verdicts import CANNOT_JUDGE

BASELINE_SUMMARY = [
    ("dense (Dense)", "(None, 100)", 78_500, 78_500),
    ("dense_1 (Dense)", "(None, 100)", 10_100, 10_100),
    ("dense_2 (Dense)", "(None, 100)", 10_100, 10_100),
    ("dense_3 (Dense)", "(None, 10)", 1_010, 1_010),
]
CONFIG = {"preset": "paper", "optimizer": {"name": "sgd", "lr": 0.5}, "batch_size": 60}
# the networks of Figure 1: variant -> label, in display order; (without BN, with BN)
LABELS = {"baseline": "without BN", "bn": "with BN"}
ROLES = ("baseline", "bn")


def _render(config, m, summaries, timing):
    return render_report(config, m, LABELS, ROLES, summaries, timing)


def _report(m, config=CONFIG):
    return _render(config, m, {"baseline": BASELINE_SUMMARY}, {"wall_s": 12.5})


def _section(text, title):
    return text.split(f"## {title}\n\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize(
    "row",
    [
        # baseline 0.90, 0.92: mean 0.91, sample std sqrt(2 * 0.01**2 / 1) = 0.0141
        # BN 0.95, 0.97: mean 0.96, std 0.0141
        "| 10,000 | 0.9100 ± 0.0141 | 0.9600 ± 0.0141 |",
        # baseline 0.92, 0.94: mean 0.93; BN 0.97, 0.99: mean 0.98
        "| 20,000 | 0.9300 ± 0.0141 | 0.9800 ± 0.0141 |",
    ],
)
def test_accuracy_table_rows_are_mean_and_sample_std_over_seeds(row):
    assert row in _section(_report(metrics()), "Test accuracy during training").splitlines()


def test_diverged_seed_is_left_out_of_the_mean_and_named():
    text = _report(diverged_metrics())
    table = _section(text, "Test accuracy during training").splitlines()
    assert "| 20,000 | 0.9300 ± 0.0141 | 0.9700 (1 of 2 seeds; 1 diverged) |" in table
    assert _section(text, "Diverged runs") == (
        "- with BN, seed 1: diverged at step 20,000 (the loss became NaN or inf, or exceeded "
        "1,000); its curves end there and it is left out of the means from that step.\n"
    )


def test_all_seeds_diverged_reads_diverged():
    m = diverged_metrics()
    m["runs"] = [r for r in m["runs"] if not (r["variant"] == "bn" and r["seed"] == 0)]
    table = _section(_report(m), "Test accuracy during training").splitlines()
    assert "| 20,000 | 0.9300 ± 0.0141 | diverged |" in table


def test_no_divergence_is_said():
    expected = "No run diverged; every run left chance.\n"
    assert _section(_report(metrics()), "Diverged runs") == expected


@pytest.mark.parametrize(
    "row",
    [
        "| last evaluation during training (moving averages) | 0.9300 ± 0.0141 | 0.9800 ± 0.0141 |",
        "| Algorithm 2 population statistics | 0.9350 ± 0.0141 | 0.9850 ± 0.0141 |",
        "| batch statistics, test batches of 60 | n/a | 0.9000 ± 0.0000 |",
        "| batch statistics, test batches of 1 | n/a | 0.1000 ± 0.0000 |",
    ],
)
def test_final_evaluations_table(row):
    assert row in _section(_report(metrics()), "Final evaluation").splitlines()


def test_batch_statistics_sentence_uses_the_runs_numbers():
    text = _section(_report(metrics()), "Final evaluation")
    assert "in test batches of 60 the BN network scores 0.9000 against 0.9850" in text
    assert "scores 0.1000 (chance is 0.10)" in text


@pytest.mark.parametrize(
    ("bn_acc", "verdict"),
    [
        (((0.95, 0.97), (0.97, 0.99)), "agrees"),
        (((0.80, 0.80), (0.80, 0.80)), "does not agree"),
        (((0.95, 0.97), (0.80, 0.80)), "agrees only in part"),
    ],
)
def test_figure_1a_verdict_is_computed_from_the_metrics(bn_acc, verdict):
    claims = _section(_report(metrics(bn_acc=bn_acc)), "Beside the paper and other measurements")
    row = next(line for line in claims.splitlines() if line.startswith("| Fig. 1(a)"))
    assert row.endswith(f"| {verdict} |")


def test_figure_1bc_verdict_from_percentile_drift():
    claims = _section(_report(metrics()), "Beside the paper and other measurements")
    # baseline median -1 -> -2 moves 1.00, spread constant 2; BN median constant 0.5
    assert (
        "median moves over 1.00 without BN vs 0.00 with BN; 15-85 spread over 0.00 vs 0.00"
    ) in claims
    row = next(line for line in claims.splitlines() if line.startswith("| Fig. 1(b, c)"))
    assert row.endswith("| agrees only in part |")


def test_short_run_is_not_compared_with_the_50k_reproductions():
    claims = _section(_report(metrics()), "Beside the paper and other measurements")
    row = next(line for line in claims.splitlines() if line.startswith("| Public reproductions"))
    # "cannot be compared" is now "cannot be judged" (bnlab.outputs.verdicts.CANNOT_JUDGE)
    assert "our run ends at 20,000 steps | cannot be judged |" in row


def test_paper_preset_is_compared_with_the_first_paper_like_measurement():
    claims = _section(_report(metrics()), "Beside the paper and other measurements")
    # then: 0.9693 - 0.9413 = +0.0280, 0.9721 - 0.9573 = +0.0148; ours at 10k and 20k: +0.05
    assert "| 10,000 | 0.9413 | 0.9100 ± 0.0141 | 0.9693 | 0.9600 ± 0.0141 |" in claims
    assert "BN - no BN: +0.0500, +0.0500; the same network leads at 2 of 2" in claims


def test_what_we_measured_states_each_verdict():
    text = _section(_report(metrics()), "What we measured")
    assert text.startswith("We trained 2 seeds of each network for 20,000 steps (preset `paper`).")
    # a verdict that cannot be judged reads "name: cannot be judged (why)."
    judged = r"this (agrees|does not agree|agrees only in part)\."
    assert len(re.findall(judged, text)) == 3
    assert "Public reproductions at 50k steps: cannot be judged (our run ends at 20,000" in text


def test_model_summary_is_keras_like_with_total():
    text = _section(_report(metrics()), "Models")
    # the model is named by its network's label (was its variant name, "baseline")
    assert 'Model: "without BN"' in text
    assert "| dense (Dense) | (None, 100) | 78,500 |" in text
    assert text.rstrip().endswith(
        "Total params: 99,710 (389.49 KB)  \nTrainable params: 99,710 (389.49 KB)  \n"
        "Non-trainable params: 0 (0.00 B)"
    )


ENGINE_CONFIG = {
    "preset": "paper",
    "variants": ["baseline", "bn"],
    "conv": [],
    "hidden": [100, 100, 100],
    "activation": "sigmoid",
    "bn_placement": "before",
    "bias_before_bn": False,
    "init": "gaussian",
    "init_std": 0.01,
    "input": "binary",
    "threshold": 0.5,
    "optimizer": "sgd",
    "lr": 0.5,
    "rho": 0.9,
    "opt_eps": 1e-07,
    "momentum": 0.0,
    "batch_size": 60,
    "steps": 50000,
    "eval_every": 1000,
    "bn_eps": 1e-05,
    "bn_momentum": 0.1,
    "seeds": 3,
    "first_seed": 0,
    "hist_examples": 20,
    "data_dir": None,
}


def test_engine_config_is_the_paper_preset_with_three_seeds():
    assert PAPER.replace(seeds=3).to_dict() == ENGINE_CONFIG


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("preset", "paper"),
        ("networks", "baseline, bn"),
        ("hidden layers", "100, 100, 100 units, sigmoid"),
        ("weight init", "gaussian N(0, 0.01^2), zero biases"),
        ("input", "binary: 1 where pixel / 255 > 0.5, else 0"),
        ("optimiser", "SGD"),
        ("learning rate", "0.5"),
        ("batch size", "60"),
        ("training steps", "50,000"),
        ("evaluation every", "1,000 steps"),
        ("seeds", "3 (from seed 0)"),
        ("BN placement", "before each sigmoid; Dense bias in front of BN dropped (as the paper)"),
        ("BN eps", "1e-05"),
        ("BN momentum", "0.1 (weight of the newest batch, PyTorch's convention)"),
        ("data", "the embedded MNIST"),
        ("histograms", "hidden-layer values of the first 20 test images (TensorBoard)"),
    ],
)
def test_setup_rows_from_the_engines_config(label, value):
    assert [label, value] in setup_rows(ENGINE_CONFIG)


@pytest.mark.parametrize(
    ("conv", "row"),
    [
        ([], "none"),
        (
            ["conv:6:5:1:valid", "maxpool:2:2"],
            "conv:6:5:1:valid, maxpool:2:2 (NHWC, BN per channel)",
        ),
    ],
)
def test_convolutions_are_a_setup_row(conv, row):
    assert ["convolutions", row] in setup_rows({**ENGINE_CONFIG, "conv": conv})


def test_rmsprop_settings_are_spelled_out():
    config = {**ENGINE_CONFIG, "optimizer": "rmsprop", "lr": 0.001}
    assert ["optimiser", "RMSprop (rho 0.9, eps 1e-07, no momentum)"] in setup_rows(config)


def test_every_config_key_appears_once_in_the_setup():
    rows = setup_rows(ENGINE_CONFIG)
    labels = [label for label, _ in rows]
    assert len(labels) == len(set(labels)) == 18
    assert "hist_examples" not in labels


def test_paper_preset_report_justifies_its_choices():
    setup = _section(_report(metrics(), ENGINE_CONFIG), "Setup")
    assert "The paper gives no learning rate, optimiser, weight scale" in setup
    seed_setup = _section(_report(metrics(), {**ENGINE_CONFIG, "preset": "seed"}), "Setup")
    assert "The paper gives no learning rate" not in seed_setup


def test_report_embeds_the_figure_and_reports_time_and_machine():
    text = _report(metrics())
    assert "](figure1.png)" in text
    timing = _section(text, "Time and machine")
    assert "| wall | 12.5 |" in timing
    assert "Wall time up to writing this report: 12.5 s." in timing
    assert re.search(r"Machine: .+, \d+ cores, .+; Python [\d.]+, JAX [\d.]+ on ", timing)


def test_timing_uses_total_peak_memory_and_devices():
    timing = {
        "compile_s": 2.0,
        "train_s": 20.25,
        "total_s": 25.0,
        "peak_rss_mb": 900.4,
        "devices": 2,
    }
    text = _render(CONFIG, metrics(), {}, timing)
    section = _section(text, "Time and machine")
    assert "| compile | 2.0 |\n| train | 20.2 |\n| total | 25.0 |" in section
    assert "Wall time: 25.0 s.\nPeak memory (RSS): 900 MB." in section
    assert "(2 CPU devices)." in section


def test_figure1_report_renders_the_run_config_as_the_renderer_does():
    # write_report is gone: run_experiment writes report.md from FIGURE1.report (checked against
    # a real run in test_reproduce); FIGURE1.report renders a config object through render_report
    config = PAPER.replace(steps=20_000, seeds=2)
    timing = {"wall_s": 12.5}
    text = FIGURE1.report(config, metrics(), timing)
    assert text == render_report(
        config.to_dict(), metrics(), LABELS, ROLES, model_summaries(config), timing
    )
    models = _section(text, "Models")
    assert 'Model: "without BN"' in models and 'Model: "with BN"' in models
    assert "Total params: 99,710" in models and "Total params: 100,610" in models
    assert "Trainable params: 100,010" in models and "Non-trainable params: 600" in models


def test_figure_section_names_the_probed_unit_of_each_run():
    m = metrics()
    for run, unit in zip(m["runs"], [7, 7, 42, 3], strict=True):
        run["percentile_unit"] = unit
    text = _section(_report(m), "Figure 1")
    assert (
        "(without BN seed 0: unit 7; without BN seed 1: unit 7; with BN seed 0: unit 42; "
        "with BN seed 1: unit 3); the percentiles are over the whole test set."
    ) in text


def test_figure_section_without_unit_information_has_only_the_figure():
    assert _section(_report(metrics()), "Figure 1").strip().endswith("(figure1.png)")


def _long_metrics():
    m = metrics()
    for run in m["runs"]:
        run["steps"] = [10_000, 50_000]
    return m


@pytest.mark.parametrize(
    ("config", "note"),
    [
        ({"preset": "paper", "optimizer": "sgd", "lr": 0.5}, ""),
        (
            {"preset": "seed", "optimizer": "rmsprop", "lr": 0.001},
            "; a different setup: rmsprop lr 0.001 here",
        ),
    ],
)
def test_reproduction_comparison_says_when_the_setup_differs(config, note):
    claims = _section(_report(_long_metrics(), config), "Beside the paper and other measurements")
    row = next(line for line in claims.splitlines() if line.startswith("| Public reproductions"))
    # at 50k: BN (0.97 + 0.99) / 2 = 0.98, no BN (0.92 + 0.94) / 2 = 0.93
    assert (
        "BN 0.9800, no BN 0.9300 at 50,000 steps (gap +0.0500; BN rounds to 0.98: yes, "
        f"no BN within 0.975-0.977: no, BN ahead: yes{note}) | agrees only in part |"
    ) in row


def _verdict(config, m, prefix):
    return next(v for v in FIGURE1.verdicts(config, m) if v.name.startswith(prefix))


def test_accuracy_verdict_names_exactly_the_checkpoints_it_counts():
    steps = [10_000, 20_000, 30_000, 40_000, 50_000]
    # BN ahead at 10k, 20k, 40k, 50k; behind at 30k
    m = checkpoint_metrics(steps, [0.90, 0.91, 0.95, 0.92, 0.93], [0.95, 0.96, 0.94, 0.97, 0.98])
    verdict = _verdict(PAPER, m, "Fig. 1(a)")
    assert verdict.ours.startswith(
        "BN's mean is higher at 4 of 5 checkpoints "
        "(at 10,000, 20,000, 40,000, 50,000 steps; not at 30,000); gap at 50,000 steps +0.0500"
    )
    assert verdict.agrees == "partly"
    claims = _section(_report(m), "Beside the paper and other measurements")
    row = next(line for line in claims.splitlines() if line.startswith("| Fig. 1(a)"))
    assert "not at 30,000" in row and row.endswith("| agrees only in part |")


def test_drift_with_one_evaluation_cannot_be_judged():
    m = checkpoint_metrics([10], [0.5], [0.6])
    verdict = _verdict(SEED.replace(steps=10, eval_every=10), m, "Fig. 1(b, c)")
    assert verdict.agrees == CANNOT_JUDGE == "cannot be judged"
    assert not verdict.judged
    claims = _section(_report(m), "Beside the paper and other measurements")
    row = next(line for line in claims.splitlines() if line.startswith("| Fig. 1(b, c)"))
    assert row.endswith("| cannot be judged |")


@pytest.mark.parametrize(
    "prefix", ["Fig. 1(a)", "Public reproductions", "bnlab's first measurement"]
)
def test_accuracy_verdicts_with_a_network_stuck_at_chance_cannot_be_judged(prefix):
    # the baseline never reaches 0.2 (an lr that makes it explode into one class): comparing BN's
    # accuracy with it says nothing about BN
    m = checkpoint_metrics([10_000, 50_000], [0.0958, 0.1135], [0.97, 0.98])
    verdict = _verdict(PAPER.replace(steps=50_000), m, prefix)
    assert verdict.agrees == CANNOT_JUDGE
    assert verdict.ours == "baseline seed 0 never left chance (best test accuracy 0.1135 < 0.2)"


def test_the_drift_verdict_is_still_judged_beside_a_network_at_chance():
    m = checkpoint_metrics([10_000, 50_000], [0.0958, 0.1135], [0.97, 0.98])
    assert _verdict(PAPER, m, "Fig. 1(b, c)").judged


def test_a_network_that_never_left_chance_is_named():
    m = checkpoint_metrics([10_000, 20_000], [0.0958, 0.1135], [0.97, 0.98])
    assert _section(_report(m), "Diverged runs") == (
        "- without BN, seed 0: never left chance (best test accuracy 0.1135, below 0.2, twice a "
        "uniform guess); a comparison with it cannot be judged.\n"
    )
