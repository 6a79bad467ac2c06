"""`python -m toyviz partition RUN --out fig.svg`: the exact linear regions of a run's D as a vector figure."""
from __future__ import annotations

from ..draw.frames import nearest_snapshot
from ..draw.output_paths import FIGURE_EXTS, check_output
from ..draw.polygon_figure import save_partition_figure
from ..engine.run_folder import RunFolder
from .common import UsageError


def cmd_partition(args) -> int:
    """Draw the exact partition of a run's D (at its end, or at the snapshot nearest --step) to --out."""
    try:
        out = check_output(args.out, FIGURE_EXTS)
        trainer = RunFolder(args.run).trainer()
    except ValueError as e:
        raise UsageError(str(e)) from None
    depth = trainer.D.depth
    if args.layers is not None and not all(1 <= l <= depth for l in args.layers):
        raise UsageError(f"--layers: D's hidden layers are 1..{depth} (got {' '.join(map(str, args.layers))})")
    step = trainer.iteration
    if args.step is not None:
        i = nearest_snapshot(trainer, args.step)
        trainer.load_snapshot(i)
        step = trainer.snapshots[i]["iteration"]
    layers = None if args.layers is None else [l - 1 for l in args.layers]
    try:
        part = save_partition_figure(trainer.D, trainer.cfg.viz.extent, out, layers)
    except ValueError as e:
        raise UsageError(str(e)) from None
    counts = ", ".join(f"h{l + 1} {n:,}" for l, n in part.counts().items())
    print(f"{args.run}: step {step}: exact regions {counts} -> {out}")
    return 0


def add_command(sub) -> None:
    """The `partition` subcommand."""
    x = sub.add_parser("partition", help="exact linear regions of a run's D: a vector (SVG/PDF) or PNG figure")
    x.add_argument("run", help="a run folder")
    x.add_argument("--out", required=True, help="the figure: .svg, .pdf or .png")
    x.add_argument("--layers", type=int, nargs="+", metavar="L",
                   help="hidden layers to draw, 1-based like h1..h4 (default: all)")
    x.add_argument("--step", type=int, help="use the snapshot nearest this training step (default: the end)")
    x.set_defaults(fn=cmd_partition)
