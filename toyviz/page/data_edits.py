"""Direct manipulation of a run's data, free of streamlit: what a click or a drawn stroke on the page's data panel
does to the `data` part of the config (add a Gaussian mode, remove the one clicked, draw a point cloud), the checks
that turn a bad gesture into a `ValueError` naming what was wrong, and the distance the page shows in place of
mode coverage when the data is a cloud (which has no modes).

The session applies the returned overrides with `Session.apply_config`, so the networks, optimizer moments and
history carry on; only a D whose outputs are the data's modes (the K+1 semi-supervised classifier) must restart.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.config import Config, describe

MAX_MODES = 64                   # the page's limit: beyond it the rings and crosses of the data panel merge
CANVAS_DIR = Path(__file__).parent / "data_canvas"       # the browser side: one static index.html, no network
DATA_KEYS = ("data.kind", "data.n_modes", "data.radius", "data.grid_size", "data.grid_spacing", "data.std",
             "data.centers", "data.stds", "data.weights", "data.points", "viz.extent")
REMOVE_RADIUS = 0.04             # a click within max(3σ, this share of the plot's width) of a centre removes it
STROKE_SPACING = 1 / 300         # a drawn stroke is filled in every this share of the plot's width
SLICES = 64                      # projections of the sliced Wasserstein distance
UNDO_DEPTH = 50                  # data edits the page can undo


@dataclass
class Gesture:
    """One thing done on the data panel: `kind` 'click' (one point) or 'stroke' (a drawn path), in data
    coordinates, with an `id` the browser gives it (each is applied once, however many reruns see it)."""
    id: str
    kind: str
    points: list

    @classmethod
    def parse(cls, event) -> "Gesture":
        try:
            kind, pts = event["kind"], [[float(x), float(y)] for x, y in event["points"]]
            return cls(str(event["id"]), kind, pts)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"data panel: an unreadable gesture {str(event)[:80]!r}") from None


def data_state(cfg: Config) -> dict:
    """The dotted `DATA_KEYS` of `cfg`: what an undo puts back."""
    values = {key: value for key, value, _ in describe(cfg)}
    return {key: values[key] for key in DATA_KEYS}


def _check_inside(cfg: Config, x: float, y: float) -> None:
    x0, x1, y0, y1 = cfg.viz.extent
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        raise ValueError(f"the click at ({x:.2f}, {y:.2f}) is outside the plot (x in [{x0:g}, {x1:g}], "
                         f"y in [{y0:g}, {y1:g}]): click inside the data panel")


def click(cfg: Config, centers: np.ndarray, stds: np.ndarray, x: float, y: float) -> tuple[dict, str]:
    """(data overrides, message) for a click at (x, y): on (near) a centre it removes that mode, elsewhere it adds a
    Gaussian mode of σ = data.std there. `centers` (K, 2) and `stds` (K,) are the run's current mixture."""
    _check_inside(cfg, x, y)
    if cfg.data.kind == "points":
        raise ValueError("the data is a point cloud, which has no modes to add to: draw on it, or Undo back to "
                         "the modes")
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    stds = np.asarray(stds, np.float64).reshape(-1)
    x0, x1 = cfg.viz.extent[:2]
    dist = np.hypot(centers[:, 0] - x, centers[:, 1] - y)
    near = dist <= np.maximum(3 * stds, REMOVE_RADIUS * (x1 - x0))
    if near.any():
        i = int(np.argmin(np.where(near, dist, np.inf)))
        if len(centers) == 1:
            raise ValueError("that is the last mode: the data needs at least one (add another first)")
        keep = np.arange(len(centers)) != i
        centers, stds, message = centers[keep], stds[keep], f"removed the mode at ({centers[i, 0]:.2f}, " \
                                                            f"{centers[i, 1]:.2f}): {len(centers) - 1} modes"
    else:
        if len(centers) >= MAX_MODES:
            raise ValueError(f"the data has {len(centers)} modes, the page's most ({MAX_MODES}): remove one first")
        centers = np.vstack([centers, [[x, y]]])
        stds = np.append(stds, cfg.data.std)
        message = f"added a mode at ({x:.2f}, {y:.2f}): {len(centers)} modes"
    overrides = {"data.kind": "mixture", "data.centers": centers.round(4).tolist(),
                 "data.stds": None if np.allclose(stds, cfg.data.std) else stds.tolist(),
                 "data.weights": None, "data.points": None}
    return overrides, message


def cloud_of_stroke(cfg: Config, stroke) -> np.ndarray:
    """A drawn path (n, 2) filled in every `STROKE_SPACING` of the plot's width and clipped to the plot. ValueError
    when nothing of it lies inside (an empty drawing)."""
    pts = np.asarray(stroke, np.float64).reshape(-1, 2)
    x0, x1, y0, y1 = cfg.viz.extent
    inside = (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
    pts = pts[inside]
    if len(pts) < 2:
        raise ValueError("the drawing is empty: press and drag inside the data panel to draw the cloud")
    step = STROKE_SPACING * (x1 - x0)
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):          # fill each segment so a fast stroke is as dense as a slow one
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / step)))
        out.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
    return np.vstack(out)


def stroke(cfg: Config, points) -> tuple[dict, str]:
    """(data overrides, message) for a drawn stroke: the first one makes the data a point cloud, later ones add to
    it. The K+1 semi-supervised D needs labelled modes, which a cloud lacks: refused with the reason."""
    if cfg.reg.semi_supervised_fraction > 0:
        raise ValueError("this run's D is a K+1 classifier whose outputs are the data's modes; a drawn cloud has "
                         "none: set reg.semi_supervised_fraction = 0 to draw")
    cloud = cloud_of_stroke(cfg, points)
    if cfg.data.kind == "points" and cfg.data.points:
        cloud = np.vstack([np.asarray(cfg.data.points, np.float64), cloud])
    overrides = {"data.kind": "points", "data.points": cloud.round(4).tolist(), "data.centers": None,
                 "data.stds": None, "data.weights": None}
    return overrides, f"drew {len(cloud)} points as the data"


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, slices: int = SLICES, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two 2D samples (Rabin et al. 2011; Bonneel et al. 2015):
    SW₁(a, b) = mean over directions θ of W₁(⟨a, θ⟩, ⟨b, θ⟩), the 1D W₁ being the mean |F_a⁻¹(q) − F_b⁻¹(q)| over
    quantiles q. `slices` evenly spaced directions on the half circle, offset by `seed` (fixed: comparable frames).
    Same units as the data; 0 for identical samples."""
    a, b = np.asarray(a, np.float64).reshape(-1, 2), np.asarray(b, np.float64).reshape(-1, 2)
    if not len(a) or not len(b):
        raise ValueError("sliced Wasserstein: both samples need at least one point")
    angle = (np.arange(slices) + np.random.default_rng(seed).random()) * np.pi / slices
    theta = np.stack([np.cos(angle), np.sin(angle)])                   # (2, slices)
    q = (np.arange(max(len(a), len(b))) + 0.5) / max(len(a), len(b))  # common quantiles of the two samples
    pa, pb = np.sort(a @ theta, axis=0), np.sort(b @ theta, axis=0)   # (n, slices)
    qa = pa[np.minimum((q * len(a)).astype(int), len(a) - 1)]
    qb = pb[np.minimum((q * len(b)).astype(int), len(b) - 1)]
    return float(np.abs(qa - qb).mean())
