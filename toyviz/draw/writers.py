"""Files of a run's pictures: videos of its snapshots (MP4 H.264 or GIF), side-by-side videos of two runs, and
paper figures (PNG/PDF/SVG, rows = steps; 300 dpi, TrueType fonts in PDF). Every file is written to a temporary
name in its folder and renamed.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from ..engine.atomic_files import atomic_path
from ..engine.run_folder import RunFolder
from ..engine.trainer import Trainer
from .frames import (
    DEFAULT_PANELS,
    check_exact_panels,
    check_region_style,
    curve_layout,
    curves_of,
    iter_frame_data,
    nearest_snapshot,
    needs_raster,
    palette_of,
    parse_panels,
)
from .output_paths import FIGURE_EXTS, VIDEO_EXTS, check_output, check_size
from .polygon_figure import save_figure
from .render import PAPER_WIDTHS, FrameRenderer, _grid, draw_figure

FIGURE_PANELS = ("data", "regions:all", "prob")          # the BRE paper's Figure 2 columns
ProgressFn = Callable[[int, Optional[int]], None]         # (frames done, total or None)


def _as_trainer(run):
    if isinstance(run, Trainer):
        return run
    if isinstance(run, (str, os.PathLike)):
        return RunFolder(run).trainer()
    return None


def video_resolution(trainer, panels: Sequence[str], size) -> int:
    """Raster resolution for a video: the panels' on-screen pixels (finer is never seen), at most viz.resolution."""
    W, H = size
    rows, cols = _grid(len(parse_panels(panels, trainer.D.depth)), W, H)
    return int(min(trainer.cfg.viz.resolution, max(32, min(W / cols, H / rows))))


def run_frames(trainer, *, panels=DEFAULT_PANELS, size=(512, 512), resolution: Optional[int] = None,
               indices: Optional[Sequence[int]] = None, label: Optional[str] = None, palette="default",
               regions: str = "hashed", **layout) -> Iterator[np.ndarray]:
    """(H, W, 3) frames of `trainer`'s snapshots (all, or `indices`) drawn by one reused renderer; `label`
    replaces the preset name in the header; `layout`: `FrameRenderer`'s curve_layout and header_lines."""
    panels = parse_panels(panels, trainer.D.depth)
    renderer = FrameRenderer(panels, size, palette=palette, regions=regions, **layout)
    res = video_resolution(trainer, panels, size) if resolution is None else resolution
    for fd in iter_frame_data(trainer, indices, raster=needs_raster(panels), mosaic="mosaic" in panels,
                              resolution=res):
        if label is not None:
            fd = dataclasses.replace(fd, preset=label)
        yield renderer.draw(fd)


