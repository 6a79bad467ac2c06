"""Matplotlib drawing of `FrameData`: frames as (H, W, 3) uint8 arrays, and paper figures (rows = steps).

`draw_frame(fd, panels, size)` for one frame, `frame_jpeg(frame)` its bytes as the page sends them;
`FrameRenderer` keeps one Agg figure and only updates its artists from frame to frame (videos);
`draw_figure(rows, panels)` lays out a BRE-paper-style figure (Cao et al. 2018, Fig. 2), at a fixed panel size or
the width of one or two columns of a paper. Both put the extent on the maps' axes and key every encoding (colour
bars, the ∇ₓD wheel, the markers' legend).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import threading
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .frames import (
    DEFAULT_PANELS,
    FrameData,
    check_region_style,
    curve_groups,
    header_parts,
    header_text,
    needs_raster,
    palette_of,
    panel_title,
    parse_panels,
    prob_range,
)
from .mpl_panels import PANEL_CLASSES, PT, CurvesPanel, MosaicPanel, _MapPanel, compact, data_legend_handles, text_width

DPI = 100


def _style(W, H, fast, exact, palette="default", regions="hashed"):
    """Sizes for a W×H pixel frame: titles `fs` and all other text `small` (points), readable at that size."""
    fs = float(np.clip(min(W, H) / 512 * 9.5, 6.5, 16.0))
    return {"fs": fs, "small": max(6.5, 0.8 * fs), "ms": max(0.5, min(W, H) / 512 * 1.5), "fast": fast,
            "exact": exact, "W": W, "H": H, "palette": palette_of(palette), "regions": check_region_style(regions)}


def _tick_labels(lo: float, hi: float) -> list[str]:
    ticks = MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    return [compact(t) for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]


def _map_rect(px, py, pw, ph, fd, style, key: bool = False):
    """Pixel cell -> (axes rect, key rect or None) in figure fractions: a map keeping the extent's aspect, room for
    its title above, tick labels left and below, and its key (colour bar, direction wheel) to the right."""
    W, H, fs, sm = style["W"], style["H"], style["fs"], style["small"]
    x0, x1, y0, y1 = fd.extent
    aspect = (x1 - x0) / (y1 - y0)
    title_h = 1.45 * fs * PT + 2
    ylab_w = (max(text_width(t, sm) for t in _tick_labels(y0, y1)) + 4) * PT + 2
    xlab_h = (1.2 * sm + 4) * PT
    gap, bar = 0.6 * sm * PT, 0.8 * sm * PT
    key_w = gap + bar + (text_width("−0.55", sm) + 3) * PT if key else 0.0
    avail_w, avail_h = pw - ylab_w - key_w - 4, ph - title_h - xlab_h - 2
    w = max(8.0, min(avail_w, avail_h * aspect))
    h = w / aspect
    ax_x, ax_y = px + ylab_w + 2 + (avail_w - w) / 2, py + xlab_h + (avail_h - h)
    rect = (ax_x / W, ax_y / H, w / W, h / H)
    if not key:
        return rect, None
    label = 1.5 * sm * PT
    return rect, ((ax_x + w + gap) / W, ax_y / H, bar / W, max(4.0, h - label) / H)


def _wheel_rect(key_rect, style):
    """A square for the direction wheel in a map's key slot (wider than a colour bar)."""
    W, H, sm = style["W"], style["H"], style["small"]
    x, y, w, h = key_rect
    side = (text_width("−0.55", sm) + 3) * PT + w * W
    return (x, y + (h * H - side) / 2 / H, side / W, side / H)


def _grid(n, W, H):
    """(rows, cols) for n panels: the largest square panel (the maps are square: side min(W/cols, H/rows)), and
    among grids within 5 % of that side, the one with the fewest empty cells (4 panels in a 4:3 picture: 2×2,
    where 3×2 gives the same side and leaves two cells blank)."""
    side = {c: min(W / c, H / math.ceil(n / c)) for c in range(1, n + 1)}
    best = max(side.values())
    cols = min((c for c in side if side[c] >= 0.95 * best), key=lambda c: (c * math.ceil(n / c), -side[c]))
    return math.ceil(n / cols), cols


