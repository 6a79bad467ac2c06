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
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .frames import (DEFAULT_PANELS, FAKE_COLOR, REAL_COLOR, FrameData, _layer, curve_groups, curve_label,
                     header_text, mosaic_rgb, panel_title, parse_panels, prob_rgb)

DPI = 100


class _PixelImage(Artist):
    """An RGB raster filling its axes, drawn by nearest-neighbour indexing straight into the Agg buffer: no
    masked arrays or resampling per frame, which cost more than the rest of a frame (raster only, not vector)."""

    def __init__(self, ax, rgb):
        super().__init__()
        self.ax, self.rgb, self._cache = ax, rgb, (None, None)
        self.set_zorder(0)
        self.set_clip_on(False)

    def set_data(self, rgb):
        self.rgb = rgb

    def draw(self, renderer):
        if not self.get_visible():
            return
        x0, y0, x1, y1 = (int(round(v)) for v in self.ax.bbox.extents)
        w, h = x1 - x0, y1 - y0
        key, buf = self._cache
        if key != (w, h, self.rgb.shape):
            R0, R1 = self.rgb.shape[:2]
            rows, cols = (np.arange(h) * R0 // h)[::-1], np.arange(w) * R1 // w     # Agg rows run bottom-up
            buf = np.full((h, w, 4), 255, np.uint8)
            self._cache = ((w, h, self.rgb.shape), buf)
            self._index = np.ix_(rows, cols)
        buf[..., :3] = self.rgb[self._index]
        gc = renderer.new_gc()
        renderer.draw_image(gc, x0, y0, buf)
        gc.restore()
        self.stale = False


class _MapPanel:
    """A square panel over the data extent; subclasses add their artists in `setup` and refresh them in `update`."""

    def __init__(self, fig, rect, panel, fd, style):
        self.panel, self.style = panel, style
        self.ax = ax = fig.add_axes(rect)
        x0, x1, y0, y1 = fd.extent
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(" ", fontsize=style["fs"], pad=2)
        self.extra: list = []        # artists re-created each frame (contours, stream lines, exact boundaries)
        self.setup(fd)

    def image(self, fd, rgb):
        """Show an (R, R, 3) raster over the extent: pixel-exact blitting in fast mode, else imshow."""
        if hasattr(self, "im"):
            self.im.set_data(rgb)
        elif self.style["fast"]:
            self.im = self.ax.add_artist(_PixelImage(self.ax, rgb))
        else:
            self.im = self.ax.imshow(rgb, extent=fd.extent, origin="upper", interpolation="nearest",
                                     aspect="auto", zorder=0)

    def draw(self, fd):
        for a in self.extra:
            a.remove()
        self.extra = []
        self.title = panel_title(fd, self.panel)
        if not self.style["fast"]:
            self.ax.title.set_text(self.title)
        self.update(fd)

    def keep_new(self, before):
        self.extra += [a for a in self.ax.get_children() if a not in before]

    def dynamic(self) -> list:
        """Artists that change between frames (drawn over a cached background when blitting)."""
        own = [getattr(self, "im", None), *self.moving()]
        title = [] if self.style["fast"] else [self.ax.title]      # fast: stamped by FrameRenderer instead
        return [a for a in own if a is not None] + self.extra + title + list(self.ax.spines.values())

    def moving(self) -> list:
        return []

    def setup(self, fd):
        pass


def _arrow_uv(v: np.ndarray, length: float) -> np.ndarray:
    """Scale vectors so the longest is `length` (data units)."""
    m = np.hypot(v[:, 0], v[:, 1]).max() if len(v) else 0.0
    return v * (length / m) if m > 0 else v


class DataPanel(_MapPanel):
    def setup(self, fd):
        s, ax = self.style["ms"], self.ax
        self.real = ax.scatter(*fd.real.T, s=s, c=REAL_COLOR, alpha=0.35, linewidths=0, zorder=1)
        self.fake = ax.scatter(*fd.fake.T, s=s, c=FAKE_COLOR, alpha=0.5, linewidths=0, zorder=2)
        self.hit = ax.scatter([], [], s=9 * s + 12, facecolors="none", edgecolors="#2ca02c", linewidths=1, zorder=3)
        self.miss = ax.scatter([], [], s=9 * s + 12, c="black", marker="x", linewidths=1, zorder=3)
        self.kind = self.panel.partition(":")[2]
        vec = fd.push if self.kind == "push" else fd.motion if self.kind == "motion" else None
        self.quiver = None
        if vec is not None:
            self.quiver = ax.quiver(*fd.fake[:len(vec)].T, *vec.T, angles="xy", scale_units="xy", scale=1,
                                    width=0.004, color="black", alpha=0.6, zorder=4)

    def moving(self):
        return [self.fake, self.hit, self.miss, self.quiver]

    def update(self, fd):
        self.fake.set_offsets(fd.fake)
        self.hit.set_offsets(fd.centers[fd.captured].reshape(-1, 2))
        self.miss.set_offsets(fd.centers[~fd.captured].reshape(-1, 2))
        vec = fd.push if self.kind == "push" else fd.motion if self.kind == "motion" else None
        if self.quiver is not None:
            vec = np.zeros((len(self.quiver.U), 2)) if vec is None else vec
            self.quiver.set_offsets(fd.fake[:len(vec)])
            uv = _arrow_uv(vec, 0.08 * (fd.extent[1] - fd.extent[0]))
            self.quiver.set_UVC(uv[:, 0], uv[:, 1])


class RegionPanel(_MapPanel):
    def setup(self, fd):
        self.fake = self.ax.scatter(*fd.fake.T, s=self.style["ms"] * 0.5, c="black", alpha=0.5, linewidths=0,
                                    zorder=2)

    def moving(self):
        return [self.fake]

    def update(self, fd):
        l, cum = _layer(self.panel, fd.raster)
        self.image(fd, (fd.raster.cumulative_colors if cum else fd.raster.colors)[l])
        self.fake.set_offsets(fd.fake)
        if self.style["exact"] and fd.partition is not None and cum:     # exact = cumulative regions' edges
            from .partition_figure import draw_exact_boundaries
            before = set(self.ax.get_children())
            draw_exact_boundaries(self.ax, fd.partition, l)
            self.keep_new(before)


class ProbPanel(_MapPanel):
    def update(self, fd):
        fast = self.style["fast"]
        self.image(fd, prob_rgb(fd, contour=fast))
        if not fast:
            r = fd.raster
            level = 0.5 if fd.probability else 0.0
            if r.prob.min() < level < r.prob.max():
                self.extra.append(self.ax.contour(r.xs, r.ys, r.prob, levels=[level], colors="black",
                                                  linewidths=0.8))


class GradPanel(_MapPanel):
    """∇ₓD as arrows (normalized to the longest) or stream lines over a faded probability map."""

    def setup(self, fd):
        r = fd.raster
        k = max(1, math.ceil(len(r.grad_xs) / 18))
        self.sub = k
        gx, gy = np.meshgrid(r.grad_xs[::k], r.grad_ys[::k])
        self.stream = self.panel == "grad:stream"
        if not self.stream:
            self.quiver = self.ax.quiver(gx, gy, np.zeros_like(gx), np.zeros_like(gy), angles="xy",
                                         scale_units="xy", scale=1, width=0.005, color="black", zorder=2)

    def moving(self):
        return [] if self.stream else [self.quiver]

    def update(self, fd):
        r = fd.raster
        self.image(fd, (prob_rgb(fd, contour=True) // 2 + 127).astype(np.uint8))
        if self.stream:
            ys, g = r.grad_ys, r.grad
            if ys[0] > ys[-1]:
                ys, g = ys[::-1], g[::-1]
            s = self.ax.streamplot(r.grad_xs, ys, g[..., 0], g[..., 1], color="black", linewidth=0.6,
                                   density=0.8, arrowsize=0.6)
            self.extra += [s.lines, s.arrows]
        else:
            g = r.grad[::self.sub, ::self.sub].reshape(-1, 2)
            step = abs(r.grad_xs[1] - r.grad_xs[0]) * self.sub
            uv = _arrow_uv(g, 0.9 * step)
            self.quiver.set_UVC(uv[:, 0], uv[:, 1])


class MosaicPanel(_MapPanel):
    def update(self, fd):
        self.image(fd, mosaic_rgb(fd))


class CurvesPanel:
    """Stacked small plots of the run's history up to the frame's step; y ranges fixed over the whole run."""

    def __init__(self, fig, rect, panel, fd, style):
        fs = style["fs"]
        x, y, w, h = rect
        groups = curve_groups(fd)
        n = max(1, min(len(groups), int(h * style["H"] / (7 * fs))))     # at least 7 font sizes tall each
        groups = groups[:n]
        top_pad, bot_pad, left_pad = 0.6 * fs / style["H"], 1.8 * fs / style["H"], 4.2 * fs / style["W"]
        gh = (h - top_pad - bot_pad) / max(n, 1)
        title_h = 1.8 * fs / style["H"]            # room for a group title of 0.8 fs points
        self.lines, self.K = [], len(fd.centers)
        self.axes = []
        for i, (title, keys) in enumerate(groups):
            ax = fig.add_axes((x + left_pad, y + bot_pad + (n - 1 - i) * gh, w - left_pad - 0.01, gh - title_h))
            ax.set_xlim(0, fd.total_steps)
            ax.tick_params(labelsize=fs * 0.75, length=2, pad=1)
            if i < n - 1:
                ax.set_xticklabels([])
            lo, hi = np.inf, -np.inf
            for j, key in enumerate(keys):
                v = self._values(key, fd.curves[key][1])
                lo, hi = min(lo, np.nanmin(v)), max(hi, np.nanmax(v))
                (line,) = ax.plot([], [], lw=0.9, color=f"C{j}", label=curve_label(key))
                self.lines.append((line, key))
            pad = 0.05 * (hi - lo) if hi > lo else 0.5
            ax.set_ylim(lo - pad, hi + pad)
            ax.legend(fontsize=fs * 0.7, loc="upper right", frameon=False, handlelength=1, borderpad=0.1,
                      labelspacing=0.1, ncol=min(len(keys), 3))
            ax.set_title(title, fontsize=fs * 0.8, pad=1, loc="left")
            self.axes.append(ax)

    def _values(self, key, v):
        return v / self.K if key == "eval/modes" else v

    def dynamic(self) -> list:
        return [line for line, _ in self.lines]

    def draw(self, fd):
        for line, key in self.lines:
            steps, v = fd.curves[key]
            n = np.searchsorted(steps, fd.step, side="right")
            line.set_data(steps[:n], self._values(key, v[:n]))


PANEL_CLASSES = {"data": DataPanel, "regions": RegionPanel, "cumulative": RegionPanel, "prob": ProbPanel,
                 "grad": GradPanel, "mosaic": MosaicPanel, "curves": CurvesPanel}


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
        if fd.raster is None and any(not p.startswith(("data", "curves")) for p in panels):
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
