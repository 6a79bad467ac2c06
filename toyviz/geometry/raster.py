"""The partition rasterizer (METHODS §6): every hidden layer's binary activation pattern over a grid of the plane as
exact region ids, colours and counts, beside D's probability, its input gradient ∇ₓD and the "mosaic glass".

Two backends give the same ids, colours and counts: "numpy" packs and ranks the patterns on the host
(`patterns.py`, tuned for the CPU), "torch" keeps every stage on the net's device (`device_patterns.py`) and copies
only the `fields` a caller asks for to the host. "auto" picks torch for a net on a GPU (cuda, mps), numpy on the
CPU.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from ..engine.config import LIMITS
from ..engine.nets import MLP, eval_mode
from . import device_patterns
from .patterns import PatternWords, host_array, partition_grid

MIN_RESOLUTION, MAX_RESOLUTION = LIMITS["viz.resolution"]          # one table of limits (engine.config)
# Grid points per forward pass: about CHUNK_FLOATS values of outputs across the net's linear layers, so that a
# chunk's activations, kept for the patterns and the gradient, stay in the CPU's cache. Chunked passes then beat
# one pass over the whole grid, and since the rows that fit fall as the net widens, the chunk is sized from D's
# widths rather than fixed (`python -m toyviz bench choices` times both). Memory stays bounded at any resolution.
CHUNK_FLOATS = 2 ** 19
MIN_CHUNK, MAX_CHUNK = 256, 16384
# On a GPU a chunk is one launch of each kernel: it should be as large as memory comfortably allows (about
# DEVICE_CHUNK_FLOATS values of activations, 512 MiB in float32), since there the cost is launches, not cache.
DEVICE_CHUNK_FLOATS, MAX_DEVICE_CHUNK = 2 ** 27, 2 ** 22
FIELDS = ("ids", "cumulative_ids", "colors", "cumulative_colors", "patterns", "prob", "output", "grad", "mosaic")
BACKENDS = ("auto", "numpy", "torch")


def chunk_rows(net, device: Optional[torch.device] = None) -> int:
    """Rows per chunk for `net`: CHUNK_FLOATS over the total width of its linear layers, rounded down to a
    multiple of 256 and kept in [MIN_CHUNK, MAX_CHUNK]; on a `device` other than the CPU, DEVICE_CHUNK_FLOATS over
    it, up to MAX_DEVICE_CHUNK."""
    width = sum(m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)) \
        if isinstance(net, torch.nn.Module) else 0
    gpu = device is not None and device.type != "cpu"
    rows = (DEVICE_CHUNK_FLOATS if gpu else CHUNK_FLOATS) // max(width, 1) // 256 * 256
    return int(min(max(rows, MIN_CHUNK), MAX_DEVICE_CHUNK if gpu else MAX_CHUNK))


def net_device(net) -> torch.device:
    """The device of a net's first parameter (the CPU for a net without parameters)."""
    p = next(iter(net.parameters()), None) if isinstance(net, torch.nn.Module) else None
    return p.device if p is not None else torch.device("cpu")


