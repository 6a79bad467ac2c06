"""Maxout discriminators (METHODS §7): the one-hot pattern of winning pieces, read alike by the rasterizer, the exact
partition, the diversity metrics and feature matching; hand-made nets with regions counted by hand; a trained net's
ids against the argmax of its pieces; ∇ₓD per region against autograd; the config's refusals."""
import numpy as np
import pytest
import torch

import toyviz
from toyviz.engine.config import MLPConfig
from toyviz.engine.nets import MLP
from toyviz.geometry.metrics import exact_region_stats, pattern_diversity
from toyviz.geometry.polygons import exact_partition
from toyviz.geometry.raster import rasterize

BOX = (-1.0, 1.0, -1.0, 1.0)


def maxout_net(layers, width, pieces):
    """An MLP of maxout units whose layer l has weight rows and biases `layers[l] = (W, b)` (unit u's piece j in row
    u·k + j) and an output w = 1, b = 0 on unit 0."""
    net = MLP(2, 1, MLPConfig(width, len(layers), "maxout", pieces=pieces))
    with torch.no_grad():
        for layer, (W, b) in zip(net.hidden, layers):
            layer.weight.copy_(torch.tensor(W, dtype=torch.float32))
            layer.bias.copy_(torch.tensor(b, dtype=torch.float32))
        net.out.weight.zero_()
        net.out.weight[0, 0] = 1.0
        net.out.bias.zero_()
    return net


def argmax_tuples(net, pts):
    """Per hidden layer, each point's winning piece per unit, (N, width), from the net's Linear layers by hand."""
    h, out = torch.as_tensor(pts, dtype=torch.float32), []
    with torch.no_grad():
        for layer in net.hidden:
            z = layer(h).view(len(h), -1, net.pieces)
            out.append(z.argmax(-1).numpy())
            h = z.max(-1).values
    return out


def raster_points(r):
    return np.stack(np.meshgrid(r.xs, r.ys), -1).reshape(-1, 2)


def test_one_unit_two_pieces_is_two_half_planes():
    # piece 0: x + 2y + 0.5, piece 1: −x + 0; piece 0 wins where 2x + 2y + 0.5 > 0, i.e. x + y > −0.25
    net = maxout_net([([[1.0, 2.0], [-1.0, 0.0]], [0.5, 0.0])], width=1, pieces=2)
    part = exact_partition(net, BOX)
    assert len(part[0]) == 2
    areas = {tuple(p): a for p, a in zip(part[0].patterns.astype(int), part[0].areas)}
    below = 1.75 ** 2 / 2                                        # the triangle x + y < −0.25 at the corner (−1, −1)
    assert areas[(1, 0)] == pytest.approx(4 - below, abs=1e-12) and areas[(0, 1)] == pytest.approx(below, abs=1e-12)
    for poly, pattern in zip(part[0].polygons(), part[0].patterns):
        side = poly.sum(1) + 0.25                                # every vertex on its piece's side (or the line)
        assert (side >= -1e-12).all() if pattern[0] else (side <= 1e-12).all()
    r = rasterize(net, BOX, 64, grad_resolution=0)
    assert r.counts == [2] and r.widths == [2]
    pts = raster_points(r)
    margin = pts.sum(1) + 0.25
    bits = r.patterns[0][r.ids[0].reshape(-1)]
    off_line = np.abs(margin) > 1e-5
    np.testing.assert_array_equal(bits[off_line, 0], margin[off_line] > 0)
    assert (bits.sum(1) == 1).all()                              # exactly one piece on per unit
    # raster and polygons agree: each pixel's pattern is the pattern of the polygon that holds it
    hit = part[0].lookup(bits)
    assert (hit >= 0).all()
    np.testing.assert_array_equal(part[0].patterns[hit][:, 0], bits[:, 0])


def abs_net():
    """Layer 1: unit 0 = max(x, −x, −10) = |x|, unit 1 = |y|. Layer 2: unit 0 = max(|x|, |y|, 0.5); unit 1 a
    constant piece that always wins (it splits nothing). By hand, in [−1, 1]²: layer 1 has 4 regions (the
    quadrants); layer 2 splits each quadrant into 3 cells (|x| the largest and > ½, |y| the largest and > ½, both
    below ½), so 12 linear regions, and layer 2 alone has 3 patterns."""
    W1 = [[1, 0], [-1, 0], [0, 0], [0, 1], [0, -1], [0, 0]]
    b1 = [0, 0, -10, 0, 0, -10]
    W2 = [[1, 0], [0, 1], [0, 0], [0, 0], [0, 0], [0, 0]]
    b2 = [0, 0, 0.5, -10, 1, -10]
    return maxout_net([(W1, b1), (W2, b2)], width=2, pieces=3)


def test_hand_made_two_layer_maxout_regions():
    net = abs_net()
    part = exact_partition(net, BOX)
    assert part.counts() == {0: 4, 1: 12}
    assert part[1].areas.sum() == pytest.approx(4.0, abs=1e-12)
    np.testing.assert_allclose(np.sort(part[1].areas), [0.25] * 4 + [0.375] * 8, atol=1e-12)
    r = rasterize(net, BOX, 128, grad_resolution=0)
    assert r.counts == [4, 3] and r.cumulative_counts == [4, 12]
    stats = exact_region_stats(net, BOX, 128)
    assert stats.exact == [4, 12] and stats.grid == [4, 12] and stats.missed == [0, 0] and stats.unmatched == [0, 0]
    # the logit max(|x|, |y|, ½) on each cell: ∇ = (±1, 0), (0, ±1) or 0
    grads = sorted(map(tuple, np.round(part[1].grads, 12) + 0.0))
    assert grads == sorted([(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)] * 2 + [(0.0, 0.0)] * 4)


