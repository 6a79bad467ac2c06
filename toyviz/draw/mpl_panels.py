"""The matplotlib panels of a frame: each builds its artists once (`__init__`/`setup`) and refreshes them from a
`FrameData` in `draw`; `dynamic()` lists the artists that change, which `render.FrameRenderer` blits per frame.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.artist import Artist

from .frames import FAKE_COLOR, REAL_COLOR, _layer, curve_groups, curve_label, mosaic_rgb, panel_title, prob_rgb
from .polygon_figure import draw_exact_boundaries


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
