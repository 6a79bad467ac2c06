"""toyviz.image.metrics: scores by hand on tiny probability tables; stacked-digits modes on real data (~1,000,
KL ≈ 0) and on a constant generator (1 mode); the noisy-discriminator missing mass."""
import math

import numpy as np
import pytest
import torch

from toyviz.image.classifier import train_classifier
from toyviz.image.data import StackedDigits, load_digits
from toyviz.image.metrics import evaluate_images, inception_score, missing_mass, mode_score, stacked_modes


@pytest.fixture(scope="module")
def digits_and_classifier():
    torch.set_num_threads(1)
    d = load_digits(16)
    return d, train_classifier(d)[0]


def test_inception_score_by_hand():
    one_hot = torch.eye(4).repeat(5, 1)                               # confident and evenly spread: exp(ln 4) = 4
    assert inception_score(one_hot, splits=1) == pytest.approx((4.0, 0.0))
    assert inception_score(torch.full((8, 4), 0.25), splits=2) == pytest.approx((1.0, 0.0))
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert inception_score(p, splits=1)[0] == pytest.approx(math.exp(kl))


def test_mode_score_by_hand():
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])            # p(y) = (2/3, 1/3)
    prior = torch.tensor([0.5, 0.5])
    e_kl = (2 * math.log(1.5) + math.log(3)) / 3
    kl_prior = 0.5 * math.log(0.5 / (2 / 3)) + 0.5 * math.log(0.5 / (1 / 3))
    assert mode_score(p, prior) == pytest.approx(math.exp(e_kl - kl_prior))
    assert mode_score(torch.eye(2).repeat(3, 1), prior) == pytest.approx(2.0)


def test_stacked_modes_on_real_and_constant(digits_and_classifier):
    d, net = digits_and_classifier
    s = StackedDigits(d)
    x, _ = s.sample(10000, torch.Generator().manual_seed(0))
    real = stacked_modes(net, x, s.class_prior)
    assert real.covered >= 990 and real.kl < 0.12 and real.counts.sum() == 10000
    const = stacked_modes(net, x[:1].expand(500, -1, -1, -1), s.class_prior)
    assert const.covered == 1
    assert const.kl == pytest.approx(-math.log(float(s.class_prior[int(np.argmax(const.counts))])))


def test_digit_scores_and_missing_mass(digits_and_classifier):
    d, net = digits_and_classifier
    g = torch.Generator().manual_seed(1)
    real = d.sample(2000, g)[0]
    good = evaluate_images(real, d, net, missing_mass_steps=60)
    bad = evaluate_images(real[:1].expand(2000, -1, -1, -1), d, net, missing_mass_steps=60)
    assert good["eval/inception_score"] > 8 and good["eval/mode_score"] > 8
    assert bad["eval/inception_score"] == pytest.approx(1.0, abs=1e-3) and bad["eval/mode_score"] < 0.01
    assert good["eval/missing_mass"] < 0.05 and bad["eval/missing_mass"] > 0.8
    test = d.sample(300, g, split="test")[0]
    zeros = missing_mass(lambda n, gen: d.sample(n, gen)[0], torch.zeros(100, 1, 16, 16), test, steps=20)
    assert 0.0 <= zeros <= 1.0