@dataclass
class Raster:
    """One net over a grid. Pixel `[i, j]` is the point `(xs[j], ys[i])`; `ys` runs top-down, as in an image.

    `ids[l][i, j] == ids[l][k, m]` iff the two pixels' patterns `preact_l > 0` on hidden layer l are equal (exact);
    `cumulative_ids[l]` is the same for the joint pattern of layers 1..l, i.e. D's linear regions up to layer l.
    Colours are a hash of the pattern bits (SplitMix64 -> HSV), so a region keeps its colour between training steps
    and on any grid; `mosaic`, `grad` are of the logit (not of `prob`), so they do not fade where D saturates.
    A field the caller left out of `rasterize(..., fields=...)` is None; counts, axes and widths are always set.
    """
    extent: tuple[float, float, float, float]       # (xmin, xmax, ymin, ymax)
    resolution: int                                 # R
    xs: np.ndarray                                  # (R,) linspace(xmin, xmax, R)
    ys: np.ndarray                                  # (R,) linspace(ymax, ymin, R): row 0 is the top
    ids: Optional[list[np.ndarray]]                 # per hidden layer, (R, R) int64
    cumulative_ids: Optional[list[np.ndarray]]      # per hidden layer, (R, R) int64: the joint pattern of layers 1..l
    colors: Optional[list[np.ndarray]]              # (R, R, 3) uint8, a function of the single-layer pattern (the
                                                    # RGB view of an RGBA buffer: strides (4R, 4, 1))
    cumulative_colors: Optional[list[np.ndarray]]   # (R, R, 3) uint8, a function of the joint pattern
    counts: list[int]                               # distinct single-layer patterns on the grid
    cumulative_counts: list[int]                    # distinct joint patterns (regions seen by the grid)
    patterns: Optional[list[np.ndarray]]            # per layer (n_ids, width) bool: row k = the bits of id k
    prob: Optional[np.ndarray]                      # (R, R) float32: prob_fn(logit): P(real), or the critic value
    grad: Optional[np.ndarray]                      # (Rg, Rg, 2) float32: ∇ₓ of D's logit at (grad_xs[j], grad_ys[i])
    grad_xs: np.ndarray                             # (Rg,)
    grad_ys: np.ndarray                             # (Rg,) top-down
    mosaic: Optional[np.ndarray]                    # (R, R, 2) float32: ∇ₓ logit averaged per cumulative region of
                                                    # the last hidden layer (piecewise constant)
    reference: Optional[str]                        # None when D is pointwise; else which reference batch was used
    widths: list[int] = field(default_factory=list)     # pattern bits per hidden layer: its units (maxout: units·k)
    output: Optional[np.ndarray] = None                 # (R, R, out_dim) float32 raw output: D's logits, G's points

    @property
    def depth(self) -> int:
        return len(self.ids)

    def pixel(self, x: float, y: float) -> tuple[int, int]:
        """The (row, column) of the pixel nearest to the point (x, y), clipped to the grid."""
        xmin, xmax, ymin, ymax = self.extent
        r = self.resolution - 1
        j = int(np.clip(round((x - xmin) / (xmax - xmin) * r), 0, r))
        i = int(np.clip(round((ymax - y) / (ymax - ymin) * r), 0, r))
        return i, j

    def pattern_at(self, layer: int, i: int, j: int) -> np.ndarray:
        """The (width,) bool pattern of hidden layer `layer` at pixel (i, j)."""
        return self.patterns[layer][self.ids[layer][i, j]]


# ---- inputs -------------------------------------------------------------------------------------------------------
def check_extent(extent) -> tuple[float, float, float, float]:
    try:
        e = tuple(float(v) for v in extent)
    except (TypeError, ValueError):
        e = ()
    if len(e) != 4 or not all(math.isfinite(v) for v in e) or not (e[0] < e[1] and e[2] < e[3]):
        raise ValueError(f"extent must be four finite numbers (xmin, xmax, ymin, ymax) with xmin < xmax and "
                         f"ymin < ymax (got {extent!r})")
    return e


def check_resolution(resolution, name: str = "resolution", lo: int = MIN_RESOLUTION, hi: int = MAX_RESOLUTION) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not lo <= resolution <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {resolution!r})")
    return int(resolution)


