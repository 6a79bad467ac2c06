"""2D data: Gaussian mixtures (ring, grid, custom centres/stds/weights) and custom point clouds.

Sampling always goes through an explicit `torch.Generator`, so a seed fixes the data stream.
"""
from __future__ import annotations

import math
import re
from typing import Optional

import numpy as np
import torch

from .config import DataConfig


class Mixture:
    """A mixture of isotropic Gaussians, or (when `points` is given) the empirical distribution of a cloud."""

    def __init__(self, centers, stds, weights, points=None):
        self.centers = torch.as_tensor(np.asarray(centers, dtype=np.float32)).reshape(-1, 2)   # (K, 2)
        self.stds = torch.as_tensor(np.asarray(stds, dtype=np.float32)).reshape(-1)            # (K,)
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64)).reshape(-1)
        self.weights = (w / w.sum()).float()                                                   # (K,)
        self.points = None if points is None else torch.as_tensor(np.asarray(points, np.float32)).reshape(-1, 2)

    @property
    def n_modes(self) -> int:
        return len(self.centers)

    @property
    def std(self) -> float:
        """The mixture's σ: the mean σ when they differ."""
        return float(self.stds.mean())

    @property
    def coverage_std(self):
        """The σ `coverage.mode_coverage` scores the modes by: `std` when every mode has the same σ (the float32
        mean, so those numbers stay what they were), else each mode's own σ (K,), as PacGAN's metric code does."""
        return self.std if bool(torch.all(self.stds == self.stds[0])) else self.stds.double().numpy()

    def sample(self, n: int, generator: torch.Generator, return_labels: bool = False):
        """n points (n, 2); with `return_labels`, also each point's mixture component (n,)."""
        x, labels = self.place(*self.draw(n, generator))
        return (x, labels) if return_labels else x

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """What `sample` draws from the generator, in its order: (component or point indices (n,), noise (n, 2) or
        None for a point cloud). Draws of several generators stack into a batch `place` takes whole."""
        dev = generator.device
        if self.points is not None:
            return torch.randint(len(self.points), (n,), generator=generator, device=dev), None
        if dev.type == "cpu":
            labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        else:     # inverse CDF: a fixed set of kernels a CUDA graph can capture (a device stream draws anew anyway)
            cdf = self._on(dev)["cdf"]
            u = torch.rand(n, generator=generator, device=dev)
            labels = torch.searchsorted(cdf, u, right=True).clamp_(max=len(cdf) - 1)
        return labels, torch.randn(n, 2, generator=generator, device=dev)

    def place(self, idx: torch.Tensor, noise: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(points (..., 2), labels (...)) from `draw`'s indices and noise, of any leading shape, on idx's device."""
        on = self._on(idx.device)
        if self.points is not None:
            return on["points"][idx], torch.zeros(idx.shape, dtype=torch.long, device=idx.device)
        return on["centers"][idx] + noise * on["stds"][idx, None], idx

    def _on(self, device: torch.device) -> dict[str, Optional[torch.Tensor]]:
        """The mixture's tensors on `device` (a step captured as a CUDA graph draws there)."""
        names = ("weights", "centers", "stds", "points", "cdf")
        tensors = [self.weights, self.centers, self.stds, self.points, self.weights.double().cumsum(0).float()]
        return dict(zip(names, device_copies(self, device, "mixture", tensors)))


def device_copies(owner, device, key, tensors: list[Optional[torch.Tensor]]) -> list[Optional[torch.Tensor]]:
    """`tensors` on `device`, copied there once and kept on `owner` under `key`: a step captured as a CUDA graph
    draws its indices on the device and may copy nothing from the host. On the CPU: the tensors themselves."""
    device = torch.device(device)
    if device.type == "cpu":
        return list(tensors)
    cache = owner.__dict__.setdefault("_device_copies", {})
    if (device, key) not in cache:
        cache[(device, key)] = [None if t is None else t.to(device) for t in tensors]
    return cache[(device, key)]


def ring_centers(k: int, radius: float) -> np.ndarray:
    """k centres at r·(cos 2πi/k, sin 2πi/k), i = 0..k−1 (METHODS §5; never linspace(0, 2π, k))."""
    a = 2 * math.pi * np.arange(k) / k
    return radius * np.stack([np.cos(a), np.sin(a)], 1)


def grid_centers(size: int, spacing: float) -> np.ndarray:
    """size² centres on a square lattice centred on 0, e.g. {−4,−2,0,2,4}² for size 5, spacing 2."""
    c = (np.arange(size) - (size - 1) / 2) * spacing
    xx, yy = np.meshgrid(c, c, indexing="xy")
    return np.stack([xx.ravel(), yy.ravel()], 1)


def make_data(cfg: DataConfig) -> Mixture:
    if cfg.kind == "ring":
        centers = ring_centers(cfg.n_modes, cfg.radius)
    elif cfg.kind == "grid":
        centers = grid_centers(cfg.grid_size, cfg.grid_spacing)
    elif cfg.kind == "mixture":
        centers = np.asarray(cfg.centers, dtype=np.float64)
    else:
        pts = np.asarray(cfg.points, dtype=np.float64)
        return Mixture(pts.mean(0, keepdims=True), [cfg.std], [1.0], points=pts)
    k = len(centers)
    stds = cfg.stds if (cfg.kind == "mixture" and cfg.stds is not None) else [cfg.std] * k
    weights = cfg.weights if (cfg.kind == "mixture" and cfg.weights is not None) else [1.0] * k
    return Mixture(centers, stds, weights)


_NUMBER_LIKE = re.compile(r"^[+-]?[\d.,_]*\d[\d.,_]*([eE][+-]?\d+)?$")   # a number, perhaps mis-written


def _number(cell: str) -> Optional[float]:
    """A CSV cell as a float, or None when it is not a plain number (underscores, as `float` reads `1_0`, are not)."""
    cell = cell.strip()
    if "_" in cell:
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def _cells(line: str) -> list[str]:
    """A row's cells: split on ';' where the row has one (then ',' may not be a decimal comma), else on ','."""
    return line.split(";") if ";" in line else line.split(",")


def load_points_csv(text: str, max_points: int = 100_000) -> np.ndarray:
    """Parse a CSV of x,y rows (',' or ';' between the two). A first row with no number at all is a header and
    skipped; any other row must hold exactly two plain numbers (no decimal commas, no underscores, no third
    column). Raises a one-line ValueError naming the row (its line in the file) and what is wrong."""
    rows = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not rows:
        raise ValueError("the CSV is empty: expected rows of x,y")
    if not any(_NUMBER_LIKE.match(c.strip()) or _number(c) is not None for c in _cells(rows[0][1])):
        rows = rows[1:]                                                   # a header line
    if not rows:
        raise ValueError("the CSV has a header but no x,y rows")
    if len(rows) > max_points:
        raise ValueError(f"the CSV has {len(rows)} points; at most {max_points} are allowed")
    pts = []
    for i, ln in rows:
        cells = _cells(ln)
        if len(cells) < 2:
            raise ValueError(f"CSV row {i}: expected two numbers x,y, got {ln[:40]!r}")
        if len(cells) > 2:
            extra = ", ".join(repr(c.strip()[:20]) for c in cells[2:5]) + (", …" if len(cells) > 5 else "")
            raise ValueError(f"CSV row {i}: expected two columns x,y, got {len(cells)} (extra columns: {extra})"
                             + (" — a decimal comma? write 1.5, not 1,5" if ";" not in ln and "." not in ln
                                and len(cells) == 4 else ""))
        values = [_number(c) for c in cells]
        for c, v in zip(cells, values):
            if v is None:
                why = ("a decimal comma? write 1.5, not 1,5" if "," in c else
                       "underscores are not allowed in numbers" if "_" in c else "not a number")
                raise ValueError(f"CSV row {i}: {c.strip()[:40]!r} is not numeric ({why})")
        x, y = values
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"CSV row {i}: NaN or infinite values are not allowed")
        pts.append((x, y))
    return np.asarray(pts, dtype=np.float64)
