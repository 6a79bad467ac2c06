"""A grid's partition computed in torch on the net's own device (METHODS §6): the twin of `patterns.py`'s numpy path
for nets on a GPU, where copying every chunk's pre-activations to the host and packing them there costs more than
the forward pass. Same exact ids, same colours, same counts as `patterns.partition_grid`; only the arrays a
caller asks for cross to the host (`toyviz.geometry.raster.rasterize(..., fields=...)`).

torch has no unsigned 64-bit arithmetic on every device, so the uint64 words and hashes of `patterns.py` live here
in int64 with the same bits: addition and multiplication wrap identically in two's complement, a logical right
shift is an arithmetic one masked to its low bits (`_srl`), and unsigned order is signed order after flipping the
sign bit (`pattern_ids`). Ids are ranks among the distinct patterns in that order, as the numpy path's sort
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


# SplitMix64's constants as int64 bit patterns
_GOLDEN, _M1, _M2 = (_signed(int(c)) for c in (patterns._GOLDEN, patterns._M1, patterns._M2))
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
    """`patterns.pattern_hash`: (n, k) int64 words -> (n,) int64 hash bits, a pure function of the pattern. The inner
    hashes of all k words in one call; the first step's h = 0 drops out (0 ^ x = x)."""
    inner = splitmix64(words)
    h = splitmix64(inner[:, 0])
    for k in range(1, words.shape[1]):
        h = splitmix64(h ^ inner[:, k])
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
# `patterns._SPREAD`: 8 bytes b_0..b_7 (each 0 or 1) read as one little-endian word x; the top byte of x·_SPREAD
# (wrapping) is Σ b_j·2^j
_SPREAD = _signed(int(patterns._SPREAD))


class PatternWords:
    """`patterns.PatternWords` on the device: per hidden layer the (n, ceil(width/64)) int64 words of `pre > 0`
    (bit i of word i // 64; a NaN is "off"), written block by block of rows, with the same `write` / `words`
    interface. The bits (one byte each, a layer padded with zeros to whole words) are read 8 at a time as int64,
    multiplied by _SPREAD, and the top bytes of the products are the row's words' bytes, little-endian: the numpy
    path's packing, in four elementwise kernels on arrays the size of the bits."""

    def __init__(self, n: int, widths: list[int], device):
        self.widths = list(widths)
        self.words = [torch.empty(n, -(-w // 64), dtype=torch.int64, device=device) for w in self.widths]

    def write(self, start: int, preacts: list) -> None:
        for words, pre in zip(self.words, preacts):
            rows, k = len(pre), words.shape[1]
            if pre.shape[1] == 64 * k:
                bits = pre.detach() > 0
            else:
                bits = torch.zeros(rows, 64 * k, dtype=torch.bool, device=pre.device)
                bits[:, :pre.shape[1]] = pre.detach() > 0
            # the arithmetic shift's copied sign bits fall outside the byte kept
            top = (bits.view(torch.int64) * _SPREAD >> 56).to(torch.uint8)
            words[start:start + rows] = top.view(torch.int64)


def unpack_bits(words: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of the packing: (n, k) int64 words -> (n, width) bool."""
    shifts = torch.arange(64, device=words.device)
    return ((words[:, :, None] >> shifts) & 1).bool().reshape(len(words), -1)[:, :width]


# ---- exact ids ----------------------------------------------------------------------------------------------------
def pattern_ids(words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(table (n, k), ids (N,)): the n distinct rows of the (N, k) int64 words in lexicographic order, word 0 first,
    each word unsigned — `patterns.unique_rows`' order — and each row's index in that table. One `torch.unique`
    (over rows when k > 1) of the words with their sign bit flipped, whose signed order is the unsigned order."""
    keys = words ^ _SIGN
    if words.shape[1] == 1:
        table, ids = torch.unique(keys[:, 0], sorted=True, return_inverse=True)
        return table[:, None] ^ _SIGN, ids
    table, ids = torch.unique(keys, dim=0, sorted=True, return_inverse=True)
    return table ^ _SIGN, ids


def pattern_hashes(tables: list[torch.Tensor]) -> list[torch.Tensor]:
    """`pattern_hash` of several (n_l, k_l) tables, those with equal k hashed as one table (fewer kernel launches,
    which is what a small grid's raster costs on a GPU)."""
    out: list = [None] * len(tables)
    for k in sorted({t.shape[1] for t in tables}):
        same = [l for l, t in enumerate(tables) if t.shape[1] == k]
        h = pattern_hash(torch.cat([tables[l] for l in same]))
        for l, part in zip(same, torch.split(h, [len(tables[l]) for l in same])):
            out[l] = part
    return out


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
    same ids; its colour hash is splitmix64(hash up to l−1 ^ hash of l's pattern), the numpy path's chain. The
    layers' hashes, then all colour tables, are each computed in one batch.
    """
    tables, ids = zip(*(pattern_ids(w) for w in words)) if words else ((), ())
    counts = [len(t) for t in tables]
    hashes = pattern_hashes(list(tables))
    cum_ids, cum_hashes = list(ids[:1]), list(hashes[:1])
    for layer_ids, h, n in zip(ids[1:], hashes[1:], counts[1:]):
        keys, cum = torch.unique(cum_ids[-1] * n + layer_ids, sorted=True, return_inverse=True)
        cum_ids.append(cum)
        cum_hashes.append(splitmix64(cum_hashes[-1][keys // n] ^ h[keys % n]))
    out = dict(ids=[i.reshape(R, R) for i in ids], cumulative_ids=[c.reshape(R, R) for c in cum_ids],
               counts=counts, cumulative_counts=[len(h) for h in cum_hashes])
    # colour tables: every layer's own (or only the first, which is also the first cumulative one), then the
    # cumulative ones of layers 2..L
    own = hashes if "colors" in want else hashes[:1] if "cumulative_colors" in want else []
    joint = cum_hashes[1:] if "cumulative_colors" in want else []
    if own:
        rgba = torch.split(hash_colors(torch.cat([*own, *joint])), [len(h) for h in (*own, *joint)])
        images = [paint(c, i) for c, i in zip(rgba, [*out["ids"][:len(own)], *out["cumulative_ids"][1:len(joint) + 1]])]
        if "colors" in want:
            out["colors"] = images[:len(own)]
        if "cumulative_colors" in want:
            out["cumulative_colors"] = [images[0], *images[len(own):]]
    if "patterns" in want:
        out["patterns"] = [unpack_bits(t, w) for t, w in zip(tables, widths)]
    return out