def side_by_side(a, b, labels=("A", "B"), *, panels=DEFAULT_PANELS, size=(1024, 512),
                 resolution: Optional[int] = None, palette="default", regions: str = "hashed",
                 indices: Optional[Sequence[int]] = None) -> Iterator[np.ndarray]:
    """Frames of two runs side by side (each half W/2 wide), snapshot i beside snapshot i (every snapshot both
    runs hold, or `indices`). Both halves show the same curve groups on the same y ranges (a group one run did
    not log stays empty on its side) and a header of the same height, so their panels line up."""
    W, H = size
    n = min(len(a.snapshots), len(b.snapshots))
    half = (W // 2, H)
    layout = {"curve_layout": curve_layout([(curves_of(t.history), t.data.n_modes) for t in (a, b)]),
              "header_lines": 2}
    indices = range(n) if indices is None else indices
    common = {"resolution": resolution, "indices": indices, "palette": palette, "regions": regions, **layout}
    fa = run_frames(a, panels=panels, size=half, label=labels[0], **common)
    fb = run_frames(b, panels=panels, size=(W - W // 2, H), label=labels[1], **common)
    for x, y in zip(fa, fb):
        yield np.concatenate([x, y], axis=1)


def _mp4_writer(path: str, fps: float):
    import imageio.v2 as imageio
    return imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                              macro_block_size=16, quality=7, ffmpeg_log_level="error",
                              output_params=["-movflags", "+faststart"])


def write_video(frames: Iterable[np.ndarray], path, *, fps: float = 10, total: Optional[int] = None,
                progress_fn: Optional[ProgressFn] = None) -> int:
    """Encode (H, W, 3) uint8 frames to `path` (.mp4: H.264 yuv420p faststart, sides multiples of 16; .gif);
    atomic. Returns the number of frames."""
    path = check_output(path, VIDEO_EXTS)
    if not fps > 0:
        raise ValueError(f"fps: must be positive (got {fps})")
    mp4 = path.suffix.lower() == ".mp4"
    n, shape = 0, None
    with atomic_path(path) as tmp:
        if mp4:
            writer = _mp4_writer(tmp, fps)
        else:
            import imageio.v3 as iio
            writer = iio.imopen(tmp, "w", plugin="pillow", extension=".gif")
        try:
            for img in frames:
                img = np.asarray(img)
                if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                    raise ValueError(f"frames: each frame must be (H, W, 3) uint8 (got {img.shape} {img.dtype})")
                if shape is None:
                    shape = img.shape
                    if mp4 and (shape[0] % 16 or shape[1] % 16):
                        raise ValueError(f"size: an MP4 needs sides that are multiples of 16 "
                                         f"(got {shape[1]}x{shape[0]}, e.g. 512x512)")
                elif img.shape != shape:
                    raise ValueError(f"frames: frame {n} is {img.shape}, the first was {shape}")
                if mp4:
                    writer.append_data(img)
                else:
                    writer.write(img, duration=1000.0 / fps, loop=0)
                n += 1
                if progress_fn is not None:
                    progress_fn(n, total)
            if n == 0:
                raise ValueError("frames: no frame to write")
        finally:
            writer.close()
    return n


def export_video(run, path, *, fps: float = 10, panels=DEFAULT_PANELS, size=(512, 512),
                 progress_fn: Optional[ProgressFn] = None, resolution: Optional[int] = None, palette="default",
                 regions: str = "hashed", indices: Optional[Sequence[int]] = None) -> int:
    """Write a video of `run` to `path` (.mp4 or .gif) and return its frame count.

    run: a `Trainer` (one frame per stored snapshot, or per snapshot of `indices`), a run folder path, or frames
    ((H, W, 3) uint8 arrays).
    panels: names from `toyviz.frames.PANELS`; size: (W, H) pixels; progress_fn(done, total); resolution: raster
    pixels a side (default: the panels' on-screen size); palette: a name from `frames.PALETTES`; regions: a style
    from `frames.REGION_STYLES`. A failure leaves no file at `path`.
    """
    path = check_output(path, VIDEO_EXTS)
    palette_of(palette), check_region_style(regions)
    trainer = _as_trainer(run)
    if trainer is None:
        frames = list(run)
        return write_video(frames, path, fps=fps, total=len(frames), progress_fn=progress_fn)
    size = check_size(size, path)
    if not trainer.snapshots:
        raise ValueError("the run stored no snapshots (its checkpoint's list is empty): nothing to draw")
    if indices is None:
        indices = range(len(trainer.snapshots))    # fixed now: a snapshot taken meanwhile is not half-counted
    elif not indices or not all(0 <= i < len(trainer.snapshots) for i in indices):
        raise ValueError(f"indices must be a non-empty list of snapshot indices in 0..{len(trainer.snapshots) - 1}")
    frames = run_frames(trainer, panels=panels, size=size, resolution=resolution, indices=indices,
                        palette=palette, regions=regions)
    return write_video(frames, path, fps=fps, total=len(indices), progress_fn=progress_fn)


def write_figure(runs: Sequence[tuple[str, object]], path, *, steps: Sequence[int], panels=FIGURE_PANELS,
                 exact: bool = False, resolution: Optional[int] = None, progress_fn: Optional[ProgressFn] = None,
                 palette="default", regions: str = "hashed",
                 columns: Optional[int] = None) -> list[tuple[str, int, int]]:
    """A paper figure (rows = `steps` of each run, stacked; columns = panels) to .png/.pdf/.svg, atomically.

    runs: (label, Trainer or run folder) pairs; resolution: raster pixels a side (default viz.resolution);
    palette, regions: as `export_video`; columns: 1 or 2 sizes the figure to one column (3.5 in) or the two
    columns (7 in) of a paper, else each panel is 1.6 in. Each step is drawn from the nearest stored snapshot,
    each snapshot once per run however many asked steps lead to it (so no row repeats another as if it were a
    different step). Returns (label, asked step, drawn step) per asked step; progress_fn(rows drawn, rows)."""
    path = check_output(path, FIGURE_EXTS)
    if not steps:
        raise ValueError("steps: give at least one step")
    if columns is not None and columns not in PAPER_WIDTHS:
        raise ValueError(f"columns: {columns!r} is not a paper's column count (choose from: 1, 2)")
    palette_of(palette), check_region_style(regions)
    plan, used = [], []
    for label, run in runs:
        trainer = _as_trainer(run)
        parsed = parse_panels(panels, trainer.D.depth)
        if exact:
            check_exact_panels(parsed)
        idx = [nearest_snapshot(trainer, s) for s in steps]
        plan.append((label, trainer, parsed, list(dict.fromkeys(idx))))    # each snapshot once, in asked order
        used += [(label, int(s), trainer.snapshots[i]["iteration"]) for s, i in zip(steps, idx)]
    rows, total = [], sum(len(unique) for *_, unique in plan)
    for label, trainer, parsed, unique in plan:
        for fd in iter_frame_data(trainer, unique, raster=needs_raster(parsed), mosaic="mosaic" in parsed,
                                  resolution=resolution, exact=exact):
            rows.append((label, fd))
            if progress_fn is not None:
                progress_fn(len(rows), total)
    fig = draw_figure(rows, panels, exact=exact, palette=palette, regions=regions,
                      width=None if columns is None else PAPER_WIDTHS[columns])
    save_figure(fig, path)
    return used


def parse_size(text: str) -> tuple[int, int]:
    """'512x512' -> (512, 512)."""
    w, sep, h = str(text).lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit()):
        raise ValueError(f"size: expected WxH in pixels, e.g. 512x512 (got {text!r})")
    return int(w), int(h)


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = []
    if not steps or min(steps) < 0:
        raise ValueError(f"steps: expected non-negative integers like 0,1000,5000 (got {text!r})")
    return steps
