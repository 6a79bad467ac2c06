"""toyviz.geometry.raster: exact pattern ids against independently computed bit tuples, ∇ₓD against finite differences,
the mosaic glass, chunking, reference batches, colour stability and bad input."""
import numpy as np
import pytest
import torch

from toyviz import Trainer
from toyviz.engine import presets
from toyviz.engine.config import MLPConfig
from toyviz.engine.nets import MLP, Discriminator, Generator
from toyviz.geometry.raster import (
    MAX_CHUNK,
    MIN_CHUNK,
    Probe,
    Raster,
    chunk_rows,
    grid,
    input_gradient,
    raster_of,
    rasterize,
    rasterize_latent,
)

EXTENT = (-1.5, 1.5, -1.2, 1.0)


def make_d(width=10, depth=3, activation="leaky_relu", seed=0, **nets):
    cfg = presets.get("ring8").replace(**{"nets.d.width": width, "nets.d.depth": depth,
                                          "nets.d.activation": activation, **{f"nets.{k}": v for k, v in nets.items()}})
    torch.manual_seed(seed)
    return Discriminator(cfg)


def bit_tuples(D, pts, reference=None):
    """Per layer, each point's pattern as a tuple of Python bools: computed without any of regions' packing."""
    with torch.no_grad():
        x = torch.as_tensor(pts, dtype=torch.float32)
        _, feats = D.forward_features(x) if reference is None else D.forward_features(x, reference=reference)
    return [[tuple(bool(b) for b in row) for row in (p > 0).numpy()] for p in feats.preacts]


def assert_exact_ids(ids, tuples, count):
    """ids equal iff tuples equal: the map tuple -> id is a bijection onto range(count)."""
    flat = ids.reshape(-1)
    seen = {}
    for t, i in zip(tuples, flat.tolist()):
        assert seen.setdefault(t, i) == i
    assert len(seen) == count == len(set(seen.values()))
    assert sorted(seen.values()) == list(range(count))