class FrameRenderer:
    """Draws frames of fixed panels and size into one reused figure. The first frame draws everything and keeps
    the static part (axes, ticks, keys, the legend, real points) as a background; later frames restore it and
    draw only the artists that change (blitting). `fast` paints the 0.5 contour into the heat map's pixels instead
    of tracing it; `exact` overlays the exact region boundaries on cumulative region panels (needs
    `FrameData.partition`, from `iter_frame_data(..., exact=True)`). `palette` (frames.PALETTES) colours D's map,
    the points and the curves; `regions` (frames.REGION_STYLES) the region maps; `curve_layout`
    (frames.curve_layout) lines the curves up with another run's, as `header_lines` (1 or 2; default: 2 when the
    header is wider than the frame) does the header."""

    def __init__(self, panels: Sequence[str] = DEFAULT_PANELS, size=(512, 512), *, header: bool = True,
                 fast: bool = True, exact: bool = False, palette="default", regions: str = "hashed",
                 curve_layout=None, header_lines: Optional[int] = None):
        self.panels, self.size, self.header = list(panels), (int(size[0]), int(size[1])), header
        self.header_lines = header_lines
        W, H = self.size
        if W < 64 or H < 64:
            raise ValueError(f"size: {W}x{H} is too small (at least 64x64)")
        self.style = _style(W, H, fast, exact, palette, regions)
        if curve_layout is not None:
            self.style["curve_layout"] = curve_layout
        self.fig = Figure(figsize=(W / DPI, H / DPI), dpi=DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        self.items, self.background = None, None

    def _header_lines(self, fd) -> int:
        """1, or 2 when the longest header this run can show (reverse KL undefined) is wider than the frame."""
        worst = header_text(dataclasses.replace(fd, reverse_kl=math.inf), self.header_regions)
        return 1 if text_width(worst, self.style["fs"]) * PT <= self.size[0] - 8 else 2

    def _build(self, fd):
        W, H = self.size
        st = self.style
        panels = parse_panels(self.panels, len(fd.raster.ids) if fd.raster is not None else 8)
        if fd.raster is None and needs_raster(panels):
            raise ValueError("panels: region, probability and gradient panels need FrameData.raster")
        self.header_regions = "regions" not in panels          # that panel's title already says it
        self.lines = (self.header_lines or self._header_lines(fd)) if self.header else 0
        head = self.lines * 1.3 * st["fs"] * PT + (4 if self.header else 0)
        foot = 0.0
        if any(p.startswith("data") for p in panels):
            handles = data_legend_handles(st, modes=len(fd.centers) > 0)
            width = sum(text_width(h.get_label(), st["small"]) + 2.6 * st["small"] for h in handles) * PT
            ncol = len(handles) if width <= W - 8 else 2
            foot = math.ceil(len(handles) / ncol) * 1.35 * st["small"] * PT + 4
            self.fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1 / H), ncol=ncol,
                            fontsize=st["small"], frameon=False, handletextpad=0.3, columnspacing=1.0,
                            borderaxespad=0.1, borderpad=0.1, labelspacing=0.25)
        rows, cols = _grid(len(panels), W, H - head - foot)
        cw, ch = W / cols, (H - head - foot) / rows
        self.items = []
        for i, p in enumerate(panels):
            r, c = divmod(i, cols)
            px, py = c * cw, H - head - (r + 1) * ch
            cls = PANEL_CLASSES[p.partition(":")[0]]
            if cls is CurvesPanel:
                self.items.append(cls(self.fig, (px / W, py / H, cw / W, ch / H), p, fd, st))
                continue
            rect, key_rect = _map_rect(px, py, cw, ch, fd, st, key=cls.has_key)
            item = cls(self.fig, rect, p, fd, st)
            if key_rect is not None:
                item.key(_wheel_rect(key_rect, st) if cls is MosaicPanel else key_rect, fd, vertical=True)
            self.items.append(item)
        from matplotlib import font_manager
        from PIL import ImageFont
        self.font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), round(st["fs"] * PT))

    def draw(self, fd: FrameData) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one frame."""
        if self.items is None:
            self._build(fd)
        for item in self.items:
            item.draw(fd)
        dynamic = [a for item in self.items for a in sorted(item.dynamic(), key=lambda a: a.get_zorder())]
        for a in dynamic:
            a.set_animated(True)
        if self.background is None or any(getattr(item, "rescaled", False) for item in self.items):
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
        fs = self.style["fs"]
        labels = []
        if self.header:
            parts = header_parts(fd, self.header_regions)
            lines = [" · ".join(parts)] if self.lines == 1 else [" · ".join(parts[:2]), " · ".join(parts[2:])]
            labels = [(W / 2, 2 + i * 1.3 * fs * PT, "mt", text) for i, text in enumerate(lines)]
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
CACHE_SIZE = 16                    # renderers kept (shared by every browser session of the page)


def _static_key(fd: FrameData) -> tuple:
    """Everything of a frame that a renderer draws once, when built (and later frames do not redraw): D's depth,
    the curve keys, the extent, the steps axis, the grids, the header's preset, the real points."""
    r = fd.raster
    grids = None if r is None else (len(r.ids), r.resolution, len(r.grad_xs))
    arrows = tuple(None if v is None else len(v) for v in (fd.push, fd.motion))
    real = hashlib.blake2b(np.ascontiguousarray(fd.real).tobytes(), digest_size=16).hexdigest()
    return (grids, tuple(sorted(k for _, keys in curve_groups(fd) for k in keys)), tuple(fd.extent),
            fd.total_steps, fd.preset, len(fd.fake), arrows, real, fd.centers.tobytes())


