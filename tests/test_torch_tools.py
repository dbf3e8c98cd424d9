"""bnlab.torch: Algorithm 2 for any PyTorch module, and the test-time pitfall check."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bnlab.core import batch_stats, normalize, population_stats  # noqa: E402
from bnlab.errors import ConfigError  # noqa: E402
from bnlab.torch import evaluate_batch_statistics, recalibrate  # noqa: E402

F64 = torch.float64
STATS = ("running_mean", "running_var", "num_batches_tracked")


def t(rows):
    return torch.tensor(rows, dtype=F64)


def mlp(seed=0, sizes=(4, 3, 2)):
    """Linear -> BatchNorm1d -> Sigmoid blocks in float64, with non-trivial gamma and beta."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        bn = torch.nn.BatchNorm1d(b, dtype=F64)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        layers += [torch.nn.Linear(a, b, dtype=F64), bn]
        if i < len(sizes) - 2:
            layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


def random_batches(k, n, features, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, features, generator=g, dtype=F64) * 2 + 1 for _ in range(k)]


def test_recalibrate_matches_a_hand_computation():
    # BN sees 2x + 1 on channel 0 and x on channel 1
    lin = torch.nn.Linear(2, 2, dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(t([[2.0, 0.0], [0.0, 1.0]]))
        lin.bias.copy_(t([1.0, 0.0]))
    model = torch.nn.Sequential(lin, torch.nn.BatchNorm1d(2, dtype=F64))
    # batch 1: channel 0 sees [3, 7] (mean 5, biased var 4), channel 1 [10, 14] (12, 4)
    # batch 2: channel 0 sees [1, 9] (mean 5, biased var 16), channel 1 [0, 2] (1, 1)
    batches = [(t([[1.0, 10.0], [3.0, 14.0]]), "labels"), [t([[0.0, 0.0], [4.0, 2.0]])]]
    stats = recalibrate(model, batches)
    bn = model[1]
    # mean: (5 + 5) / 2, (12 + 1) / 2; var: m/(m-1) = 2: (8 + 32) / 2, (8 + 2) / 2
    assert bn.running_mean.tolist() == [5.0, 6.5]
    assert bn.running_var.tolist() == [20.0, 5.0]
    assert int(bn.num_batches_tracked) == 2
    assert list(stats) == ["1"]
    assert stats["1"][0].tolist() == [5.0, 6.5] and stats["1"][1].tolist() == [20.0, 5.0]
    recalibrate(model, batches, unbiased=False)
    assert bn.running_var.tolist() == [10.0, 2.5]


def test_recalibrate_equals_update_bn_for_equal_size_batches():
    model, batches = mlp(), random_batches(5, 8, 4)
    reference = copy.deepcopy(model)
    torch.optim.swa_utils.update_bn(batches, reference)
    recalibrate(model, batches)
    for name in ("1", "4"):
        for s in STATS:
            ours, theirs = (
                getattr(model.get_submodule(name), s),
                getattr(reference.get_submodule(name), s),
            )
            assert torch.allclose(ours.to(F64), theirs.to(F64), rtol=1e-12, atol=1e-12), (name, s)


def test_a_smaller_last_batch_is_weighted_like_the_others():
    """Each batch counts once with its own m_i/(m_i-1), as in update_bn; a per-example (pooled)
    average would weight the small batch less."""
    big, small = t([[0.0], [2.0], [4.0], [6.0]]), t([[10.0], [12.0]])
    # big: mean 3, biased var 5, unbiased 20/3; small: mean 11, biased 1, unbiased 2
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(1, affine=False, dtype=F64))
    reference = copy.deepcopy(model)
    recalibrate(model, [big, small])
    torch.optim.swa_utils.update_bn([big, small], reference)
    assert model[0].running_mean.item() == 7.0
    assert model[0].running_var.item() == pytest.approx(13 / 3, rel=1e-15)
    assert reference[0].running_mean.item() == 7.0
    assert reference[0].running_var.item() == pytest.approx(13 / 3, rel=1e-15)
    # pooled over the 6 examples: mean 17/3, unbiased var 322/15
    pooled = torch.cat([big, small])
    assert pooled.mean().item() == pytest.approx(17 / 3) != 7.0
    assert pooled.var().item() == pytest.approx(322 / 15) != pytest.approx(13 / 3)
    recalibrate(model, [big, small], unbiased=False)
    assert model[0].running_var.item() == 3.0  # (5 + 1) / 2


