"""`export_html`: a run's snapshots as one self-contained HTML page (play button, step slider, the panels of a
video, hover of a pixel's pattern bits and ∇ₓD) that opens offline.

What ships is small: per frame D's weights (float32) and G's points (float16), delta-coded against the previous
frame, byte-planed and deflated into one base64 blob; the browser (html_player.js) recomputes every pattern, region
id, colour, D(x) and ∇ₓD with the same forward pass and the same SplitMix64 colour hash as
`toyviz.geometry.patterns`, so the page's maps match the PNG/MP4 colours. Pixels on a region boundary may differ:
torch sums each pre-activation in float32 in BLAS's order, the page in float64, so a unit whose pre-activation is
within float32 rounding of 0 can read on in one and off in the other.
"""
from __future__ import annotations

import base64
import copy
import importlib.resources
import importlib.util
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .. import __version__
from ..engine.atomic_files import atomic_path
from ..engine.nets import KPlusOneDiscriminator, eval_mode
from ..engine.run_folder import RunFolder
from ..engine.trainer import Trainer
from .frames import (
    DEFAULT_PANELS,
    PROB_CMAP,
    curve_groups,
    curve_label,
    iter_frame_data,
    nearest_snapshot,
    parse_panels,
)
from .output_paths import HTML_EXTS, check_output, check_size
from .render import _grid
from .writers import video_resolution

GRAD_RESOLUTION, GRAD_ARROWS = 64, 18     # as `rasterize` and the video's arrows: a 64² grid, about 18 a side
MAX_CURVE_POINTS = 2000                   # per curve; longer histories are thinned evenly
ARROWS = 200                              # push / motion arrows per frame, as `iter_frame_data`


@dataclass
class HtmlExport:
    """What `export_html` wrote: frames, the raster resolution the page computes, the snapshot steps it holds."""
    frames: int
    resolution: int
    steps: list[int]
    size_bytes: int


# ---- what the page can show ----------------------------------------------------------------------------------------
def html_problem(trainer) -> Optional[str]:
    """Why the page cannot recompute this run's D in the browser (one line naming the option), or None.

    The page runs D point by point: a D whose output at a point depends on other points (packing, minibatch
    discrimination) or that is not a plain (leaky) ReLU MLP with one logit is refused."""
    cfg, D = trainer.cfg, trainer.D
    if isinstance(D, KPlusOneDiscriminator):
        return ("html: the K+1 classifier D (reg.semi_supervised_fraction > 0) is not supported; export a video "
                "(.mp4, .gif) instead")
    if cfg.nets.pack > 1:
        return f"html: packing (nets.pack = {cfg.nets.pack}) is not supported; export a video (.mp4, .gif) instead"
    if cfg.nets.minibatch_kernels > 0:
        return ("html: minibatch discrimination (nets.minibatch_kernels > 0) is not supported; export a video "
                "(.mp4, .gif) instead")
    if cfg.nets.d.activation not in ("relu", "leaky_relu"):
        return (f"html: nets.d.activation = {cfg.nets.d.activation} is not supported (relu, leaky_relu); export a "
                f"video (.mp4, .gif) instead")
    return None


def html_panels(spec, depth: int) -> list[str]:
    """`parse_panels`, less the stream-line panel the page does not draw."""
    panels = parse_panels(spec, depth)
    if "grad:stream" in panels:
        raise ValueError("panels: grad:stream is not available in an .html export (use grad: arrows)")
    return panels


def snapshot_indices(trainer, steps: Optional[Sequence[int]]) -> list[int]:
    """Indices of the stored snapshots nearest to `steps` (sorted, each once); all snapshots for None."""
    if not trainer.snapshots:
        raise ValueError("run: it stored no snapshots, so there is nothing to draw; train it again with "
                         "viz.snapshot_every ≥ 1")
    if steps is None:
        return list(range(len(trainer.snapshots)))
    if not steps:
        raise ValueError("steps: give at least one step")
    return sorted({nearest_snapshot(trainer, s) for s in steps})


# ---- packing the frames ------------------------------------------------------------------------------------------
def d_parameters(D) -> np.ndarray:
    """D's effective weights in the page's order: per hidden layer W (out, in) row-major then b, then the output
    row and bias; float32. In eval mode, so a spectrally normalized layer gives its normalized weight."""
    with torch.no_grad(), eval_mode(D):
        parts = [t for layer in [*D.hidden, D.out] for t in (layer.weight, layer.bias)]
        return np.concatenate([t.detach().cpu().numpy().astype("<f4").ravel() for t in parts])


