"""toyviz.pattern_ids: bit packing is exact and injective, colours are the stated HSV formula of SplitMix64, and a
grid's partition from runs equals one computed pixel by pixel."""
import numpy as np
import pytest
import torch

from toyviz.pattern_ids import hash_colors, pack_bits, partition_grid, splitmix64, unique_rows, unpack_bits


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


def test_hash_colours_are_the_hsv_formula():
    from matplotlib.colors import hsv_to_rgb
    h = splitmix64(np.arange(5000, dtype=np.uint64))
    hsv = np.stack([(h & np.uint64(0xFFFF)) / 65536.0,
                    0.45 + 0.5 * ((h >> np.uint64(16)) & np.uint64(0xFF)) / 255.0,
                    0.6 + 0.4 * ((h >> np.uint64(24)) & np.uint64(0xFF)) / 255.0], -1)
    np.testing.assert_array_equal(hash_colors(h), np.round(hsv_to_rgb(hsv) * 255).astype(np.uint8))
    assert splitmix64(np.array([0], np.uint64))[0] == np.uint64(0xE220A8397B1DCDAF)   # SplitMix64's first output


def test_partition_grid_equals_pixelwise_ids():
    rng = np.random.default_rng(0)
    R = 24
    # blocky patterns (runs along rows) on two layers of widths 5 and 70
    layers = [np.repeat(rng.random((R * R // 8, w)) < 0.5, 8, axis=0) for w in (5, 70)]
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
