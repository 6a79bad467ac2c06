"""What one frame of a training run shows: `FrameData` gathered from a trainer snapshot, panel names, titles
and the colours shared by the matplotlib (render.py) and plotly (plotly_figures.py) drawings: palettes (one of
them colour-blind safe) and region map styles (hashed colours, or outlines that read in grayscale).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import Colormap, hsv_to_rgb

from ..engine.coverage import mode_coverage
from ..geometry.polygons import exact_partition
from ..geometry.raster import raster_of

PANELS = ("data", "data:push", "data:motion", "regions", "regions:L", "cumulative:L", "regions:all",
          "prob", "grad", "grad:stream", "mosaic", "curves")
DEFAULT_PANELS = ("data", "regions", "grad", "curves")
REAL_COLOR, FAKE_COLOR = "#1f5fbf", "#d62728"
PROB_CMAP = colormaps["RdBu"]           # red = "fake", blue = "real", like the points


@dataclass(frozen=True)
class Palette:
    """The colours of D's map, the points and the curves."""
    prob: Colormap                      # D(x): 0 (fake) .. 1 (real), or a critic's −max .. +max
    real: str
    fake: str
    captured: str                       # the ring around a captured mode's centre
    curves: tuple[str, ...]             # line colours, in order


OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
PALETTES = {
    "default": Palette(PROB_CMAP, REAL_COLOR, FAKE_COLOR, "#2ca02c", tuple(f"C{i}" for i in range(10))),
    # cividis (Nuñez et al. 2018) rises in lightness from 0 to 1, so D(x) reads the same to the colour-blind and
    # in grayscale; the points and curves take Okabe & Ito's colour-blind safe set
    "cividis": Palette(colormaps["cividis"], OKABE_ITO[0], OKABE_ITO[5], OKABE_ITO[2], OKABE_ITO),
}
REGION_STYLES = ("hashed", "outline")   # hashed colours per region; or light fills with dark boundaries


def palette_of(name) -> Palette:
    """A palette by name (a Palette passes through)."""
    if isinstance(name, Palette):
        return name
    if name not in PALETTES:
        raise ValueError(f"palette: unknown palette {name!r} (choose from: {', '.join(PALETTES)})")
    return PALETTES[name]