def axes(extent, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """xs = linspace(xmin, xmax, R) and ys = linspace(ymax, ymin, R): pixel [i, j] is (xs[j], ys[i])."""
    xmin, xmax, ymin, ymax = extent
    return np.linspace(xmin, xmax, resolution), np.linspace(ymax, ymin, resolution)


def grid(extent, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xs (R,), ys (R,) top-down, and the (R·R, 2) float64 points in raster order (row by row from the top)."""
    xs, ys = axes(extent, resolution)
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)                     # (R·R, 2): [i·R + j] = (xs[j], ys[i])
    return xs, ys, pts


class Probe:
    """How points of the plane become inputs of a net: pointwise, or against a stated reference batch.

    Packing (`net.pack` = m > 1): the point x is evaluated as D's packed row [x, r_1, ..., r_{m−1}] with r_k the
    first m−1 reference points. Minibatch discrimination: the minibatch layer compares each point against the
    reference batch packed into D's rows (what D saw in training). Either way the output at x depends on the
    reference, and `description` says which one.
    """

    def __init__(self, net, reference_batch=None, reference_name: str = "the given reference batch"):
        if not callable(getattr(net, "forward_features", None)):
            raise ValueError(f"the net must expose forward_features(x) -> (out, Features) to be rasterized "
                             f"(got {type(net).__name__})")
        p = next(iter(net.parameters()), None) if isinstance(net, torch.nn.Module) else None
        self.net = net
        self.device = net_device(net)
        self.dtype = p.dtype if p is not None else torch.float32
        self.chunk = chunk_rows(net, self.device)
        self.pack = int(getattr(net, "pack", 1) or 1)
        in_dim = getattr(net, "latent_dim", None) or getattr(net, "in_dim", None)
        if in_dim is not None and in_dim != 2 * self.pack:
            raise ValueError(f"the net's input must be points of the plane (2 numbers per packed sample); "
                             f"it takes {in_dim} inputs with pack = {self.pack}")
        minibatch = getattr(net, "minibatch", None) is not None
        self.pad = self.reference = self.description = None
        if self.pack > 1 or minibatch:
            why = " and ".join(w for w, on in (("packing", self.pack > 1), ("minibatch discrimination", minibatch))
                               if on)
            if reference_batch is None:
                raise ValueError(f"reference_batch: this D uses {why}, so its output at a point depends on other "
                                 f"points; pass an (M, 2) reference batch, e.g. the current fake batch")
            ref = torch.as_tensor(np.asarray(reference_batch), dtype=self.dtype).to(self.device).reshape(-1, 2)
            if len(ref) < max(self.pack, 2 if minibatch else 1):
                raise ValueError(f"reference_batch: need at least {self.pack} points for pack = {self.pack} "
                                 f"(got {len(ref)})")
            parts = []
            if self.pack > 1:
                self.pad = ref[: self.pack - 1].reshape(1, -1)
                parts.append(f"each grid point x is D's packed row [x, r_1..r_{self.pack - 1}] with r_k the first "
                             f"{self.pack - 1} point(s) of {reference_name}")
            if minibatch:
                m = len(ref) // self.pack * self.pack
                self.reference = ref[:m].reshape(-1, 2 * self.pack)
                parts.append(f"the minibatch layer compares each point with the {m // self.pack} rows of "
                             f"{reference_name}")
            self.description = f"D uses {why}: " + "; ".join(parts) + "."
        # On a region of constant pattern a plain (leaky) ReLU MLP with one output is affine: ∇ₓ logit is constant
        # there, and is the product of its masked weight matrices (`chain_gradient`).
        self.affine = (isinstance(net, MLP) and type(net).forward_features is MLP.forward_features
                       and net.activation in ("relu", "leaky_relu") and net.minibatch is None
                       and getattr(net, "vbn", None) is None and net.out_dim == 1)

    def chain_gradient(self, feats) -> torch.Tensor:
        """∇ₓ logit (N, 2) of an affine-per-region net from its recorded pre-activations, without autograd:
        gᵀ = w_out · S_L W_L ⋯ S_1 W_1, S_l = diag(1 where preact_l > 0, else the leaky slope (0 for ReLU)) —
        the same convention as autograd's (leaky) ReLU derivative at 0. Only x's slot of a packed row."""
        net = self.net
        g = net.out.weight[:1].expand(len(feats.preacts[-1]), -1)               # (N, width_L)
        for layer, pre in zip(reversed(net.hidden), reversed(feats.preacts)):
            if net.activation == "leaky_relu":     # the fused derivative ops: g·1 where pre > 0, else g·slope (or 0)
                g = torch.ops.aten.leaky_relu_backward(g, pre, net.slope, False)
            else:
                g = torch.ops.aten.threshold_backward(g, pre, 0.0)
            weight = layer.weight                                               # (width_l, width_{l-1})
            if layer is net.hidden[0]:
                # (N, width_1)·(width_1, 2), x's slot only: BLAS handles a product this narrow badly in W₁'s own
                # row-major layout and well in the column-major one, so the two columns are copied into it first
                weight = weight[:, :2].T.contiguous().T
            g = g @ weight
        return g[:, :2]

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.pad is None else torch.cat([x, self.pad.expand(len(x), -1)], 1)

    def forward(self, x: torch.Tensor, masks_only: bool = False):
        """(out, Features) of the points x; `masks_only` (an affine-per-region net): stop at the last hidden layer,
        out None — what `chain_gradient` needs."""
        if masks_only:
            return self.net.forward_features(self.inputs(x), upto=len(self.net.hidden) - 1)
        if self.reference is None:
            return self.net.forward_features(self.inputs(x))
        return self.net.forward_features(self.inputs(x), reference=self.reference)

    def tensor(self, pts) -> torch.Tensor:
        return torch.as_tensor(pts, dtype=self.dtype).to(self.device)

    def grid(self, xs: np.ndarray, ys: np.ndarray) -> torch.Tensor:
        """The (R·R, 2) points of `grid` in raster order, built directly in the net's dtype (no float64 grid to
        make and convert) by one copy of the broadcast axes (repeat + interleave would write each coordinate once
        more)."""
        x, y = self.tensor(xs), self.tensor(ys)
        return torch.stack([x.expand(len(y), -1), y[:, None].expand(-1, len(x))], -1).reshape(-1, 2)


def logit_of(out: torch.Tensor) -> torch.Tensor:
    """D's "real" logit per row: the single output, or logsumexp of K class logits (K+1 classifier:
    D(x) = Z/(Z+1) = sigmoid(logsumexp l), Salimans et al. 2016)."""
    return out[:, 0] if out.shape[1] == 1 else torch.logsumexp(out, 1)


def input_gradient(probe: Probe, pts: np.ndarray, chunk: Optional[int] = None, on_device: bool = False):
    """(N, 2) float32 ∇ₓ of the logit at each point: `Probe.chain_gradient` for an affine-per-region D (its
    forward stops at the last hidden layer: the chain needs the masks, not the output), else
    autograd (weights get no gradient; summing the logits first is exact since each output depends on its own
    point only, the references being held fixed). `chunk`: rows per pass, by default `probe.chunk`. A numpy
    array, or with `on_device` a tensor on the net's device."""
    return forward_patterns(probe, pts, chunk, gradient=True, patterns=False, outputs=False, on_device=on_device)[3]


