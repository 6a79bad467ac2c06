"""Files of a run's pictures: videos of its snapshots (MP4 H.264 or GIF), side-by-side videos of two runs, and
paper figures (PNG/PDF/SVG, rows = steps). Every file is written to a temporary name in its folder and renamed.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from .atomic import atomic_path
from .frames import DEFAULT_PANELS, PANELS, iter_frame_data, nearest_snapshot, needs_raster, parse_panels
from .render import FrameRenderer, _grid, draw_figure

VIDEO_EXTS, FIGURE_EXTS = (".mp4", ".gif"), (".png", ".pdf", ".svg")
FIGURE_PANELS = ("data", "regions:all", "prob")          # the BRE paper's Figure 2 columns
ProgressFn = Callable[[int, Optional[int]], None]         # (frames done, total or None)


def check_output(path, exts: Sequence[str]) -> Path:
    """The output path, once its extension is one of `exts` and its folder exists and is writable."""
    p = Path(path)
    if p.suffix.lower() not in exts:
        raise ValueError(f"out: unknown extension {p.suffix or '(none)'!r} of {p} (choose from: {', '.join(exts)})")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"out: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"out: {p} is not writable")
    if p.is_dir():
        raise ValueError(f"out: {p} is a folder")
    return p


def check_size(size, path: Path) -> tuple[int, int]:
    """(W, H) of a video frame: at least 64 pixels a side; multiples of 16 for MP4 (H.264 macro blocks)."""
    W, H = (int(v) for v in size)
    if W < 64 or H < 64:
        raise ValueError(f"size: {W}x{H} is too small (at least 64x64)")
    if path.suffix.lower() == ".mp4" and (W % 16 or H % 16):
        raise ValueError(f"size: an MP4 needs sides that are multiples of 16 (got {W}x{H}, e.g. 512x512)")
    return W, H


def _as_trainer(run):
    from .runfolder import RunFolder
    from .trainer import Trainer
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
               indices: Optional[Sequence[int]] = None, label: Optional[str] = None,
               timings: Optional[dict] = None) -> Iterator[np.ndarray]:
    """(H, W, 3) frames of `trainer`'s snapshots (all, or `indices`) drawn by one reused renderer; `label`
    replaces the preset name in the header; `timings` accumulates seconds under 'gather', 'rasterize', 'draw'."""
    panels = parse_panels(panels, trainer.D.depth)
    renderer = FrameRenderer(panels, size)
    res = video_resolution(trainer, panels, size) if resolution is None else resolution
    for fd in iter_frame_data(trainer, indices, raster=needs_raster(panels), mosaic="mosaic" in panels,
                              resolution=res, timings=timings):
        if label is not None:
            fd = dataclasses.replace(fd, preset=label)
        t0 = time.perf_counter()
        img = renderer.draw(fd)
        if timings is not None:
            timings["draw"] = timings.get("draw", 0.0) + time.perf_counter() - t0
        yield img


def side_by_side(a, b, labels=("A", "B"), *, panels=DEFAULT_PANELS, size=(1024, 512),
                 resolution: Optional[int] = None) -> Iterator[np.ndarray]:
    """Frames of two runs side by side (each half W/2 wide), snapshot i beside snapshot i."""
    W, H = size
    n = min(len(a.snapshots), len(b.snapshots))
    half = (W // 2, H)
    fa = run_frames(a, panels=panels, size=half, resolution=resolution, indices=range(n), label=labels[0])
    fb = run_frames(b, panels=panels, size=(W - W // 2, H), resolution=resolution, indices=range(n),
                    label=labels[1])
    for x, y in zip(fa, fb):
        yield np.concatenate([x, y], axis=1)


def _mp4_writer(path: str, fps: float):
    import imageio.v2 as imageio
    return imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                              macro_block_size=16, quality=7, ffmpeg_log_level="error",
                              output_params=["-movflags", "+faststart"])


def write_video(frames: Iterable[np.ndarray], path, *, fps: float = 10, total: Optional[int] = None,
                progress_fn: Optional[ProgressFn] = None, timings: Optional[dict] = None) -> int:
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
                t0 = time.perf_counter()
                if mp4:
                    writer.append_data(img)
                else:
                    writer.write(img, duration=1000.0 / fps, loop=0)
                if timings is not None:
                    timings["encode"] = timings.get("encode", 0.0) + time.perf_counter() - t0
                n += 1
                if progress_fn is not None:
                    progress_fn(n, total)
            if n == 0:
                raise ValueError("frames: no frame to write")
        finally:
            t0 = time.perf_counter()
            writer.close()
            if timings is not None:
                timings["encode"] = timings.get("encode", 0.0) + time.perf_counter() - t0
    return n


def export_video(run, path, *, fps: float = 10, panels=DEFAULT_PANELS, size=(512, 512),
                 progress_fn: Optional[ProgressFn] = None, resolution: Optional[int] = None,
                 timings: Optional[dict] = None) -> int:
    """Write a video of `run` to `path` (.mp4 or .gif) and return its frame count.

    run: a `Trainer` (one frame per stored snapshot), a run folder path, or frames ((H, W, 3) uint8 arrays).
    panels: names from `toyviz.frames.PANELS`; size: (W, H) pixels; progress_fn(done, total); resolution: raster
    pixels a side (default: the panels' on-screen size). A failure leaves no file at `path`.
    """
    path = check_output(path, VIDEO_EXTS)
    trainer = _as_trainer(run)
    if trainer is None:
        frames = list(run)
        return write_video(frames, path, fps=fps, total=len(frames), progress_fn=progress_fn, timings=timings)
    size = check_size(size, path)
    indices = range(len(trainer.snapshots))        # fixed now: a snapshot taken meanwhile is not half-counted
    frames = run_frames(trainer, panels=panels, size=size, resolution=resolution, indices=indices, timings=timings)
    return write_video(frames, path, fps=fps, total=len(indices), progress_fn=progress_fn, timings=timings)


def write_figure(runs: Sequence[tuple[str, object]], path, *, steps: Sequence[int], panels=FIGURE_PANELS,
                 exact: bool = False, resolution: Optional[int] = None,
                 progress_fn: Optional[ProgressFn] = None) -> list[tuple[str, int, int]]:
    """A paper figure (rows = `steps` of each run, stacked; columns = panels) to .png/.pdf/.svg, atomically.

    runs: (label, Trainer or run folder) pairs; resolution: raster pixels a side (default viz.resolution). Each
    step is drawn from the nearest stored snapshot; returns (label, asked step, drawn step) per row."""
    path = check_output(path, FIGURE_EXTS)
    if not steps:
        raise ValueError("steps: give at least one step")
    rows, used = [], []
    total = len(runs) * len(steps)
    for label, run in runs:
        trainer = _as_trainer(run)
        parsed = parse_panels(panels, trainer.D.depth)
        idx = [nearest_snapshot(trainer, s) for s in steps]
        for s, fd in zip(steps, iter_frame_data(trainer, idx, raster=needs_raster(parsed), mosaic="mosaic" in parsed,
                                                resolution=resolution, exact=exact)):
            rows.append((label, fd))
            used.append((label, int(s), fd.step))
            if progress_fn is not None:
                progress_fn(len(rows), total)
    fig = draw_figure(rows, panels, exact=exact)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=200)
    return used


# ---- command line: python -m toyviz export | figure | compare -------------------------------------------------
def _usage(fn, *a, **kw):
    """Call fn, turning ValueError into the CLI's one-line UsageError."""
    from .cli import UsageError
    try:
        return fn(*a, **kw)
    except ValueError as e:
        raise UsageError(str(e)) from None


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


def _load_run(path):
    from .runfolder import RunFolder
    if not Path(path).is_dir():
        raise ValueError(f"{path} is not a run folder")
    return RunFolder(path).trainer()


def _bar(total: Optional[int], desc: str):
    from .cli import progress
    bar = progress(total, desc)
    bar.unit = "frame"
    bar.refresh()
    return bar, (lambda done, n: bar.update(done - bar.n))


def cmd_export(args) -> int:
    out = _usage(check_output, args.out, VIDEO_EXTS)
    size = _usage(check_size, _usage(parse_size, args.size), out)
    trainer = _usage(_load_run, args.run)
    panels = _usage(parse_panels, args.panels, trainer.D.depth)
    bar, fn = _bar(len(trainer.snapshots), f"export {out.name}")
    with bar:
        n = _usage(export_video, trainer, out, fps=args.fps, panels=panels, size=size, progress_fn=fn)
    print(f"{n} frames ({size[0]}x{size[1]}, {args.fps:g} fps, steps 0..{trainer.snapshots[-1]['iteration']}) "
          f"-> {out}")
    return 0


def cmd_figure(args) -> int:
    out = _usage(check_output, args.out, FIGURE_EXTS)
    steps = _usage(parse_steps, args.steps)
    paths = [args.run] + ([args.compare] if args.compare else [])
    labels = args.labels.split(",") if args.labels else [Path(p).resolve().name for p in paths]
    if len(labels) != len(paths):
        from .cli import UsageError
        raise UsageError(f"labels: give {len(paths)} comma-separated labels (got {args.labels!r})")
    runs = [(label, _usage(_load_run, p)) for label, p in zip(labels, paths)]
    for _, t in runs:
        _usage(parse_panels, args.panels, t.D.depth)
    bar, fn = _bar(len(runs) * len(steps), f"figure {out.name}")
    with bar:
        used = _usage(write_figure, runs, out, steps=steps, panels=args.panels, exact=args.exact,
                      resolution=args.resolution, progress_fn=fn)
    for label, asked, got in used:
        print(f"{label}: step {asked}" + (f" -> nearest stored snapshot, step {got}" if got != asked else ""))
    print(f"{len(used)} rows x {len(parse_panels(args.panels, runs[0][1].D.depth))} panels -> {out}")
    return 0


def cmd_compare(args) -> int:
    from .cli import config_from_args, train_run
    from .config import parse_assignment
    out = _usage(check_output, args.out, VIDEO_EXTS)
    size = _usage(check_size, _usage(parse_size, args.size), out)
    base = config_from_args(args)
    cfgs = [_usage(lambda sets: base.replace(**dict(parse_assignment(s) for s in sets or [])).validate(), sets)
            for sets in (args.a, args.b)]
    labels = [f"{n}: {' '.join(sets) if sets else base.preset}" for n, sets in (("A", args.a), ("B", args.b))]
    with tempfile.TemporaryDirectory(prefix="toyviz-compare-") as tmp:
        root = Path(args.runs) if args.runs else Path(tmp)
        trainers = [_usage(train_run, cfg, root / name) for cfg, name in zip(cfgs, ("a", "b"))]
        _usage(parse_panels, args.panels, min(t.D.depth for t in trainers))
        n = min(len(t.snapshots) for t in trainers)
        bar, fn = _bar(n, f"compare {out.name}")
        with bar:
            frames = side_by_side(*trainers, labels, panels=args.panels, size=size)
            n = _usage(write_video, frames, out, fps=args.fps, total=n, progress_fn=fn)
    print(f"{n} frames side by side ({labels[0]} | {labels[1]}) -> {out}"
          + (f"; runs in {args.runs}/a, {args.runs}/b" if args.runs else ""))
    return 0


def add_commands(sub, add_config_args) -> None:
    """The export, figure and compare subcommands (called by `toyviz.cli.build_parser`)."""
    panels_help = f"comma-separated, from: {', '.join(PANELS)} (L = 1-based layer)"
    e = sub.add_parser("export", help="a video (MP4/GIF) of a run's stored snapshots")
    e.add_argument("run", help="run folder")
    e.add_argument("--out", required=True, help="video.mp4 or video.gif")
    e.add_argument("--panels", default=",".join(DEFAULT_PANELS), help=panels_help)
    e.add_argument("--fps", type=float, default=10)
    e.add_argument("--size", default="512x512", help="WxH pixels (multiples of 16 for MP4)")
    e.set_defaults(fn=cmd_export)

    f = sub.add_parser("figure", help="a paper figure: rows = steps (per run), columns = panels (PNG/PDF/SVG)")
    f.add_argument("run", help="run folder")
    f.add_argument("--steps", required=True, help="e.g. 0,1000,5000 (nearest stored snapshot each)")
    f.add_argument("--out", required=True, help="fig.pdf, fig.png or fig.svg")
    f.add_argument("--compare", help="a second run folder, stacked below")
    f.add_argument("--labels", help="row labels of the runs, comma-separated (default: folder names)")
    f.add_argument("--panels", default=",".join(FIGURE_PANELS), help=panels_help)
    f.add_argument("--resolution", type=int, help="raster pixels a side (default: the run's viz.resolution)")
    f.add_argument("--exact", action="store_true", help="overlay exact region boundaries on cumulative panels (regions, "
                   "cumulative:L; pointwise ReLU/LeakyReLU D)")
    f.set_defaults(fn=cmd_figure)

    c = sub.add_parser("compare", help="train two variants with one seed and write a side-by-side video")
    add_config_args(c)
    c.add_argument("--a", action="append", metavar="KEY.PATH=VALUE", help="override for run A (repeatable)")
    c.add_argument("--b", action="append", metavar="KEY.PATH=VALUE", help="override for run B (repeatable)")
    c.add_argument("--out", required=True, help="ab.mp4 or ab.gif")
    c.add_argument("--runs", help="keep the two run folders here (DIR/a, DIR/b); default: a temporary folder")
    c.add_argument("--panels", default=",".join(DEFAULT_PANELS), help=panels_help)
    c.add_argument("--fps", type=float, default=10)
    c.add_argument("--size", default="1024x512", help="WxH pixels of the whole frame (two halves)")
    c.set_defaults(fn=cmd_compare)