def test_single_unit_splits_the_plane_at_x0():
    net = MLP(2, 1, MLPConfig(width=1, depth=1, activation="relu"))
    with torch.no_grad():
        net.hidden[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        net.hidden[0].bias.zero_()
    r = rasterize(net, (-1, 1, -1, 1), resolution=17, grad_resolution=16)
    assert r.counts == [2] and r.cumulative_counts == [2]
    on = r.xs > 0                                                  # xs[8] == 0 exactly: preact 0 is "off"
    assert r.xs[8] == 0 and on.sum() == 8
    expected = np.broadcast_to(on, (17, 17))
    np.testing.assert_array_equal(r.patterns[0][r.ids[0]][..., 0], expected)
    assert len(np.unique(r.ids[0][:, on])) == 1 and len(np.unique(r.ids[0][:, ~on])) == 1
    assert not np.array_equal(r.colors[0][0, 0], r.colors[0][0, -1])
    np.testing.assert_array_equal(r.pattern_at(0, *r.pixel(0.7, -0.3)), [True])
    np.testing.assert_array_equal(r.pattern_at(0, *r.pixel(-0.7, 0.9)), [False])


def test_grid_orientation():
    xs, ys, pts = grid((0.0, 2.0, -1.0, 3.0), 16)
    np.testing.assert_allclose(xs, np.linspace(0, 2, 16))
    np.testing.assert_allclose(ys, np.linspace(3, -1, 16))
    np.testing.assert_allclose(pts.reshape(16, 16, 2)[2, 5], [xs[5], ys[2]])


@pytest.mark.parametrize("width,depth", [(10, 3), (70, 2)])     # 70 units: more than one 64-bit word per pattern
def test_ids_match_bit_tuples_exactly(width, depth):
    D = make_d(width, depth, seed=width)
    R = 24
    r = rasterize(D, EXTENT, R, grad_resolution=0)
    tuples = bit_tuples(D, grid(EXTENT, R)[2])
    joint = [()] * (R * R)
    for l in range(depth):
        assert_exact_ids(r.ids[l], tuples[l], r.counts[l])
        joint = [a + b for a, b in zip(joint, tuples[l])]
        assert_exact_ids(r.cumulative_ids[l], joint, r.cumulative_counts[l])
        np.testing.assert_array_equal(r.patterns[l][r.ids[l]].reshape(R * R, -1), np.array(tuples[l]))
        # equal pattern => equal colour
        for k in range(r.counts[l]):
            colours = r.colors[l][r.ids[l] == k]
            assert (colours == colours[0]).all()
    assert r.cumulative_counts[0] == r.counts[0] and r.cumulative_counts == sorted(r.cumulative_counts)
    assert r.widths == [width] * depth


def test_prob_and_output_are_the_nets():
    D = make_d()
    r = rasterize(D, EXTENT, 16, prob_fn=torch.sigmoid, grad_resolution=0)
    with torch.no_grad():
        logit = D(torch.as_tensor(grid(EXTENT, 16)[2], dtype=torch.float32))
    np.testing.assert_allclose(r.output.reshape(-1), logit.numpy().reshape(-1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(r.prob.reshape(-1), torch.sigmoid(logit).numpy().reshape(-1), rtol=1e-6)
    assert r.prob.dtype == np.float32 and r.reference is None
    assert r.grad.shape == (0, 0, 2) and r.mosaic.shape == (0, 0, 2)


@pytest.mark.parametrize("activation", ["leaky_relu", "relu", "tanh"])     # closed form, closed form, autograd
def test_gradient_matches_finite_differences(activation):
    D = make_d(8, 3, activation).double()
    r = rasterize(D, EXTENT, 16, grad_resolution=9)
    gx, gy = np.meshgrid(r.grad_xs, r.grad_ys)
    pts = torch.tensor(np.stack([gx, gy], -1).reshape(-1, 2))
    h = 1e-6
    with torch.no_grad():
        fd = torch.stack([(D(pts + h * e) - D(pts - h * e))[:, 0] / (2 * h)
                          for e in torch.eye(2, dtype=torch.float64)], -1)
    torch.testing.assert_close(torch.tensor(r.grad.reshape(-1, 2), dtype=torch.float64), fd, rtol=1e-4, atol=1e-5)
    assert r.grad.shape == (9, 9, 2) and r.grad.dtype == np.float32


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_mosaic_is_the_gradient_averaged_per_region(activation):
    D = make_d(6, 2, activation, seed=3)
    r = rasterize(D, EXTENT, 20, grad_resolution=4)
    full = input_gradient(Probe(D), grid(EXTENT, 20)[2]).astype(np.float64)        # (N, 2) at every pixel
    regions = r.cumulative_ids[-1].reshape(-1)
    for k in range(r.cumulative_counts[-1]):
        inside = regions == k
        expected = np.broadcast_to(full[inside].mean(0), (inside.sum(), 2))
        np.testing.assert_allclose(r.mosaic.reshape(-1, 2)[inside], expected, rtol=1e-5, atol=1e-6)


def test_closed_form_gradient_equals_autograd_on_packed_spectral_d():
    D = make_d(9, 3, pack=2, d_spectral_norm=True).eval()
    ref = np.array([[0.4, -0.1], [1.0, 0.0]])
    probe = Probe(D, ref)
    assert probe.affine
    pts = grid(EXTENT, 16)[2]
    x = torch.as_tensor(pts, dtype=torch.float32).requires_grad_(True)
    logit = D(torch.cat([x, torch.tensor([[0.4, -0.1]]).expand(len(x), 2)], 1))
    expected, = torch.autograd.grad(logit.sum(), x)
    torch.testing.assert_close(torch.as_tensor(input_gradient(probe, pts)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("minibatch", [4, 0])          # autograd gradients, or the closed-form chain
@pytest.mark.parametrize("chunk", [100, None])            # None: the default, sized to D by chunk_rows
def test_chunked_equals_unchunked(minibatch, chunk):
    D = make_d(12, 3, minibatch_kernels=minibatch)
    ref = np.random.default_rng(0).normal(size=(32, 2)) if minibatch else None
    a = rasterize(D, EXTENT, 32, ref, grad_resolution=8, chunk=chunk)
    b = rasterize(D, EXTENT, 32, ref, grad_resolution=8, chunk=65536)
    for name in ("ids", "cumulative_ids", "colors", "cumulative_colors", "patterns"):
        for x, y in zip(getattr(a, name), getattr(b, name)):
            np.testing.assert_array_equal(x, y)
    assert a.counts == b.counts and a.cumulative_counts == b.cumulative_counts
    for name in ("prob", "grad", "mosaic", "output"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6)


def test_chunk_rows_shrink_as_the_net_widens():
    narrow, wide = make_d(10, 4), make_d(128, 3)
    assert chunk_rows(narrow) > chunk_rows(wide)
    for D in (narrow, wide, make_d(2048, 4)):
        rows = chunk_rows(D)
        assert MIN_CHUNK <= rows <= MAX_CHUNK and rows % 256 == 0
        assert Probe(D).chunk == rows


def test_colours_are_a_function_of_the_pattern_across_steps():
    t = Trainer(presets.get("ring8").replace(**{"nets.d.width": 16, "nets.g.width": 16, "optim.batch_size": 32,
                                                 "viz.eval_samples": 64}))
    before = raster_of(t, resolution=48, grad_resolution=0)
    t.run(3)
    after = raster_of(t, resolution=48, grad_resolution=0)
    for l in range(before.depth):
        same = (before.patterns[l][before.ids[l]] == after.patterns[l][after.ids[l]]).all(-1)
        assert same.any() and not same.all()                       # some patterns persisted, some changed
        np.testing.assert_array_equal(before.colors[l][same], after.colors[l][same])
    # also independent of the grid: on another extent and resolution, every shared pattern has the same colour
    other = rasterize(t.D, (-0.5, 1.0, -0.7, 0.2), 21, grad_resolution=0)
    for l in range(after.depth):
        colour_of = {after.patterns[l][k].tobytes(): tuple(after.colors[l][after.ids[l] == k][0])
                     for k in range(after.counts[l])}
        shared = [k for k in range(other.counts[l]) if other.patterns[l][k].tobytes() in colour_of]
        assert shared
        for k in shared:
            assert tuple(other.colors[l][other.ids[l] == k][0]) == colour_of[other.patterns[l][k].tobytes()]


def test_neighbouring_regions_are_distinguishable():
    r = rasterize(make_d(32, 3, seed=1), EXTENT, 96, grad_resolution=0)
    ids, col = r.cumulative_ids[-1], r.cumulative_colors[-1].astype(int)
    border = ids[:, 1:] != ids[:, :-1]
    dist = np.abs(col[:, 1:] - col[:, :-1]).sum(-1)[border]
    assert border.sum() > 100
    assert (dist > 0).all() and np.median(dist) > 60


def test_packing_is_evaluated_against_reference_points():
    D = make_d(8, 2, pack=2)
    ref = np.array([[0.3, -0.2], [0.9, 0.9], [1.0, 1.0]])
    r = rasterize(D, EXTENT, 16, ref, grad_resolution=4)
    pts = grid(EXTENT, 16)[2]
    packed = np.concatenate([pts, np.broadcast_to(ref[:1], pts.shape)], 1)
    tuples = bit_tuples(D, packed)
    assert_exact_ids(r.ids[1], tuples[1], r.counts[1])
    with torch.no_grad():
        logit = D(torch.as_tensor(packed, dtype=torch.float32))
    np.testing.assert_allclose(r.prob.reshape(-1), torch.sigmoid(logit)[:, 0].numpy(), rtol=1e-6)
    assert "packing" in r.reference and "r_1" in r.reference


def test_minibatch_d_uses_the_fake_batch_by_default():
    cfg = presets.get("ring8").replace(**{"nets.d.width": 8, "nets.g.width": 8, "nets.minibatch_kernels": 3,
                                           "optim.batch_size": 16, "viz.eval_samples": 40})
    t = Trainer(cfg)
    r = raster_of(t, resolution=16, grad_resolution=0)
    assert "minibatch" in r.reference and "G(z_eval[:16])" in r.reference
    with torch.no_grad():
        fake = t.G(t.z_eval[:16])
        logit = t.D(torch.as_tensor(grid(tuple(cfg.viz.extent), 16)[2], dtype=torch.float32), reference=fake)
    np.testing.assert_allclose(r.prob.reshape(-1), torch.sigmoid(logit)[:, 0].numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="reference_batch"):
        rasterize(t.D, resolution=16)


def test_raster_of_snapshot_leaves_the_trainer_untouched():
    t = Trainer(presets.get("ring8").replace(**{"nets.d.width": 8, "nets.g.width": 8, "optim.batch_size": 16,
                                                 "viz.snapshot_every": 2, "viz.eval_samples": 40}))
    first = rasterize(t.D, tuple(t.cfg.viz.extent), 16, grad_resolution=0)
    t.run(2)
    weights = {k: v.clone() for k, v in t.D.state_dict().items()}
    old = raster_of(t, resolution=16, snapshot=0, grad_resolution=0)
    for k, v in t.D.state_dict().items():
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0)
    np.testing.assert_array_equal(old.prob, first.prob)
    np.testing.assert_array_equal(old.cumulative_ids[-1], first.cumulative_ids[-1])


def test_spectral_norm_state_is_not_advanced():
    D = make_d(8, 2, d_spectral_norm=True)
    D.train()
    before = {k: v.clone() for k, v in D.state_dict().items()}
    rasterize(D, EXTENT, 16, grad_resolution=4)
    assert D.training
    for k, v in D.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_latent_partition_of_g():
    cfg = presets.get("ring8").replace(**{"nets.g.width": 9, "nets.g.depth": 2})
    torch.manual_seed(0)
    G = Generator(cfg)
    r = rasterize_latent(G, (-2, 2, -2, 2), 16)
    assert isinstance(r, Raster) and r.depth == 2 and r.reference is None and r.prob.size == 0
    z = torch.as_tensor(grid((-2, 2, -2, 2), 16)[2], dtype=torch.float32)
    with torch.no_grad():
        np.testing.assert_allclose(r.output.reshape(-1, 2), G(z).numpy(), rtol=1e-6, atol=1e-7)
        _, feats = G.forward_features(z)
    tuples = [[tuple(b) for b in (p > 0).numpy().tolist()] for p in feats.preacts]
    assert_exact_ids(r.ids[1], tuples[1], r.counts[1])
    with pytest.raises(ValueError, match="latent"):
        rasterize_latent(Generator(cfg.replace(**{"nets.latent_dim": 3})), resolution=16)


@pytest.mark.parametrize("kwargs,match", [
    ({"resolution": 15}, "resolution must be an integer in \\[16, 4096\\]"),
    ({"resolution": 4097}, "resolution"),
    ({"resolution": 32.0}, "resolution"),
    ({"extent": (1, -1, -1, 1)}, "xmin < xmax"),
    ({"extent": (0, 0, -1, 1)}, "extent"),
    ({"extent": (-1, 1, 1, 1)}, "ymin < ymax"),
    ({"extent": (-1, 1, 1)}, "four finite numbers"),
    ({"extent": (-1, float("nan"), 0, 1)}, "extent"),
    ({"grad_resolution": 1}, "grad_resolution"),
    ({"chunk": 0}, "chunk"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rasterize(make_d(4, 1), **{"resolution": 16, **kwargs})


def test_net_without_features_is_refused():
    with pytest.raises(ValueError, match="forward_features"):
        rasterize(torch.nn.Linear(2, 1), resolution=16)