# ---- the rasterizer ------------------------------------------------------------------------------------------------

def _mosaic(probe: Probe, pts: torch.Tensor, regions, n: int, chunk: Optional[int]):
    """∇ₓ logit averaged over each region, broadcast back to the pixels: (N, 2) float32 — numpy from numpy
    `regions`, a tensor on the net's device from a tensor (the torch backend).

    For a (leaky) ReLU D with one output and no minibatch layer, the logit is affine on each region, so the
    gradient at any one pixel of it is the region's exact average: the gradient is taken at one representative per
    region only. Otherwise it is taken at every pixel and averaged per region (in float64; float32 on a device
    without it, Apple's MPS)."""
    if isinstance(regions, torch.Tensor):
        flat = regions.reshape(-1)
        if probe.affine:
            rep = torch.empty(n, dtype=torch.int64, device=flat.device)
            rep[flat] = torch.arange(len(flat), device=flat.device)             # any pixel of each region will do
            return input_gradient(probe, pts[rep], chunk, on_device=True)[flat]
        wide = torch.float32 if flat.device.type == "mps" else torch.float64
        g = input_gradient(probe, pts, chunk, on_device=True).to(wide)
        size = torch.bincount(flat, minlength=n)
        per_region = torch.zeros(n, 2, dtype=wide, device=flat.device).index_add_(0, flat, g) / size[:, None]
        return per_region.float()[flat]
    flat = regions.reshape(-1)
    if probe.affine:
        rep = np.empty(n, np.int64)
        rep[flat] = np.arange(len(flat))                                        # any pixel of each region will do
        per_region = input_gradient(probe, pts[torch.from_numpy(rep)], chunk)
    else:
        g = input_gradient(probe, pts, chunk).astype(np.float64)
        size = np.bincount(flat, minlength=n)
        per_region = np.stack([np.bincount(flat, g[:, k], minlength=n) for k in range(2)], -1) / size[:, None]
    return per_region.astype(np.float32)[flat]


