"""Exact partitions: hand-made arrangements with known piece counts, tiling, patterns, maps and gradients against
the net itself, agreement with the rasterizer's pixels, and refusals."""
import itertools

import numpy as np
import pytest
import torch

from toyviz.engine import presets
from toyviz.engine.config import MLPConfig
from toyviz.engine.nets import MLP, Discriminator
from toyviz.geometry.polygons import exact_partition, polygon_areas

BOX = (-1.0, 1.0, -1.0, 1.0)


def lines_net(lines, activation="relu"):
    """One hidden layer whose unit u is the line lines[u] = (a, b, c): a·x + b·y + c = 0."""
    net = MLP(2, 1, MLPConfig(len(lines), 1, activation))
    with torch.no_grad():
        L = torch.tensor(lines, dtype=torch.float32)
        net.hidden[0].weight.copy_(L[:, :2])
        net.hidden[0].bias.copy_(L[:, 2])
    return net


def random_net(width, depth, seed, activation="leaky_relu"):
    torch.manual_seed(seed)
    return MLP(2, 1, MLPConfig(width, depth, activation)).double()


def net_forward(net, pts):
    """Joint patterns (N, depth·width) and logits of the net itself, in float64."""
    with torch.no_grad():
        out, feats = net.double().forward_features(torch.as_tensor(pts, dtype=torch.float64))
    return torch.cat([p > 0 for p in feats.preacts], 1).numpy(), out[:, 0].numpy()


def inside(poly, pts, tol):
    """Points inside (or within tol of) a counter-clockwise convex polygon."""
    e = np.roll(poly, -1, 0) - poly                                         # (V, 2) edges
    rel = pts[:, None, :] - poly[None]                                      # (N, V, 2)
    cross = e[None, :, 0] * rel[..., 1] - e[None, :, 1] * rel[..., 0]
    return (cross / np.hypot(e[:, 0], e[:, 1]) >= -tol).all(1)


# ---- hand-made arrangements ----------------------------------------------------------------------------------------
def test_two_axes_give_four_unit_squares():
    part = exact_partition(lines_net([(1, 0, 0), (0, 1, 0)]), BOX)
    layer = part[0]
    assert len(layer) == 4
    np.testing.assert_allclose(np.sort(layer.areas), np.ones(4), rtol=0, atol=1e-15)
    # the quadrant x > 0, y > 0 has pattern (True, True) and is exactly [0, 1]²
    i = int(np.flatnonzero(layer.patterns.all(1))[0])
    np.testing.assert_allclose(sorted(map(tuple, layer.polygon(i))), [(0, 0), (0, 1), (1, 0), (1, 1)], atol=1e-15)


def test_triangle_of_lines_gives_seven_pieces_and_the_triangle_area():
    # x = 0, y = 0, x + y = 0.5: three lines, three crossings inside the box -> 1 + 3 + 3 = 7 pieces
    layer = exact_partition(lines_net([(1, 0, 0), (0, 1, 0), (1, 1, -0.5)]), BOX)[0]
    assert len(layer) == 7
    # the triangle x > 0, y > 0, x + y < 0.5 has area 0.125
    i = int(np.flatnonzero((layer.patterns == [True, True, False]).all(1))[0])
    assert layer.areas[i] == pytest.approx(0.125, rel=1e-12)
    assert len(layer.polygon(i)) == 3


def test_a_line_outside_the_box_adds_nothing():
    layer = exact_partition(lines_net([(1, 0, 0), (1, 0, -5.0)]), BOX)[0]     # x = 0 and x = 5
    assert len(layer) == 2
    np.testing.assert_array_equal(layer.patterns[:, 1], [False, False])


