"""Drawing exact partitions with matplotlib: crisp region boundaries over any axes, regions filled with the
rasterizer's colours (or lightly, for grayscale), the exact "mosaic glass" of ∇ₓD with its direction wheel, and a
vector (SVG/PDF, TrueType fonts) or PNG partition figure.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import torch
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure
from matplotlib.path import Path

from ..engine.atomic_files import atomic_path
from ..geometry.patterns import hash_colors, pack_bits, pattern_hash, splitmix64
from ..geometry.polygons import ExactPartition, LayerPartition, _next_rows, exact_partition
from .output_paths import FIGURE_EXTS, check_output


def boundary_segments(layer: LayerPartition, extent) -> np.ndarray:
    """(S, 2, 2) segments of the region boundaries inside the extent, each drawn once.

    Two neighbours walk their shared boundary in opposite directions (both counter-clockwise), so keeping the
    edges that point right (or straight up) keeps exactly one copy of it, even where one side's edge is split
    at a vertex the other side lacks. Edges on the extent's frame are left out.
    """
    v = layer.vertices
    w = v[_next_rows(layer.offsets)]
    d = w - v
    x0, x1, y0, y1 = extent
    eps = 1e-9 * max(x1 - x0, y1 - y0)
    on_frame = ((np.abs(v[:, 0] - x0) < eps) & (np.abs(w[:, 0] - x0) < eps)) | \
               ((np.abs(v[:, 0] - x1) < eps) & (np.abs(w[:, 0] - x1) < eps)) | \
               ((np.abs(v[:, 1] - y0) < eps) & (np.abs(w[:, 1] - y0) < eps)) | \
               ((np.abs(v[:, 1] - y1) < eps) & (np.abs(w[:, 1] - y1) < eps))
    once = (d[:, 0] > 0) | ((d[:, 0] == 0) & (d[:, 1] > 0))
    keep = once & ~on_frame
    return np.stack([v[keep], w[keep]], 1)


def draw_exact_boundaries(ax, partition: ExactPartition, layer: int, **style) -> PathCollection:
    """Overlay the boundaries of the cumulative regions of hidden layer `layer` (0-based) on `ax` (data
    coordinates = the plane). `style`: Collection keywords (`colors`/`edgecolors`, `linewidths`, `alpha`, ...;
    default thin black lines). All segments form one compound path: one SVG/PDF element, however many regions."""
    style = {"edgecolors": style.pop("colors", "k"), "linewidths": 0.4, "alpha": 0.8, **style}
    segs = boundary_segments(partition[layer], partition.extent)
    codes = np.tile(np.array([Path.MOVETO, Path.LINETO], np.uint8), len(segs))
    lines = PathCollection([Path(segs.reshape(-1, 2), codes)], facecolors="none", **style)
    ax.add_collection(lines)
    return lines


def region_colors(layer: LayerPartition) -> np.ndarray:
    """(P, 3) uint8: the colour `toyviz.regions.rasterize` gives the same joint pattern (its cumulative colours),
    so exact polygons and raster maps of one net match region for region."""
    width = layer.patterns.shape[1] // (layer.layer + 1)
    h = None
    for k in range(layer.layer + 1):
        hk = pattern_hash(pack_bits(torch.from_numpy(layer.patterns[:, k * width:(k + 1) * width])))
        h = hk if h is None else splitmix64(h ^ hk)        # the rasterizer's chaining of layer hashes
    return hash_colors(h)


VECTOR_FILLS = 20_000


def _fill_style(n: int, style: dict) -> dict:
    """Polygons stroked in their own colour (no hairline seams between neighbours); past VECTOR_FILLS polygons the
    fills are embedded as an image in SVG/PDF (a vector file of 10⁵ paths is tens of MB) — boundaries stay vector."""
    return {"linewidths": 0.15, "rasterized": n > VECTOR_FILLS, **style}


def draw_exact_regions(ax, partition: ExactPartition, layer: int, light: bool = False, **style) -> PolyCollection:
    """Fill the regions of hidden layer `layer` with the rasterizer's cumulative colours (`light`: mixed with 80 %
    white, as the raster's 'outline' style, so the boundaries carry the picture in grayscale)."""
    part = partition[layer]
    rgb = region_colors(part) / 255.0
    if light:
        rgb = 1.0 - (1.0 - rgb) / 5
    polys = PolyCollection(part.polygons(), facecolors=rgb, edgecolors=rgb, **_fill_style(len(part), style))
    ax.add_collection(polys)
    _frame(ax, partition.extent)
    return polys


def mosaic_colors(grads: np.ndarray) -> np.ndarray:
    """(P, 3) RGB in [0, 1]: hue = direction of ∇ₓD, brightness = √ of its magnitude relative to the 99th percentile
    (the BRE blog's "mosaic glass": flat panes, one tilt each)."""
    angle = np.arctan2(grads[:, 1], grads[:, 0])
    mag = np.hypot(grads[:, 0], grads[:, 1])
    top = np.percentile(mag, 99) if len(mag) else 1.0
    val = 0.2 + 0.8 * np.sqrt(np.clip(mag / (top if top > 0 else 1.0), 0, 1))
    hsv = np.stack([(angle / (2 * np.pi)) % 1.0, np.full_like(angle, 0.75), val], 1)
    return hsv_to_rgb(hsv)


