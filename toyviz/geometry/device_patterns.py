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

from . import patterns

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


_TABLES: dict = {}


def _hsv_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`patterns.HSV_PHI` (as (65536, 3)), `HSV_SAT`, `HSV_VAL` on `device`, copied there once."""
    if device not in _TABLES:
        _TABLES[device] = tuple(torch.from_numpy(np.ascontiguousarray(t)).to(device)
                                for t in (patterns.HSV_PHI.T, patterns.HSV_SAT, patterns.HSV_VAL))
    return _TABLES[device]


def hash_colors(h: torch.Tensor) -> torch.Tensor:
    """`patterns.hash_colors` on int64 hash bits: (n, 4) uint8 RGBA (alpha 255) from the same float64 table entries
    by the same operations in the same order, so every byte equals the numpy path's. A device without float64
    (Apple's MPS) has its (small) table computed on the CPU by the numpy function itself."""
    rgba = torch.full((len(h), 4), 255, dtype=torch.uint8, device=h.device)
    if h.device.type == "mps":
        rgba[:, :3] = torch.from_numpy(patterns.hash_colors(h.cpu().numpy().view(np.uint64))).to(h.device)
        return rgba
    phi, sat, val = _hsv_tables(h.device)
    s, v = sat[_srl(h, 16) & 0xFF, None], val[_srl(h, 24) & 0xFF, None]
    rgba[:, :3] = torch.round(v * (1.0 - s * phi[h & 0xFFFF]) * 255)
    return rgba


# ---- patterns -> words ---------------------------------------------------------------------------------------------
class PatternWords:
    """`patterns.PatternWords` on the device: per hidden layer the (n, ceil(width/64)) int64 words of `pre > 0`
    (bit i of word i // 64; a NaN is "off"), written block by block of rows, with the same `write` / `words`
    interface. The bits (one byte each, a layer padded with zeros to whole words) are read as groups of 8 bytes,
    each summed with weights 2^0..2^7 into one byte; a row's bytes, read little-endian, are its words — the bit
    order of the numpy path's packing."""

    def __init__(self, n: int, widths: list[int], device):
        self.widths = list(widths)
        self.words = [torch.empty(n, -(-w // 64), dtype=torch.int64, device=device) for w in self.widths]
        self._weights = torch.tensor([1 << b for b in range(8)], dtype=torch.uint8, device=device)

    def write(self, start: int, preacts: list) -> None:
        for words, pre in zip(self.words, preacts):
            rows, k = len(pre), words.shape[1]
            if pre.shape[1] == 64 * k:
                bits = pre.detach() > 0
            else:
                bits = torch.zeros(rows, 64 * k, dtype=torch.bool, device=pre.device)
                bits[:, :pre.shape[1]] = pre.detach() > 0
            packed = (bits.view(torch.uint8).view(rows, 8 * k, 8) * self._weights).sum(-1, dtype=torch.uint8)
            words[start:start + rows] = packed.view(torch.int64)


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