def forward_patterns(probe: Probe, pts: np.ndarray, chunk: Optional[int] = None, gradient: bool = False,
                     patterns: bool = True, outputs: bool = True, on_device: bool = False):
    """One chunked forward pass over (N, 2) points: per hidden layer the (N, n_words) pattern words
    (`PatternWords`; empty list without `patterns`), the widths, the raw outputs (N, out_dim) float32 tensor
    (None without `outputs`, which lets an affine-per-region D stop at its last hidden layer), and with `gradient`
    ∇ₓ logit (N, 2) float32 from the same pass (else None). Every result is written chunk by chunk into arrays
    allocated once: keeping many small per-chunk results alive would make every chunk's activations fresh
    memory. `on_device` (the torch backend): words, outputs and gradient stay tensors on the net's device, the
    words those of `device_patterns.PatternWords`."""
    packer, widths = None, []
    out_all = grad_all = None
    chunk = chunk or probe.chunk
    autograd = gradient and not probe.affine
    masks_only = not outputs and gradient and probe.affine
    n = len(pts)
    for s in range(0, n, chunk):
        x = probe.tensor(pts[s:s + chunk]).requires_grad_(autograd)
        with torch.set_grad_enabled(autograd):
            out, feats = probe.forward(x, masks_only)
            if autograd:
                grad = torch.autograd.grad(logit_of(out).sum(), x)[0]
        if gradient and not autograd:
            with torch.no_grad():
                grad = probe.chain_gradient(feats)
        bits = feats.pattern_inputs()      # pre-activations, or a maxout layer's one-hot winning pieces
        if s == 0:
            where = probe.device if on_device else None
            out_all = torch.empty(n, out.shape[1], device=where) if outputs else None
            grad_all = None if not gradient else \
                torch.empty(n, 2, device=where) if on_device else np.empty((n, 2), np.float32)
            widths = [p.shape[1] for p in bits]
            packer = None if not patterns else \
                device_patterns.PatternWords(n, widths, where) if on_device else PatternWords(n, widths)
        if outputs:
            out_all[s:s + chunk] = out.detach()
        if gradient:
            grad_all[s:s + chunk] = grad.detach() if on_device else host_array(grad)
        if packer is not None:
            packer.write(s, bits)
        del out, feats, bits      # free this chunk's activations before the next chunk's are made: one set in cache
    return (packer.words if packer is not None else []), widths if patterns else [], out_all, grad_all


def _check_chunk(chunk) -> Optional[int]:
    if chunk is None:
        return None
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer or None (got {chunk!r})")
    return int(chunk)


def check_fields(fields) -> frozenset:
    """The set of Raster fields to fill: every one of FIELDS for None, else the named ones (ValueError naming the
    allowed values for any other name)."""
    if fields is None:
        return frozenset(FIELDS)
    names = [fields] if isinstance(fields, str) else list(fields)
    bad = [f for f in names if f not in FIELDS]
    if bad:
        raise ValueError(f"fields: unknown field(s) {', '.join(map(repr, bad))} (choose from: {', '.join(FIELDS)}; "
                         f"counts, axes and widths are always filled)")
    return frozenset(names)


def on_device_backend(backend, device: torch.device) -> bool:
    """Whether `backend` ("auto", "numpy" or "torch") runs the torch path for a net on `device`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    return backend == "torch" or (backend == "auto" and device.type != "cpu")


def _partition(probe: Probe, pts: torch.Tensor, R: int, chunk: Optional[int], want: frozenset,
               on_device: bool) -> tuple[dict, torch.Tensor, object]:
    """(the partition's Raster fields: those of `want` — numpy arrays, or for the torch backend tensors on the
    device, colours as RGBA — and always counts, cumulative counts and widths; D's raw outputs (N, out_dim) as a
    tensor; the last layer's cumulative ids, for the mosaic)."""
    words, widths, out, _ = forward_patterns(probe, pts, chunk, on_device=on_device)
    if on_device:
        f = device_patterns.partition_grid(words, widths, R, want)
    else:
        ids, cum_ids, colors, cum_colors, counts, cum_counts, patterns = partition_grid(words, widths, R)
        f = dict(ids=ids, cumulative_ids=cum_ids, colors=colors, cumulative_colors=cum_colors, patterns=patterns,
                 counts=counts, cumulative_counts=cum_counts)
    last = f["cumulative_ids"][-1] if f["cumulative_ids"] else None
    f = {k: v for k, v in f.items() if k in want or k.endswith("counts")}
    return dict(f, widths=widths), out, last


def to_host(tensors: list[torch.Tensor]) -> list[np.ndarray]:
    """Each tensor's values as a numpy array (`host_array`). From a CUDA device: asynchronous copies into
    page-locked memory and one synchronization for all — a plain `.cpu()` copies through pageable memory, freshly
    faulted in each call, at a fraction of the bus's speed. The page-locked blocks come from torch's caching host
    allocator: freed with the arrays, they serve the next call (and stay page-locked in its cache meanwhile)."""
    cuda = [t for t in tensors if t.device.type == "cuda"]
    if not cuda:
        return [host_array(t) for t in tensors]
    pinned = {}
    for t in cuda:
        pinned[id(t)] = torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t.detach(), non_blocking=True)
    torch.cuda.current_stream(cuda[0].device).synchronize()
    return [pinned[id(t)].numpy() if id(t) in pinned else host_array(t) for t in tensors]


