"""Noise baselines for the coverage metrics (METHODS §5): samplers with no mode structure, scored by the same
`coverage.mode_coverage` as G, so a table shows what modes, HQ and reverse KL a sampler earns by spread alone.
Modes and reverse KL count only the HQ samples: at low HQ a diffuse sampler can capture every mode.

- **uniform**: uniform over the data extent, the centres' bounding box widened on each side by half the
  smallest distance between two centres (grid25: [−5, 5]², a 2 × 2 cell around every mode; ring8 of radius 1:
  [−1.38, 1.38]²).
- **smeared**: uniform along the curves the modes lie on, spread across them like the modes: on a ring, the
  circle through the centres (angle uniform, radius r + σε, ε ~ N(0, 1)); on any other mixture, the segments
  joining each centre to its nearest neighbours, a segment drawn in proportion to its length, a point uniform
  along it, offset σε across it (σ the mean of its two ends' σs). On a grid those segments are the grid lines
  between the outer centres. Each mode's stretch of curve is as dense as its neighbours', so the HQ samples
  spread evenly over the modes.
"""
from __future__ import annotations

import numpy as np

from .config import DataConfig
from .coverage import Coverage, mode_coverage
from .data import make_data

BASELINES = {"uniform": "uniform over the extent", "smeared": "smeared along the modes"}
SAMPLES = 2500               # METHODS §5: the protocol's sample count


def _pair_distances(centers: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(centers[:, None] - centers[None], axis=-1)           # (K, K)
    np.fill_diagonal(d, np.inf)
    return d


def extent(centers) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax): the centres' bounding box widened by half the smallest centre distance."""
    c = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    pad = _pair_distances(c).min() / 2
    lo, hi = c.min(0) - pad, c.max(0) + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def neighbour_segments(centers) -> np.ndarray:
    """(M, 2) index pairs i < j: j is among i's nearest centres or i among j's (ties within 1e-9 relative)."""
    d = _pair_distances(np.asarray(centers, dtype=np.float64).reshape(-1, 2))
    near = d <= d.min(1, keepdims=True) * (1 + 1e-9)
    near |= near.T
    i, j = np.nonzero(np.triu(near, 1))
    return np.stack([i, j], 1)


def baseline_samples(name: str, data: DataConfig, n: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """(n, 2) points of the baseline `name` ('uniform' or 'smeared') for the mixture `data`, drawn from a
    generator seeded with `seed`. ValueError for an unknown name or data with fewer than two modes (no extent)."""
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)} (got {name!r})")
    mix = make_data(data)
    if mix.points is not None or mix.n_modes < 2:
        raise ValueError("noise baselines need a mixture of two modes or more (data.kind ring, grid or mixture)")
    centers = mix.centers.double().numpy()
    stds = mix.stds.double().numpy()
    rng = np.random.default_rng(seed)
    if name == "uniform":
        x0, x1, y0, y1 = extent(centers)
        return rng.uniform((x0, y0), (x1, y1), size=(n, 2))
    if data.kind == "ring":
        angle = rng.uniform(0, 2 * np.pi, n)
        radius = data.radius + data.std * rng.standard_normal(n)
        return radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    seg = neighbour_segments(centers)
    a, b = centers[seg[:, 0]], centers[seg[:, 1]]                           # (M, 2) each
    length = np.linalg.norm(b - a, axis=1)
    pick = rng.choice(len(seg), size=n, p=length / length.sum())
    t = rng.uniform(0, 1, n)[:, None]
    along = (b - a)[pick] / length[pick, None]                               # (n, 2) unit directions
    across = np.stack([-along[:, 1], along[:, 0]], 1)
    sigma = (stds[seg[pick, 0]] + stds[seg[pick, 1]]) / 2
    return a[pick] + t * (b - a)[pick] + (sigma * rng.standard_normal(n))[:, None] * across


def baseline_coverage(name: str, data: DataConfig, n: int = SAMPLES, seed: int = 0) -> Coverage:
    """`mode_coverage` of `baseline_samples(name, data, n, seed)` against the mixture, as G's samples are scored."""
    mix = make_data(data)
    return mode_coverage(baseline_samples(name, data, n, seed), mix.centers.numpy(), mix.coverage_std,
                         mix.weights.numpy())
