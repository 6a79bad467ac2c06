"""`python -m toyviz export | figure | compare`: videos of a run's snapshots, paper figures, and side-by-side videos
of two variants trained with one seed."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

from ..draw.frames import DEFAULT_PANELS, PALETTES, PANELS, REGION_STYLES, check_exact_panels, parse_panels
from ..draw.html_export import export_html, html_panels, html_problem, snapshot_indices
from ..draw.output_paths import HTML_EXTS
from ..draw.writers import (
    FIGURE_EXTS,
    FIGURE_PANELS,
    VIDEO_EXTS,
    check_output,
    check_size,
    export_video,
    parse_size,
    parse_steps,
    side_by_side,
    write_figure,
    write_video,
)
from ..engine.config import parse_assignment
from ..engine.run_folder import RunFolder
from ..experiments.runs import progress, train_run
from .common import UsageError, add_config_args, config_from_args, usage

RUN_FILES = "config.json, stats.jsonl and checkpoint.pt, as `toyviz train --out DIR` writes them"


def _load_run(path):
    """The trainer of a run folder, refused with one line when there is nothing to draw from."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{path} is not a run folder (a folder holding {RUN_FILES})")
    if not any(p.iterdir()):
        raise ValueError(f"{path} is an empty folder, not a run folder (a run folder holds {RUN_FILES})")
    trainer = RunFolder(path).trainer()
    if not trainer.snapshots:
        raise ValueError(f"{path}: the run stored no snapshots (its checkpoint's list is empty), so there is "
                         f"nothing to draw; train it again with viz.snapshot_every ≥ 1")
    return trainer


def _bar(total: Optional[int], desc: str):
    bar = progress(total, desc, unit="frame")
    bar.refresh()

    def fn(done, n):
        if n is not None and n != bar.total:
            bar.total = n
        bar.update(done - bar.n)
    return bar, fn


def _looks(args) -> dict:
    """--palette and --regions as drawing keywords."""
    return {"palette": args.palette, "regions": args.regions}


def cmd_export(args) -> int:
    out = usage(check_output, args.out, VIDEO_EXTS + HTML_EXTS)
    size = usage(check_size, usage(parse_size, args.size), out)
    trainer = usage(_load_run, args.run)
    if out.suffix.lower() in HTML_EXTS:
        return _export_html(args, out, size, trainer)
    if args.steps is not None:
        raise UsageError("steps: only an .html export picks snapshots (a video shows every stored one)")
    panels = usage(parse_panels, args.panels, trainer.D.depth)
    bar, fn = _bar(len(trainer.snapshots), f"export {out.name}")
    with bar:
        n = usage(export_video, trainer, out, fps=args.fps, panels=panels, size=size, progress_fn=fn,
                  **_looks(args))
    print(f"{n} frames ({size[0]}x{size[1]}, {args.fps:g} fps, steps 0..{trainer.snapshots[-1]['iteration']}) "
          f"-> {out}")
    return 0


def _export_html(args, out, size, trainer) -> int:
    """The run as one self-contained page (`toyviz.draw.html_export`); every check before anything is written."""
    problem = html_problem(trainer)
    if problem:
        raise UsageError(problem)
    if getattr(args, "palette", "default") != "default" or getattr(args, "regions", "hashed") != "hashed":
        raise UsageError("palette, regions: an .html export draws the default look (--palette default, "
                         "--regions hashed)")
    panels = usage(html_panels, args.panels, trainer.D.depth)
    steps = usage(parse_steps, args.steps) if args.steps is not None else None
    n = len(usage(snapshot_indices, trainer, steps))
    bar, fn = _bar(n, f"export {out.name}")
    with bar:
        done = usage(export_html, trainer, out, panels=panels, size=size, steps=steps, fps=args.fps, progress_fn=fn)
    print(f"{done.frames} frames (steps {', '.join(map(str, done.steps)) if steps else f'0..{done.steps[-1]}'}; "
          f"{done.resolution}x{done.resolution} grid, computed in the browser) -> {out} "
          f"({done.size_bytes / 1e6:.1f} MB)")
    return 0


def cmd_figure(args) -> int:
    out = usage(check_output, args.out, FIGURE_EXTS)
    steps = usage(parse_steps, args.steps)
    paths = [args.run] + ([args.compare] if args.compare else [])
    labels = args.labels.split(",") if args.labels else [Path(p).resolve().name for p in paths]
    if len(labels) != len(paths):
        raise UsageError(f"labels: give {len(paths)} comma-separated labels (got {args.labels!r})")
    if args.columns is not None and args.style != "paper":
        raise UsageError("columns: --columns sizes a --style paper figure (choose --style paper, or leave it out)")
    columns = (args.columns or 1) if args.style == "paper" else None
    runs = [(label, usage(_load_run, p)) for label, p in zip(labels, paths)]
    for _, t in runs:
        parsed = usage(parse_panels, args.panels, t.D.depth)
        if args.exact:
            usage(check_exact_panels, parsed)
    bar, fn = _bar(len(runs) * len(steps), f"figure {out.name}")
    with bar:
        used = usage(write_figure, runs, out, steps=steps, panels=args.panels, exact=args.exact,
                     resolution=args.resolution, progress_fn=fn, columns=columns, **_looks(args))
    drawn: dict[tuple[str, int], int] = {}
    for label, asked, got in used:
        if (label, got) in drawn:
            print(f"{label}: step {asked} -> nearest stored snapshot, step {got}, which the row of step "
                  f"{drawn[label, got]} already shows: drawn once")
            continue
        drawn[label, got] = asked
        print(f"{label}: step {asked}" + (f" -> nearest stored snapshot, step {got} (step {asked} is not stored)"
                                          if got != asked else ""))
    print(f"{len(drawn)} rows x {len(parse_panels(args.panels, runs[0][1].D.depth))} panels -> {out}")
    return 0


