"""toyviz.metrics pattern diversity (METHODS §1, §6): distinct patterns, their entropy, ∇ₓD directions, region
counts, and what `evaluate(trainer)` logs."""
import math
from collections import Counter

import numpy as np
import pytest
import torch

from toyviz import Trainer
from toyviz.engine import presets
from toyviz.engine.config import MLPConfig
from toyviz.engine.nets import MLP, Discriminator
from toyviz.geometry import metrics
from toyviz.geometry.raster import rasterize


def hand_net(weights, biases, out, activation="relu"):
    net = MLP(2, 1, MLPConfig(width=len(weights), depth=1, activation=activation, slope=0.2))
    with torch.no_grad():
        net.hidden[0].weight.copy_(torch.tensor(weights))
        net.hidden[0].bias.copy_(torch.tensor(biases))
        net.out.weight.copy_(torch.tensor([out]))
        net.out.bias.zero_()
    return net


def test_single_unit_patterns_entropy_and_directions():
    net = hand_net([[1.0, 0.0]], [0.0], [2.0])
    d = metrics.pattern_diversity(net, [[-1, 0], [1, 0], [2, 0], [3, 0.5]])
    assert d.patterns == [2] and d.cumulative_patterns == [2]
    assert d.entropy[0] == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    assert d.grad_dirs == 2                                      # (2, 0) on the right, flat (relu off) on the left


def test_one_pattern_has_entropy_plus_zero():
    d = metrics.pattern_diversity(hand_net([[1.0, 0.0]], [0.0], [2.0]), [[1, 0], [2, 0], [3, 1]])
    assert d.patterns == [1] and d.entropy == [0.0] and math.copysign(1.0, d.entropy[0]) == 1.0     # logged as 0.0


def test_leaky_sides_share_one_direction():
    net = hand_net([[1.0, 0.0]], [0.0], [-1.0], activation="leaky_relu")
    d = metrics.pattern_diversity(net, [[-1, 0], [1, 0]])
    assert d.patterns == [2] and d.grad_dirs == 1              # (−0.2, 0) and (−1, 0): one direction, π


def test_directions_at_pi_and_minus_pi_are_one():
    net = hand_net([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], [-1.0, -1e-7])
    pts = [[1, -1], [1, 1], [-1, 1], [-1, -1]]               # grads (−1, 0), (−1, −1e-7), (0, −1e-7), flat
    d = metrics.pattern_diversity(net, pts)
    assert d.patterns == [4] and d.entropy[0] == pytest.approx(math.log(4))
    assert d.grad_dirs == 3


def test_random_net_matches_independent_count():
    cfg = presets.get("ring8").replace(**{"nets.d.width": 70, "nets.d.depth": 2})
    torch.manual_seed(0)
    D = Discriminator(cfg)
    pts = np.random.default_rng(0).normal(size=(300, 2))
    d = metrics.pattern_diversity(D, pts)
    with torch.no_grad():
        _, feats = D.forward_features(torch.as_tensor(pts, dtype=torch.float32))
    bits = [[tuple(r) for r in (p > 0).numpy().tolist()] for p in feats.preacts]
    for l in range(2):
        c = Counter(bits[l])
        assert d.patterns[l] == len(c)
        assert d.entropy[l] == pytest.approx(-sum(n / 300 * math.log(n / 300) for n in c.values()))
    assert d.cumulative_patterns[1] == len(set(zip(bits[0], bits[1])))
    assert 1 <= d.grad_dirs <= d.cumulative_patterns[1]          # a ReLU D's gradient is constant per region


def test_region_counts_are_the_rasters():
    D = Discriminator(presets.get("ring8").replace(**{"nets.d.width": 12}))
    assert metrics.region_counts(D, (-1, 1, -1, 1), 32) == rasterize(D, (-1, 1, -1, 1), 32).cumulative_counts


def test_evaluate_logs_diversity_and_regions(tiny_cfg):
    t = Trainer(tiny_cfg, callbacks=[metrics.RegionMetrics()])
    t.run(2)
    ev = t.evaluate()
    d = metrics.pattern_diversity(t.D, t.eval_samples().numpy())
    counts = rasterize(t.D, tuple(tiny_cfg.viz.extent), metrics.EVAL_GRID, grad_resolution=0).cumulative_counts
    for l in range(1, t.D.depth + 1):
        assert ev[f"div/patterns/l{l}"] == d.patterns[l - 1]
        assert ev[f"div/entropy/l{l}"] == pytest.approx(d.entropy[l - 1])
        assert 0 <= ev[f"div/entropy/l{l}"] <= math.log(tiny_cfg.viz.eval_samples)
        assert ev[f"regions/l{l}"] == counts[l - 1]
    assert ev["div/grad_dirs"] == d.grad_dirs
    assert {"eval/modes", "eval/hq", "eval/reverse_kl"} <= set(ev)


def test_evaluate_with_minibatch_d(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**{"nets.minibatch_kernels": 4, "nets.pack": 2}),
                callbacks=[metrics.RegionMetrics()])
    ev = t.evaluate()
    assert ev["div/patterns/l1"] >= 1 and ev["regions/l1"] >= 1


def test_bad_input():
    net = hand_net([[1.0, 0.0]], [0.0], [1.0])
    with pytest.raises(ValueError, match="points"):
        metrics.pattern_diversity(net, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="angle_tol"):
        metrics.pattern_diversity(net, [[0, 0]], angle_tol=0)


def test_the_engine_alone_logs_coverage_but_no_region_numbers(tiny_cfg):
    ev = Trainer(tiny_cfg).evaluate()
    assert {"eval/modes", "eval/hq", "eval/reverse_kl"} <= set(ev)
    assert not any(k.startswith(("div/", "regions/")) for k in ev)
