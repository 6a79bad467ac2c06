"""Numbers about a run: mode coverage of 2D mixtures (METHODS §5) and the BRE thesis in numbers: activation-pattern
diversity of fake points, ∇ₓD directions and region counts (METHODS §1, §6)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from . import pattern_ids, regions


@dataclass
class Coverage:
    modes: int            # modes captured: nearest mode of at least one HQ sample
    hq: float             # fraction of samples within 3σ of their nearest centre
    reverse_kl: float     # KL(HQ samples' histogram over modes ‖ true weights); inf when no sample is HQ
    counts: np.ndarray    # (K,) HQ samples per mode


def mode_coverage(samples, centers, std: float, weights=None) -> Coverage:
    """VEEGAN/PacGAN protocol: HQ if ‖x − c_nearest‖ ≤ 3σ; reverse KL = Σ_k p_k log(p_k / w_k) over the HQ
    samples' mode histogram p (terms with p_k = 0 vanish). A perfect sampler: ~98.9% HQ, all modes, KL ≈ 0."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float64))
    c = torch.as_tensor(np.asarray(centers, dtype=np.float64)).reshape(-1, 2)
    k = len(c)
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    dist = torch.cdist(x, c)                                              # (N, K)
    nearest_d, nearest = dist.min(1)
    hq = (nearest_d <= 3 * std).numpy()
    counts = np.bincount(nearest.numpy()[hq], minlength=k)
    if counts.sum() == 0:
        return Coverage(0, 0.0, float("inf"), counts)
    p = counts / counts.sum()
    nz = p > 0
    rkl = float(np.sum(p[nz] * np.log(p[nz] / w[nz])))
    return Coverage(int((counts > 0).sum()), float(hq.mean()), rkl, counts)


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
    `reference_batch` as in `regions.rasterize` for a D that packs or uses minibatch discrimination.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("points: need at least one point")
    if not angle_tol > 0:
        raise ValueError(f"angle_tol must be > 0 radians (got {angle_tol!r})")
    probe = regions.Probe(D, reference_batch)
    with regions.eval_mode(D):
        words, _, _, grad = regions.forward_patterns(probe, pts, chunk, gradient=True)
    grad = grad.astype(np.float64)
    patterns, entropy, cumulative = [], [], []
    for l, w in enumerate(words):
        _, _, counts = pattern_ids.unique_rows(w)
        p = counts / len(pts)
        patterns.append(len(counts))
        entropy.append(float(-(p * np.log(p)).sum()) + 0.0)        # + 0.0: one pattern gives 0.0, not −0.0
        cumulative.append(len(pattern_ids.unique_rows(np.concatenate(words[:l + 1], 1))[2]))
    flat = np.hypot(grad[:, 0], grad[:, 1]) < 1e-12
    bins = np.round(np.arctan2(grad[~flat, 1], grad[~flat, 0]) / angle_tol).astype(np.int64)
    bins[bins == round(np.pi / angle_tol)] = -round(np.pi / angle_tol)       # the angles π and −π are one direction
    return Diversity(patterns, entropy, cumulative, len(np.unique(bins)) + int(flat.any()))


def region_counts(D, extent, resolution: int = 128, reference_batch=None) -> list[int]:
    """Cumulative region counts (distinct joint patterns of layers 1..l) seen on a resolution² grid. A grid
    undercounts regions smaller than a pixel (METHODS §6)."""
    return regions.rasterize(D, extent, resolution, reference_batch, grad_resolution=0).cumulative_counts


EVAL_GRID = 64      # the grid of the logged region counts (regions/l*): 128² would cost ring8 ~60 ms a call


def evaluate(trainer) -> dict[str, float]:
    """What the trainer logs every `viz.metrics_every` steps, on G's fixed evaluation noise: mode coverage, the
    pattern diversity of the fake points (`div/...`), and region counts on a EVAL_GRID² grid (`regions/l*`)."""
    data = trainer.data
    x = trainer.eval_samples().cpu().numpy()
    cov = mode_coverage(x, data.centers.numpy(), data.std, data.weights.numpy())
    out = {"eval/modes": float(cov.modes), "eval/hq": cov.hq, "eval/reverse_kl": cov.reverse_kl}
    ref, _ = regions.reference_of(trainer)
    div = pattern_diversity(trainer.D, x, ref)
    for l, (n, h, c) in enumerate(zip(div.patterns, div.entropy, div.cumulative_patterns), 1):
        out.update({f"div/patterns/l{l}": float(n), f"div/entropy/l{l}": h, f"div/cumulative/l{l}": float(c)})
    out["div/grad_dirs"] = float(div.grad_dirs)
    counts = region_counts(trainer.D, tuple(trainer.cfg.viz.extent), EVAL_GRID, ref)
    out.update({f"regions/l{l}": float(c) for l, c in enumerate(counts, 1)})
    return out


@dataclass
class RegionStats:
    """Per hidden layer l (0-based): regions of the joint pattern of layers 0..l inside the extent."""
    exact: list[int]        # exact count (toyviz.partition)
    grid: list[int]         # distinct joint patterns at the resolution² pixel centres (toyviz.regions.rasterize)
    missed: list[int]       # exact regions that hold no pixel centre: what the grid merged away
    unmatched: list[int]    # grid patterns with no exact region (float32 rounding on a boundary; normally 0)


def exact_region_stats(D, extent, resolution: int = 256) -> RegionStats:
    """Exact region counts per layer against the grid's, and how many regions the grid missed (METHODS §6)."""
    from .partition import exact_partition
    from .regions import rasterize
    part = exact_partition(D, extent)
    raster = rasterize(D, extent, resolution, grad_resolution=0)
    stats = RegionStats([], [], [], [])
    for l in range(part.depth):
        _, first = np.unique(raster.cumulative_ids[l].reshape(-1), return_index=True)     # a pixel per grid region
        joint = np.concatenate([raster.patterns[k][raster.ids[k].reshape(-1)[first]] for k in range(l + 1)], 1)
        hit = part[l].lookup(joint)
        seen = len(np.unique(hit[hit >= 0]))
        stats.exact.append(len(part[l]))
        stats.grid.append(raster.cumulative_counts[l])
        stats.missed.append(len(part[l]) - seen)
        stats.unmatched.append(int((hit < 0).sum()))
    return stats
