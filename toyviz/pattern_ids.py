"""Exact ids and stable colours of binary activation patterns (METHODS §6): patterns packed into uint64 words,
distinct rows without hashing, SplitMix64 colours that are a function of the bits, and a grid's per-layer and
cumulative partition computed on runs of equal pattern.
"""
from __future__ import annotations

import numpy as np
import torch


# ---- patterns -> exact ids -----------------------------------------------------------------------------------------
NARROW = 24                     # widths packed by one exact float32 product
_POW2 = 2.0 ** torch.arange(NARROW, dtype=torch.float32)


def host_array(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a numpy array (shared memory on the CPU, a copy from another device)."""
    t = t.detach()
    return t.numpy() if t.device.type == "cpu" else t.cpu().numpy()


def pack_bits(pre: torch.Tensor) -> np.ndarray:
    """(N, width) pre-activations -> (N, ceil(width/64)) uint64 words holding the bits `pre > 0`: pattern bit i is
    bit i % 64 of word i // 64. Exact: equal words iff equal patterns, so ids built on them never merge two."""
    return pack_signs(host_array(pre))


def pack_signs(bits: np.ndarray) -> np.ndarray:
    """(N, width) bool (or numbers, read as `> 0`) -> the (N, ceil(width/64)) uint64 words of `pack_bits`.

    Widths ≤ 24 take one float32 product bits · (2^0, ..., 2^(w−1)) (sums of distinct powers below 2^24 are
    exact in float32), cheaper than packing short rows; wider layers use np.packbits."""
    if bits.dtype != np.bool_:
        bits = bits > 0
    n, width = bits.shape
    if width <= NARROW:
        step = torch.from_numpy(bits.view(np.uint8)).to(torch.float32)          # torch's mv: numpy's BLAS may
        return (step @ _POW2[:width]).numpy().astype(np.uint64)[:, None]        # spawn threads on a busy machine
    packed = np.packbits(bits, axis=1, bitorder="little")                     # (N, ceil(width/8)) uint8
    n_words = -(-width // 64)
    if packed.shape[1] != n_words * 8:
        padded = np.zeros((n, n_words * 8), np.uint8)
        padded[:, :packed.shape[1]] = packed
        packed = padded
    return packed.view("<u8").astype(np.uint64, copy=False)                    # little-endian: byte j = bits 8j..


def unpack_bits(words: np.ndarray, width: int) -> np.ndarray:
    """Inverse of pack_bits: (n, n_words) uint64 -> (n, width) bool."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(raw, axis=1, count=width, bitorder="little").astype(bool)


def unique_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of an (n, k) uint64 array, in lexicographic order: (uniq (u, k), inverse (n,), counts (u,))."""
    if words.shape[1] == 1:
        u, inv, cnt = np.unique(words[:, 0], return_inverse=True, return_counts=True)
        return u[:, None], inv.reshape(-1), cnt
    order = np.lexsort(words.T[::-1])                       # far faster than np.unique(axis=0) on uint64 rows
    s = words[order]
    new = np.empty(len(s), bool)
    new[:1] = True
    new[1:] = (s[1:] != s[:-1]).any(1)
    inv = np.empty(len(s), np.int64)
    inv[order] = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    return s[first], inv, np.diff(np.append(first, len(s)))


def _run_starts(words: np.ndarray) -> np.ndarray:
    """(N,) bool: True where a pixel's pattern differs from the previous pixel's in raster order. Regions are
    large, so the runs are few and the exact unique runs over them instead of over all N pixels."""
    starts = np.empty(len(words), bool)
    starts[0] = True
    diff = starts[1:]
    np.not_equal(words[1:, 0], words[:-1, 0], out=diff)
    for k in range(1, words.shape[1]):
        diff |= words[1:, k] != words[:-1, k]
    return starts


# ---- colours -------------------------------------------------------------------------------------------------------
_GOLDEN, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Steele, Lea & Flood's SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def pattern_hash(words: np.ndarray) -> np.ndarray:
    """(n, k) uint64 pattern words -> (n,) uint64 hash; a pure function of the bits."""
    h = np.zeros(len(words), np.uint64)
    for k in range(words.shape[1]):
        h = splitmix64(h ^ splitmix64(words[:, k]))
    return h


def hash_colors(h: np.ndarray) -> np.ndarray:
    """(n,) uint64 hashes -> (n, 3) uint8 RGB: hue from 16 bits, saturation 0.45–0.95 and value 0.6–1.0 from
    8 bits each, so neighbouring regions differ in hue and usually in lightness too."""
    hue = (h & np.uint64(0xFFFF)).astype(np.float64) * (6.0 / 65536.0)         # in [0, 6): the colour wheel's sector
    sat = 0.45 + 0.5 * ((h >> np.uint64(16)) & np.uint64(0xFF)).astype(np.float64) / 255.0
    val = 0.6 + 0.4 * ((h >> np.uint64(24)) & np.uint64(0xFF)).astype(np.float64) / 255.0
    sector = hue.astype(np.int64)
    f = hue - sector
    p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
    # HSV -> RGB: (r, g, b) per sector 0..5 = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
    choices = np.stack([val, q, p, p, t, val, t, val, val, q, p, p, p, p, t, val, val, q]).reshape(3, 6, -1)
    rgb = np.take_along_axis(choices, sector[None, None, :], 1)[:, 0]          # (3, n)
    return np.round(rgb.T * 255).astype(np.uint8)


# ---- ids, colours and counts of a whole grid -------------------------------------------------------------------
def _paint(rgb: np.ndarray, run_ids: np.ndarray, lengths: np.ndarray, R: int) -> np.ndarray:
    """Colour table (n, 3) and runs -> (R, R, 3) uint8 image: runs are expanded as one uint32 per pixel (RGBA bytes,
    far faster than 3-byte rows), and the RGB view of that buffer is returned (strides (4R, 4, 1))."""
    rgba = np.full((len(rgb), 4), 255, np.uint8)
    rgba[:, :3] = rgb
    return np.repeat(rgba.view(np.uint32)[:, 0][run_ids], lengths).view(np.uint8).reshape(R, R, 4)[..., :3]


def partition_grid(words: list[np.ndarray], widths: list[int], R: int):
    """Per-layer and cumulative ids, colours, counts and patterns from each layer's (N, k) pattern words.

    Works on runs of equal pattern along raster order: the exact unique runs over the run starts only, and ids are
    expanded with np.repeat. Cumulative layer l: the pair (region up to l−1, pattern of l) at each joint run start.
    """
    N = R * R
    ids, cum_ids, colors, cum_colors, counts, cum_counts, patterns = [], [], [], [], [], [], []
    cum = None
    for w, width in zip(words, widths):
        starts = _run_starts(w)
        pos = np.flatnonzero(starts)
        uniq, inv, _ = unique_rows(w[pos])
        lengths = np.diff(pos, append=N)
        layer_ids = np.repeat(inv, lengths)
        h = pattern_hash(uniq)
        n = len(uniq)
        if cum is None:
            cum_starts, cum_inv, cum_lengths, cum_hash, n_cum = starts, inv, lengths, h, n
            cum = layer_ids
        else:
            cum_starts = cum_starts | starts
            cpos = np.flatnonzero(cum_starts)
            key = cum[cpos] * n + layer_ids[cpos]                                # (region up to l−1, this pattern)
            ku, cum_inv = np.unique(key, return_inverse=True)
            cum_inv = cum_inv.reshape(-1)
            cum_lengths = np.diff(cpos, append=N)
            cum = np.repeat(cum_inv, cum_lengths)
            cum_hash = splitmix64(cum_hash[ku // n] ^ h[ku % n])
            n_cum = len(ku)
        ids.append(layer_ids.reshape(R, R))
        cum_ids.append(cum.reshape(R, R))
        colors.append(_paint(hash_colors(h), inv, lengths, R))
        cum_colors.append(_paint(hash_colors(cum_hash), cum_inv, cum_lengths, R))
        counts.append(n)
        cum_counts.append(n_cum)
        patterns.append(unpack_bits(uniq, width))
    return ids, cum_ids, colors, cum_colors, counts, cum_counts, patterns
