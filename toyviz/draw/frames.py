"""What one frame of a training run shows: `FrameData` gathered from a trainer snapshot, panel names, titles
and the colour maps shared by the matplotlib (render.py) and plotly (plotly_figures.py) drawings.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import hsv_to_rgb

from ..engine.coverage import mode_coverage
from ..geometry.polygons import exact_partition
from ..geometry.raster import raster_of

PANELS = ("data", "data:push", "data:motion", "regions", "regions:L", "cumulative:L", "regions:all",
          "prob", "grad", "grad:stream", "mosaic", "curves")
DEFAULT_PANELS = ("data", "regions", "grad", "curves")
REAL_COLOR, FAKE_COLOR = "#1f5fbf", "#d62728"
PROB_CMAP = colormaps["RdBu"]           # red = "fake", blue = "real", like the points


@dataclass
class FrameData:
    """One snapshot of a run, ready to draw. Arrays are numpy; `curves` cover the whole run and are drawn up
    to `step`. `raster` is a `toyviz.regions.Raster` (None when no panel needs it)."""
    preset: str
    step: int
    total_steps: int
    extent: tuple[float, float, float, float]       # (x0, x1, y0, y1)
    real: np.ndarray                                # (N, 2) a fixed sample of the data
    fake: np.ndarray                                # (M, 2) G(z_eval)
    centers: np.ndarray                             # (K, 2)
    captured: np.ndarray                            # (K,) bool: mode has at least one HQ fake point
    hq: float
    reverse_kl: float
    curves: dict                                    # key -> (steps (n,), values (n,))
    probability: bool                               # D's map is P(real); else a critic value
    raster: object = None
    push: Optional[np.ndarray] = None               # (m, 2) −∇ₓ G-loss at fake[:m]: where G pushes its points
    motion: Optional[np.ndarray] = None             # (m, 2) fake[:m] at the next snapshot minus now
    partition: object = None                        # toyviz.partition exact partition, for the overlay

    @property
    def modes(self) -> int:
        return int(self.captured.sum())


# ---- gathering ---------------------------------------------------------------------------------------------------
def curves_of(history: Sequence[dict]) -> dict:
    """Per-key (steps, values) arrays from a trainer history; losses get a causal moving average."""
    keys: dict[str, tuple[list, list]] = {}
    for i, s in enumerate(history):
        step = s.get("step", i + 1)
        for k, v in s.items():
            if k != "step" and isinstance(v, (int, float)) and v is not None:
                keys.setdefault(k, ([], []))[0].append(step)
                keys[k][1].append(v)
    out = {}
    for k, (st, va) in keys.items():
        v = np.asarray(va, dtype=np.float64)
        w = max(1, len(v) // 100)
        if k.startswith("loss/") and w > 1:
            c = np.cumsum(np.insert(v, 0, 0.0))
            lo = np.maximum(np.arange(1, len(v) + 1) - w, 0)
            v = (c[1:] - c[lo]) / (np.arange(1, len(v) + 1) - lo)
        out[k] = (np.asarray(st, dtype=np.int64), v)
    return out


def needs_raster(panels: Iterable[str]) -> bool:
    """Whether any of the (parsed) panels draws from the raster: all but the data and curves panels."""
    return any(not p.startswith(("data", "curves")) for p in panels)


def _push(trainer, D, fake: torch.Tensor) -> Optional[np.ndarray]:
    """−∇ₓ of G's loss at each point (summed, so not scaled by 1/m); only for a pointwise D on single points."""
    if trainer.cfg.nets.pack != 1 or not D.pointwise:
        return None
    x = fake.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(trainer.loss.g(D(x)) * len(x), x)
    return (-g).cpu().numpy()


