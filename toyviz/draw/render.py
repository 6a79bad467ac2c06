"""Matplotlib drawing of `FrameData`: frames as (H, W, 3) uint8 arrays, and paper figures (rows = steps).

`draw_frame(fd, panels, size)` for one frame; `FrameRenderer` keeps one Agg figure and only updates its artists
from frame to frame (videos); `draw_figure(rows, panels)` lays out a BRE-paper-style figure (Cao et al. 2018, Fig. 2).
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .frames import DEFAULT_PANELS, FrameData, curve_groups, header_text, needs_raster, parse_panels
from .mpl_panels import PANEL_CLASSES, CurvesPanel, _MapPanel

DPI = 100


def _style(W, H, fast, exact):
    fs = max(5.0, min(W, H) / 512 * 8)
    return {"fs": fs, "ms": max(0.5, min(W, H) / 512 * 1.5), "fast": fast, "exact": exact, "W": W, "H": H}


def _map_rect(px, py, pw, ph, fd, style):
    """Pixel cell -> figure-fraction axes rect keeping the extent's aspect, leaving room for the title."""
    W, H, fs = style["W"], style["H"], style["fs"]
    x0, x1, y0, y1 = fd.extent
    aspect = (x1 - x0) / (y1 - y0)
    avail_w, avail_h = pw - 4, ph - 2.2 * fs - 3
    w = min(avail_w, avail_h * aspect)
    h = w / aspect
    return ((px + (pw - w) / 2) / W, (py + 2) / H + (avail_h - h) / H, w / W, h / H)


def _grid(n, W, H):
    """(rows, cols) for n panels whose cells are closest to square."""
    cols = min(range(1, n + 1), key=lambda c: abs(math.log((W / c) / (H / math.ceil(n / c)))))
    return math.ceil(n / cols), cols


