"""The matplotlib panels of a frame: each builds its artists once (`__init__`/`setup`) and refreshes them from a
`FrameData` in `draw`; `dynamic()` lists the artists that change, which `render.FrameRenderer` blits per frame.
Keys live here too: D(x)'s colour bar, the ∇ₓD direction wheel, the legend of the data panel's markers.

A style dict carries the sizes: `fs` (titles) and `small` (everything else) in points, `ms` (marker area), `W`, `H`
(the figure in pixels at `render.DPI`), `palette`, `regions` (region map style), `fast` (blitted videos),
`exact`, and optionally `vrange` (one critic scale for a whole figure) and `curve_layout` (curves lined up with
another run's).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from matplotlib.artist import Artist
from matplotlib.collections import PolyCollection
from matplotlib.colors import hsv_to_rgb
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .frames import (
    _layer,
    curve_label,
    curve_layout,
    curve_values,
    mosaic_rgb,
    palette_of,
    panel_title,
    prob_range,
    prob_rgb,
    region_rgb,
)
from .polygon_figure import direction_wheel, draw_exact_boundaries

PT = 100 / 72                 # pixels per point at render.DPI


@lru_cache(maxsize=None)
def _font(size_px: int):
    from matplotlib import font_manager
    from PIL import ImageFont
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size_px)


def text_width(text: str, pt: float) -> float:
    """Width in points of `text` in matplotlib's default font at `pt` points (for layouts decided up front)."""
    return _font(max(1, round(4 * pt))).getlength(text) / 4


def compact(v, _pos=None) -> str:
    """A tick label: 3000 -> '3k', 0.5 -> '0.5', -1 -> '−1'."""
    s = f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:.3g}"
    return s.replace("-", "−")


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


def _tick_style(ax, style, left: bool, bottom: bool) -> None:
    ax.tick_params(labelsize=style["small"], length=2, width=0.6, pad=1.5, direction="out",
                   labelleft=left, labelbottom=bottom)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]))
        axis.set_major_formatter(FuncFormatter(compact))


class _MapPanel:
    """A square panel over the data extent, its ticks showing the extent; subclasses add their artists in `setup`
    and refresh them in `update`. `key` (D(x)'s colour bar, the ∇ₓD wheel) is drawn where the layout puts it."""
    has_key = False

    def __init__(self, fig, rect, panel, fd, style, ticks=(True, True)):
        self.panel, self.style, self.fig = panel, style, fig
        self.palette = palette_of(style.get("palette", "default"))
        self.ax = ax = fig.add_axes(rect)
        x0, x1, y0, y1 = fd.extent
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        _tick_style(ax, style, *ticks)
        for s in ax.spines.values():
            s.set_linewidth(0.6)
        ax.set_title(" ", fontsize=style["fs"], pad=2)
        self.extra: list = []        # artists re-created each frame (contours, stream lines, exact boundaries)
        self.key_artists: list = []  # key texts that change with the frame (a critic's scale)
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
        return [a for a in own if a is not None] + self.extra + title + list(self.ax.spines.values()) + \
            self.key_artists

    def moving(self) -> list:
        return []

    def setup(self, fd):
        pass

    def key(self, rect, fd, vertical: bool = True):
        """Draw this panel's key into the figure rect `rect`."""


def _arrow_uv(v: np.ndarray, length: float) -> np.ndarray:
    """Scale vectors so the longest is `length` (data units)."""
    m = np.hypot(v[:, 0], v[:, 1]).max() if len(v) else 0.0
    return v * (length / m) if m > 0 else v


def data_legend_handles(style, modes: bool = True) -> list:
    """Proxy artists for the data panel's markers: real and fake points, and (`modes`: not for a point cloud)
    captured and missed modes' centres."""
    pal, ms = palette_of(style.get("palette", "default")), style["small"] * 0.6
    handles = [Line2D([], [], ls="", marker="o", ms=ms, color=pal.real, label="real"),
               Line2D([], [], ls="", marker="o", ms=ms, color=pal.fake, label="fake G(z)")]
    if modes:
        handles += [Line2D([], [], ls="", marker="o", ms=ms * 1.6, mfc="none", mec=pal.captured, mew=1,
                           label="mode captured"),
                    Line2D([], [], ls="", marker="x", ms=ms * 1.4, color="black", mew=1, label="mode missed")]
    return handles


