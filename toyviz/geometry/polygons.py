"""Exact linear regions of a ReLU / LeakyReLU / maxout MLP D on a 2D box, as convex polygons (METHODS §6, §7).

Layer by layer, each region of the cumulative partition is cut by the lines {x : z_u(x) = 0} of the next layer's
units that cross it (SplineCam, Humayun et al., CVPR 2023, does this offline; Hanin & Rolnick 2019 count them).
A maxout layer splits a region, unit by unit, into the cells where each piece wins: piece j's cell is the region
clipped by the k − 1 half-planes z_j ≥ z_i (METHODS §7). Its pattern bits are the one-hot of each unit's winning
piece (k bits a unit, as `Features.pattern_inputs` gives the rasterizer), and with the next layer's weights
repeated k times along their inputs, the on/off algebra of a ReLU layer (mask 1 or 0) composes its affine maps.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import threadpoolctl
import torch

# A vertex with |z_u| ≤ TOL · max|z_u| (over the layer's starting vertices) counts as lying on unit u's line: no
# sliver thinner than that is cut off, and both halves share the vertex, so the areas still sum exactly.
TOL = 1e-10
# Vertices per chunk × width: bounds the memory of the vertex pre-activation table (float64) to ~48 MB.
CHUNK_VALUES = 6_000_000


# ---- the net as float64 matrices ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Weights:
    W: list[np.ndarray]       # per hidden layer (width_l, width_{l-1}); W[0] is (width_0, 2)
    b: list[np.ndarray]       # per hidden layer (width_l,)
    w_out: np.ndarray         # (out_dim, width_last)
    b_out: np.ndarray         # (out_dim,)
    slope: float              # the mask value of an inactive unit: 0 for ReLU, the LeakyReLU slope otherwise
    pieces: int = 1           # maxout's k (1: not maxout); W[l ≥ 1] and w_out then take each unit's k bits

    def mask(self, bits: np.ndarray) -> np.ndarray:
        """The diagonal of the activation's Jacobian on a region: 1 where the unit is on, `slope` where off."""
        return np.where(bits, 1.0, self.slope)


def _weights(D) -> _Weights:
    """D's layers as float64 arrays, after checking that D is a pointwise piecewise-linear MLP on the plane."""
    activation = getattr(D, "activation", None)
    if activation not in ("relu", "leaky_relu", "maxout"):
        raise ValueError(f"exact_partition: D.activation must be 'relu', 'leaky_relu' or 'maxout' (got "
                         f"{activation!r}); only a piecewise-linear net has linear regions")
    if getattr(D, "minibatch", None) is not None:
        raise ValueError("exact_partition: D uses minibatch discrimination (D.minibatch is set), so its output "
                         "depends on the rest of the batch and has no fixed partition of the plane")
    if getattr(D, "pack", 1) != 1 or getattr(D, "in_dim", 2) != 2:
        raise ValueError(f"exact_partition: D must read single 2D points (pack = 1, in_dim = 2); got "
                         f"pack = {getattr(D, 'pack', 1)}, in_dim = {getattr(D, 'in_dim', 2)}")
    training = D.training
    D.eval()                   # spectral norm: read the normalized `layer.weight` without a power-iteration update
    try:
        with torch.no_grad():
            W = [layer.weight.detach().double().cpu().numpy() for layer in D.hidden]
            b = [layer.bias.detach().double().cpu().numpy() for layer in D.hidden]
            w_out = D.out.weight.detach().double().cpu().numpy()
            b_out = D.out.bias.detach().double().cpu().numpy()
    finally:
        D.train(training)
    slope = float(D.slope) if activation == "leaky_relu" else 0.0
    k = int(D.pieces) if activation == "maxout" else 1
    if k > 1:
        # a layer's pattern has k one-hot bits a unit (`Features.pattern_inputs`); repeating each input column of
        # the next layer k times makes mask(bits) @ W_rep.T select the winning piece's value of every unit
        W = W[:1] + [np.repeat(w, k, axis=1) for w in W[1:]]
        w_out = np.repeat(w_out, k, axis=1)
    return _Weights(W, b, w_out, b_out, slope, k)


