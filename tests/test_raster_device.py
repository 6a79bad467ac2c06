"""The rasterizer's torch backend (toyviz.geometry.device_patterns), run on the CPU: the same partition (ids), colours,
counts, patterns, probability, gradients and mosaic as the numpy backend on several kinds of D; its int64 SplitMix64
and HSV colours bit for bit against the numpy ones; `fields` and `backend` checking."""
import numpy as np
import pytest
import torch

from toyviz.engine import presets
from toyviz.engine.nets import Discriminator, Generator, KPlusOneDiscriminator
from toyviz.geometry import device_patterns, patterns
from toyviz.geometry.raster import FIELDS, MAX_RESOLUTION, rasterize, rasterize_latent

EXTENT = (-1.5, 1.5, -1.2, 1.0)


def d_of(preset="ring8", seed=0, kplus=0, **nets):
    cfg = presets.get(preset).replace(**{f"nets.{k}": v for k, v in nets.items()})
    torch.manual_seed(seed)
    return KPlusOneDiscriminator(cfg, kplus) if kplus else Discriminator(cfg)


REF = np.random.default_rng(3).normal(size=(32, 2))
NETS = {                                                     # name: (D, reference batch)
    "bre-toy preset D (4x10)": lambda: (d_of("bre-toy"), None),
    "ring8 preset D (3x128: two words a layer)": lambda: (d_of("ring8"), None),
    "4x64 D": lambda: (d_of(**{"d.width": 64, "d.depth": 4}), None),
    "2x100 ReLU D (a partial second word)": lambda: (d_of(**{"d.width": 100, "d.depth": 2, "d.activation": "relu"}),
                                                     None),
    "packed D (pack 2)": lambda: (d_of(**{"d.width": 12, "d.depth": 3, "pack": 2}), REF),
    "minibatch D (autograd gradients)": lambda: (d_of(**{"d.width": 12, "d.depth": 3, "minibatch_kernels": 4}), REF),
    "K+1 D (logsumexp logit)": lambda: (d_of(kplus=3, **{"d.width": 16, "d.depth": 2}), None),
}


def assert_same_raster(a, b, exact_grad=True):
    for name in ("ids", "cumulative_ids", "colors", "cumulative_colors", "patterns"):
        for l, (x, y) in enumerate(zip(getattr(a, name), getattr(b, name))):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{name}[{l}] differs"
        assert len(getattr(a, name)) == len(getattr(b, name)) == a.depth
    assert a.counts == b.counts and a.cumulative_counts == b.cumulative_counts
    np.testing.assert_array_equal(a.prob, b.prob)
    np.testing.assert_array_equal(a.output, b.output)
    close = np.testing.assert_array_equal if exact_grad else \
        (lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6))
    close(a.grad, b.grad)
    close(a.mosaic, b.mosaic)


@pytest.mark.parametrize("name", list(NETS))
def test_torch_backend_gives_the_numpy_raster(name):
    D, ref = NETS[name]()
    a = rasterize(D, EXTENT, 48, ref, grad_resolution=20, backend="numpy")
    b = rasterize(D, EXTENT, 48, ref, grad_resolution=20, backend="torch")
    assert a.cumulative_counts[-1] > 10                      # a partition with something in it
    # the closed-form chain on a few representatives may run in other batch shapes than the numpy path's: the
    # same products, summed in a BLAS order that may differ in the last bit
    assert_same_raster(a, b, exact_grad="minibatch" in name)
    assert a.reference == b.reference
    assert b.colors[0].strides == (4 * 48, 4, 1)             # the RGB view of RGBA, as the numpy path gives it


def test_torch_backend_with_a_small_chunk_and_without_the_mosaic():
    D, _ = NETS["4x64 D"]()
    a = rasterize(D, EXTENT, 40, mosaic=False, backend="numpy")
    b = rasterize(D, EXTENT, 40, mosaic=False, backend="torch", chunk=300)
    assert_same_raster(a, b, exact_grad=False)
    assert b.mosaic.shape == (0, 0, 2)