def cmd_compare(args) -> int:
    out = usage(check_output, args.out, VIDEO_EXTS)
    size = usage(check_size, usage(parse_size, args.size), out)
    base = config_from_args(args)
    cfgs = [usage(lambda sets: base.replace(**dict(parse_assignment(s) for s in sets or [])).validate(), sets)
            for sets in (args.a, args.b)]
    labels = [f"{n}: {' '.join(sets) if sets else base.preset}" for n, sets in (("A", args.a), ("B", args.b))]
    usage(parse_panels, args.panels, min(cfg.nets.d.depth for cfg in cfgs))       # before any training
    with tempfile.TemporaryDirectory(prefix="toyviz-compare-") as tmp:
        root = Path(args.runs) if args.runs else Path(tmp)
        trainers = [usage(train_run, cfg, root / name, desc=f"{name.upper()}: {cfg.preset}")
                    for cfg, name in zip(cfgs, ("a", "b"))]
        n = min(len(t.snapshots) for t in trainers)
        bar, fn = _bar(n, f"compare {out.name}")
        with bar:
            frames = side_by_side(*trainers, labels, panels=args.panels, size=size, **_looks(args))
            n = usage(write_video, frames, out, fps=args.fps, total=n, progress_fn=fn)
    print(f"{n} frames side by side ({labels[0]} | {labels[1]}) -> {out}"
          + (f"; runs in {args.runs}/a, {args.runs}/b" if args.runs else ""))
    return 0


def add_look_options(p) -> None:
    """--palette and --regions, shared by export, figure and compare."""
    p.add_argument("--palette", default="default", choices=list(PALETTES),
                   help="colours of D(x), the points and the curves: default (red-blue) or cividis (D(x) in "
                        "cividis, which reads the same to colour-blind readers and in grayscale; points and "
                        "curves in Okabe-Ito's colour-blind safe set)")
    p.add_argument("--regions", default="hashed", choices=list(REGION_STYLES),
                   help="region maps: hashed (a colour per region, the default) or outline (light fills, dark "
                        "boundaries: reads in grayscale and in print)")


def add_commands(sub) -> None:
    """The export, figure and compare subcommands."""
    panels_help = f"comma-separated, from: {', '.join(PANELS)} (L = 1-based layer)"
    e = sub.add_parser("export", help="a video (MP4/GIF) or a self-contained HTML page of a run's stored snapshots")
    e.add_argument("run", help="run folder")
    e.add_argument("--out", required=True, help="video.mp4, video.gif or run.html (plays offline in a browser)")
    e.add_argument("--steps", help="run.html only: e.g. 0,1000,5000 (nearest stored snapshot each; default: all)")
    e.add_argument("--panels", default=",".join(DEFAULT_PANELS), help=panels_help)
    e.add_argument("--fps", type=float, default=10)
    e.add_argument("--size", default="512x512", help="WxH pixels (multiples of 16 for MP4)")
    add_look_options(e)
    e.set_defaults(fn=cmd_export)

    f = sub.add_parser("figure", help="a paper figure: rows = steps (per run), columns = panels (PNG/PDF/SVG)")
    f.add_argument("run", help="run folder")
    f.add_argument("--steps", required=True, help="e.g. 0,1000,5000 (nearest stored snapshot each)")
    f.add_argument("--out", required=True, help="fig.pdf, fig.png or fig.svg")
    f.add_argument("--compare", help="a second run folder, stacked below")
    f.add_argument("--labels", help="row labels of the runs, comma-separated (default: folder names)")
    f.add_argument("--panels", default=",".join(FIGURE_PANELS), help=panels_help)
    f.add_argument("--resolution", type=int, help="raster pixels a side (default: the run's viz.resolution)")
    f.add_argument("--exact", action="store_true",
                   help="overlay exact region boundaries on the cumulative region panels (regions, "
                   "cumulative:L; give one in --panels)")
    add_look_options(f)
    f.add_argument("--style", default="default", choices=["default", "paper"],
                   help="default: 1.6 in a panel; paper: as wide as one column of a paper (3.5 in) or two "
                        "(7 in, --columns 2), 7/6 pt text")
    f.add_argument("--columns", type=int, choices=[1, 2], help="--style paper: one column (default) or two")
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
    add_look_options(c)
    c.set_defaults(fn=cmd_compare)