def iter_frame_data(trainer, indices: Optional[Sequence[int]] = None, *, raster: bool = True,
                    mosaic: bool = True, resolution: Optional[int] = None, n_real: int = 1000, arrows: int = 200,
                    exact: bool = False) -> Iterable[FrameData]:
    """FrameData for snapshots `indices` (default: all), in order. Snapshots are loaded into copies of the nets,
    so the trainer is never touched (safe beside a training thread). `raster=False` skips the region/probability
    raster (data and curves panels only), `mosaic=False` its mosaic glass (left empty); `exact` adds the exact
    partition for the boundary overlay (ReLU/LeakyReLU pointwise D only)."""
    cfg, data, snaps = trainer.cfg, trainer.data, list(trainer.snapshots)
    indices = range(len(snaps)) if indices is None else [i % len(snaps) for i in indices]
    real = data.sample(n_real, torch.Generator().manual_seed(cfg.seed * 1000 + 13)).cpu().numpy()
    curves = curves_of(trainer.history)
    centers, w = data.centers.cpu().numpy(), data.weights.cpu().numpy()
    G, D = copy.deepcopy(trainer.G), copy.deepcopy(trainer.D)

    def fakes(i):
        G.load_state_dict(snaps[i]["nets"]["G"])
        with torch.no_grad():
            return G(trainer.z_eval)

    for i in indices:
        nxt = fakes(i + 1)[:arrows] if i + 1 < len(snaps) else None
        fake_t = fakes(i)
        D.load_state_dict(snaps[i]["nets"]["D"])
        fake = fake_t.cpu().numpy()
        cov = mode_coverage(fake, centers, data.std, w)
        r = raster_of(trainer, resolution, snapshot=i, mosaic=mosaic) if raster else None
        yield FrameData(
            preset=cfg.preset, step=snaps[i]["iteration"], total_steps=max(cfg.optim.iters, 1),
            extent=tuple(float(v) for v in cfg.viz.extent), real=real, fake=fake, centers=centers,
            captured=cov.counts > 0, hq=cov.hq, reverse_kl=cov.reverse_kl, curves=curves,
            probability=cfg.loss in ("ns", "minimax"), raster=r, push=_push(trainer, D, fake_t[:arrows]),
            motion=None if nxt is None else (nxt - fake_t[:arrows]).cpu().numpy(),
            partition=exact_partition(D, cfg.viz.extent) if exact else None)


def frame_data(trainer, index: int = -1, **kw) -> FrameData:
    """FrameData of snapshot `index` (negative counts from the end); keywords as `iter_frame_data`."""
    return next(iter(iter_frame_data(trainer, [index], **kw)))


def nearest_snapshot(trainer, step: int) -> int:
    """Index of the stored snapshot whose iteration is closest to `step`."""
    its = np.array([s["iteration"] for s in trainer.snapshots])
    return int(np.argmin(np.abs(its - step)))


