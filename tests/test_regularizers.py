"""The pure terms and registry regularizers beyond BRE (BRE's own tests: test_bre.py), on hand-computed tensors."""
import math

import pytest
import torch
from torch import nn

from toyviz.engine import regularizers as R
from toyviz.engine.regularizers import StepContext


# ---- feature matching ----------------------------------------------------------------------------------------
def test_feature_matching_l2_is_squared_norm_of_mean_difference():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])           # batch mean (2, 3)
    fake = torch.tensor([[0.0, 1.0], [0.0, -1.0]])          # batch mean (0, 0)
    assert R.feature_matching_loss(real, fake).item() == pytest.approx(2 ** 2 + 3 ** 2)


def test_feature_matching_l1_is_mean_absolute_difference_as_the_cifar_code():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[4.0, 3.0], [4.0, 3.0]])           # Δ = (−2, 0)
    assert R.feature_matching_loss(real, fake, "l1").item() == pytest.approx(1.0)


def test_feature_matching_flattens_conv_maps_and_rejects_unknown_norms():
    real, fake = torch.ones(3, 2, 2, 2), torch.zeros(3, 2, 2, 2)
    assert R.feature_matching_loss(real, fake).item() == pytest.approx(8.0)
    with pytest.raises(ValueError, match="'l2' or 'l1'"):
        R.feature_matching_loss(real, fake, "l3")


def test_feature_matching_gradient_reaches_only_the_fake_side():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.zeros(2, 2, requires_grad=True)
    R.feature_matching_loss(real, fake).backward()
    # ∂/∂f_n Σ_i (m_i − mean f_i)² = −2 Δ / N
    torch.testing.assert_close(fake.grad, torch.tensor([[-2.0, -3.0], [-2.0, -3.0]]))


# ---- historical averaging ------------------------------------------------------------------------------------
def test_historical_average_penalty_sums_squared_distances():
    p = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    a = [torch.tensor([0.0, 0.0]), torch.tensor([[1.0]])]
    assert R.historical_average_penalty(p, a).item() == pytest.approx(1 + 4 + 4)
    with pytest.raises(ValueError, match="2 parameters but 1 averages"):
        R.historical_average_penalty(p, a[:1])


def test_running_mean_is_the_mean_of_values_seen():
    avg = torch.tensor([1.0])
    R.update_running_mean(avg, torch.tensor([3.0]), 2)
    R.update_running_mean(avg, torch.tensor([8.0]), 3)
    torch.testing.assert_close(avg, torch.tensor([4.0]))


def _ctx(D, G=None, **kw):
    from toyviz import Config
    return StepContext(Config(), 0, kw.pop("real", None), kw.pop("fake", None), D, G, torch.Generator(), **kw)


def test_historical_averaging_regularizer_folds_theta_into_the_mean_before_the_penalty():
    D = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        D.weight.fill_(1.0)
    ctx = _ctx(D)
    reg = R.HistoricalAveraging("d")
    value, _ = reg(ctx)
    assert value.item() == 0.0                               # θ̄ = θ₁ at the first step
    with torch.no_grad():
        D.weight.fill_(5.0)
    value, _ = reg(ctx)                                      # θ̄ = (1 + 5)/2 = 3: (5 − 3)² = 4
    assert value.item() == pytest.approx(4.0)
    assert ctx.extra["ha/D/#count"].item() == 2
    torch.testing.assert_close(ctx.extra["ha/D/weight"], torch.tensor([[3.0]]))


# ---- gradient penalty ----------------------------------------------------------------------------------------
def test_gradient_penalty_of_a_linear_critic():
    D = nn.Linear(2, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[3.0, 4.0]]))           # ‖∇ₓD‖ = 5 everywhere: (5 − 1)² = 16
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    value, norms = R.gradient_penalty(D, real, fake, torch.Generator().manual_seed(0))
    assert value.item() == pytest.approx(16.0)
    torch.testing.assert_close(norms, torch.full((6,), 5.0))
    value.backward()                                         # differentiable in D: ∂/∂w (‖w‖−1)² = 2(‖w‖−1)w/‖w‖
    torch.testing.assert_close(D.weight.grad, torch.tensor([[2 * 4 * 3 / 5, 2 * 4 * 4 / 5]]))


def test_gradient_penalty_regularizer_uses_the_context_generator():
    D = nn.Linear(2, 1)
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    a, _ = R.GradientPenalty()(_ctx(D, real=real, fake=fake))
    b, _ = R.gradient_penalty(D, real, fake, torch.Generator())
    torch.testing.assert_close(a, b)


# ---- mode regularizers ---------------------------------------------------------------------------------------
def test_mode_regularizer_terms_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    recon = torch.tensor([[1.0, 0.0], [1.0, -1.0]])          # squared distances 1 and 4
    logits = torch.tensor([[0.0], [0.0]])                    # D = ½: −log D = ln 2
    geo, mode = R.mode_regularizer_terms(x, recon, logits)
    assert geo.item() == pytest.approx(2.5)
    assert mode.item() == pytest.approx(math.log(2))
    _, printed = R.mode_regularizer_terms(x, recon, logits, "printed")
    assert printed.item() == pytest.approx(-math.log(2))
    with pytest.raises(ValueError, match="'intent' or 'printed'"):
        R.mode_regularizer_terms(x, recon, logits, "other")


def test_feature_matching_regularizer_reads_the_chosen_layer_of_d():
    from toyviz import Config
    from toyviz.engine.nets import Discriminator
    cfg = Config().replace(**{"nets.d.width": 4, "nets.d.depth": 2, "reg.feature_matching": 1.0,
                              "reg.feature_matching_layer": 0})
    D = Discriminator(cfg)
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    fake_feats = D.forward_features(fake)[1]
    ctx = StepContext(cfg, 0, real, fake, D, None, torch.Generator(), fake_feats=fake_feats)
    value, _ = R.FeatureMatching()(ctx)
    expect = R.feature_matching_loss(D.forward_features(real)[1].acts[0], fake_feats.acts[0])
    torch.testing.assert_close(value, expect)
