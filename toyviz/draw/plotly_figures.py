"""Interactive plotly versions of the frame panels, for the page: `plotly_panel(fd, panel) -> go.Figure`.

Map panels hover a pixel's binary pattern (the layer's bits; cumulative panels all layers up to it) and ∇ₓ of D's
logit there (the mosaic value: exact inside a linear region of a pointwise D).
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .frames import (
    FAKE_COLOR,
    REAL_COLOR,
    FrameData,
    _layer,
    curve_groups,
    curve_label,
    mosaic_rgb,
    panel_title,
    parse_panels,
)

MAX_HOVER = 100           # map panels are downsampled to at most this many pixels a side (hover text per pixel)


def _sub(fd: FrameData) -> int:
    return max(1, int(np.ceil(fd.raster.resolution / MAX_HOVER)))


def _bits(patterns: np.ndarray) -> np.ndarray:
    """(n_ids, width) bool -> (n_ids,) strings of 0/1."""
    return np.array(["".join("1" if b else "0" for b in row) for row in patterns], dtype=object)


def pixel_hover(fd: FrameData, layer: int, cumulative: bool) -> np.ndarray:
    """(r, r) strings for the downsampled grid: pattern bits of `layer` (or layers 0..layer) and ∇ₓ logit."""
    r, k = fd.raster, _sub(fd)
    layers = range(layer + 1) if cumulative else [layer]
    text = None
    for l in layers:
        bits = _bits(r.patterns[l])[r.ids[l][::k, ::k]]
        text = bits if text is None else text + " | " + bits
    name = f"h1–h{layer + 1}" if cumulative else f"h{layer + 1}"
    if r.mosaic.size == 0:                          # rasterized without the mosaic glass: bits only
        return f"{name} bits " + text
    g = r.mosaic[::k, ::k]
    grad = np.char.add(np.char.add("<br>∇ₓD = (", np.char.mod("%.3g", g[..., 0])),
                       np.char.add(", ", np.char.add(np.char.mod("%.3g", g[..., 1]), ")")))
    return f"{name} bits " + text + grad.astype(object)


def _axes(fig: go.Figure, fd: FrameData, title: str) -> go.Figure:
    x0, x1, y0, y1 = fd.extent
    fig.update_xaxes(range=[x0, x1], showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=[y0, y1], showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1,
                     constrain="domain")
    fig.update_layout(title=dict(text=title, x=0.5, font=dict(size=14)), margin=dict(l=10, r=10, t=40, b=10),
                      showlegend=False, plot_bgcolor="white", height=420)
    return fig


def _image(fd: FrameData, rgb: np.ndarray, hover=None) -> go.Image:
    """An RGB raster placed on data coordinates (rows flipped so y grows upwards)."""
    r, k = fd.raster, _sub(fd)
    xs, ys = r.xs[::k], r.ys[::k][::-1]
    img = go.Image(z=rgb[::k, ::k][::-1], x0=xs[0], dx=xs[1] - xs[0], y0=ys[0], dy=ys[1] - ys[0],
                   hoverinfo="text" if hover is not None else "skip")
    if hover is not None:
        img.hovertext = hover[::-1]
    return img


def _segments(start: np.ndarray, vec: np.ndarray, length: float) -> go.Scatter:
    """Arrows as line segments (plotly has no quiver), the longest `length` long."""
    m = np.hypot(vec[:, 0], vec[:, 1]).max() if len(vec) else 0.0
    end = start + (vec * (length / m) if m > 0 else vec)
    nan = np.full(len(start), np.nan)
    xy = np.stack([start[:, 0], end[:, 0], nan, start[:, 1], end[:, 1], nan], 1)   # (n, 6)
    return go.Scatter(x=xy[:, :3].ravel(), y=xy[:, 3:].ravel(), mode="lines", hoverinfo="skip",
                      line=dict(color="black", width=1))


def _data(fd: FrameData, panel: str) -> go.Figure:
    fig = go.Figure([
        go.Scattergl(x=fd.real[:, 0], y=fd.real[:, 1], mode="markers", name="real",
                     marker=dict(size=3, color=REAL_COLOR, opacity=0.4)),
        go.Scattergl(x=fd.fake[:, 0], y=fd.fake[:, 1], mode="markers", name="fake",
                     marker=dict(size=3, color=FAKE_COLOR, opacity=0.6)),
    ])
    for hit, symbol, color in ((True, "circle-open", "#2ca02c"), (False, "x", "black")):
        c = fd.centers[fd.captured == hit]
        fig.add_trace(go.Scatter(x=c[:, 0], y=c[:, 1], mode="markers", name="captured" if hit else "missed",
                                 marker=dict(size=12, symbol=symbol, color=color, line=dict(width=2, color=color)),
                                 hovertemplate=("captured" if hit else "missed") + " mode (%{x:.2f}, %{y:.2f})"))
    vec = {"data:push": fd.push, "data:motion": fd.motion}.get(panel)
    if vec is not None:
        fig.add_trace(_segments(fd.fake[:len(vec)], vec, 0.08 * (fd.extent[1] - fd.extent[0])))
    return fig


def _map(fd: FrameData, panel: str) -> go.Figure:
    r = fd.raster
    if panel.startswith(("regions", "cumulative")):
        l, cum = _layer(panel, r)
        fig = go.Figure(_image(fd, (r.cumulative_colors if cum else r.colors)[l], pixel_hover(fd, l, cum)))
        fig.add_trace(go.Scattergl(x=fd.fake[:, 0], y=fd.fake[:, 1], mode="markers", hoverinfo="skip",
                                   marker=dict(size=2, color="black", opacity=0.5)))
        return fig
    if panel == "mosaic":
        return go.Figure(_image(fd, mosaic_rgb(fd), pixel_hover(fd, r.depth - 1, True)))
    # prob / grad: a heat map with the decision level, plus arrows for grad
    level, (lo, hi) = (0.5, (0.0, 1.0)) if fd.probability else (0.0, (None, None))
    z = r.prob[::-1]
    fig = go.Figure([go.Heatmap(x=r.xs, y=r.ys[::-1], z=z, zmin=lo, zmax=hi, colorscale="RdBu",
                                opacity=1.0 if panel == "prob" else 0.5, showscale=panel == "prob",
                                hovertemplate="(%{x:.2f}, %{y:.2f})<br>D = %{z:.3f}<extra></extra>")])
    if z.min() < level < z.max():
        fig.add_trace(go.Contour(x=r.xs, y=r.ys[::-1], z=z, showscale=False, hoverinfo="skip",
                                 contours=dict(start=level, end=level, size=1, coloring="lines"),
                                 line=dict(color="black", width=2), colorscale=[[0, "black"], [1, "black"]]))
    if panel.startswith("grad"):
        k = max(1, int(np.ceil(len(r.grad_xs) / 18)))
        gx, gy = np.meshgrid(r.grad_xs[::k], r.grad_ys[::k])
        start, g = np.stack([gx.ravel(), gy.ravel()], 1), r.grad[::k, ::k].reshape(-1, 2)
        fig.add_trace(_segments(start, g, 0.9 * abs(r.grad_xs[1] - r.grad_xs[0]) * k))
        fig.add_trace(go.Scatter(x=start[:, 0], y=start[:, 1], mode="markers", customdata=g,
                                 marker=dict(size=3, color="black"),
                                 hovertemplate="∇ₓD = (%{customdata[0]:.3g}, %{customdata[1]:.3g})<extra></extra>"))
    return fig


def _curves(fd: FrameData) -> go.Figure:
    groups = curve_groups(fd)
    fig = make_subplots(rows=max(1, len(groups)), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[t for t, _ in groups])
    K = len(fd.centers)
    for i, (_, keys) in enumerate(groups):
        for key in keys:
            steps, v = fd.curves[key]
            n = np.searchsorted(steps, fd.step, side="right")
            v = v[:n] / K if key == "eval/modes" else v[:n]
            fig.add_trace(go.Scatter(x=steps[:n], y=v, mode="lines", name=curve_label(key),
                                     line=dict(width=1.5)), row=i + 1, col=1)
    fig.update_xaxes(range=[0, fd.total_steps])
    fig.update_layout(margin=dict(l=40, r=10, t=40, b=30), height=120 + 110 * len(groups), plot_bgcolor="white",
                      legend=dict(font=dict(size=10)))
    return fig


def plotly_panel(fd: FrameData, panel: str) -> go.Figure:
    """An interactive figure of one panel (a name from `frames.PANELS`, e.g. 'data', 'regions:2', 'prob')."""
    names = parse_panels([panel], fd.raster.depth if fd.raster is not None else 8)
    if len(names) != 1:
        raise ValueError(f"panel: {panel!r} names {len(names)} panels; give one (e.g. 'regions:1')")
    panel = names[0]
    if panel == "curves":
        return _curves(fd)
    if panel.startswith("data"):
        return _axes(_data(fd, panel), fd, panel_title(fd, panel))
    if fd.raster is None:
        raise ValueError(f"panel: {panel!r} needs FrameData.raster (build the frame with raster=True)")
    return _axes(_map(fd, panel), fd, panel_title(fd, panel))
