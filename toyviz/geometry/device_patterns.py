"""A grid's partition computed in torch on the net's own device (METHODS §6): the twin of `patterns.py`'s numpy path
for nets on a GPU, where copying every chunk's pre-activations to the host and packing them there costs more than
the forward pass. Same exact ids, same colours, same counts as `patterns.partition_grid`; only the arrays a
caller asks for cross to the host (`toyviz.geometry.raster.rasterize(..., fields=...)`).

torch has no unsigned 64-bit arithmetic on every device, so the uint64 words and hashes of `patterns.py` live here
in int64 with the same bits: addition and multiplication wrap identically in two's complement, a logical right
shift is an arithmetic one masked to its low bits (`_srl`), and unsigned order is signed order after flipping the
sign bit (`_unsigned_key`). Ids are ranks among the distinct patterns in that order, as the numpy path's sort
gives them, so an id means the same pattern on either path.
"""
from __future__ import annotations

import numpy as np
import torch

from .patterns import hash_colors as numpy_hash_colors

_U64 = 1 << 64


def _signed(c: int) -> int:
    """The int64 with the bits of the uint64 `c`."""
    return c - _U64 if c >= 1 << 63 else c


# SplitMix64's constants (patterns._GOLDEN, _M1, _M2) as int64 bit patterns
_GOLDEN, _M1, _M2 = _signed(0x9E3779B97F4A7C15), _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)
_SIGN = -(1 << 63)


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits by 0 < k < 64: the arithmetic shift with the copied sign bits cleared."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """`patterns.splitmix64` on int64 tensors holding uint64 bits (wrapping arithmetic, the same bits out)."""
    z = x + _GOLDEN
    z = (z ^ _srl(z, 30)) * _M1
    z = (z ^ _srl(z, 27)) * _M2
    return z ^ _srl(z, 31)


def pattern_hash(words: torch.Tensor) -> torch.Tensor:
    """`patterns.pattern_hash`: (n, k) int64 words -> (n,) int64 hash bits, a pure function of the pattern."""
    h = torch.zeros(len(words), dtype=torch.int64, device=words.device)
    for k in range(words.shape[1]):
        h = splitmix64(h ^ splitmix64(words[:, k]))
    return h


# `patterns.hash_colors`' HSV tables: φ_c = _PHI_A[c, sector] + _PHI_B[c, sector]·f
_PHI_A = torch.tensor([[0, 0, 1, 1, 1, 0], [1, 0, 0, 0, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.float64)
_PHI_B = torch.tensor([[0, 1, 0, 0, -1, 0], [-1, 0, 0, 1, 0, 0], [0, 0, -1, 0, 0, 1]], dtype=torch.float64)


def hash_colors(h: torch.Tensor) -> torch.Tensor:
    """`patterns.hash_colors` on int64 hash bits: (n, 4) uint8 RGBA (alpha 255), the same float64 operations in the
    same order, so every byte equals the numpy path's. A device without float64 (Apple's MPS) has its (small)
    table computed on the CPU by the numpy function itself."""
    if h.device.type == "mps":
        rgb = torch.from_numpy(numpy_hash_colors(h.cpu().numpy().view(np.uint64)))
        return torch.cat([rgb, torch.full((len(rgb), 1), 255, dtype=torch.uint8)], 1).to(h.device)
    f64 = dict(dtype=torch.float64)
    hue = (h & 0xFFFF).to(**f64) * (6.0 / 65536.0)
    sat = 0.45 + 0.5 * (_srl(h, 16) & 0xFF).to(**f64) / 255.0
    val = 0.6 + 0.4 * (_srl(h, 24) & 0xFF).to(**f64) / 255.0
    sector = hue.to(torch.int64)
    a, b = _PHI_A.to(h.device), _PHI_B.to(h.device)
    phi = a[:, sector] + b[:, sector] * (hue - sector)                          # (3, n)
    rgba = torch.full((len(h), 4), 255, dtype=torch.uint8, device=h.device)
    rgba[:, :3] = torch.round(val * (1.0 - sat * phi) * 255).to(torch.uint8).T
    return rgba


# ---- patterns -> words ---------------------------------------------------------------------------------------------
class PatternWords:
    """`patterns.PatternWords` on the device: per hidden layer the (n, ceil(width/64)) int64 words of `pre > 0`
    (bit i of word i // 64; a NaN is "off"), written block by block of rows, with the same `write` / `words`
    interface. Each word is one product of the bits with their powers 2^0..2^63 (2^63 as the sign bit) summed:
    distinct powers never carry, so the sum is the word's exact bits."""

    def __init__(self, n: int, widths: list[int], device):
        self.widths = list(widths)
        self.words = [torch.empty(n, -(-w // 64), dtype=torch.int64, device=device) for w in self.widths]
        self._powers = torch.tensor([_signed(1 << i) for i in range(64)], dtype=torch.int64, device=device)

    def write(self, start: int, preacts: list) -> None:
        for words, pre in zip(self.words, preacts):
            rows = len(pre)
            for k in range(words.shape[1]):
                bits = pre[:, 64 * k:64 * (k + 1)].detach() > 0
                torch.sum(bits * self._powers[:bits.shape[1]], 1, out=words[start:start + rows, k])


def unpack_bits(words: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of the packing: (n, k) int64 words -> (n, width) bool."""
    shifts = torch.arange(64, device=words.device)
    return ((words[:, :, None] >> shifts) & 1).bool().reshape(len(words), -1)[:, :width]


# ---- exact ids ----------------------------------------------------------------------------------------------------
def _unsigned_key(w: torch.Tensor) -> torch.Tensor:
    """int64 keys whose signed order is the unsigned order of the uint64 bits `w` (the sign bit flipped)."""
    return w ^ _SIGN


def _rank(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sorted distinct keys, each key's rank among them) of a 1-D int64 tensor."""
    return torch.unique(keys, sorted=True, return_inverse=True)


def pattern_ids(words: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(ids (N,), n): each row's rank among the n distinct rows of the (N, k) words in lexicographic order, word 0
    first, each word unsigned — `patterns.unique_rows`' order. Word by word: the rank of the rows' first j words
    times the distinct values of word j, plus its rank there, ranked again (both ranks < N, so below 2^48)."""
    distinct, ids = _rank(_unsigned_key(words[:, 0]))
    for k in range(1, words.shape[1]):
        values, r = _rank(_unsigned_key(words[:, k]))
        distinct, ids = _rank(ids * len(values) + r)
    return ids, len(distinct)


def _rows_of(ids: torch.Tensor, n: int, words: torch.Tensor) -> torch.Tensor:
    """(n, k): the words of each id (any of its pixels: they are all equal)."""
    table = torch.empty(n, words.shape[1], dtype=words.dtype, device=words.device)
    table[ids] = words
    return table


def paint(rgba: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Colour table (n, 4) uint8 -> (*ids.shape, 4) uint8 image, one 4-byte gather per pixel."""
    return rgba.view(torch.int32)[:, 0][ids].view(torch.uint8).reshape(*ids.shape, 4)


def partition_grid(words: list[torch.Tensor], widths: list[int], R: int, want=frozenset(
        ("ids", "cumulative_ids", "colors", "cumulative_colors", "patterns"))) -> dict:
    """`patterns.partition_grid` on the device: from each layer's (R·R, k) int64 words, a dict of lists (one entry
    per hidden layer) holding `ids`, `cumulative_ids` ((R, R) int64), `counts`, `cumulative_counts` (ints) always,
    and, when named in `want`, `colors`, `cumulative_colors` ((R, R, 4) uint8 RGBA) and `patterns` ((n, width)
    bool), all on the words' device.

    Cumulative layer l is the pair (region up to l−1, pattern of l), ranked: the numpy path's key and order, so the
    same ids; its colour hash is splitmix64(hash up to l−1 ^ hash of l's pattern), the numpy path's chain.
    """
    out = {k: [] for k in ("ids", "cumulative_ids", "counts", "cumulative_counts", "colors", "cumulative_colors",
                           "patterns")}
    cum = cum_hash = None
    for w, width in zip(words, widths):
        ids, n = pattern_ids(w)
        uniq = _rows_of(ids, n, w)
        h = pattern_hash(uniq)
        if cum is None:
            cum, cum_hash, n_cum = ids, h, n
        else:
            keys, cum = _rank(cum * n + ids)
            cum_hash = splitmix64(cum_hash[keys // n] ^ h[keys % n])
            n_cum = len(keys)
        out["ids"].append(ids.reshape(R, R))
        out["cumulative_ids"].append(cum.reshape(R, R))
        out["counts"].append(n)
        out["cumulative_counts"].append(n_cum)
        if "colors" in want or ("cumulative_colors" in want and len(out["ids"]) == 1):
            out["colors"].append(paint(hash_colors(h), out["ids"][-1]))
        if "cumulative_colors" in want:
            out["cumulative_colors"].append(out["colors"][0] if len(out["ids"]) == 1
                                            else paint(hash_colors(cum_hash), out["cumulative_ids"][-1]))
        if "patterns" in want:
            out["patterns"].append(unpack_bits(uniq, width))
    return out