def check_region_style(name: str) -> str:
    if name not in REGION_STYLES:
        raise ValueError(f"regions: unknown style {name!r} (choose from: {', '.join(REGION_STYLES)})")
    return name


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
    centers: np.ndarray                             # (K, 2); K = 0 for a point cloud (no modes)
    captured: np.ndarray                            # (K,) bool: mode has at least one HQ fake point
    hq: float                                       # NaN for a point cloud, as is reverse_kl
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
    partition for the boundary overlay (ReLU, LeakyReLU or maxout pointwise D only)."""
    cfg, data, snaps = trainer.cfg, trainer.data, list(trainer.snapshots)
    indices = range(len(snaps)) if indices is None else [i % len(snaps) for i in indices]
    real = data.sample(n_real, torch.Generator().manual_seed(cfg.seed * 1000 + 13)).cpu().numpy()
    curves = curves_of(trainer.history)
    centers, w = data.centers.cpu().numpy(), data.weights.cpu().numpy()
    cloud = cfg.data.kind == "points"
    if cloud:       # a point cloud has no modes: no centres, and no coverage numbers or curves to show
        curves = {k: v for k, v in curves.items() if k not in COVERAGE_KEYS}
    # G in eval mode: a batch-norm G draws with its running statistics, as the trainer's evaluation does
    G, D = copy.deepcopy(trainer.G).eval(), copy.deepcopy(trainer.D)

    def fakes(i):
        G.load_state_dict(snaps[i]["nets"]["G"])
        with torch.no_grad():
            return G(trainer.z_eval)

    for i in indices:
        nxt = fakes(i + 1)[:arrows] if i + 1 < len(snaps) else None
        fake_t = fakes(i)
        D.load_state_dict(snaps[i]["nets"]["D"])
        fake = fake_t.cpu().numpy()
        r = raster_of(trainer, resolution, snapshot=i, mosaic=mosaic) if raster else None
        if cloud:
            shown, captured, hq, rkl = np.zeros((0, 2), np.float32), np.zeros(0, bool), math.nan, math.nan
        else:
            cov = mode_coverage(fake, centers, data.coverage_std, w)
            shown, captured, hq, rkl = centers, cov.counts > 0, cov.hq, cov.reverse_kl
        yield FrameData(
            preset=cfg.preset, step=snaps[i]["iteration"], total_steps=max(cfg.optim.iters, 1),
            extent=tuple(float(v) for v in cfg.viz.extent), real=real, fake=fake, centers=shown,
            captured=captured, hq=hq, reverse_kl=rkl, curves=curves,
            probability=cfg.loss in ("ns", "minimax"), raster=r, push=_push(trainer, D, fake_t[:arrows]),
            motion=None if nxt is None else (nxt - fake_t[:arrows]).cpu().numpy(),
            partition=exact_partition(D, cfg.viz.extent) if exact else None)


def frame_data(trainer, index: int = -1, **kw) -> FrameData:
    """FrameData of snapshot `index` (negative counts from the end); keywords as `iter_frame_data`."""
    return next(iter(iter_frame_data(trainer, [index], **kw)))


def nearest_snapshot(trainer, step: int) -> int:
    """Index of the stored snapshot whose iteration is closest to `step`."""
    its = np.array([s["iteration"] for s in trainer.snapshots])
    if len(its) == 0:
        raise ValueError("the run stored no snapshots (its checkpoint's list is empty): nothing to draw")
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


def check_exact_panels(parsed: list[str]) -> None:
    """Refuse exact boundaries for panels (`parse_panels`' names) that cannot show them: the exact partition's
    cells are cumulative (layers 1..L together), so only the cumulative region panels outline them, and computing
    it for a figure without one would cost minutes for nothing."""
    if not any(map(_cumulative, parsed)):
        raise ValueError(f"exact: exact boundaries are drawn on cumulative region panels (regions, cumulative:L), "
                         f"and the panels chosen have none ({', '.join(parsed)})")


def _cumulative(panel: str) -> bool:
    """Is `panel` a map of layers 1..L together ('regions': all of D's layers, 'cumulative:L')?"""
    name, _, arg = panel.partition(":")
    return name == "cumulative" or (name == "regions" and not arg)


def _layer(panel: str, raster) -> tuple[int, bool]:
    """(0-based layer, cumulative?) of a region panel."""
    _, _, arg = panel.partition(":")
    return (int(arg) - 1 if arg else len(raster.ids) - 1), _cumulative(panel)


def prob_range(fd: FrameData) -> tuple[float, float, float]:
    """(low, high, level) of D's colour scale: [0, 1] around 0.5 for a probability; for a critic ±max of its
    2..98 percentile range around 0."""
    if fd.probability:
        return 0.0, 1.0, 0.5
    lo, hi = np.percentile(fd.raster.prob, [2, 98])
    m = max(-min(lo, -1e-6), max(hi, 1e-6))
    return -float(m), float(m), 0.0


def prob_rgb(fd: FrameData, contour: bool = True, palette="default",
             vrange: Optional[tuple[float, float]] = None) -> np.ndarray:
    """(R, R, 3) uint8 heat map of D's map in the palette's colours, over `prob_range` (or `vrange`).
    `contour` paints the pixels where the map crosses 0.5 (probability) or 0 (critic) black."""
    p = fd.raster.prob
    lo, hi, level = prob_range(fd)
    if vrange is not None:
        lo, hi = vrange
    rgb = palette_of(palette).prob((p - lo) / (hi - lo), bytes=True)[..., :3]
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


def region_rgb(fd: FrameData, panel: str, style: str = "hashed") -> np.ndarray:
    """(R, R, 3) uint8 region map of a region panel: the hashed colours, or ('outline') each region's colour
    mixed with 80 % white and its boundary pixels dark grey, which reads in grayscale and in print."""
    l, cum = _layer(panel, fd.raster)
    rgb = (fd.raster.cumulative_colors if cum else fd.raster.colors)[l]
    if check_region_style(style) == "hashed":
        return rgb
    ids = (fd.raster.cumulative_ids if cum else fd.raster.ids)[l]
    edge = np.zeros(ids.shape, bool)
    edge[1:] |= ids[1:] != ids[:-1]
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    out = (255 - (255 - rgb.astype(np.int16)) // 5).astype(np.uint8)
    out[edge] = 60
    return out


def layers_name(l: int, cumulative: bool) -> str:
    """0-based layer -> 'layer 3' (its own patterns) or 'layers 1–3' (the regions of layers 1..3 together)."""
    return f"layers 1–{l + 1}" if cumulative and l > 0 else f"layer {l + 1}"


def panel_title(fd: FrameData, panel: str) -> str:
    """A panel's title; region panels say whose count it is: 'layer 2: 40 patterns' (that layer's own activation
    patterns) or 'layers 1–2: 146 regions' (D's linear regions up to layer 2)."""
    if panel.startswith("data"):
        what = {"data:push": "data, G's push", "data:motion": "data, motion"}.get(panel, "data")
        return f"{what}: {fd.modes}/{len(fd.centers)} modes" if len(fd.centers) else f"{what}: a point cloud"
    if panel.startswith(("regions", "cumulative")):
        l, cum = _layer(panel, fd.raster)
        n = (fd.raster.cumulative_counts if cum else fd.raster.counts)[l]
        return f"{layers_name(l, cum)}: {n} {'regions' if cum else 'patterns'}"
    if panel == "prob":
        return "D(x) = P(real)" if fd.probability else "critic D(x)"
    if panel.startswith("grad"):
        return "∇ₓD streamlines" if panel == "grad:stream" else "∇ₓD"
    if panel == "mosaic":
        return "∇ₓD mosaic"
    return "curves"


def reverse_kl_text(value: float, digits: int = 2, short: bool = False) -> str:
    """The reverse KL as a reader should see it: a number, or why there is none (METHODS §5: it is measured over
    the high-quality samples, and with none of them it is undefined). `short` for a frame's header."""
    if math.isfinite(value):
        return f"{value:.{digits}f}"
    return "undefined (no HQ sample)" if short else "undefined (no high-quality sample)"


def header_text(fd: FrameData, regions: bool = True) -> str:
    """The frame header: run, step, coverage, reverse KL and (`regions`) D's linear regions on the grid."""
    return " · ".join(header_parts(fd, regions))


def header_parts(fd: FrameData, regions: bool = True) -> list[str]:
    """`header_text`'s parts, for a header split over two lines."""
    parts = [f"{fd.preset}", f"step {fd.step}"]
    if len(fd.centers):
        parts += [f"modes {fd.modes}/{len(fd.centers)}", f"HQ {100 * fd.hq:.0f}%",
                  f"reverse KL {reverse_kl_text(fd.reverse_kl, short=True)}"]
    else:
        parts.append("data: a point cloud (no modes)")
    if regions and fd.raster is not None:
        parts.append(f"{fd.raster.cumulative_counts[-1]} regions")
    return parts


# ---- curves ------------------------------------------------------------------------------------------------------
def _last_layer(keys, prefix):
    ks = [k for k in keys if k.startswith(prefix)]
    return sorted(ks, key=lambda k: int(k.rsplit("l", 1)[1]))[-1:] if ks else []


COVERAGE_KEYS = ("eval/modes", "eval/hq", "eval/reverse_kl")     # mode coverage (METHODS §5): none for a cloud
CURVE_GROUPS = (   # (title, history keys -> the keys drawn)
    ("losses", lambda ks: sorted(k for k in ks if k.startswith("loss/"))),
    ("BRE", lambda ks: [k for k in ("reg/bre/me", "reg/bre/ac") if k in ks]),
    ("coverage", lambda ks: [k for k in ("eval/modes", "eval/hq") if k in ks]),
    ("regions on the grid, layers", lambda ks: sorted(k for k in ks if k.startswith("regions/l"))),
    ("fake-point diversity",
     lambda ks: _last_layer(ks, "div/cumulative/l") + [k for k in ["div/grad_dirs"] if k in ks]),
)


def curve_label(key: str) -> str:
    if key == "eval/modes":
        return "modes/K"
    if key == "eval/hq":
        return "HQ"
    if key.startswith("regions/l"):
        l = int(key.rsplit("l", 1)[1])
        return "1" if l == 1 else f"1–{l}"
    if key.startswith("div/cumulative/l"):
        return f"regions hit, {layers_name(int(key.rsplit('l', 1)[1]) - 1, True)}"
    if key == "div/grad_dirs":
        return "∇ₓD directions"
    if key.startswith("reg/bre/"):
        return key.rsplit("/", 1)[1].upper()
    name = key.rsplit("/", 1)[1]
    return name.upper() if key.startswith("loss/") and len(name) == 1 else name


def curve_groups(fd: FrameData) -> list[tuple[str, list[str]]]:
    """The curve groups present in the run's history, in `CURVE_GROUPS` order."""
    return groups_of(fd.curves)


def groups_of(curves: dict) -> list[tuple[str, list[str]]]:
    out = []
    for title, pick in CURVE_GROUPS:
        keys = pick(set(curves))
        if keys:
            out.append((title, keys))
    return out


def curve_values(key: str, values: np.ndarray, n_modes: int) -> np.ndarray:
    """A curve as drawn: modes as a fraction of K, so coverage shares one axis with HQ."""
    return values / n_modes if key == "eval/modes" else values


def curve_layout(runs: Sequence[tuple[dict, int]]) -> list[tuple[str, list[str], tuple[float, float]]]:
    """One curve layout for several runs drawn side by side: (title, keys, y range) per group that any run logged
    (keys: the union, in the first run's order), y ranges over all runs. runs: (curves_of(history), K) pairs."""
    out = []
    for title, pick in CURVE_GROUPS:
        keys: list[str] = []
        for curves, _ in runs:
            keys += [k for k in pick(set(curves)) if k not in keys]
        if not keys:
            continue
        lo, hi = np.inf, -np.inf
        for curves, K in runs:
            for k in keys:
                if k in curves and len(curves[k][1]):
                    v = curve_values(k, curves[k][1], K)
                    v = v[np.isfinite(v)]
                    if len(v):
                        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
        if not lo <= hi:
            lo, hi = 0.0, 1.0
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        out.append((title, keys, (lo - pad, hi + pad)))
    return out
