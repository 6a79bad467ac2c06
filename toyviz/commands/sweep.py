"""`python -m toyviz sweep | report`: many runs (seeds × a grid) in parallel, and their numbers over seeds."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..engine.atomic_files import atomic_write_text
from ..experiments.report import build_report, insert_section, parse_at, select_runs
from ..experiments.runs import progress
from ..experiments.sweep import BACKENDS, RunResult, parse_grid, parse_shard, plan, run_state, run_sweep, shard
from .common import UsageError, add_config_args, config_from_args


def cmd_sweep(args) -> int:
    """`python -m toyviz sweep --preset NAME --seeds N [--seed S] [--grid k=v1,v2] [--workers W] [--shard i/n]
    [--backend local|ray [--address HOST:PORT]]`."""
    if args.seeds < 1:
        raise UsageError(f"--seeds must be ≥ 1 (got {args.seeds})")
    if args.workers < 1:
        raise UsageError(f"--workers must be ≥ 1 (got {args.workers})")
    base = config_from_args(args)
    first = args.seed if args.seed is not None else 0
    if args.address and args.backend != "ray":
        raise UsageError("--address names a Ray cluster: use it with --backend ray")
    if args.backend == "ray":
        from ..experiments.ray_sweep import check_address, require_ray
        try:
            require_ray()                            # installed? say so before anything is written
            if args.address:
                check_address(args.address)          # a head there? (ray.init would retry for minutes)
        except ValueError as e:
            raise UsageError(str(e)) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    try:
        specs = plan(base, list(range(first, first + args.seeds)), parse_grid(args.grid), out, args.name)
        if args.shard:
            specs = shard(specs, *parse_shard(args.shard))
        for spec in specs:                          # refuse before anything is written
            if run_state(spec) == "different" and not args.force:
                raise ValueError(f"{spec.out} holds a run of a different config; pass --force to retrain it")
    except ValueError as e:
        raise UsageError(str(e)) from None
    bar = progress(len(specs), f"sweep {out}", unit="run")
    failed = []

    def report(res: RunResult) -> None:
        bar.update(1)
        if res.error:
            failed.append(res)
            bar.write(f"{res.label} seed {res.seed}: failed: {res.error}")

    t0 = time.perf_counter()
    try:
        results = run_sweep(specs, args.workers, args.force, report, args.backend, args.address)
    except ValueError as e:                             # --address: a cluster there that refuses us
        bar.close()
        raise UsageError(str(e)) from None
    bar.close()
    ran = [r for r in results if not r.skipped]
    where = (f"Ray at {args.address}" if args.address else f"a local Ray instance of {args.workers} CPU(s)") \
        if args.backend == "ray" else f"{args.workers} worker(s)"
    print(f"sweep: {len(ran)} runs trained, {len(results) - len(ran)} already done, {len(failed)} failed, "
          f"{time.perf_counter() - t0:.0f} s with {where} -> {out}")
    return 1 if failed else 0


def cmd_report(args) -> int:
    try:
        at = parse_at(args.at)
        pairs = []
        for p in args.pair or []:
            if p.count(",") != 1:
                raise ValueError(f"--pair takes BASE,OTHER (got {p!r})")
            pairs.append(tuple(p.split(",")))
        labels = [x for x in args.labels.split(",") if x] if args.labels else None
        extras = [x for x in args.extras.split(",") if x] if args.extras is not None else None
        out_md = Path(args.into) if args.into else Path(args.dir) / "report.md"
        section = args.section or Path(args.dir).resolve().name
        plot_dir = Path(args.plots) if args.plots else (
            out_md.parent / "results" / section if args.into else out_md.parent / "plots")
        tb = Path(args.tensorboard) if args.tensorboard else None
        if tb is not None:
            from ..experiments.tensorboard_log import require_tensorboard
            require_tensorboard()                       # installed? say so before anything is written
            if tb.exists() and not tb.is_dir():
                raise ValueError(f"--tensorboard {tb} exists and is not a folder")
        report = build_report(args.dir, at=at, labels=labels, pairs=pairs,
                              plot_dir=None if args.no_plots else plot_dir, link_from=out_md.parent,
                              title=args.title, extras=extras, baselines=not args.no_baselines, until=args.until)
        md = report.markdown
        if tb is not None:
            from ..experiments.tensorboard_log import sweep_to_tensorboard
            runs = [r for r in select_runs(args.dir, labels=labels, extras=extras, until=args.until)
                    if r.complete and (not labels or r.label in labels)]
            tb_runs = sweep_to_tensorboard(runs, tb)
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None
    if args.into:
        insert_section(out_md, section, md)
    else:
        atomic_write_text(out_md, md)
    print(md, end="")
    sys.stdout.flush()
    wrote = [f"{out_md}" + (f" (section {section})" if args.into else "")]
    if report.plots:
        wrote.append(f"plots in {report.plots[0].parent}: {', '.join(p.name for p in report.plots)}")
    if tb is not None:
        wrote.append(f"TensorBoard runs in {tb} ({len(tb_runs)}: <label>/seed<N>; tensorboard --logdir {tb})")
    print("report -> " + "; ".join(wrote), file=sys.stderr)     # stdout stays the markdown alone
    return 0


def add_commands(sub) -> None:
    """The sweep and report subcommands."""
    s = sub.add_parser("sweep", help="train many runs (seeds × a grid) in parallel into DIR/<label>/seed<N>")
    add_config_args(s)
    s.add_argument("--seeds", type=int, default=10, help="number of seeds, from --seed (default 0)")
    s.add_argument("--grid", action="append", metavar="KEY.PATH=V1,V2", help="a grid axis (repeat for more)")
    s.add_argument("--name", help="label prefix instead of the preset name")
    s.add_argument("--workers", type=int, default=1, help="parallel processes, one torch thread each")
    s.add_argument("--shard", metavar="I/N", help="run only shard I of N (1-based) of the planned runs")
    s.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: worker processes here; ray: Ray tasks (the `ray` extra), run folders sent back")
    s.add_argument("--address", metavar="HOST:PORT", help="with --backend ray: the cluster's head (`ray start "
                                                           "--head`); default a local Ray instance of --workers CPUs")
    s.add_argument("--force", action="store_true", help="retrain runs that are done or hold another config")
    s.add_argument("--out", required=True, help="sweep folder")
    s.set_defaults(fn=cmd_sweep)

    r = sub.add_parser("report", help="mean ± standard error over seeds of a sweep's numbers: markdown + PNG")
    r.add_argument("dir", help="a sweep folder (runs at any depth below it)")
    r.add_argument("--at", default="final", help="steps to tabulate, e.g. 500,1000,final")
    r.add_argument("--labels", help="comma-separated labels to include, in this order (default: all)")
    r.add_argument("--pair", action="append", metavar="BASE,OTHER", help="per-seed comparison of two labels")
    r.add_argument("--until", type=int, metavar="STEP",
                   help="read each run as it stood at step STEP (its log up to there; 'final' is STEP): a table of "
                        "STEP-step runs from longer ones with a constant learning rate")
    r.add_argument("--title", default="")
    r.add_argument("--into", help="a markdown page: replace its <!-- report:SECTION --> block (else DIR/report.md)")
    r.add_argument("--section", help="the block name for --into (default: DIR's name)")
    r.add_argument("--plots", help="folder for the PNGs (default: beside the markdown)")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--no-baselines", action="store_true",
                   help="leave out the noise baselines' rows (uniform over the extent, smeared along the modes)")
    r.add_argument("--extras", help="per-layer number families to keep, e.g. regions,div/patterns (default: all)")
    r.add_argument("--tensorboard", metavar="OUT", help="also write the runs' curves as TensorBoard runs, "
                                                        "OUT/<label>/seed<N>, to see them side by side")
    r.set_defaults(fn=cmd_report)