# ---- panels ------------------------------------------------------------------------------------------------------
def parse_panels(spec, depth: int) -> list[str]:
    """'data,regions:all,prob' or a list -> a list of concrete panel names for a D of `depth` hidden layers.
    Layers are 1-based like the BRE paper's h1..h4; 'regions' alone = all layers together (D's linear regions)."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out = []
    for p in items:
        name, _, arg = p.partition(":")
        if p in ("data", "data:push", "data:motion", "regions", "prob", "grad", "grad:stream", "mosaic", "curves"):
            out.append(p)
        elif name in ("regions", "cumulative") and arg == "all":
            out += [f"{name}:{l}" for l in range(1, depth + 1)]
        elif name in ("regions", "cumulative") and arg.isdigit() and 1 <= int(arg) <= depth:
            out.append(p)
        else:
            raise ValueError(f"panels: unknown panel {p!r} (choose from: {', '.join(PANELS)}; "
                             f"L = 1..{depth} or 'all')")
    if not out:
        raise ValueError("panels: no panel chosen")
    return out


def _layer(panel: str, raster) -> tuple[int, bool]:
    """(0-based layer, cumulative?) of a region panel."""
    name, _, arg = panel.partition(":")
    if not arg:
        return len(raster.ids) - 1, True
    return int(arg) - 1, name == "cumulative"


def prob_rgb(fd: FrameData, contour: bool = True) -> np.ndarray:
    """(R, R, 3) uint8 heat map of D's map; probability on [0, 1], a critic on its 2..98 percentile range.
    `contour` paints the pixels where the map crosses 0.5 (probability) or 0 (critic) black."""
    p = fd.raster.prob
    if fd.probability:
        lo, hi, level = 0.0, 1.0, 0.5
    else:
        lo, hi = np.percentile(p, [2, 98])
        lo, hi, level = min(lo, -1e-6), max(hi, 1e-6), 0.0
        m = max(-lo, hi)
        lo, hi = -m, m
    rgb = PROB_CMAP((p - lo) / (hi - lo), bytes=True)[..., :3]
    if contour:
        above = p >= level
        edge = np.zeros_like(above)
        edge[1:] |= above[1:] != above[:-1]
        edge[:, 1:] |= above[:, 1:] != above[:, :-1]
        rgb[edge] = 0
    return rgb


def mosaic_rgb(fd: FrameData) -> np.ndarray:
    """Piecewise-constant ∇ₓ field as colour: hue = direction, brightness = |∇| / max |∇|."""
    g = fd.raster.mosaic
    mag = np.hypot(g[..., 0], g[..., 1])
    hsv = np.stack([(np.arctan2(g[..., 1], g[..., 0]) / (2 * np.pi)) % 1.0, np.full(mag.shape, 0.85),
                    np.sqrt(mag / max(mag.max(), 1e-12))], -1)
    return (hsv_to_rgb(hsv) * 255).astype(np.uint8)


def panel_title(fd: FrameData, panel: str) -> str:
    if panel.startswith("data"):
        return f"data: {fd.modes}/{len(fd.centers)} modes"
    if panel.startswith(("regions", "cumulative")):
        l, cum = _layer(panel, fd.raster)
        n = (fd.raster.cumulative_counts if cum else fd.raster.counts)[l]
        name = (f"h1–h{l + 1}" if l else "h1") if cum else f"h{l + 1}"
        return f"{name}: {n} {'regions' if cum else 'patterns'}"
    if panel == "prob":
        return "D(x) = P(real)" if fd.probability else "critic D(x)"
    if panel.startswith("grad"):
        return "∇ₓD"
    if panel == "mosaic":
        return "∇ₓD mosaic"
    return "curves"


def header_text(fd: FrameData) -> str:
    s = (f"{fd.preset} · step {fd.step} · modes {fd.modes}/{len(fd.centers)} · HQ {100 * fd.hq:.0f}% · "
         f"rKL {fd.reverse_kl:.2f}")
    if fd.raster is not None:
        s += f" · {fd.raster.cumulative_counts[-1]} regions"
    return s


# ---- curves ------------------------------------------------------------------------------------------------------
def _last_layer(keys, prefix):
    ks = [k for k in keys if k.startswith(prefix)]
    return sorted(ks, key=lambda k: int(k.rsplit("l", 1)[1]))[-1:] if ks else []


CURVE_GROUPS = (   # (title, history keys -> the keys drawn)
    ("losses", lambda ks: sorted(k for k in ks if k.startswith("loss/"))),
    ("BRE", lambda ks: [k for k in ("reg/bre/me", "reg/bre/ac") if k in ks]),
    ("coverage", lambda ks: [k for k in ("eval/modes", "eval/hq") if k in ks]),
    ("regions on the grid", lambda ks: sorted(k for k in ks if k.startswith("regions/l"))),
    ("fake-point diversity",
     lambda ks: _last_layer(ks, "div/cumulative/l") + [k for k in ["div/grad_dirs"] if k in ks]),
)


def curve_label(key: str) -> str:
    if key == "eval/modes":
        return "modes/K"
    if key.startswith("div/cumulative/l"):
        return f"regions h1–h{key.rsplit('l', 1)[1]}"
    if key == "div/grad_dirs":
        return "∇ directions"
    return key.rsplit("/", 1)[1]


def curve_groups(fd: FrameData) -> list[tuple[str, list[str]]]:
    """The curve groups present in the run's history, in `CURVE_GROUPS` order."""
    out = []
    for title, pick in CURVE_GROUPS:
        keys = pick(set(fd.curves))
        if keys:
            out.append((title, keys))
    return out