def _host_fields(f: dict) -> dict:
    """The fields with every tensor (alone or in a per-layer list) made a numpy array by one `to_host`; a colour
    image that is RGBA becomes its RGB view, as the numpy path gives it."""
    tensors = [t for v in f.values() for t in (v if isinstance(v, list) else [v]) if isinstance(t, torch.Tensor)]
    arrays = dict(zip(map(id, tensors), to_host(tensors)))
    out = {}
    for k, v in f.items():
        host = [arrays.get(id(t), t) for t in v] if isinstance(v, list) else arrays.get(id(v), v)
        if k in ("colors", "cumulative_colors"):
            host = [c[..., :3] if c.shape[-1] == 4 else c for c in host]
        out[k] = host
    return out


def _raster(extent, R, xs, ys, f: dict, **more) -> Raster:
    """A Raster from a dict of fields (tensors made numpy arrays); a field not in it is None."""
    f = {**_host_fields(f), **more}
    return Raster(extent, R, xs, ys, f.get("ids"), f.get("cumulative_ids"), f.get("colors"),
                  f.get("cumulative_colors"), f["counts"], f["cumulative_counts"], f.get("patterns"), f.get("prob"),
                  f.get("grad"), f["grad_xs"], f["grad_ys"], f.get("mosaic"), f.get("reference"), f["widths"],
                  f.get("output"))


def rasterize(D, extent=(-1.5, 1.5, -1.5, 1.5), resolution: int = 256, reference_batch=None, *,
              prob_fn: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid, grad_resolution: int = 64,
              chunk: Optional[int] = None, reference_name: str = "the given reference batch",
              mosaic: bool = True, fields=None, backend: str = "auto") -> Raster:
    """D's partition of the plane over an R×R grid: per-layer and cumulative pattern ids, colours and counts, the
    map `prob_fn(logit)`, ∇ₓ logit on a grad_resolution² grid and the mosaic glass (METHODS §6).

    `reference_batch` (M, 2): required when D packs samples or uses minibatch discrimination (see `Probe`).
    `grad_resolution=0` skips the gradient and the mosaic (both then empty arrays), `mosaic=False` the mosaic
    alone (a gradient per region: a large share of the raster when regions are many). `chunk`: grid points per pass,
    by default `chunk_rows(D, its device)` (sized to D's widths, see CHUNK_FLOATS). `fields`: the Raster fields to
    fill, e.g. ("colors", "cumulative_colors") for the region maps alone (names in FIELDS; None = all); the others
    are None and what only they need is not computed or copied. `backend`: "numpy", "torch" (every stage on D's
    device, only the asked-for arrays copied to the host, see `to_host`; resolutions up to MAX_RESOLUTION)
    or "auto" (torch for a D off the CPU). Runs in eval mode, no_grad except for the gradients; the net's state is
    left as it was.
    """
    extent = check_extent(extent)
    want = check_fields(fields)
    on_device = on_device_backend(backend, net_device(D))
    R = check_resolution(resolution, hi=MAX_RESOLUTION)
    Rg = 0 if grad_resolution == 0 else check_resolution(grad_resolution, "grad_resolution", lo=2)
    chunk = _check_chunk(chunk)
    probe = Probe(D, reference_batch, reference_name)
    xs, ys = axes(extent, R)
    pts = probe.grid(xs, ys)
    gxs, gys = axes(extent, Rg)
    empty = np.zeros((0, 0, 2), np.float32)
    with eval_mode(D):
        f, out, regions = _partition(probe, pts, R, chunk, want, on_device)
        if "prob" in want:
            f["prob"] = prob_fn(logit_of(out)).float().reshape(R, R)
        if "output" in want:
            f["output"] = out.reshape(R, R, -1)
        if "grad" in want:
            f["grad"] = input_gradient(probe, probe.grid(gxs, gys), chunk, on_device).reshape(Rg, Rg, 2) if Rg \
                else empty
        if "mosaic" in want:
            if Rg and mosaic and regions is not None:
                f["mosaic"] = _mosaic(probe, pts, regions, f["cumulative_counts"][-1], chunk).reshape(R, R, 2)
            else:
                f["mosaic"] = np.zeros((R, R, 2) if Rg and mosaic else (0, 0, 2), np.float32)
    return _raster(extent, R, xs, ys, f, grad_xs=gxs, grad_ys=gys, reference=probe.description)