@pytest.fixture(scope="module")
def trained():
    cfg = toyviz.presets.get("ring8").replace(**{
        "nets.d.activation": "maxout", "nets.d.pieces": 3, "nets.d.width": 8, "nets.g.width": 16,
        "optim.batch_size": 64, "optim.iters": 200, "viz.metrics_every": 1000})
    t = toyviz.Trainer(cfg)
    t.run(200)
    return t


def test_ids_are_the_argmax_tuples_of_a_trained_net(trained):
    D = trained.D
    r = rasterize(D, (-1.5, 1.5, -1.5, 1.5), 96, grad_resolution=0)
    tuples = argmax_tuples(D, raster_points(r))
    joint = []
    for l, win in enumerate(tuples):
        onehot = r.patterns[l][r.ids[l].reshape(-1)].reshape(len(win), -1, D.pieces)
        assert (onehot.sum(-1) == 1).all()
        np.testing.assert_array_equal(onehot.argmax(-1), win)                 # the bits are the winning pieces
        _, inv = np.unique(win, axis=0, return_inverse=True)
        np.testing.assert_array_equal(_canonical(r.ids[l].reshape(-1)), _canonical(inv.reshape(-1)))
        joint.append(win)
        _, jinv = np.unique(np.concatenate(joint, 1), axis=0, return_inverse=True)
        np.testing.assert_array_equal(_canonical(r.cumulative_ids[l].reshape(-1)), _canonical(jinv.reshape(-1)))
    assert r.cumulative_counts[-1] > r.cumulative_counts[0] > 1


def _canonical(labels):
    """Labels renumbered by first appearance: two labellings are the same partition iff these are equal."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inv.reshape(-1)]


def test_gradient_per_region_equals_autograd(trained):
    D = trained.D
    extent = (-1.5, 1.5, -1.5, 1.5)
    part = exact_partition(D, extent)
    x = torch.tensor(part[-1].centroids, dtype=torch.float32, requires_grad=True)
    D(x).sum().backward()
    np.testing.assert_allclose(part[-1].grads, x.grad.numpy(), rtol=1e-4, atol=1e-6)
    # the patterns of the centroids, from the net, are the regions' own
    tuples = argmax_tuples(D, part[-1].centroids)
    onehot = part[-1].patterns.reshape(len(part[-1]), -1, D.pieces).argmax(-1)
    np.testing.assert_array_equal(onehot, np.concatenate(tuples, 1))
    assert part[-1].areas.sum() == pytest.approx(9.0, rel=1e-9)
    # the raster's mosaic: per region, ∇ₓD averaged over its pixels, each equal to autograd there
    r = rasterize(D, extent, 64)
    pts = torch.tensor(raster_points(r), dtype=torch.float32, requires_grad=True)
    D(pts).sum().backward()
    np.testing.assert_allclose(r.mosaic.reshape(-1, 2), pts.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_diversity_counts_distinct_argmax_tuples(trained):
    x = trained.eval_samples().numpy()
    div = pattern_diversity(trained.D, x)
    tuples = argmax_tuples(trained.D, x)
    assert div.patterns == [len(np.unique(w, axis=0)) for w in tuples]
    assert div.cumulative_patterns[-1] == len(np.unique(np.concatenate(tuples, 1), axis=0))


def test_feature_matching_reads_the_maxout_outputs():
    cfg = toyviz.presets.get("ring8-fm").replace(**{"nets.d.activation": "maxout", "nets.d.pieces": 2,
                                                    "nets.d.width": 8, "nets.g.width": 8, "optim.batch_size": 32})
    t = toyviz.Trainer(cfg)
    _, feats = t.D.forward_features(torch.randn(5, 2))
    assert [tuple(a.shape) for a in feats.acts] == [(5, 8)] * 3          # one value a unit, not a piece
    assert [tuple(p.shape) for p in feats.preacts] == [(5, 16)] * 3
    t.run(3)
    assert np.isfinite(t.history[-1]["loss/g"])


@pytest.mark.parametrize("overrides, message", [
    ({"nets.d.activation": "maxout"}, "nets.d.pieces: a maxout unit needs k pieces"),
    ({"nets.d.activation": "maxout", "nets.d.pieces": 1}, r"nets.d.pieces must lie in \[2, 64\]"),
    ({"nets.d.pieces": 3}, "nets.d.pieces applies to maxout units only"),
    ({"nets.g.activation": "maxout", "nets.g.pieces": 2}, "implemented for D's hidden layers only"),
    ({"nets.d.activation": "maxout", "nets.d.pieces": 3, "reg.bre.weight": 1.0}, "a maxout unit has no sign"),
])
def test_config_refuses_with_the_reason(overrides, message):
    with pytest.raises(ValueError, match=message):
        toyviz.presets.get("ring8").replace(**overrides).validate()


def test_seed_batches_refuse_maxout():
    from toyviz.engine.seed_batch import refusal
    cfg = toyviz.presets.get("ring8").replace(**{"nets.d.activation": "maxout", "nets.d.pieces": 2})
    assert "maxout units (nets.d.activation maxout) cannot run as a seed batch" in refusal(cfg)
