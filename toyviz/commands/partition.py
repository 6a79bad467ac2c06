"""`python -m toyviz partition RUN --out fig.svg`: the exact linear regions of a run's D as a vector figure."""
from __future__ import annotations

from ..draw.frames import nearest_snapshot
from ..draw.output_paths import FIGURE_EXTS, check_output
from ..draw.polygon_figure import partition_title, save_partition_figure
from ..engine.run_folder import RunFolder
from .common import UsageError


def cmd_partition(args) -> int:
    """Draw the exact partition of a run's D (at its end, or at the snapshot nearest --step) to --out."""
    try:
        out = check_output(args.out, FIGURE_EXTS)
        if not RunFolder(args.run).path.is_dir() or not any(RunFolder(args.run).path.iterdir()):
            raise ValueError(f"{args.run} is not a run folder (a folder holding config.json, stats.jsonl and "
                             f"checkpoint.pt, as `toyviz train --out DIR` writes them)")
        trainer = RunFolder(args.run).trainer()
    except ValueError as e:
        raise UsageError(str(e)) from None
    depth = trainer.D.depth
    if args.layers is not None and not all(1 <= l <= depth for l in args.layers):
        raise UsageError(f"--layers: D's hidden layers are 1..{depth} (got {' '.join(map(str, args.layers))})")
    step = trainer.iteration
    if args.step is not None:
        try:
            i = nearest_snapshot(trainer, args.step)
        except ValueError as e:
            raise UsageError(f"--step: {e}") from None
        trainer.load_snapshot(i)
        step = trainer.snapshots[i]["iteration"]
        if step != args.step:
            print(f"{args.run}: step {args.step} is not stored; drawing the nearest stored snapshot, step {step}")
    layers = None if args.layers is None else [l - 1 for l in args.layers]
    try:
        part = save_partition_figure(trainer.D, trainer.cfg.viz.extent, out, layers, regions=args.regions)
    except ValueError as e:
        raise UsageError(str(e)) from None
    counts = ", ".join(partition_title(part, l) for l in part.layers)
    print(f"{args.run}: step {step}: exact regions, {counts} -> {out}")
    return 0


def add_command(sub) -> None:
    """The `partition` subcommand."""
    x = sub.add_parser("partition", help="exact linear regions of a run's D: a vector (SVG/PDF) or PNG figure")
    x.add_argument("run", help="a run folder")
    x.add_argument("--out", required=True, help="the figure: .svg, .pdf or .png")
    x.add_argument("--layers", type=int, nargs="+", metavar="L",
                   help="hidden layers to draw, 1-based (panel L: the regions of layers 1..L; default: all)")
    x.add_argument("--step", type=int, help="use the snapshot nearest this training step (default: the end)")
    x.add_argument("--regions", default="hashed", choices=["hashed", "outline"],
                   help="hashed (a colour per region) or outline (light fills, dark boundaries, for grayscale)")
    x.set_defaults(fn=cmd_partition)
