"""toyviz.geometry.patterns: bit packing is exact and injective, colours are the stated HSV formula of SplitMix64, and a
grid's partition from runs equals one computed pixel by pixel."""
import numpy as np
import pytest
import torch

from toyviz.geometry.patterns import (
    PatternWords,
    hash_colors,
    pack_bits,
    partition_grid,
    splitmix64,
    unique_rows,
    unpack_bits,
)


@pytest.mark.parametrize("width", [1, 7, 8, 10, 63, 64, 65, 128, 130])
def test_pack_bits_round_trip_and_injective(width):
    bits = np.random.default_rng(width).random((400, width)) < 0.5
    bits[:3] = [False] * width, [True] * width, [i % 2 == 0 for i in range(width)]
    pre = torch.as_tensor(np.where(bits, 1.0, 0.0), dtype=torch.float32)        # 0.0 is "off": the pattern is pre > 0
    words = pack_bits(pre)
    assert words.dtype == np.uint64 and words.shape == (400, -(-width // 64))
    np.testing.assert_array_equal(unpack_bits(words, width), bits)
    u, inv, counts = unique_rows(words)
    assert len(u) == len({r.tobytes() for r in bits}) and counts.sum() == 400
    np.testing.assert_array_equal(u[inv], words)


def test_pattern_words_in_blocks_are_the_bits_and_nan_is_off():
    rng = np.random.default_rng(1)
    widths = [3, 10, 24, 25, 64, 70]                     # narrow (float product) and wide (byte spreading) layers
    pres = [rng.standard_normal((1000, w)).astype(np.float32) for w in widths]
    pres[1][5, 2] = np.nan                               # `pre > 0` is False for NaN and for 0
    pres[4][7, :] = np.nan
    pres[0][9, 0] = 0.0
    pres[5][11, 3] = -0.0
    packer = PatternWords(1000, widths)
    for s in range(0, 1000, 300):                        # blocks of 300, the last one of 100
        packer.write(s, [torch.from_numpy(p[s:s + 300]) for p in pres])
    for words, pre, w in zip(packer.words, pres, widths):
        assert words.dtype == np.uint64 and words.shape == (1000, -(-w // 64))
        np.testing.assert_array_equal(unpack_bits(words, w), pre > 0)


@pytest.mark.parametrize("values", [
    np.random.default_rng(2).integers(0, 50, (500, 1)),                                    # small: packed sort
    np.random.default_rng(3).integers(0, 2 ** 63, 40, dtype=np.uint64)[
        np.random.default_rng(4).integers(0, 40, 500)][:, None] | np.uint64(1 << 63),     # top bit set: argsort
    np.random.default_rng(5).integers(0, 3, (500, 3)).astype(np.uint64),                   # several words
])
def test_unique_rows_is_numpy_unique(values):
    u, inv, counts = unique_rows(values)
    ref_u, ref_inv, ref_counts = np.unique(values, axis=0, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(u, ref_u)
    np.testing.assert_array_equal(inv, ref_inv.reshape(-1))
    np.testing.assert_array_equal(counts, ref_counts)
    assert u.dtype == values.dtype


def test_hash_colours_are_the_hsv_formula():
    from matplotlib.colors import hsv_to_rgb
    h = splitmix64(np.arange(5000, dtype=np.uint64))
    hsv = np.stack([(h & np.uint64(0xFFFF)) / 65536.0,
                    0.45 + 0.5 * ((h >> np.uint64(16)) & np.uint64(0xFF)) / 255.0,
                    0.6 + 0.4 * ((h >> np.uint64(24)) & np.uint64(0xFF)) / 255.0], -1)
    np.testing.assert_array_equal(hash_colors(h), np.round(hsv_to_rgb(hsv) * 255).astype(np.uint8))
    assert splitmix64(np.array([0], np.uint64))[0] == np.uint64(0xE220A8397B1DCDAF)   # SplitMix64's first output


@pytest.mark.parametrize("run", [16, 1])          # long runs (colours expanded run by run) or a new run per pixel
def test_partition_grid_equals_pixelwise_ids(run):
    rng = np.random.default_rng(0)
    R = 24
    # blocky patterns (runs along rows) on two layers of widths 5 and 70
    layers = [np.repeat(rng.random((R * R // run, w)) < 0.5, run, axis=0) for w in (5, 70)]
    words = [pack_bits(torch.as_tensor(b, dtype=torch.float32)) for b in layers]
    ids, cum_ids, colors, cum_colors, counts, cum_counts, patterns = partition_grid(words, [5, 70], R)
    for l, bits in enumerate(layers):
        keys = [row.tobytes() for row in bits]
        flat = ids[l].reshape(-1)
        assert counts[l] == len(set(keys))
        for i in range(R * R):                                   # equal ids iff equal patterns
            np.testing.assert_array_equal(patterns[l][flat[i]], bits[i])
        assert len({(flat[i], keys[i]) for i in range(R * R)}) == counts[l]
        same = {}
        for i, k in enumerate(keys):                             # one colour per pattern
            assert same.setdefault(k, tuple(colors[l].reshape(-1, 3)[i])) == tuple(colors[l].reshape(-1, 3)[i])
    joint = [a.tobytes() + b.tobytes() for a, b in zip(*layers)]
    assert cum_counts[1] == len(set(joint))
    assert len({(c, k) for c, k in zip(cum_ids[1].reshape(-1), joint)}) == cum_counts[1]