def exact_mosaic(ax, partition: ExactPartition, **style) -> PolyCollection:
    """Fill D's linear regions (the last hidden layer's) by their exact ∇ₓ of D's logit: direction as hue,
    magnitude as brightness. Needs a partition that includes D's last hidden layer."""
    last = partition.depth - 1
    if last not in partition.layers:
        raise ValueError(f"exact_mosaic needs D's last hidden layer ({last}) in the partition "
                         f"(layers: {partition.layers})")
    part = partition[last]
    rgb = mosaic_colors(part.grads)
    polys = PolyCollection(part.polygons(), facecolors=rgb, edgecolors=rgb, **_fill_style(len(part), style))
    ax.add_collection(polys)
    _frame(ax, partition.extent)
    return polys


def _frame(ax, extent) -> None:
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")


def direction_wheel(ax, color, fontsize: float, caption: bool = True, hues: int = 24, rings: int = 4):
    """The key of a ∇ₓD mosaic on `ax`: a disk whose angle is the gradient's direction and whose radius is its
    magnitude (0 at the centre, the largest at the rim), coloured by `color(angle, magnitude in [0, 1])` -> RGB.
    Vector wedges (hues × rings), so a vector figure keeps it vector; `caption` adds what hue and brightness
    mean below it."""
    a = np.linspace(-np.pi, np.pi, hues + 1)
    r = np.linspace(0.0, 1.0, rings + 1)
    polys, mids = [], []
    for i in range(rings):
        for j in range(hues):
            t = np.linspace(a[j], a[j + 1], 5)
            outer = np.stack([r[i + 1] * np.cos(t), r[i + 1] * np.sin(t)], 1)
            inner = np.stack([r[i] * np.cos(t[::-1]), r[i] * np.sin(t[::-1])], 1)
            polys.append(np.concatenate([outer, inner]))
            mids.append(((a[j] + a[j + 1]) / 2, (r[i] + r[i + 1]) / 2))
    mids = np.array(mids)
    rgb = np.clip(color(mids[:, 0], mids[:, 1]), 0, 1)
    ax.add_collection(PolyCollection(polys, facecolors=rgb, edgecolors=rgb, linewidths=0.3))
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("∇ₓD", fontsize=fontsize, pad=1)
    if caption:
        ax.text(0.5, -0.08, "hue: direction\nbrightness: |∇ₓD|", transform=ax.transAxes, ha="center", va="top",
                fontsize=fontsize, linespacing=1.1)


def _exact_mosaic_color(angle, mag):
    """`mosaic_colors` for an angle and a magnitude already relative to its 99th percentile."""
    hsv = np.stack([(angle / (2 * np.pi)) % 1.0, np.full_like(angle, 0.75), 0.2 + 0.8 * np.sqrt(mag)], 1)
    return hsv_to_rgb(hsv)


def partition_title(partition: ExactPartition, l: int) -> str:
    """'layer 1: 40 regions', 'layers 1–3: 241 regions': the linear regions of layers 1..l together."""
    name = f"layers 1–{l + 1}" if l else "layer 1"
    return f"{name}: {len(partition[l]):,} regions"


FONT, SMALL = 9.0, 8.0        # points: titles; ticks and keys


def partition_figure(partition: ExactPartition, *, panel_size: float = 3.2, regions: str = "hashed") -> Figure:
    """One panel per computed layer (the regions of layers 1..l in raster colours, exact boundaries), plus the
    exact mosaic of ∇ₓD and its direction wheel when D's last hidden layer is included. `regions='outline'` fills
    the regions lightly and draws their boundaries darker, for grayscale."""
    if regions not in ("hashed", "outline"):
        raise ValueError(f"regions: unknown style {regions!r} (choose from: hashed, outline)")
    with_mosaic = partition.depth - 1 in partition.layers
    n = len(partition.layers) + with_mosaic
    key_w = 1.1 if with_mosaic else 0.0
    fig = Figure(figsize=(panel_size * n + key_w, panel_size + 0.4), layout="constrained")
    ratios = [1.0] * n + ([key_w / panel_size] if with_mosaic else [])
    axes = fig.subplots(1, n + with_mosaic, squeeze=False, width_ratios=ratios)[0]
    outline = regions == "outline"
    for ax, l in zip(axes, partition.layers):
        draw_exact_regions(ax, partition, l, light=outline)
        draw_exact_boundaries(ax, partition, l, linewidths=0.5 if outline else 0.25)
        ax.set_title(partition_title(partition, l), fontsize=FONT)
    if with_mosaic:
        exact_mosaic(axes[n - 1], partition)
        last = f"layers 1–{partition.depth}" if partition.depth > 1 else "layer 1"
        axes[n - 1].set_title(f"∇ₓD per region of {last} (exact)", fontsize=FONT)
        key = axes[n]
        key.set_box_aspect(None)
        direction_wheel(key, _exact_mosaic_color, SMALL)
    for ax in axes[:n]:
        ax.tick_params(labelsize=SMALL)
    return fig


def save_figure(fig: Figure, path, dpi: int = 300) -> None:
    """Write `fig` to `path` by its extension, atomically; PDF and PostScript embed TrueType fonts (Type 42) rather
    than Type 3, which journals ask for and which stay editable."""
    with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}), atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=dpi)


def save_partition_figure(D, extent, path, layers=None, regions: str = "hashed") -> ExactPartition:
    """Partition D exactly over `extent` and write the figure to `path`: .svg or .pdf (vector) or .png, by
    extension, atomically (a temporary name in the same folder, then a rename). Returns the partition."""
    path = check_output(path, FIGURE_EXTS)
    partition = exact_partition(D, extent, layers)
    save_figure(partition_figure(partition, regions=regions), path)
    return partition