class FrameRenderer:
    """Draws frames of fixed panels and size into one reused figure. The first frame draws everything and keeps
    the static part (axes, ticks, legends, real points) as a background; later frames restore it and draw only
    the artists that change (blitting). `fast` paints the 0.5 contour into the heat map's pixels instead of
    tracing it; `exact` overlays the exact region boundaries on cumulative region panels (needs
    `FrameData.partition`, from `iter_frame_data(..., exact=True)`)."""

    def __init__(self, panels: Sequence[str] = DEFAULT_PANELS, size=(512, 512), *, header: bool = True,
                 fast: bool = True, exact: bool = False):
        self.panels, self.size, self.header = list(panels), (int(size[0]), int(size[1])), header
        W, H = self.size
        if W < 64 or H < 64:
            raise ValueError(f"size: {W}x{H} is too small (at least 64x64)")
        self.style = _style(W, H, fast, exact)
        self.fig = Figure(figsize=(W / DPI, H / DPI), dpi=DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        self.items, self.background = None, None

    def _build(self, fd):
        W, H = self.size
        panels = parse_panels(self.panels, len(fd.raster.ids) if fd.raster is not None else 8)
        if fd.raster is None and needs_raster(panels):
            raise ValueError("panels: region, probability and gradient panels need FrameData.raster")
        head = 2.2 * self.style["fs"] if self.header else 0
        rows, cols = _grid(len(panels), W, H - head)
        cw, ch = W / cols, (H - head) / rows
        self.items = []
        for i, p in enumerate(panels):
            r, c = divmod(i, cols)
            px, py = c * cw, H - head - (r + 1) * ch
            cls = PANEL_CLASSES[p.partition(":")[0]]
            rect = ((px / W, py / H, cw / W, ch / H) if cls is CurvesPanel
                    else _map_rect(px, py, cw, ch, fd, self.style))
            self.items.append(cls(self.fig, rect, p, fd, self.style))
        from matplotlib import font_manager
        from PIL import ImageFont
        self.font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), round(self.style["fs"] * DPI / 72))

    def draw(self, fd: FrameData) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one frame."""
        if self.items is None:
            self._build(fd)
        for item in self.items:
            item.draw(fd)
        dynamic = [a for item in self.items for a in sorted(item.dynamic(), key=lambda a: a.get_zorder())]
        for a in dynamic:
            a.set_animated(True)
        if self.background is None:
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        self.canvas.restore_region(self.background)
        for a in dynamic:
            self.fig.draw_artist(a)
        buf = np.asarray(self.canvas.buffer_rgba())
        W, H = self.size
        out = np.full((H, W, 3), 255, np.uint8)
        h, w = min(H, buf.shape[0]), min(W, buf.shape[1])
        out[:h, :w] = buf[:h, :w, :3]
        return self._stamp(out, fd)

    def _stamp(self, out: np.ndarray, fd: FrameData) -> np.ndarray:
        """Write the per-frame texts (header, panel titles) with Pillow: matplotlib's text layout cost more
        than all the other artists of a frame together."""
        from PIL import Image, ImageDraw
        W, H = self.size
        labels = [(W / 2, 0.4 * self.style["fs"], "mt", header_text(fd))] if self.header else []
        for item in self.items:
            if isinstance(item, _MapPanel) and self.style["fast"]:
                x0, _, x1, y1 = item.ax.bbox.extents
                labels.append(((x0 + x1) / 2, H - y1 - 2, "mb", item.title))
        img = Image.fromarray(out)
        draw = ImageDraw.Draw(img)
        for x, y, anchor, text in labels:
            draw.text((x, y), text, fill=(0, 0, 0), font=self.font, anchor=anchor)
        return np.asarray(img).copy()


_CACHE: "OrderedDict[tuple, FrameRenderer]" = OrderedDict()
_LOCK = threading.Lock()


def draw_frame(fd: FrameData, panels: Sequence[str] = DEFAULT_PANELS, size=(512, 512), *,
               header: bool = True, exact: bool = False) -> np.ndarray:
    """One frame as an (H, W, 3) uint8 array; `size` = (W, H) pixels. `panels`: names from `frames.PANELS`
    (list or comma string). Renderers are cached per layout, so calling this per frame stays fast."""
    panels = tuple(parse_panels(panels, len(fd.raster.ids) if fd.raster is not None else 8))
    key = (panels, tuple(size), header, exact, tuple(t for t, _ in curve_groups(fd)), len(fd.centers),
           fd.push is not None, fd.motion is not None)
    with _LOCK:
        r = _CACHE.pop(key, None) or FrameRenderer(panels, size, header=header, exact=exact)
        _CACHE[key] = r
        while len(_CACHE) > 4:
            _CACHE.popitem(last=False)
        return r.draw(fd)


def draw_figure(rows: Sequence[tuple[str, FrameData]], panels: Sequence[str], *, cell: float = 1.6,
                exact: bool = False) -> Figure:
    """A paper figure: one row per (label, FrameData), one column per panel, `cell` inches a panel; vector
    contours and points (images stay raster). Returns the matplotlib Figure (save it with `savefig`)."""
    if not rows:
        raise ValueError("rows: no frame to draw")
    fd0 = rows[0][1]
    panels = parse_panels(panels, len(fd0.raster.ids) if fd0.raster is not None else 8)
    label_w = 0.35
    W, H = (label_w + cell * len(panels)) * DPI, cell * len(rows) * DPI
    fig = Figure(figsize=(W / DPI, H / DPI), dpi=DPI, facecolor="white")
    style = _style(cell * DPI * 2, cell * DPI * 2, False, exact)
    style.update(W=W, H=H, fs=7.0, ms=1.2)
    cw = cell * DPI
    for r, (label, fd) in enumerate(rows):
        py = H - (r + 1) * cw
        fig.text(label_w * DPI * 0.45 / W, (py + cw / 2) / H, f"{label}\nstep {fd.step}", rotation=90,
                 ha="center", va="center", fontsize=7)
        for c, p in enumerate(panels):
            px = label_w * DPI + c * cw
            cls = PANEL_CLASSES[p.partition(":")[0]]
            rect = (px / W, py / H, cw / W, cw / H) if cls is CurvesPanel else _map_rect(px, py, cw, cw, fd, style)
            cls(fig, rect, p, fd, style).draw(fd)
    FigureCanvasAgg(fig)
    return fig