def pack_field(rows: np.ndarray) -> bytes:
    """(frames, n) float32 or float16 -> bytes the page's `unpackField` inverts: each frame XORed with the one
    before (most high bytes become 0) and the bytes laid out plane by plane (byte 0 of every value, then byte 1,
    ...), which deflate compresses far better than the raw floats."""
    words = np.ascontiguousarray(rows).view(f"<u{rows.dtype.itemsize}")
    delta = words.copy()
    delta[1:] ^= words[:-1]
    return delta.view(np.uint8).reshape(-1, rows.dtype.itemsize).T.tobytes()


def _num(v: float, digits: int = 6):
    """A finite float to `digits` significant digits (JSON has no NaN or inf: None)."""
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


def _curves(fd) -> list[dict]:
    """The curve groups of the run, as the video draws them (eval/modes as a fraction of the modes)."""
    K = len(fd.centers)
    out = []
    for title, keys in curve_groups(fd):
        series = []
        for key in keys:
            steps, v = fd.curves[key]
            k = max(1, -(-len(steps) // MAX_CURVE_POINTS))
            keep = np.r_[np.arange(0, len(steps), k), len(steps) - 1] if len(steps) else np.arange(0)
            keep = np.unique(keep)
            vals = v[keep] / K if key == "eval/modes" else v[keep]
            series.append({"label": curve_label(key), "steps": steps[keep].tolist(),
                           "values": [_num(float(x)) for x in vals]})
        out.append({"title": title, "series": series})
    return out


def plotly_js() -> str:
    """plotly.js as plotly's Python package ships it (what `plotly.offline.get_plotlyjs()` reads), found without
    importing plotly: the command line needs no plotly unless it writes HTML."""
    spec = importlib.util.find_spec("plotly")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / "package_data" / "plotly.min.js" if folders else None
    if path is None or not path.is_file():
        raise ValueError("out: an .html export inlines plotly's JavaScript; install plotly (pip install plotly, or "
                         "toyviz's `app` extra)")
    return path.read_text("utf-8")


def player_js() -> str:
    return importlib.resources.files(__package__).joinpath("html_player.js").read_text("utf-8")


def json_for_script(obj) -> str:
    """JSON safe inside <script type="application/json">: no `<`, `>` or `&` (so no `</script>` or `<!--`), and
    no U+2028/2029, whatever the strings hold."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def script_text(js: str) -> str:
    """JavaScript source inlined in a <script> element: `</script` may not appear in it."""
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="toyviz {version}">
<title>toyviz run</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 12px; color: #111; }}
#tv-header {{ font-weight: 600; margin-bottom: 6px; }}
#tv-controls {{ display: flex; gap: 10px; align-items: center; margin-bottom: 8px; }}
#tv-slider {{ flex: 0 1 420px; }}
#tv-status {{ color: #666; }}
#tv-panels {{ display: grid; gap: 0; }}
.tv-panel {{ position: relative; overflow: hidden; }}
.tv-title {{ text-align: center; font-size: 13px; height: 18px; white-space: nowrap; overflow: hidden; }}
.tv-map {{ position: relative; margin: 0 auto; border: 1px solid #888; box-sizing: content-box; }}
.tv-map canvas {{ position: absolute; left: 0; top: 0; width: 100%; height: 100%; }}
.tv-map canvas.tv-raster {{ image-rendering: pixelated; }}
#tv-tooltip {{ position: fixed; display: none; pointer-events: none; background: rgba(255,255,255,0.95);
  border: 1px solid #666; padding: 4px 6px; font: 11px ui-monospace, monospace; max-width: 520px;
  white-space: pre-wrap; word-break: break-all; z-index: 10; }}
#tv-error {{ color: #b00; white-space: pre-wrap; }}
pre {{ font-size: 11px; }}
</style>
</head>
<body>
<div id="tv-header"></div>
<div id="tv-controls"><button id="tv-play" type="button" disabled>Play</button>
<input id="tv-slider" type="range" min="0" max="0" value="0" step="1" disabled>
<span id="tv-step"></span><span id="tv-status">loading…</span></div>
<div id="tv-error"></div>
<div id="tv-panels"></div>
<div id="tv-tooltip"></div>
<details><summary>run</summary><pre id="tv-meta"></pre></details>
<script type="application/json" id="toyviz-manifest">{manifest}</script>
<script type="application/octet-stream" id="toyviz-blob">{blob}</script>
<script>{plotly}</script>
<script>{player}</script>
</body>
</html>
"""


def _as_trainer(run) -> Trainer:
    if isinstance(run, Trainer):
        return run
    if not Path(run).is_dir():
        raise ValueError(f"{run} is not a run folder")
    return RunFolder(run).trainer()


def export_html(run, path, *, panels=DEFAULT_PANELS, size=(512, 512), steps: Optional[Sequence[int]] = None,
                fps: float = 10, progress_fn: Optional[Callable[[int, Optional[int]], None]] = None) -> HtmlExport:
    """Write `run` (a Trainer or a run folder) to `path` (.html) as one self-contained page; atomic.

    panels: names from `frames.PANELS` but grad:stream; size: (W, H) CSS pixels of the panel grid, which also sets
    the raster resolution as for a video (at most viz.resolution); steps: the snapshots nearest to these steps
    (default: all stored); fps: the play button's frame rate. Every check runs before anything is written."""
    path = check_output(path, HTML_EXTS)
    size = check_size(size, path)
    if not fps > 0:
        raise ValueError(f"fps: must be positive (got {fps})")
    trainer = _as_trainer(run)
    problem = html_problem(trainer)
    if problem:
        raise ValueError(problem)
    parsed = html_panels(panels, trainer.D.depth)
    indices = snapshot_indices(trainer, steps)
    plotly, player = plotly_js(), player_js()
    resolution = video_resolution(trainer, parsed, size)
    rows, cols = _grid(len(parsed), *size)
    cfg, D = trainer.cfg, copy.deepcopy(trainer.D)

    params, fakes, pushes, motions, frames = [], [], [], [], []
    first = None
    for n, (i, fd) in enumerate(zip(indices, iter_frame_data(trainer, indices, raster=False, arrows=ARROWS)), 1):
        first = fd if first is None else first
        D.load_state_dict(trainer.snapshots[i]["nets"]["D"])
        params.append(d_parameters(D))
        fakes.append(fd.fake.astype(np.float16).ravel())
        m = min(ARROWS, len(fd.fake))
        pushes.append(np.zeros(2 * m, np.float32) if fd.push is None else fd.push.astype(np.float32).ravel())
        motions.append(np.zeros(2 * m, np.float32) if fd.motion is None else fd.motion.astype(np.float32).ravel())
        frames.append({"step": fd.step, "hq": _num(fd.hq), "rkl": _num(fd.reverse_kl),
                       "captured": fd.captured.astype(int).tolist()})
        if progress_fn is not None:
            progress_fn(n, len(indices))

    fields = [("D", np.stack(params)), ("fake", np.stack(fakes))]
    if "data:push" in parsed:
        fields.append(("push", np.stack(pushes)))
    if "data:motion" in parsed:
        fields.append(("motion", np.stack(motions)))
    blob = zlib.compress(b"".join(pack_field(a) for _, a in fields), 9)
    lut = PROB_CMAP((np.arange(256) + 0.5) / 256, bytes=True)[:, :3]        # index k <-> [k/256, (k+1)/256)
    manifest = {
        "toyviz": __version__, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
        "extent": [float(v) for v in cfg.viz.extent], "resolution": resolution,
        "grad": {"resolution": GRAD_RESOLUTION, "every": max(1, math.ceil(GRAD_RESOLUTION / GRAD_ARROWS))},
        "panels": parsed, "size": list(size), "grid": [rows, cols], "fps": float(fps),
        "probability": cfg.loss in ("ns", "minimax"), "total_steps": max(cfg.optim.iters, 1),
        "net": {"widths": [layer.out_features for layer in trainer.D.hidden], "activation": cfg.nets.d.activation,
                "slope": float(cfg.nets.d.slope) if cfg.nets.d.activation == "leaky_relu" else 0.0},
        "fields": [{"name": name, "dtype": f"f{a.dtype.itemsize}", "count": int(a.shape[1])} for name, a in fields],
        "frames": frames,
        "real": np.round(first.real, 4).tolist(), "centers": first.centers.tolist(),
        "curves": _curves(first) if "curves" in parsed else [],
        "prob_lut": lut.ravel().tolist(),
    }
    html = PAGE.format(version=__version__, manifest=json_for_script(manifest),
                       blob=base64.b64encode(blob).decode("ascii"), plotly=script_text(plotly),
                       player=script_text(player))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(html, "utf-8")
    return HtmlExport(len(indices), resolution, [f["step"] for f in frames], path.stat().st_size)