class DataPanel(_MapPanel):
    def setup(self, fd):
        s, ax, pal = self.style["ms"], self.ax, self.palette
        self.real = ax.scatter(*fd.real.T, s=s, c=pal.real, alpha=0.35, linewidths=0, zorder=1)
        self.fake = ax.scatter(*fd.fake.T, s=s, c=pal.fake, alpha=0.5, linewidths=0, zorder=2)
        self.hit = ax.scatter([], [], s=9 * s + 12, facecolors="none", edgecolors=pal.captured, linewidths=1,
                              zorder=3)
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
        self.image(fd, region_rgb(fd, self.panel, self.style.get("regions", "hashed")))
        self.fake.set_offsets(fd.fake)
        if self.style["exact"] and fd.partition is not None and cum:     # exact = cumulative regions' edges
            before = set(self.ax.get_children())
            draw_exact_boundaries(self.ax, fd.partition, l)
            self.keep_new(before)


class _ProbKeyed(_MapPanel):
    """A panel over D's map, keyed by D(x)'s colour bar (faded as the panel's background when `fade`)."""
    has_key, fade, key_label = True, False, "{}"          # the key's title below a figure's column

    def _vrange(self, fd):
        """The figure's shared critic scale (`style['vrange']`), for a critic; None: the frame's own."""
        return None if fd.probability else self.style.get("vrange")

    def _range(self, fd):
        return self._vrange(fd) or prob_range(fd)[:2]

    def rgb(self, fd, contour):
        rgb = prob_rgb(fd, contour=contour, palette=self.palette, vrange=self._vrange(fd))
        return (rgb // 2 + 127).astype(np.uint8) if self.fade else rgb

    def key(self, rect, fd, vertical=True):
        sm, pal = self.style["small"], self.palette
        cax = self.fig.add_axes(rect, label="key")
        edges = np.linspace(0.0, 1.0, 129)               # vector steps: a vector figure keeps its bar vector
        bar = pal.prob((edges[:-1] + edges[1:]) / 2, bytes=True)[:, :3]
        if self.fade:
            bar = (bar // 2 + 127).astype(np.uint8)
        cells = [[(a, 0), (b, 0), (b, 1), (a, 1)] for a, b in zip(edges[:-1], edges[1:])]
        if vertical:
            cells = [[(y, x) for x, y in c] for c in cells]
        cax.add_collection(PolyCollection(cells, facecolors=bar / 255, edgecolors=bar / 255, linewidths=0.2))
        cax.set_xlim(0, 1)
        cax.set_ylim(0, 1)
        cax.tick_params(labelsize=sm, length=2, width=0.6, pad=1, right=vertical, left=False, labelleft=False,
                        labelright=False, labelbottom=False, bottom=not vertical)
        for s in cax.spines.values():
            s.set_linewidth(0.5)
        ticks = [0.0, 0.5, 1.0]
        (cax.set_yticks if vertical else cax.set_xticks)(ticks)
        (cax.set_xticks if vertical else cax.set_yticks)([])
        what = "D(x) = P(real)" if fd.probability else "critic D(x)"
        label = "D(x)" if vertical else self.key_label.format(what)
        if vertical:
            cax.text(0.0, 1.0 + 0.4 * sm * PT / (rect[3] * self.style["H"]), label, transform=cax.transAxes,
                     ha="left", va="bottom", fontsize=sm)
        else:
            cax.set_title(label, fontsize=sm, pad=2)
        self.key_texts = []
        for v in ticks:
            xy, align = ((1.0 + 2.5 * PT / (rect[2] * self.style["W"]), v), ("left", "center")) if vertical else \
                ((v, -2.5 * PT / (rect[3] * self.style["H"])), ("center", "top"))
            self.key_texts.append(cax.text(*xy, "", transform=cax.transAxes, ha=align[0], va=align[1],
                                           fontsize=sm))
        self._key_update(fd)
        if not fd.probability and self.style["fast"] and not self.style.get("vrange"):
            self.key_artists = list(self.key_texts)              # a critic's scale changes with the frame

    def _key_update(self, fd):
        if not getattr(self, "key_texts", None):
            return
        lo, hi = self._range(fd)
        for text, v in zip(self.key_texts, (0.0, 0.5, 1.0)):
            text.set_text(compact(lo + v * (hi - lo)) if not fd.probability else f"{v:g}")


class ProbPanel(_ProbKeyed):
    def update(self, fd):
        fast = self.style["fast"]
        self.image(fd, self.rgb(fd, contour=fast))
        self._key_update(fd)
        if not fast:
            r = fd.raster
            level = 0.5 if fd.probability else 0.0
            if r.prob.min() < level < r.prob.max():
                self.extra.append(self.ax.contour(r.xs, r.ys, r.prob, levels=[level], colors="black",
                                                  linewidths=0.8))


class GradPanel(_ProbKeyed):
    """∇ₓD as arrows (normalized to the longest) or stream lines over a faded probability map."""
    fade, key_label = True, "background: {}"

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
        self.image(fd, self.rgb(fd, contour=True))
        self._key_update(fd)
        if self.stream:
            ys, g = r.grad_ys, r.grad
            if ys[0] > ys[-1]:
                ys, g = ys[::-1], g[::-1]
            before = set(self.ax.get_children())
            self.ax.streamplot(r.grad_xs, ys, g[..., 0], g[..., 1], color="black", linewidth=0.6, density=0.8,
                               arrowsize=0.6)
            self.keep_new(before)     # the lines and each arrow patch: StreamplotSet.arrows cannot be removed
        else:
            g = r.grad[::self.sub, ::self.sub].reshape(-1, 2)
            step = abs(r.grad_xs[1] - r.grad_xs[0]) * self.sub
            uv = _arrow_uv(g, 0.9 * step)
            self.quiver.set_UVC(uv[:, 0], uv[:, 1])


class MosaicPanel(_MapPanel):
    has_key = True

    def update(self, fd):
        self.image(fd, mosaic_rgb(fd))

    def key(self, rect, fd, vertical=True):
        def color(angle, mag):        # as mosaic_rgb: saturation 0.85, brightness √(|∇| / max |∇|)
            hsv = np.stack([(angle / (2 * np.pi)) % 1.0, np.full(angle.shape, 0.85), np.sqrt(mag)], -1)
            return hsv_to_rgb(hsv)
        direction_wheel(self.fig.add_axes(rect, label="key"), color, self.style["small"], caption=not vertical)


RESCALE_ROOM = 0.25      # share of a curve's span added above and below when its axes follow it


class CurvesPanel:
    """Stacked small plots of the run's history up to the frame's step; y ranges fixed over the whole run (and
    over both runs of an A/B video, whose two sides show the same groups: `style['curve_layout']`). Each group's
    legend sits beside its title, above the plot, never on the curves."""
    has_key = False

    def __init__(self, fig, rect, panel, fd, style, ticks=None):
        sm = style.get("small", style["fs"] * 0.85)
        W, H = style["W"], style["H"]
        pal = palette_of(style.get("palette", "default"))
        x, y, w, h = rect
        layout = style.get("curve_layout") or curve_layout([(fd.curves, len(fd.centers))])
        line = 1.3 * sm * PT / H                               # a line of small text, as a figure fraction
        left, right, bottom, top = 3.3 * sm * PT / W, 1.3 * sm * PT / W, 1.7 * sm * PT / H, 0.3 * sm * PT / H
        width_pt = (w - left - right) * W / PT
        heads = []
        for title, keys, _ in layout:                          # title and legend on one line, or on two
            legend = sum(text_width(curve_label(k), sm) + 2.2 * sm for k in keys)
            heads.append(1 if text_width(title, sm) + legend + sm <= width_pt else 2)
        n = len(layout)
        while n > 1 and sum(heads[:n]) * line + n * 2.6 * line > h - bottom - top:   # plots ≥ 2.6 lines tall
            n -= 1
        layout, heads = layout[:n], heads[:n]
        plot_h = max(2.0 / H, (h - bottom - top - sum(heads) * line) / max(n, 1))    # ≥ 2 px in a tiny frame
        left, right = min(left, 0.4 * w), min(right, 0.1 * w)
        self.lines, self.K, self.axes = [], len(fd.centers), []
        cursor = y + h - top
        for i, ((title, keys, ylim), nh) in enumerate(zip(layout, heads)):
            cursor -= nh * line + plot_h
            ax = fig.add_axes((x + left, cursor, w - left - right, plot_h))
            ax.set_xlim(0, fd.total_steps)
            ax.tick_params(labelsize=sm, length=2, width=0.6, pad=1, labelbottom=i == n - 1)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10], integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(FuncFormatter(compact))
            for s in ax.spines.values():
                s.set_linewidth(0.6)
            ax.set_ylim(*ylim)
            for j, key in enumerate(keys):
                (ln,) = ax.plot([], [], lw=0.9, color=pal.curves[j % len(pal.curves)], label=curve_label(key))
                self.lines.append((ln, key))
            if not any(k in fd.curves for k in keys):
                ax.text(0.5, 0.5, "not logged in this run", transform=ax.transAxes, ha="center", va="center",
                        fontsize=sm, color="0.4")
            ax.set_title(title, fontsize=sm, pad=(nh - 1) * line * H / PT + 1.5, loc="left")
            ax.legend(fontsize=sm, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, handlelength=1.0,
                      handletextpad=0.3, columnspacing=0.8, borderaxespad=0.1, borderpad=0.0,
                      ncol=len(keys))
            self.axes.append(ax)
        if not layout:                              # step 0: nothing logged yet, say so rather than leave a hole
            fig.text(x + w / 2, y + h / 2, "the run's curves start\nonce it has trained", ha="center",
                     va="center", fontsize=sm, color="0.4")
        self.fixed = "curve_layout" in style        # lined up with another run's: keep those ranges
        self.rescaled = False

    def rescale(self, fd):
        """Follow the run's values: when a curve leaves its axes' range, or fills under a third of it, the axes
        take the range of the frame's history (`rescaled` tells the renderer to redraw its background)."""
        self.rescaled = False
        if self.fixed:
            return
        ranges = {title: ylim for title, _, ylim in curve_layout([(fd.curves, self.K)])}
        for ax in self.axes:
            new = ranges.get(ax.get_title(loc="left"))
            if new is None:
                continue
            lo, hi = ax.get_ylim()
            if new[0] < lo or new[1] > hi or (new[1] - new[0]) < (hi - lo) / 3:
                # a quarter of the span of room on each side: the next values that stray a little stay inside,
                # since each rescale redraws the whole background (several frames' worth of drawing)
                room = RESCALE_ROOM * (new[1] - new[0])
                ax.set_ylim(new[0] - room, new[1] + room)
                self.rescaled = True
        if self.axes and self.axes[0].get_xlim()[1] != fd.total_steps:
            for ax in self.axes:
                ax.set_xlim(0, fd.total_steps)
            self.rescaled = True

    def dynamic(self) -> list:
        return [line for line, _ in self.lines]

    def draw(self, fd):
        self.rescale(fd)
        for line, key in self.lines:
            if key not in fd.curves:
                line.set_data([], [])
                continue
            steps, v = fd.curves[key]
            n = np.searchsorted(steps, fd.step, side="right")
            line.set_data(steps[:n], curve_values(key, v[:n], self.K))


PANEL_CLASSES = {"data": DataPanel, "regions": RegionPanel, "cumulative": RegionPanel, "prob": ProbPanel,
                 "grad": GradPanel, "mosaic": MosaicPanel, "curves": CurvesPanel}
