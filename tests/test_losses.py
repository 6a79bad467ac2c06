import math

import pytest
import torch

from toyviz.engine.losses import LOSSES, get_loss

R = torch.tensor([[2.0], [0.0]])
F_ = torch.tensor([[-1.0], [1.0]])


def sp(x):
    return math.log1p(math.exp(x))


def test_ns_by_hand():
    d = (sp(-2) + sp(0)) / 2 + (sp(-1) + sp(1)) / 2
    assert float(LOSSES["ns"].d(R, F_, 1.0)) == pytest.approx(d, rel=1e-6)
    assert float(LOSSES["ns"].g(F_)) == pytest.approx((sp(1) + sp(-1)) / 2, rel=1e-6)
    assert float(LOSSES["minimax"].g(F_)) == pytest.approx(-(sp(-1) + sp(1)) / 2, rel=1e-6)


def test_one_sided_label_smoothing_moves_only_the_real_target():
    t = 0.9
    real = (t * sp(-2) + (1 - t) * sp(2) + t * sp(0) + (1 - t) * sp(0)) / 2
    fake = (sp(-1) + sp(1)) / 2
    assert float(LOSSES["ns"].d(R, F_, t)) == pytest.approx(real + fake, rel=1e-6)


def test_wgan_hinge_lsgan_by_hand():
    assert float(LOSSES["wgan"].d(R, F_, 1.0)) == pytest.approx(0.0 - 1.0)
    assert float(LOSSES["wgan"].g(F_)) == pytest.approx(0.0)
    assert float(LOSSES["hinge"].d(R, F_, 1.0)) == pytest.approx((0 + 1) / 2 + (0 + 2) / 2)
    assert float(LOSSES["lsgan"].d(R, F_, 1.0)) == pytest.approx(0.5 * (1 + 1) / 2 + 0.5 * (1 + 1) / 2)
    assert float(LOSSES["lsgan"].g(F_)) == pytest.approx(0.5 * (4 + 0) / 2)


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of ns, minimax, wgan, hinge, lsgan"):
        get_loss("kl")
