import numpy as np
import pytest

from toyviz.engine import presets
from toyviz.engine.config import DataConfig
from toyviz.engine.data import make_data
from toyviz.engine.noise_baselines import (
    BASELINES,
    baseline_coverage,
    baseline_samples,
    extent,
    neighbour_segments,
)

GRID = presets.get("grid25").data
RING = presets.get("ring8").data


def test_extent_is_the_centres_box_widened_by_half_the_spacing():
    assert extent(make_data(GRID).centers.numpy()) == pytest.approx((-5, 5, -5, 5))
    half_chord = np.sin(np.pi / 8)                                   # ring8, r = 1: neighbours 2 sin(π/8) apart
    assert extent(make_data(RING).centers.numpy()) == pytest.approx((-1 - half_chord, 1 + half_chord) * 2)


def test_neighbour_segments_of_a_grid_are_its_lines():
    seg = neighbour_segments(make_data(GRID).centers.numpy())
    assert len(seg) == 2 * 5 * 4                                     # 5 rows and 5 columns of 4 edges each
    c = make_data(GRID).centers.numpy()
    assert np.allclose(np.linalg.norm(c[seg[:, 0]] - c[seg[:, 1]], axis=1), 2.0)


def test_uniform_fills_the_extent():
    x = baseline_samples("uniform", GRID, 2500, seed=3)
    assert x.shape == (2500, 2) and x.min() >= -5 and x.max() <= 5
    assert np.all(np.abs(x.mean(0)) < 0.3) and x.std(0) == pytest.approx([10 / np.sqrt(12)] * 2, rel=0.05)
    assert np.array_equal(x, baseline_samples("uniform", GRID, 2500, seed=3))        # seeded
    assert not np.array_equal(x, baseline_samples("uniform", GRID, 2500, seed=4))


def test_smeared_lies_along_the_ring_and_the_grid_lines():
    x = baseline_samples("smeared", RING, 2500, seed=0)
    r = np.linalg.norm(x, axis=1)
    assert x.shape == (2500, 2) and r.mean() == pytest.approx(1.0, abs=0.002)
    assert r.std() == pytest.approx(RING.std, rel=0.1)               # the modes' σ across the circle
    angle = np.arctan2(x[:, 1], x[:, 0])
    assert np.histogram(angle, 8, (-np.pi, np.pi))[0].min() > 250    # uniform along it: ~312 an eighth
    g = baseline_samples("smeared", GRID, 2500, seed=0)
    off = np.minimum(np.abs(g[:, 0] - np.round(g[:, 0] / 2) * 2), np.abs(g[:, 1] - np.round(g[:, 1] / 2) * 2))
    assert g.min() >= -4 - 5 * GRID.std and g.max() <= 4 + 5 * GRID.std
    assert np.percentile(off, 99) < 3 * GRID.std                     # on a grid line, σ across


def test_the_baselines_score_as_the_issue_measured():
    # a sampler with no mode structure captures most grid modes at a few % HQ: why verdicts need HQ
    uni = [baseline_coverage("uniform", GRID, 2500, s) for s in range(4)]
    assert all(15 <= c.modes <= 25 and c.hq < 0.03 for c in uni)
    sm = baseline_coverage("smeared", RING, 2500, 0)
    assert sm.modes == 8 and 0.03 < sm.hq < 0.12 and sm.reverse_kl < 0.05


def test_bad_baselines_are_refused():
    with pytest.raises(ValueError, match="baseline must be one of uniform, smeared"):
        baseline_samples("gaussian", RING)
    with pytest.raises(ValueError, match="two modes or more"):
        baseline_samples("uniform", DataConfig(kind="points", points=[[0.0, 0.0], [1.0, 1.0]]))
    assert list(BASELINES) == ["uniform", "smeared"]