def draw_frame(fd: FrameData, panels: Sequence[str] = DEFAULT_PANELS, size=(512, 512), *,
               header: bool = True, exact: bool = False, palette="default", regions: str = "hashed") -> np.ndarray:
    """One frame as an (H, W, 3) uint8 array; `size` = (W, H) pixels. `panels`: names from `frames.PANELS`
    (list or comma string). Renderers are cached by layout and everything they draw once (`_static_key`), so
    calling this per frame stays fast and two runs (two visitors) never draw with each other's renderer; a
    renderer whose draw raised is dropped."""
    panels = tuple(parse_panels(panels, len(fd.raster.ids) if fd.raster is not None else 8))
    key = (panels, tuple(size), header, exact, len(fd.centers), str(palette), regions, fd.probability,
           _static_key(fd))
    with _LOCK:
        r = _CACHE.pop(key, None) or FrameRenderer(panels, size, header=header, exact=exact, palette=palette,
                                                   regions=regions)
        out = r.draw(fd)                   # raises before the renderer is cached again
        _CACHE[key] = r
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return out


JPEG_QUALITY = 85          # the page's pictures: far fewer bytes than Streamlit's own encoding (quality 100)


def frame_jpeg(frame: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """An (H, W, 3) uint8 frame as JPEG bytes for the page. Streamlit encodes an array as JPEG at quality 100:
    the same encoding time, but several times the bytes to send and for the browser to decode per picture. Both
    use 4:2:0 colour subsampling, so the region colours look alike; PNG would keep every colour exactly but its
    zlib pass costs more per update than the rest of the encoding."""
    from PIL import Image
    if not 1 <= quality <= 95:
        raise ValueError(f"quality: a JPEG quality must lie in 1..95 (got {quality})")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


PAPER_WIDTHS = {1: 3.5, 2: 7.0}      # inches: one column, two columns (the whole text width) of a paper
FIG_FONT, FIG_SMALL = 7.0, 6.0       # points: panel titles and row labels; ticks, keys and legends


def _critic_range(rows) -> Optional[tuple[float, float]]:
    """One colour scale for every critic panel of a figure (±the largest of their ranges), so one colour bar
    reads for all rows; None when D outputs probabilities."""
    ms = [prob_range(fd)[1] for _, fd in rows if not fd.probability and fd.raster is not None]
    return (-max(ms), max(ms)) if ms else None


def draw_figure(rows: Sequence[tuple[str, FrameData]], panels: Sequence[str], *, cell: float = 1.6,
                exact: bool = False, palette="default", regions: str = "hashed",
                width: Optional[float] = None) -> Figure:
    """A paper figure: one row per (label, FrameData), one column per panel, `cell` inches a panel (or, given
    `width` in inches, e.g. `PAPER_WIDTHS[1]`, as wide as fits); vector contours and points (images stay raster).
    Map panels show the extent on their axes (labels on the first column and the bottom row); below the columns
    sit the keys: the legend of the data panel's markers, D(x)'s colour bar, the ∇ₓD wheel. Returns the
    matplotlib Figure (save it with `savefig`)."""
    if not rows:
        raise ValueError("rows: no frame to draw")
    fd0 = rows[-1][1]
    panels = parse_panels(panels, len(fd0.raster.ids) if fd0.raster is not None else 8)
    n, fs, sm = len(panels), FIG_FONT, FIG_SMALL
    classes = [PANEL_CLASSES[p.partition(":")[0]] for p in panels]
    maps = [c for c, cls in enumerate(classes) if cls is not CurvesPanel]
    x0, x1, y0, y1 = fd0.extent
    label_w, gap, right = 0.3, 0.06, 0.1
    ytick_w = (max(text_width(t, sm) for t in _tick_labels(y0, y1)) + 5) / 72 if maps else 0.0
    if width is not None:
        cell = (width - label_w - ytick_w - right - gap * (n - 1)) / n
        if cell < 0.45:
            raise ValueError(f"figure: {n} panels do not fit {width:g} in (each would be {cell:.2f} in wide); "
                             f"choose fewer panels or two columns")
    titles = [panel_title(fd, p) for _, fd in rows for p, cls in zip(panels, classes) if cls is not CurvesPanel]
    two_lines = any(text_width(t, fs) > cell * 72 - 2 for t in titles)
    title_h = (2 if two_lines else 1) * fs * 1.2 / 72 + 0.04
    row_h = title_h + cell
    xtick_h = (1.2 * sm + 4) / 72
    keyed = [c for c in maps if classes[c].has_key]
    data_cols = [c for c in maps if panels[c].startswith("data")]
    handles = data_legend_handles({"small": sm, "palette": palette})
    legend_w = max(text_width(h.get_label(), sm) for h in handles) + 2.6 * sm
    legend_cols = 2 if 2 * legend_w <= cell * 72 + 0.6 * cell * 72 else 1
    line = sm * 1.35 / 72
    foot = max([0.0] + [(4 // legend_cols) * line + 0.05 for _ in data_cols[:1]]
               + [line + 0.07 + line + 0.03 for c in keyed if classes[c] is not MosaicPanel]
               + [min(0.45, 0.5 * cell) + 0.1 + 3 * line for c in keyed if classes[c] is MosaicPanel])
    foot += 0.04 if foot else 0.0
    col_x, x = [], label_w
    for c in range(n):
        if maps and c == maps[0]:
            x += ytick_w
        col_x.append(x)
        x += cell + gap
    W_in, H_in = x - gap + right, len(rows) * row_h + xtick_h + foot + 0.03
    W, H = W_in * DPI, H_in * DPI
    fig = Figure(figsize=(W_in, H_in), dpi=DPI, facecolor="white")
    style = {"fs": fs, "small": sm, "ms": 1.2, "fast": False, "exact": exact, "W": W, "H": H,
             "palette": palette_of(palette), "regions": check_region_style(regions), "vrange": _critic_range(rows)}
    bottom: dict[int, object] = {}
    for r, (label, fd) in enumerate(rows):
        top = H_in - 0.03 - r * row_h                              # inches from the bottom
        fig.text(label_w * 0.45 / W_in, (top - title_h - cell / 2) / H_in, f"{label}\nstep {fd.step}",
                 rotation=90, ha="center", va="center", fontsize=fs)
        for c, (p, cls) in enumerate(zip(panels, classes)):
            if cls is CurvesPanel:
                rect = (col_x[c] / W_in, (top - row_h) / H_in, cell / W_in, row_h / H_in)
                cls(fig, rect, p, fd, style).draw(fd)
                continue
            rect = (col_x[c] / W_in, (top - row_h) / H_in, cell / W_in, cell / H_in)
            item = cls(fig, rect, p, fd, style, ticks=(c == maps[0], r == len(rows) - 1))
            item.draw(fd)
            if two_lines:
                item.ax.set_title(item.title.replace(": ", ":\n", 1), fontsize=fs, pad=2, linespacing=1.1)
            else:
                item.ax.set_title(item.title, fontsize=fs, pad=2)
            bottom[c] = item
    key_top = foot - 0.02                                          # inches from the bottom of the figure
    for c in data_cols[:1]:
        fig.legend(handles=handles, loc="upper center", ncol=legend_cols, fontsize=sm, frameon=False,
                   bbox_to_anchor=((col_x[c] + cell / 2) / W_in, key_top / H_in), handletextpad=0.3,
                   columnspacing=0.8, borderaxespad=0.0, borderpad=0.0, labelspacing=0.3)
    for c in keyed:
        item = bottom[c]
        if classes[c] is MosaicPanel:
            side = min(0.45, 0.5 * cell)
            rect = ((col_x[c] + (cell - side) / 2) / W_in, (key_top - line - side) / H_in, side / W_in, side / H_in)
        else:
            rect = ((col_x[c] + 0.1 * cell) / W_in, (key_top - line - 0.07) / H_in, 0.8 * cell / W_in, 0.07 / H_in)
        item.key(rect, rows[-1][1], vertical=False)
    FigureCanvasAgg(fig)
    return fig
