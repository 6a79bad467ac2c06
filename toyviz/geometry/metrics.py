"""The BRE thesis in numbers (METHODS §1, §6): activation-pattern diversity of fake points, ∇ₓD directions and
region counts; `RegionMetrics`, the trainer callback that logs them; mode coverage re-exported from the engine."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..engine.coverage import Coverage, mode_coverage  # noqa: F401  (public as toyviz.metrics.mode_coverage)
from ..engine.nets import eval_mode
from ..engine.trainer import Callback
from .patterns import unique_rows
from .polygons import exact_partition
from .raster import Probe, forward_patterns, rasterize, reference_of


@dataclass
class Diversity:
    patterns: list[int]              # distinct single-layer patterns among the points, per hidden layer
    entropy: list[float]             # entropy (nats) of the points' pattern distribution per layer; ≤ ln N
    cumulative_patterns: list[int]   # distinct joint patterns of layers 1..l (linear regions holding a point)
    grad_dirs: int                   # distinct ∇ₓD directions among the points (see pattern_diversity)


def pattern_diversity(D, points, reference_batch=None, *, angle_tol: float = 1e-3,
                      chunk: Optional[int] = None) -> Diversity:
    """How diversely D treats a set of (fake) points (BRE's thesis, Cao et al. 2018; METHODS §1, §6).

    Patterns are `preact_l > 0` per hidden layer, compared exactly; entropy H_l = −Σ_p (n_p/N) ln(n_p/N) over the
    distinct patterns p. Directions: the angle atan2(∂D/∂y, ∂D/∂x) of ∇ₓ logit, rounded to multiples of `angle_tol`
    radians (default 1e-3 ≈ 0.06°; inside one linear region of a ReLU D the gradient is exactly constant, so the
    tolerance only absorbs float rounding); all gradients of norm < 1e-12 count as one further direction, "flat".
    `reference_batch` as in `raster.rasterize` for a D that packs or uses minibatch discrimination.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("points: need at least one point")
    if not angle_tol > 0:
        raise ValueError(f"angle_tol must be > 0 radians (got {angle_tol!r})")
    probe = Probe(D, reference_batch)
    with eval_mode(D):
        words, _, _, grad = forward_patterns(probe, pts, chunk, gradient=True)
    grad = grad.astype(np.float64)
    patterns, entropy, cumulative = [], [], []
    for l, w in enumerate(words):
        _, _, counts = unique_rows(w)
        p = counts / len(pts)
        patterns.append(len(counts))
        entropy.append(float(-(p * np.log(p)).sum()) + 0.0)        # + 0.0: one pattern gives 0.0, not −0.0
        cumulative.append(len(unique_rows(np.concatenate(words[:l + 1], 1))[2]))
    flat = np.hypot(grad[:, 0], grad[:, 1]) < 1e-12
    bins = np.round(np.arctan2(grad[~flat, 1], grad[~flat, 0]) / angle_tol).astype(np.int64)
    bins[bins == round(np.pi / angle_tol)] = -round(np.pi / angle_tol)       # the angles π and −π are one direction
    return Diversity(patterns, entropy, cumulative, len(np.unique(bins)) + int(flat.any()))


def region_counts(D, extent, resolution: int = 128, reference_batch=None) -> list[int]:
    """Cumulative region counts (distinct joint patterns of layers 1..l) seen on a resolution² grid. A grid
    undercounts regions smaller than a pixel (METHODS §6)."""
    return rasterize(D, extent, resolution, reference_batch, grad_resolution=0).cumulative_counts


EVAL_GRID = 64      # the grid of the logged region counts (regions/l*): coarse, as training pays for it every
                    # viz.metrics_every steps and its cost grows with the pixels


class RegionMetrics(Callback):
    """What the trainer logs besides coverage every `viz.metrics_every` steps, on G's fixed evaluation noise: the
    pattern diversity of the fake points (`div/...`) and region counts on an EVAL_GRID² grid (`regions/l*`).
    The command line, the page and the sweeps add it; the engine itself never rasterizes."""

    def evaluate(self, trainer) -> dict[str, float]:
        x = trainer.eval_samples().cpu().numpy()
        ref, _ = reference_of(trainer)
        div = pattern_diversity(trainer.D, x, ref)
        out = {}
        for l, (n, h, c) in enumerate(zip(div.patterns, div.entropy, div.cumulative_patterns), 1):
            out.update({f"div/patterns/l{l}": float(n), f"div/entropy/l{l}": h, f"div/cumulative/l{l}": float(c)})
        out["div/grad_dirs"] = float(div.grad_dirs)
        counts = region_counts(trainer.D, tuple(trainer.cfg.viz.extent), EVAL_GRID, ref)
        out.update({f"regions/l{l}": float(c) for l, c in enumerate(counts, 1)})
        return out


@dataclass
class RegionStats:
    """Per hidden layer l (0-based): regions of the joint pattern of layers 0..l inside the extent."""
    exact: list[int]        # exact count (toyviz.geometry.polygons)
    grid: list[int]         # distinct joint patterns at the resolution² pixel centres (raster.rasterize)
    missed: list[int]       # exact regions that hold no pixel centre: what the grid merged away
    unmatched: list[int]    # grid patterns with no exact region (float32 rounding on a boundary; normally 0)


def exact_region_stats(D, extent, resolution: int = 256) -> RegionStats:
    """Exact region counts per layer against the grid's, and how many regions the grid missed (METHODS §6)."""
    part = exact_partition(D, extent)
    grid = rasterize(D, extent, resolution, grad_resolution=0)
    stats = RegionStats([], [], [], [])
    for l in range(part.depth):
        _, first = np.unique(grid.cumulative_ids[l].reshape(-1), return_index=True)     # a pixel per grid region
        joint = np.concatenate([grid.patterns[k][grid.ids[k].reshape(-1)[first]] for k in range(l + 1)], 1)
        hit = part[l].lookup(joint)
        seen = len(np.unique(hit[hit >= 0]))
        stats.exact.append(len(part[l]))
        stats.grid.append(grid.cumulative_counts[l])
        stats.missed.append(len(part[l]) - seen)
        stats.unmatched.append(int((hit < 0).sum()))
    return stats