def test_recalibrate_equals_the_core_population_stats(x64):
    model, batches = mlp(seed=3), random_batches(4, 6, 4, seed=5)
    params = {k: jnp.asarray(v.detach().numpy()) for k, v in model.named_parameters()}

    def moments_fn(x):
        h = x @ params["0.weight"].T + params["0.bias"]
        m1 = batch_stats(h)
        h = normalize(h, m1.mean, m1.var, params["1.weight"], params["1.bias"], 1e-5)
        h = 1 / (1 + jnp.exp(-h))
        h = h @ params["3.weight"].T + params["3.bias"]
        return m1, batch_stats(h)

    core = population_stats(moments_fn, jnp.stack([jnp.asarray(b.numpy()) for b in batches]))
    stats = recalibrate(model, batches)
    assert list(stats) == ["1", "4"]
    for name, state in zip(stats, core, strict=True):
        bn = model.get_submodule(name)
        np.testing.assert_allclose(bn.running_mean.numpy(), state.running_mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.numpy(), state.running_var, rtol=1e-12)
        assert int(bn.num_batches_tracked) == int(state.num_batches_tracked) == 4


@pytest.mark.parametrize(
    ("bn", "shape"),
    [
        (torch.nn.BatchNorm1d, (5, 3, 4)),
        (torch.nn.BatchNorm2d, (4, 3, 2, 5)),
        (torch.nn.BatchNorm3d, (2, 3, 2, 3, 2)),
        (torch.nn.SyncBatchNorm, (4, 3, 2, 5)),  # one process: PyTorch runs it as plain BN
    ],
)
def test_statistics_are_per_channel_over_every_other_axis(bn, shape):
    g = torch.Generator().manual_seed(7)
    batches = [torch.rand(shape, generator=g, dtype=F64) * (i + 1) for i in range(3)]
    model = torch.nn.Sequential(bn(3, dtype=F64))
    recalibrate(model, batches)
    dims = [d for d in range(len(shape)) if d != 1]
    m = int(np.prod([shape[d] for d in dims]))  # N, N*L, N*H*W, N*D*H*W
    mean = sum(b.mean(dim=dims) for b in batches) / 3
    var = m / (m - 1) * sum(b.var(dim=dims, correction=0) for b in batches) / 3
    torch.testing.assert_close(model[0].running_mean, mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model[0].running_var, var, rtol=1e-12, atol=1e-12)


def test_only_the_running_statistics_change_and_modes_are_restored():
    model = torch.nn.Sequential(mlp(seed=2), torch.nn.Dropout(0.5))
    model.register_buffer("extra", torch.arange(3.0))
    model.eval()
    model[0][2].train()  # a mixed set of flags must come back as it was
    modes = [m.training for m in model.modules()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recalibrate(model, random_batches(3, 8, 4))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"0.{i}.{s}" for i in (1, 4) for s in STATS}
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_errors_name_the_argument_and_leave_the_module_unchanged():
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match=r"^module: no BatchNorm layers"):
        recalibrate(torch.nn.Linear(2, 2), [torch.zeros(2, 2)])
    with pytest.raises(ConfigError, match=r"^batches: no batches"):
        recalibrate(model, [])
    one = [*random_batches(2, 8, 4), torch.zeros(1, 4, dtype=F64)]
    with pytest.raises(ConfigError, match=r"^batches: batch 2 gives BN layer '1' 1 value"):
        recalibrate(model, iter(one))
    with pytest.raises(ConfigError, match=r"^batches: batch 0 is a str"):
        recalibrate(model, ["x"])
    with pytest.raises(ConfigError, match=r"^unbiased"):
        recalibrate(model, one, unbiased=1)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.training


def test_evaluate_batch_statistics_scores_as_training_mode_would():
    model = mlp(seed=4, sizes=(4, 6, 3))
    x = random_batches(1, 20, 4, seed=9)[0]
    recalibrate(model, random_batches(3, 10, 4, seed=8))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        eval_pred = model(x).argmax(1)
        train_pred = torch.cat([copy.deepcopy(model).train()(c) for c in x.split(5)]).argmax(1)
    y = train_pred.clone()
    y[:4] = (y[:4] + 1) % 3  # 16 of 20 right with batch statistics at 5
    out = evaluate_batch_statistics(model, x, y, batch_sizes=(5, 1))
    assert out["running_averages"] == float((eval_pred == y).double().mean())
    assert out["batch_statistics"][5] == 0.8
    assert list(out) == ["running_averages", "batch_statistics"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not model.training


def test_batch_size_one_makes_batchnorm1d_output_beta():
    """One value per channel: mu_B = x, sigma2_B = 0, so the prediction ignores the input."""
    model = mlp(seed=6, sizes=(4, 5, 3))
    x = random_batches(1, 12, 4, seed=2)[0]
    constant = model[4].bias.argmax().item()  # the last BN layer outputs its beta
    y = torch.tensor([constant] * 5 + [(constant + 1) % 3] * 7)
    out = evaluate_batch_statistics(model, x, y, batch_sizes=[1])
    assert out["batch_statistics"] == {1: 5 / 12}
    with pytest.raises(ConfigError, match=r"^batch_sizes"):
        evaluate_batch_statistics(model, x, y, batch_sizes=(0,))
    with pytest.raises(ConfigError, match=r"^x, y"):
        evaluate_batch_statistics(model, x, y[:3])


def test_without_pytorch_the_import_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n    import bnlab.torch\nexcept ImportError as e:\n    print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "bnlab.torch needs PyTorch: pip install 'bnlab[torch]'"
