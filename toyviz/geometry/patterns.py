"""Exact ids and stable colours of binary activation patterns (METHODS §6): patterns packed into uint64 words,
distinct rows without hashing, SplitMix64 colours that are a function of the bits, and a grid's per-layer and
cumulative partition computed on runs of equal pattern.
"""
from __future__ import annotations

import numpy as np
import torch

# ---- patterns -> exact ids -----------------------------------------------------------------------------------------
NARROW = 24                     # widths whose words are one exact float32 product bits · (2^0, ..., 2^(w−1))
_POW2 = 2.0 ** torch.arange(NARROW, dtype=torch.float32)
# 8 bytes b_0..b_7, each 0 or 1, read as one little-endian uint64 x = Σ b_j·2^(8j): the top byte of x·_SPREAD is
# Σ b_j·2^j (the term b_j·2^(8j + 56 − 7j) lands on bit 56 + j; every other term falls below bit 56 on a bit of
# its own, so no carry reaches the top byte, or wraps away above bit 63).
_SPREAD = np.uint64(0x0102040810204080)


def host_array(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a numpy array (shared memory on the CPU, a copy from another device). The common case,
    a CPU tensor outside autograd, goes first: detaching and asking the device cost more than the conversion. A
    numpy array is returned as it is."""
    try:
        return t.numpy()
    except (RuntimeError, TypeError):                   # requires grad, or not on the CPU
        return t.detach().cpu().numpy()
    except AttributeError:                              # already an array
        return t


class PatternWords:
    """Per hidden layer, the (n, ceil(width/64)) uint64 words of n binary patterns `pre > 0`, written block by
    block of rows: pattern bit i is bit i % 64 of word i // 64. Exact: equal words iff equal patterns, so ids built
    on them never merge two.

    Each block is compared (`np.greater`: a NaN pre-activation is "off", as `pre > 0` says) into scratch arrays
    reused across blocks, then packed: a layer of at most 24 units by one float32 product bits · (2^0, ...,
    2^(w−1)) (sums of distinct powers below 2^24 are exact; the narrow layers' sums are stored together, once a
    block, as float32, and become their words at the end), a wider one eight bits at a time by one integer product
    (`_SPREAD`). A few calls per layer and block, each on data of the block's size.
    """

    def __init__(self, n: int, widths: list[int]):
        self.widths = list(widths)
        self._narrow = [l for l, w in enumerate(self.widths) if w <= NARROW]
        self._wide = [l for l, w in enumerate(self.widths) if w > NARROW]
        self._words = [np.zeros((n, -(-w // 64)), np.uint64) for w in self.widths]    # unused bytes stay 0
        self._sums = np.empty((len(self._narrow), n), np.float32)       # the narrow layers' words, as floats
        self._rows = 0

    def _scratch(self, rows: int) -> None:
        """Work arrays for blocks of `rows` rows (bits padded to whole bytes for the wide layers)."""
        self._rows = rows
        bits = [np.zeros((rows, w if w <= NARROW else -(-w // 8) * 8), np.bool_) for w in self.widths]
        self._sum = torch.empty(len(self._narrow), rows)
        # per narrow layer: (comparison out, its bytes as a tensor, float copy of the bits, powers, sum out)
        self._narrow_views = [(bits[l], torch.from_numpy(bits[l].view(np.uint8)), torch.empty(rows, self.widths[l]),
                               _POW2[:self.widths[l]], self._sum[k]) for k, l in enumerate(self._narrow)]
        # per wide layer: (comparison out, the padded bits, the spread words)
        self._wide_views = [(bits[l][:, :self.widths[l]], bits[l],
                             np.empty((rows, bits[l].shape[1] // 8), np.dtype("<u8"))) for l in self._wide]

    def write(self, start: int, preacts: list) -> None:
        """Rows start .. start + rows from each layer's (rows, width) pre-activations (tensors or arrays); every
        block but the last has the first block's rows."""
        rows = len(preacts[0])
        if rows > self._rows:
            self._scratch(rows)
        part = rows < self._rows                         # the last block: slice the scratch (a cost per call)
        for l, (bits, bit_bytes, ones, powers, total) in zip(self._narrow, self._narrow_views):
            if part:
                bits, bit_bytes, ones, total = bits[:rows], bit_bytes[:rows], ones[:rows], total[:rows]
            np.greater(_host(preacts[l]), 0, out=bits)
            ones.copy_(bit_bytes)
            torch.mv(ones, powers, out=total)            # torch's mv: numpy's BLAS may spawn threads
        if self._narrow:
            self._sums[:, start:start + rows] = self._sum.numpy()[:, :rows]
        for l, (compared, bits, spread) in zip(self._wide, self._wide_views):
            if part:
                compared, bits, spread = compared[:rows], bits[:rows], spread[:rows]
            np.greater(_host(preacts[l]), 0, out=compared)
            np.multiply(bits.view("<u8"), _SPREAD, out=spread)
            # the top byte of each product holds its 8 bits: byte j of a row's words = bits 8j .. 8j + 7
            self._words[l].view(np.uint8)[start:start + rows, :spread.shape[1]] = spread.view(np.uint8)[:, 7::8]

    @property
    def words(self) -> list[np.ndarray]:
        for k, l in enumerate(self._narrow):
            np.copyto(self._words[l][:, 0], self._sums[k], casting="unsafe")
        return self._words


def _host(a) -> np.ndarray:
    return host_array(a) if isinstance(a, torch.Tensor) else np.asarray(a)


def pack_bits(pre) -> np.ndarray:
    """(N, width) pre-activations (tensor or array; bool reads True as on) -> the (N, ceil(width/64)) uint64 words
    of `PatternWords`, in one block."""
    packer = PatternWords(len(pre), [pre.shape[1]])
    packer.write(0, [pre])
    return packer.words[0]


def unpack_bits(words: np.ndarray, width: int) -> np.ndarray:
    """Inverse of pack_bits: (n, n_words) uint64 -> (n, width) bool."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(raw, axis=1, count=width, bitorder="little").astype(bool)


def _sort_order(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, values[order]) sorting a 1-D array of non-negative integers. When every value · 2^b + its index fits
    in 63 bits (b = the bits of the largest index), one np.sort of those numbers gives both: a direct sort of
    plain integers, cheaper than np.argsort's indirect one; else np.argsort."""
    n = len(values)
    b = max(n - 1, 1).bit_length()
    if n and int(values.max()) < 1 << (63 - b):
        keyed = np.sort((values.astype(np.int64) << b) | np.arange(n))
        return keyed & ((1 << b) - 1), keyed >> b
    order = np.argsort(values)
    return order, values[order]


def unique_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of an (n, k) non-negative integer array (pattern words), in lexicographic order:
    (uniq (u, k), inverse (n,), counts (u,)) as np.unique(words, axis=0) gives them, without its row views."""
    new = np.empty(len(words), bool)
    new[:1] = True
    if words.shape[1] == 1:
        order, s = _sort_order(words[:, 0])
        np.not_equal(s[1:], s[:-1], out=new[1:])
        s = s[:, None]
    else:
        order = np.lexsort(words.T[::-1])
        s = words[order]
        new[1:] = (s[1:] != s[:-1]).any(1)
    inv = np.empty(len(s), np.int64)
    inv[order] = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    return s[first].astype(words.dtype, copy=False), inv, _run_lengths(first, len(s))


def _run_lengths(starts: np.ndarray, n: int) -> np.ndarray:
    """Lengths of the runs beginning at the sorted positions `starts` of n items (np.diff(starts, append=n),
    without its concatenation)."""
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1:] = n - starts[-1:]
    return lengths


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


# HSV -> RGB is c = v·(1 − s·φ_c) with φ_c ∈ {0, f, 1, 1 − f} by the hue's sector (f its fraction): per sector 0..5,
# (r, g, b) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q), q = v(1 − sf), p = v(1 − s), t = v(1 − s(1 − f)).
# φ_c = _PHI_A[c, sector] + _PHI_B[c, sector]·f gives exactly the same floats as matplotlib's hsv_to_rgb.
_PHI_A = np.array([[0, 0, 1, 1, 1, 0], [1, 0, 0, 0, 1, 1], [1, 1, 1, 0, 0, 0]], np.float64)
_PHI_B = np.array([[0, 1, 0, 0, -1, 0], [-1, 0, 0, 1, 0, 0], [0, 0, -1, 0, 0, 1]], np.float64)


def _hsv_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """hash_colors' HSV terms for every value of their bits, float64: φ (3, 65536) per 16-bit hue (its sector's
    φ_c at hue·6/65536), saturation 0.45 + 0.5·s/255 and value 0.6 + 0.4·v/255 (256,) per 8-bit s, v. A lookup
    per colour then replaces the arithmetic, and the device path (device_patterns) reads the same floats."""
    hue = np.arange(65536, dtype=np.float64) * (6.0 / 65536.0)                  # in [0, 6): the colour wheel's sector
    sector = hue.astype(np.intp)
    phi = np.take(_PHI_A, sector, 1) + np.take(_PHI_B, sector, 1) * (hue - sector)
    levels = np.arange(256, dtype=np.float64)
    return phi, 0.45 + 0.5 * levels / 255.0, 0.6 + 0.4 * levels / 255.0


HSV_PHI, HSV_SAT, HSV_VAL = _hsv_tables()


def hash_colors(h: np.ndarray) -> np.ndarray:
    """(n,) uint64 hashes -> (n, 3) uint8 RGB: hue from 16 bits, saturation 0.45–0.95 and value 0.6–1.0 from
    8 bits each, so neighbouring regions differ in hue and usually in lightness too. RGB = round(255·v·(1 − s·φ))."""
    phi = np.take(HSV_PHI, (h & np.uint64(0xFFFF)).astype(np.intp), 1)         # (3, n)
    sat = HSV_SAT[((h >> np.uint64(16)) & np.uint64(0xFF)).astype(np.intp)]
    val = HSV_VAL[((h >> np.uint64(24)) & np.uint64(0xFF)).astype(np.intp)]
    return np.ascontiguousarray(np.round(val * (1.0 - sat * phi) * 255).astype(np.uint8).T)


# ---- ids, colours and counts of a whole grid -------------------------------------------------------------------
def _paint(rgb: np.ndarray, run_ids: np.ndarray, lengths: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Colour table (n, 3) -> (R, R, 3) uint8 image of the (R, R) `ids`, given also as runs (`run_ids`, `lengths`).
    Pixels are written as one uint32 each (RGBA bytes: numpy copies a 4-byte item natively, a 3-byte row through
    its generic path) and the RGB view of that buffer is returned (strides (4R, 4, 1)). Few runs are expanded with
    np.repeat, whose cost grows with the number of runs; past about one run in 8 pixels a lookup of every pixel's
    id is cheaper (`python -m toyviz bench choices` times both sides of that line)."""
    rgba = np.full((len(rgb), 4), 255, np.uint8)
    rgba[:, :3] = rgb
    table = rgba.view(np.uint32)[:, 0]
    flat = np.repeat(table[run_ids], lengths) if len(lengths) * 8 < ids.size else np.take(table, ids.reshape(-1))
    return flat.view(np.uint8).reshape(*ids.shape, 4)[..., :3]


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
        lengths = _run_lengths(pos, N)
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
            ku, cum_inv, _ = unique_rows(key[:, None])
            ku = ku[:, 0]
            cum_lengths = _run_lengths(cpos, N)
            cum = np.repeat(cum_inv, cum_lengths)
            cum_hash = splitmix64(cum_hash[ku // n] ^ h[ku % n])
            n_cum = len(ku)
        ids.append(layer_ids.reshape(R, R))
        cum_ids.append(cum.reshape(R, R))
        colors.append(_paint(hash_colors(h), inv, lengths, ids[-1]))
        cum_colors.append(colors[0] if len(ids) == 1 else _paint(hash_colors(cum_hash), cum_inv, cum_lengths,
                                                                  cum_ids[-1]))
        counts.append(n)
        cum_counts.append(n_cum)
        patterns.append(unpack_bits(uniq, width))
    return ids, cum_ids, colors, cum_colors, counts, cum_counts, patterns