@pytest.mark.parametrize("k, seed", [(5, 0), (12, 1), (30, 2)])
def test_k_lines_in_general_position(k, seed):
    """k lines through the box cut it into 1 + k + (number of their crossings inside the box) pieces."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, np.pi, k)
    normal = np.stack([np.cos(theta), np.sin(theta)], 1)
    through = rng.uniform(-0.8, 0.8, (k, 2))                                  # each line meets the box
    lines = [(a, b, -(a * p + b * q)) for (a, b), (p, q) in zip(normal, through)]
    net = lines_net(lines)
    W = net.hidden[0].weight.detach().double().numpy()
    c = net.hidden[0].bias.detach().double().numpy()
    crossings = 0
    for i, j in itertools.combinations(range(k), 2):
        x = np.linalg.solve(W[[i, j]], -c[[i, j]])
        crossings += bool(np.all(np.abs(x) < 1))
    assert len(exact_partition(net, BOX)[0]) == 1 + k + crossings


# ---- random nets: tiling, patterns, maps, gradients ----------------------------------------------------------------
@pytest.mark.parametrize("width, depth, activation, seed", [(16, 2, "leaky_relu", 0), (12, 3, "relu", 1),
                                                            (24, 2, "leaky_relu", 2)])
def test_polygons_tile_the_extent_and_carry_the_nets_patterns(width, depth, activation, seed):
    net = random_net(width, depth, seed, activation)
    extent = (-3.0, 2.0, -2.5, 3.5)
    part = exact_partition(net, extent)
    assert part.layers == list(range(depth))
    box_area = 5.0 * 6.0
    previous = None
    for l in part.layers:
        layer = part[l]
        areas = layer.areas
        assert areas.min() > 0                                               # counter-clockwise, no empty piece
        assert areas.sum() == pytest.approx(box_area, rel=1e-9)
        assert layer.patterns.shape == (len(layer), (l + 1) * width)
        # every region's pattern is the net's own at a point inside it; patterns are distinct
        pat, _ = net_forward(net, layer.centroids)
        np.testing.assert_array_equal(pat[:, :(l + 1) * width], layer.patterns)
        assert len(np.unique(np.packbits(layer.patterns, axis=1), axis=0)) == len(layer)
        # refinement: each region keeps its parent's pattern and the siblings' areas add up to the parent's
        if previous is not None:
            np.testing.assert_array_equal(layer.patterns[:, :l * width], previous.patterns[layer.parent])
            np.testing.assert_allclose(np.bincount(layer.parent, areas), previous.areas, rtol=1e-9)
            assert len(layer) >= len(previous)
        previous = layer


def test_maps_and_gradients_are_the_nets_own():
    net = random_net(10, 3, 3)
    part = exact_partition(net, (-2, 2, -2, 2))
    last = part[2]
    x = torch.tensor(last.centroids, requires_grad=True)
    out, feats = net.forward_features(x)
    out.sum().backward()
    torch.testing.assert_close(torch.as_tensor(last.grads), x.grad, rtol=1e-10, atol=1e-12)
    grad, bias = last.affine()
    torch.testing.assert_close(torch.as_tensor(np.einsum("pok,pk->po", grad, x.detach().numpy()) + bias),
                               out.detach(), rtol=1e-10, atol=1e-12)
    for l in part.layers:
        A, c = part[l].maps()
        pts = part[l].centroids
        z = np.einsum("pwk,pk->pw", A, pts) + c
        with torch.no_grad():
            _, f = net.forward_features(torch.as_tensor(pts))
        torch.testing.assert_close(torch.as_tensor(z), f.preacts[l], rtol=1e-10, atol=1e-12)
    r = last[5]
    assert r.layer == 2 and r.index == 5 and r.polygon.shape[1] == 2 and r.grad.shape == (2,)
    assert r.A.shape == (10, 2) and r.c.shape == (10,) and part[0][0].grad is None
    with pytest.raises(ValueError, match="not D's last hidden layer"):
        part[1].affine()


def test_a_subset_of_layers_matches_the_full_partition():
    net = random_net(16, 3, 4)
    full = exact_partition(net, (-4, 4, -4, 4))
    part = exact_partition(net, (-4, 4, -4, 4), layers=[1])
    assert part.layers == [1]
    np.testing.assert_array_equal(part[1].vertices, full[1].vertices)
    np.testing.assert_array_equal(part[1].patterns, full[1].patterns)
    with pytest.raises(KeyError, match="not computed"):
        part[0]


def test_lookup_finds_regions_by_pattern():
    layer = exact_partition(random_net(8, 2, 5), BOX)[1]
    idx = np.array([3, 0, len(layer) - 1])
    np.testing.assert_array_equal(layer.lookup(layer.patterns[idx]), idx)
    missing = ~layer.patterns[:1]
    assert layer.lookup(missing)[0] == -1 or (layer.patterns[layer.lookup(missing)[0]] == missing[0]).all()


def test_polygon_areas_of_a_square_and_a_clockwise_triangle():
    v = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [0, 0], [0, 1], [1, 0]], float)
    np.testing.assert_allclose(polygon_areas(v, np.array([0, 4, 7])), [4.0, -0.5])


# ---- against the rasterizer ----------------------------------------------------------------------------------------
def raster_patterns(raster, layer):
    """(R·R, (layer+1)·width) joint pattern of every pixel, from the raster's per-layer ids."""
    return np.concatenate([raster.patterns[k][raster.ids[k].reshape(-1)] for k in range(layer + 1)], 1)