def test_fields_fill_only_what_is_asked_on_both_backends():
    D, _ = NETS["bre-toy preset D (4x10)"]()
    full = rasterize(D, EXTENT, 32)
    for backend in ("numpy", "torch"):
        r = rasterize(D, EXTENT, 32, fields=("colors", "cumulative_colors"), backend=backend)
        for name in FIELDS:
            if name not in ("colors", "cumulative_colors"):
                assert getattr(r, name) is None, (backend, name)
        assert all(np.array_equal(x, y) for x, y in zip(r.cumulative_colors, full.cumulative_colors))
        assert all(np.array_equal(x, y) for x, y in zip(r.colors, full.colors))
        assert r.cumulative_counts == full.cumulative_counts and r.widths == full.widths
        only_cum = rasterize(D, EXTENT, 32, fields=["cumulative_colors"], backend=backend)
        assert only_cum.colors is None and np.array_equal(only_cum.cumulative_colors[0], full.cumulative_colors[0])
        np.testing.assert_array_equal(rasterize(D, EXTENT, 32, fields="prob", backend=backend).prob, full.prob)


def test_latent_raster_on_the_torch_backend():
    cfg = presets.get("ring8").replace(**{"nets.latent_dim": 2, "nets.g.width": 32})
    torch.manual_seed(1)
    G = Generator(cfg)
    a, b = rasterize_latent(G, resolution=40, backend="numpy"), rasterize_latent(G, resolution=40, backend="torch")
    assert all(np.array_equal(x, y) for x, y in zip(a.cumulative_ids, b.cumulative_ids))
    assert all(np.array_equal(x, y) for x, y in zip(a.cumulative_colors, b.cumulative_colors))
    np.testing.assert_array_equal(a.output, b.output)


def test_int64_hash_and_colours_are_the_uint64_ones_bit_for_bit():
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2 ** 63, (4096, 3), dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, (4096, 3),
                                                                                               dtype=np.uint64)
    words[:3] = [[0, 0, 0], [2 ** 64 - 1] * 3, [2 ** 63] * 3]                 # the extremes of both signs
    as_int = torch.from_numpy(words.view(np.int64))
    np.testing.assert_array_equal(device_patterns.splitmix64(as_int).numpy().view(np.uint64),
                                  patterns.splitmix64(words))
    h = patterns.pattern_hash(words)
    np.testing.assert_array_equal(device_patterns.pattern_hash(as_int).numpy().view(np.uint64), h)
    rgba = device_patterns.hash_colors(torch.from_numpy(h.view(np.int64))).numpy()
    np.testing.assert_array_equal(rgba[:, :3], patterns.hash_colors(h))
    assert (rgba[:, 3] == 255).all()


def test_ids_follow_the_unsigned_order_of_the_words():
    """Words with the top bit set sort after those without, as the numpy path's uint64 order has them."""
    words = np.array([[2 ** 63, 5], [1, 7], [2 ** 63, 4], [1, 7], [2 ** 64 - 1, 0], [0, 2 ** 63]], np.uint64)
    for k in (1, 2):                                    # one word: a 1-D unique; more: a unique over rows
        table, ids = device_patterns.pattern_ids(torch.from_numpy(words[:, :k].view(np.int64)))
        uniq, inverse, _ = patterns.unique_rows(words[:, :k])
        np.testing.assert_array_equal(ids.numpy(), inverse)
        np.testing.assert_array_equal(table.numpy().view(np.uint64), uniq)
    assert len(uniq) == 5


def test_bad_fields_and_backends_are_refused_with_the_choices():
    D, _ = NETS["bre-toy preset D (4x10)"]()
    with pytest.raises(ValueError, match="fields: unknown field.*'colour'.*choose from: ids, cumulative_ids"):
        rasterize(D, EXTENT, 32, fields=("colour",))
    with pytest.raises(ValueError, match="backend must be one of auto, numpy, torch"):
        rasterize(D, EXTENT, 32, backend="cuda")
    for backend in ("numpy", "torch"):
        with pytest.raises(ValueError, match=rf"resolution must be an integer in \[16, {MAX_RESOLUTION}\]"):
            rasterize(D, EXTENT, MAX_RESOLUTION + 1, backend=backend)