def rasterize_latent(G, extent=(-3.0, 3.0, -3.0, 3.0), resolution: int = 256, *,
                     chunk: Optional[int] = None, fields=None, backend: str = "auto") -> Raster:
    """G's own partition of its 2D latent plane: ids/colours/counts of G's hidden layers over a grid of z.

    `output` holds G(z) (R, R, 2). Placeholders, since G has no probability or logit: `prob` is an empty (0, 0)
    array, `grad`, `mosaic` empty (0, 0, 2), `grad_xs`/`grad_ys` empty, `reference` None. `fields` and `backend`
    as in `rasterize`.
    """
    extent = check_extent(extent)
    want = check_fields(fields)
    on_device = on_device_backend(backend, net_device(G))
    R = check_resolution(resolution, hi=MAX_RESOLUTION)
    chunk = _check_chunk(chunk)
    if getattr(G, "latent_dim", 2) != 2:
        raise ValueError(f"rasterize_latent needs a 2D latent space (G.latent_dim = {G.latent_dim})")
    probe = Probe(G)
    xs, ys = axes(extent, R)
    pts = probe.grid(xs, ys)
    with eval_mode(G):
        f, out, _ = _partition(probe, pts, R, chunk, want, on_device)
    empty2 = np.zeros((0, 0, 2), np.float32)
    more = dict(prob=np.zeros((0, 0), np.float32), grad=empty2, mosaic=empty2, output=out.reshape(R, R, -1))
    f.update((k, v) for k, v in more.items() if k in want)
    return _raster(extent, R, xs, ys, f, grad_xs=np.zeros(0), grad_ys=np.zeros(0))


def reference_of(trainer, G=None) -> tuple[Optional[np.ndarray], Optional[str]]:
    """The current fake batch G(z_eval[:batch_size]) and its description, when D is not pointwise; else None."""
    D = trainer.D
    if getattr(D, "pack", 1) == 1 and getattr(D, "minibatch", None) is None:
        return None, None
    G = trainer.G if G is None else G
    B = min(trainer.cfg.optim.batch_size, len(trainer.z_eval))
    with torch.no_grad(), eval_mode(G):
        fake = G(trainer.z_eval[:B]).cpu().numpy()
    return fake, f"the current fake batch G(z_eval[:{B}])"


def raster_of(trainer, resolution: Optional[int] = None, snapshot: Optional[int] = None, **kwargs) -> Raster:
    """D's raster with the trainer's extent, resolution and `loss.prob`; `snapshot` (an index into
    `trainer.snapshots`) rasterizes that snapshot's weights on copies of the nets, leaving the trainer untouched.
    A D that is not pointwise is evaluated against the current (or the snapshot's) fake batch."""
    D, G = trainer.D, trainer.G
    if snapshot is not None:
        nets = trainer.snapshots[snapshot]["nets"]
        D, G = copy.deepcopy(D), copy.deepcopy(G)
        D.load_state_dict(nets["D"])
        G.load_state_dict(nets["G"])
    ref, name = reference_of(trainer, G)
    viz = trainer.cfg.viz
    return rasterize(D, tuple(viz.extent), viz.resolution if resolution is None else resolution, ref,
                     prob_fn=trainer.loss.prob, reference_name=name or "", **kwargs)

