import math

import numpy as np
import pytest
import torch

from toyviz.engine.config import DataConfig
from toyviz.engine.data import make_data
from toyviz.geometry.metrics import mode_coverage


@pytest.mark.parametrize("kind,kl", [("ring", 0.0015), ("grid", 0.005)])
def test_perfect_sampler(kind, kl):
    cfg = DataConfig(kind=kind, std=0.05, radius=2.0)
    m = make_data(cfg)
    hq, rkl, modes = [], [], []
    for seed in range(20):
        c = mode_coverage(m.sample(2500, torch.Generator().manual_seed(seed)).numpy(), m.centers.numpy(), 0.05)
        hq.append(c.hq), rkl.append(c.reverse_kl), modes.append(c.modes)
    assert min(modes) == m.n_modes
    assert np.mean(hq) == pytest.approx(0.989, abs=0.004)          # P(χ²₂ ≤ 9) = 1 − e^{−4.5}
    assert np.mean(rkl) == pytest.approx(kl, rel=0.35)


def test_by_hand():
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.1, 0.0], [0.0, 0.1], [10.2, 0.0], [5.0, 5.0]])
    c = mode_coverage(samples, centers, std=0.1)
    assert c.modes == 2 and c.hq == pytest.approx(0.75)
    p = np.array([2 / 3, 1 / 3])
    assert c.reverse_kl == pytest.approx(float(np.sum(p * np.log(p / 0.5))))
    collapsed = mode_coverage(np.zeros((10, 2)), centers, std=0.1)
    assert collapsed.modes == 1 and collapsed.reverse_kl == pytest.approx(math.log(2))
    none = mode_coverage(np.full((5, 2), 100.0), centers, std=0.1)
    assert none.modes == 0 and none.hq == 0 and math.isinf(none.reverse_kl)


def test_each_mode_is_scored_by_its_own_sigma():
    centers = np.array([[0.0, 0.0], [1.0, 0.0]])
    stds = [0.1, 0.5]                                              # the mean σ would be 0.3
    samples = np.array([[0.05, 0.0], [2.4, 0.0], [-0.6, 0.0]])
    # own σ: 0.5σ₀ from mode 0 (HQ); 2.8σ₁ from mode 1 (HQ); 6σ₀ and 3.2σ₁ away (not HQ)
    own = mode_coverage(samples, centers, stds)
    assert own.counts.tolist() == [1, 1] and own.modes == 2 and own.hq == pytest.approx(2 / 3)
    # one σ = 0.3 for both: 1.4 from mode 1 is not HQ, 0.6 from mode 0 is: a different answer
    mean = mode_coverage(samples, centers, 0.3)
    assert mean.counts.tolist() == [2, 0] and mean.modes == 1
    # nearest in units of σ: 0.5 from mode 0 (5σ₀) but 1.12 from mode 1 (2.2σ₁) belongs to mode 1
    assert mode_coverage(np.array([[0.0, 0.5]]), centers, stds).counts.tolist() == [0, 1]
    mix = make_data(DataConfig(kind="mixture", centers=centers.tolist(), stds=stds))
    assert mix.coverage_std.tolist() == pytest.approx(stds)
    ring = make_data(DataConfig(kind="ring"))
    assert ring.coverage_std == ring.std                            # one σ: the number it always was


def test_unequal_weights():
    c = mode_coverage(np.zeros((3, 2)), np.array([[0.0, 0.0], [9.0, 9.0]]), std=0.1, weights=[3, 1])
    assert c.reverse_kl == pytest.approx(math.log(1 / 0.75))