@pytest.mark.parametrize("width, depth, seed", [(8, 2, 0), (16, 3, 1)])
def test_every_pixel_centre_lies_in_the_polygon_with_its_pattern(width, depth, seed):
    from toyviz.geometry.raster import rasterize
    net = random_net(width, depth, seed).float()
    extent = (-2.0, 2.0, -2.0, 2.0)
    raster = rasterize(net, extent, 48, grad_resolution=0)
    part = exact_partition(net, extent)
    pts = np.stack(np.meshgrid(raster.xs, raster.ys), -1).reshape(-1, 2)
    for l in range(depth):
        layer = part[l]
        idx = layer.lookup(raster_patterns(raster, l))
        assert (idx >= 0).all()
        hits = np.array([inside(layer.polygon(i), pts[idx == i], 1e-6).all() for i in np.unique(idx)])
        assert hits.all()
        # exact counts ≥ grid counts: the grid sees a subset of the regions
        assert len(layer) >= raster.cumulative_counts[l] == len(np.unique(idx))


def test_counts_equal_the_grids_when_every_region_is_larger_than_a_pixel():
    from toyviz.geometry.raster import rasterize
    net = lines_net([(1, 0, -0.1), (0, 1, 0.2), (1, 1, -0.5)], "leaky_relu")     # the triangle has area 0.18
    raster = rasterize(net, BOX, 64, grad_resolution=0)
    layer = exact_partition(net, BOX)[0]
    assert layer.areas.min() > 30 * (2 / 63) ** 2
    assert len(layer) == raster.cumulative_counts[0] == 1 + 3 + 3


def test_top_level_exposes_exact_partition_and_negative_layers_count_from_the_last():
    import toyviz
    assert toyviz.exact_partition is exact_partition
    net = lines_net([(1, 0, -0.1), (0, 1, 0.2)], "relu")
    part = exact_partition(net, BOX)
    assert part[-1] is part[part.layers[-1]]
    with pytest.raises(KeyError, match="not computed"):
        part[-len(part.layers) - 1]


# ---- which nets ----------------------------------------------------------------------------------------------------
def test_spectral_norm_uses_the_normalized_weight_and_leaves_the_net_as_it_was():
    cfg = presets.get("bre-toy").replace(**{"nets.d_spectral_norm": True})
    torch.manual_seed(0)
    D = Discriminator(cfg)
    D.train()
    before = {k: v.clone() for k, v in D.state_dict().items()}
    part = exact_partition(D, (-1.5, 1.5, -1.5, 1.5))
    assert D.training
    for k, v in D.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    D.eval()
    last = part[D.depth - 1]
    pat, _ = net_forward(D, last.centroids)
    np.testing.assert_array_equal(pat, last.patterns)


@pytest.mark.parametrize("override, match", [
    ({"nets.d.activation": "tanh"}, "D.activation must be 'relu', 'leaky_relu' or 'maxout'"),
    ({"nets.minibatch_kernels": 4}, "minibatch discrimination"),
    ({"nets.pack": 2}, "pack = 1, in_dim = 2"),
])
def test_refuses_nets_without_a_fixed_planar_partition(override, match):
    D = Discriminator(presets.get("bre-toy").replace(**override))
    with pytest.raises(ValueError, match=match):
        exact_partition(D, BOX)


@pytest.mark.parametrize("extent, layers, match", [
    ((1, -1, -1, 1), None, "extent must be"),
    ((0, 1, 0), None, "extent must be"),
    ((0, 1, 0, float("nan")), None, "extent must be"),
    (BOX, [4], r"layers must be hidden-layer indices in 0\.\.1"),
    (BOX, [], "layers must be"),
    (BOX, ["a"], "layers must be"),
])
def test_bad_arguments(extent, layers, match):
    with pytest.raises(ValueError, match=match):
        exact_partition(random_net(4, 2, 0), extent, layers)


# ---- metrics.exact_region_stats ------------------------------------------------------------------------------------
def test_exact_region_stats_counts_what_the_grid_missed():
    from toyviz.geometry.metrics import exact_region_stats
    net = random_net(12, 2, 6).float()
    extent = (-3.0, 3.0, -3.0, 3.0)
    stats = exact_region_stats(net, extent, 32)
    part = exact_partition(net, extent)
    assert stats.exact == [len(part[0]), len(part[1])]
    assert stats.unmatched == [0, 0]
    assert [e - m for e, m in zip(stats.exact, stats.missed)] == stats.grid       # each grid region is one exact one
    assert stats.missed[1] > 0                                                   # 32² pixels miss small regions
    fine = exact_region_stats(net, extent, 1024)
    assert fine.missed[1] < stats.missed[1]