# ---- flat polygon sets -------------------------------------------------------------------------------------------
# A set of P convex polygons is stored flat: vertices (N, 2) in counter-clockwise order polygon after polygon, and
# offsets (P+1,) with polygon p's vertices at rows offsets[p]:offsets[p+1]. Every per-vertex array shares that layout.

def _next_rows(offsets: np.ndarray) -> np.ndarray:
    """Row of each vertex's successor along its polygon (the last vertex wraps to the first)."""
    nxt = np.arange(1, offsets[-1] + 1)
    nxt[offsets[1:] - 1] = offsets[:-1]
    return nxt


def _gather(offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and new offsets that list the segments `order` (indices into offsets) one after the other."""
    counts = offsets[1:][order] - offsets[:-1][order]
    new_off = np.zeros(len(order) + 1, np.int64)
    np.cumsum(counts, out=new_off[1:])
    rows = np.repeat(offsets[:-1][order] - new_off[:-1], counts) + np.arange(new_off[-1])
    return rows, new_off


def _local(vertices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Vertices relative to their polygon's first vertex: tiny regions far from the origin keep their digits."""
    return vertices - np.repeat(vertices[offsets[:-1]], np.diff(offsets), axis=0)


def polygon_areas(vertices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Signed areas (positive for counter-clockwise) by the shoelace formula, one per polygon."""
    v = _local(vertices, offsets)
    nxt = _next_rows(offsets)
    x, y = v[:, 0], v[:, 1]
    return 0.5 * np.add.reduceat(x * y[nxt] - x[nxt] * y, offsets[:-1])


def _vertex_means(vertices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(P, 2) mean of each polygon's vertices: a point strictly inside a convex polygon."""
    pid = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    n = np.diff(offsets)
    return np.stack([np.bincount(pid, vertices[:, k], len(n)) / n for k in range(2)], 1)


def _cut(V, offsets, z, tol):
    """Cut each polygon p along the line z = 0 (z given at its vertices, affine on it; tol (P,) per polygon):
    Sutherland–Hodgman against both half-planes at once. Returns (V, offsets) of 2P polygons, children 0..P-1 on
    the positive side and P..2P-1 on the negative side. A vertex with |z| ≤ tol lies on the line: both keep it.
    """
    P, n = len(offsets) - 1, len(V)
    pid = np.repeat(np.arange(P), np.diff(offsets))
    nxt = _next_rows(offsets)
    t = tol[pid]
    side = (z > t).astype(np.int8) - (z < -t)                       # +1, 0 (on the line), −1
    ci = np.flatnonzero(side * side[nxt] < 0)                       # edges ci -> nxt[ci] that change side
    cj = nxt[ci]
    s = (z[ci] / (z[ci] - z[cj]))[:, None]
    VX = V[ci] + s * (V[cj] - V[ci])                                # (m, 2) the cut points
    # Each input vertex i owns two output slots, [i itself][the cut point on edge i -> next]; the kept slots in
    # order walk each child counter-clockwise.
    xrow = np.full(n, -1, np.int64)
    xrow[ci] = n + np.arange(len(ci))
    idx = np.arange(n)
    slots_pos = np.stack([np.where(side >= 0, idx, -1), xrow], 1).ravel()      # (2n,)
    slots_neg = np.stack([np.where(side <= 0, idx, -1), xrow], 1).ravel()
    pid2 = np.repeat(pid, 2)
    keep_pos, keep_neg = slots_pos >= 0, slots_neg >= 0
    rows = np.concatenate([slots_pos[keep_pos], slots_neg[keep_neg]])
    counts = np.concatenate([np.bincount(pid2[keep_pos], minlength=P), np.bincount(pid2[keep_neg], minlength=P)])
    new_off = np.zeros(2 * P + 1, np.int64)
    np.cumsum(counts, out=new_off[1:])
    return np.concatenate([V, VX])[rows], new_off


def _concat(Vs, offs, roots):
    shifts = np.cumsum([0] + [o[-1] for o in offs[:-1]])
    offsets = np.concatenate([[0]] + [o[1:] + s for o, s in zip(offs, shifts)])
    return np.concatenate(Vs), offsets, np.concatenate(roots)


def _refine(V, offsets, A, c, scale):
    """Cut P convex polygons by every line {x : A[p, :, u]·x + c[p, u] = 0} that crosses them.

    A (P, 2, width), c (P, width): each polygon's affine map of the layer's pre-activations; scale (2,): the
    extent's largest |x|, |y|, so TOL · (|a_x|·scale_x + |a_y|·scale_y + |c|) is a unit's zero on the polygon.
    Candidates are the lines within the polygon's bounding circle of its vertex mean. Rounds of batched cuts: each
    round tests every (piece, candidate line) pair at the piece's vertices, drops the pairs that miss, and cuts
    every still-crossed piece by its first crossing line; its children inherit the remaining pairs.
    Returns the pieces (V, offsets), each one's polygon `root`, and its bits (P', width) of z > 0.
    """
    P = len(offsets) - 1
    centre = _vertex_means(V, offsets)                                              # (P, 2)
    pid = np.repeat(np.arange(P), np.diff(offsets))
    radius = np.maximum.reduceat(np.hypot(*(V - centre[pid]).T), offsets[:-1])      # (P,)
    ax, ay = A[:, 0], A[:, 1]                                                       # (P, width) each
    z_centre = ax * centre[:, :1] + ay * centre[:, 1:] + c                          # (P, width)
    tol = TOL * (np.abs(ax) * scale[0] + np.abs(ay) * scale[1] + np.abs(c))
    slack = np.sqrt(ax * ax + ay * ay) * (radius * (1 + 1e-9))[:, None] + tol
    base_bits = z_centre > 0
    cand_p, cand_u = np.nonzero(np.abs(z_centre) <= slack)                          # sorted by polygon
    pp, pu, root = cand_p, cand_u, np.arange(P)
    done_V, done_off, done_root = [], [], []
    while True:
        n_pieces = len(offsets) - 1
        rows, eoff = _gather(offsets, pp)                                           # each pair's vertex rows
        r, cnt = root[pp], np.diff(eoff)
        z = (V[rows, 0] * np.repeat(A[r, 0, pu], cnt) + V[rows, 1] * np.repeat(A[r, 1, pu], cnt)
             + np.repeat(c[r, pu], cnt))
        t = tol[r, pu]
        if len(pp):
            crossing = ((np.minimum.reduceat(z, eoff[:-1]) < -t) & (np.maximum.reduceat(z, eoff[:-1]) > t))
        else:
            crossing = np.zeros(0, bool)
        sel = np.flatnonzero(crossing)
        active_mask = np.zeros(n_pieces, bool)
        active_mask[pp[sel]] = True
        final = np.flatnonzero(~active_mask)
        if len(final):
            frows, foff = _gather(offsets, final)
            done_V.append(V[frows]), done_off.append(foff), done_root.append(root[final])
        if not len(sel):
            break
        pp_c = pp[sel]
        first = np.flatnonzero(np.r_[True, pp_c[1:] != pp_c[:-1]])                  # first crossing pair per piece
        active = pp_c[first]
        zrows, _ = _gather(eoff, sel[first])
        arows, aoff = _gather(offsets, active)
        V, offsets = _cut(V[arows], aoff, z[zrows], t[sel[first]])
        rest = np.ones(len(sel), bool)
        rest[first] = False
        rank = np.zeros(n_pieces, np.int64)
        rank[active] = np.arange(len(active))
        k, u = rank[pp_c[rest]], pu[sel[rest]]
        pp, pu = np.concatenate([k, k + len(active)]), np.concatenate([u, u])
        root = np.tile(root[active], 2)
    V, offsets, root = _concat(done_V, done_off, done_root)
    order = np.argsort(root, kind="stable")
    rows, offsets = _gather(offsets, order)
    V, root = V[rows], root[order]
    # Bits: off the candidate lines, a piece's side is its polygon's; on them, the side of the piece's vertex mean.
    bits = base_bits[root]
    n_cand = np.bincount(cand_p, minlength=P)
    cand_off = np.zeros(P + 1, np.int64)
    np.cumsum(n_cand, out=cand_off[1:])
    crow, coff = _gather(cand_off, root)
    piece = np.repeat(np.arange(len(root)), np.diff(coff))
    u, r = cand_u[crow], root[piece]
    mean = _vertex_means(V, offsets)[piece]
    bits[piece, u] = A[r, 0, u] * mean[:, 0] + A[r, 1, u] * mean[:, 1] + c[r, u] > 0
    return V, offsets, root, bits


def _refine_maxout(V, offsets, A, c, k, scale):
    """Split P convex polygons into the cells of a maxout layer's units (METHODS §7), one unit after another.

    A (P, 2, width·k), c (P, width·k): each polygon's affine map of the layer's pieces (unit u's piece j in column
    u·k + j). A polygon on which one piece wins at every vertex by more than the tolerance lies in that piece's
    cell (cell and polygon are convex) and is kept whole; any other is clipped, for each piece j, by the k − 1
    half-planes (a_j − a_i)·x + (c_j − c_i) ≥ 0 (`_cut`, keeping the positive side), and the non-empty clips are
    its children. Returns, as `_refine`, the pieces (V, offsets), each one's polygon `root`, and its bits
    (P', width·k): the one-hot of every unit's winning piece.
    """
    P = len(offsets) - 1
    width = c.shape[1] // k
    root = np.arange(P)
    bits = np.zeros((P, width * k), bool)
    min_area = TOL * float(scale[0] * scale[1])                    # a clip thinner than the lines' tolerance
    for u in range(width):
        cols = slice(u * k, (u + 1) * k)
        au, cu = A[:, :, cols], c[:, cols]                                      # (P, 2, k), (P, k)
        pid = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        r = root[pid]
        z = V[:, :1] * au[r, 0] + V[:, 1:] * au[r, 1] + cu[r]                   # (vertices, k)
        tol = TOL * (np.abs(au[:, 0]) * scale[0] + np.abs(au[:, 1]) * scale[1] + np.abs(cu)).max(1)   # (P,)
        win = z.argmax(1)
        top = np.partition(z, k - 2, axis=1)
        clear = (top[:, -1] - top[:, -2] > 2 * tol[r]).astype(np.int8)
        whole = ((np.minimum.reduceat(clear, offsets[:-1]) == 1)
                 & (np.minimum.reduceat(win, offsets[:-1]) == np.maximum.reduceat(win, offsets[:-1])))
        keep = np.flatnonzero(whole)
        rows, off = _gather(offsets, keep)
        parts_V, parts_off, parts_of, parts_win = [V[rows]], [off], [keep], [win[offsets[:-1][keep]]]
        split = np.flatnonzero(~whole)
        if len(split):
            srows, soff = _gather(offsets, split)
            for j in range(k):
                Vj, oj, of = V[srows], soff, split                            # `of`: index of each clip's polygon
                for i in range(k):
                    if i == j or len(of) == 0:
                        continue
                    rr = root[of]
                    da, dc = au[rr, :, j] - au[rr, :, i], cu[rr, j] - cu[rr, i]                  # (m, 2), (m,)
                    n = np.diff(oj)
                    zz = (Vj * np.repeat(da, n, axis=0)).sum(1) + np.repeat(dc, n)
                    t = TOL * (np.abs(da[:, 0]) * scale[0] + np.abs(da[:, 1]) * scale[1] + np.abs(dc))
                    Vc, oc = _cut(Vj, oj, zz, t)
                    pos = np.flatnonzero(np.diff(oc[:len(of) + 1]) >= 3)      # the positive sides with an area
                    crow, oj = _gather(oc, pos)
                    Vj, of = Vc[crow], of[pos]
                if len(of):
                    big = np.flatnonzero(np.abs(polygon_areas(Vj, oj)) > min_area)
                    crow, oj = _gather(oj, big)
                    parts_V.append(Vj[crow]), parts_off.append(oj), parts_of.append(of[big])
                    parts_win.append(np.full(len(big), j))
        V, offsets, of = _concat(parts_V, parts_off, parts_of)
        winner = np.concatenate(parts_win)
        order = np.argsort(of, kind="stable")                          # children of one polygon stay together
        rows, offsets = _gather(offsets, order)
        V, of, winner = V[rows], of[order], winner[order]
        root, bits = root[of], bits[of]
        bits[np.arange(len(of)), u * k + winner] = True
    return V, offsets, root, bits


# ---- the partition -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """One region of the cumulative partition of layers 0..layer: a convex polygon on which D's first layer+1
    layers are affine. `A`, `c`: that layer's pre-activation z = A x + c here; `grad`: ∇ₓ of D's logit (last
    hidden layer only; None elsewhere, where D is not yet affine)."""
    layer: int
    index: int
    polygon: np.ndarray        # (V, 2) float64, counter-clockwise
    pattern: np.ndarray        # ((layer+1)·width,) bool, the joint pattern of layers 0..layer
    A: np.ndarray              # (width, 2)
    c: np.ndarray              # (width,)
    grad: Optional[np.ndarray]  # (2,) or None


class LayerPartition(Sequence[Region]):
    """The regions of one layer, stored flat (vertices + offsets); indexing builds `Region` views on demand.

    Regions are ordered by the region of the previous layer they split (`parent`), so siblings are contiguous.
    The layer's pre-activation maps are kept per parent (`parent_A` (P_parent, 2, width), `parent_c`): the
    pre-activation of layer l depends on the patterns of layers 0..l-1 only.
    """

    def __init__(self, layer, vertices, offsets, patterns, parent, parent_A, parent_c, weights: _Weights,
                 is_last: bool):
        self.layer, self.vertices, self.offsets = layer, vertices, offsets
        self.patterns, self.parent = patterns, parent
        self.parent_A, self.parent_c = parent_A, parent_c
        self._w, self.is_last = weights, is_last
        self._affine = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        p = self.parent[i]
        return Region(self.layer, i, self.polygon(i), self.patterns[i], self.parent_A[p].T, self.parent_c[p],
                      self.grads[i] if self.is_last else None)

    def __iter__(self) -> Iterator[Region]:
        return (self[i] for i in range(len(self)))

    def polygon(self, i: int) -> np.ndarray:
        return self.vertices[self.offsets[i]:self.offsets[i + 1]]

    def polygons(self) -> list[np.ndarray]:
        return np.split(self.vertices, self.offsets[1:-1])

    @property
    def areas(self) -> np.ndarray:
        return polygon_areas(self.vertices, self.offsets)

    @property
    def centroids(self) -> np.ndarray:
        """(P, 2) area centroids (inside each region: they are convex)."""
        nxt = _next_rows(self.offsets)
        v = _local(self.vertices, self.offsets)
        w = v[nxt]
        cross = v[:, 0] * w[:, 1] - w[:, 0] * v[:, 1]
        s = np.add.reduceat((v + w) * cross[:, None], self.offsets[:-1], axis=0)
        return self.vertices[self.offsets[:-1]] + s / (3 * np.add.reduceat(cross, self.offsets[:-1]))[:, None]

    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        """(A (P, width, 2), c (P, width)): this layer's pre-activation z = A x + c on each region.

        A = W_l diag(m_{l-1}) W_{l-1} ··· diag(m_0) W_0, with m the activation slopes (1 or `slope`) of the pattern.
        """
        return np.transpose(self.parent_A[self.parent], (0, 2, 1)), self.parent_c[self.parent]

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(grad (P, out_dim, 2), bias (P, out_dim)): D's logits = grad · x + bias on each region (last layer only).

        grad = w_out diag(m_last) A_last: exact, from the composed affine maps (cached)."""
        if not self.is_last:
            raise ValueError(f"layer {self.layer} is not D's last hidden layer: D is not affine on its regions")
        if self._affine is None:
            width = self.parent_c.shape[1]
            grad = np.empty((len(self), len(self._w.b_out), 2))
            bias = np.empty((len(self), len(self._w.b_out)))
            for s in range(0, len(self), _ROWS):
                sl = slice(s, s + _ROWS)
                g = self._w.w_out[None] * self._w.mask(self.patterns[sl, -width:])[:, None, :]   # (p, out, width)
                p = self.parent[sl]
                grad[sl] = g @ np.transpose(self.parent_A[p], (0, 2, 1))
                bias[sl] = np.einsum("pow,pw->po", g, self.parent_c[p]) + self._w.b_out
            self._affine = (grad, bias)
        return self._affine

    @property
    def grads(self) -> np.ndarray:
        """(P, 2): ∇ₓ of D's logit on each region (a single-logit D)."""
        g = self.affine()[0]
        if g.shape[1] != 1:
            raise ValueError(f"grads: D has {g.shape[1]} logits; use affine() for a multi-logit D")
        return g[:, 0]

    def lookup(self, patterns: np.ndarray) -> np.ndarray:
        """Region index of each joint pattern (K, (layer+1)·width) bool; −1 where no region has that pattern."""
        keys = _pattern_keys(self.patterns)
        order = np.argsort(keys)
        q = _pattern_keys(np.asarray(patterns, bool))
        pos = np.clip(np.searchsorted(keys, q, sorter=order), 0, len(keys) - 1)
        return np.where(keys[order[pos]] == q, order[pos], -1)


def _pattern_keys(patterns: np.ndarray) -> np.ndarray:
    """Rows of a bool array as bytes strings (for sorting and matching)."""
    packed = np.ascontiguousarray(np.packbits(patterns, axis=1))
    return packed.view(f"S{packed.shape[1]}").ravel()     # fixed length: dropping trailing NULs stays injective


@dataclass
class ExactPartition:
    """`partition[l]` (l a 0-based hidden layer in `layers`, or negative from the deepest computed one:
    `partition[-1]` is the last): that layer's `LayerPartition` (a list of Regions)."""
    extent: tuple[float, float, float, float]
    depth: int
    by_layer: dict[int, LayerPartition]

    @property
    def layers(self) -> list[int]:
        return sorted(self.by_layer)

    def __getitem__(self, layer: int) -> LayerPartition:
        if isinstance(layer, int) and -len(self.by_layer) <= layer < 0:
            layer = self.layers[layer]
        if layer not in self.by_layer:
            raise KeyError(f"layer {layer} was not computed (layers: {self.layers})")
        return self.by_layer[layer]

    def counts(self) -> dict[int, int]:
        return {l: len(p) for l, p in self.by_layer.items()}


_ROWS = 2048          # regions per batch: keeps every temporary array in cache (and BLAS calls cache-sized)


def _check_extent(extent) -> tuple[float, float, float, float]:
    try:
        x0, x1, y0, y1 = (float(v) for v in extent)
    except (TypeError, ValueError):
        raise ValueError(f"extent must be [xmin, xmax, ymin, ymax] (got {extent!r})") from None
    if not (np.isfinite([x0, x1, y0, y1]).all() and x0 < x1 and y0 < y1):
        raise ValueError(f"extent must be finite [xmin, xmax, ymin, ymax] with xmin < xmax, ymin < ymax "
                         f"(got {list(extent)})")
    return x0, x1, y0, y1


def _next_maps(A, c, parent, bits, W, b, w: _Weights):
    """Layer l+1's pre-activation maps on layer l's regions:
    A' = (A[parent] diag(m)) Wᵀ,  c' = (m ⊙ c[parent]) Wᵀ + b."""
    P = len(parent)
    A2, c2 = np.empty((P, 2, len(b))), np.empty((P, len(b)))
    for s in range(0, P, _ROWS):
        sl = slice(s, s + _ROWS)
        m = w.mask(bits[sl])
        A2[sl] = ((A[parent[sl]] * m[:, None, :]).reshape(-1, A.shape[2]) @ W.T).reshape(-1, 2, len(b))
        c2[sl] = (c[parent[sl]] * m) @ W.T + b
    return A2, c2


def exact_partition(D, extent, layers=None) -> ExactPartition:
    """The exact linear regions of D inside `extent` = [xmin, xmax, ymin, ymax], for hidden layers `layers`
    (0-based; default all). Layer l's regions are those of the joint pattern of layers 0..l.

    Each region of layer l-1 carries layer l's pre-activation map z = A x + c (A = W_l diag(m_{l-1}) A_{l-1});
    it is cut by the lines z_u = 0 that cross it (`_refine`), in batches of regions.
    """
    with one_blas_thread():
        return _exact_partition(D, extent, layers)


@contextlib.contextmanager
def one_blas_thread():
    """The products here are cache-sized: one BLAS thread is faster than several (and kinder to a shared box)."""
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


def _exact_partition(D, extent, layers) -> ExactPartition:
    w = _weights(D)
    depth = len(w.W)
    if layers is None:
        layers = list(range(depth))
    try:
        layers = sorted(set(int(l) for l in layers))
    except (TypeError, ValueError):
        raise ValueError(f"layers must be hidden-layer indices in 0..{depth - 1} (got {layers!r})") from None
    if not layers or layers[0] < 0 or layers[-1] >= depth:
        raise ValueError(f"layers must be hidden-layer indices in 0..{depth - 1} (got {layers})")
    x0, x1, y0, y1 = box = _check_extent(extent)
    scale = np.array([max(abs(x0), abs(x1)), max(abs(y0), abs(y1))])
    V = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])            # counter-clockwise
    offsets = np.array([0, 4])
    A, c = w.W[0].T[None].copy(), w.b[0][None].copy()                  # (1, 2, width), (1, width)
    patterns = np.zeros((1, 0), bool)
    parent = bits = None                       # the previous layer's cells: set at the end of each pass
    out: dict[int, LayerPartition] = {}
    for l in range(layers[-1] + 1):
        if l > 0:
            A, c = _next_maps(A, c, parent, bits, w.W[l], w.b[l], w)
        parts = []
        for s in range(0, len(offsets) - 1, _ROWS):
            e = min(s + _ROWS, len(offsets) - 1)
            a, z = offsets[s], offsets[e]
            if w.pieces > 1:
                Vc, oc, rc, bc = _refine_maxout(V[a:z], offsets[s:e + 1] - a, A[s:e], c[s:e], w.pieces, scale)
            else:
                Vc, oc, rc, bc = _refine(V[a:z], offsets[s:e + 1] - a, A[s:e], c[s:e], scale)
            parts.append((Vc, oc, rc + s, bc))
        Vs, offs, roots, bitss = zip(*parts)
        V, offsets, parent = _concat(Vs, offs, roots)
        bits = np.concatenate(bitss)
        patterns = np.concatenate([patterns[parent], bits], 1)
        if l in layers:
            out[l] = LayerPartition(l, V, offsets, patterns, parent, A, c, w, is_last=(l == depth - 1))
    return ExactPartition(box, depth, out)
