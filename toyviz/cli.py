"""The command line: `python -m toyviz train | presets | bench | ...`.

Bad input prints one line on stderr and exits 2, before anything is written.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from . import presets
from .config import Config, parse_assignment


class UsageError(Exception):
    """Bad input from the user: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def progress(total: int, desc: str):
    """The progress bar every long command shows (on stderr)."""
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr, mininterval=0.5)


def config_from_args(args) -> Config:
    """--preset or --config, then every --set key.path=value, then --iters/--seed/--device; validated."""
    try:
        if getattr(args, "config", None):
            cfg = Config.from_json(args.config)
        else:
            cfg = presets.get(args.preset)
        overrides = dict(parse_assignment(a) for a in (getattr(args, "set", None) or []))
        if getattr(args, "iters", None) is not None:
            overrides["optim.iters"] = args.iters
        if getattr(args, "seed", None) is not None:
            overrides["seed"] = args.seed
        if getattr(args, "device", None):
            overrides["device"] = args.device
        return cfg.replace(**overrides).validate()
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None


def add_config_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", default="ring8", help="a preset name (python -m toyviz presets)")
    src.add_argument("--config", help="a config.json to start from")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--iters", type=int, help="training steps (optim.iters)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:N")


def train_run(cfg: Config, out: Path, *, checkpoint_every: int = 1000, quiet: bool = False):
    """Train `cfg.optim.iters` steps into run folder `out`; returns the trainer. Shared by train and sweep."""
    from .runfolder import RunFolder
    from .trainer import Trainer
    folder = RunFolder.create(out)
    trainer = Trainer(cfg)
    bar = None if quiet else progress(cfg.optim.iters, cfg.preset)
    while trainer.iteration < cfg.optim.iters:
        n = min(checkpoint_every, cfg.optim.iters - trainer.iteration)
        trainer.run(n, progress_fn=(lambda i, total, s: bar.update(1)) if bar else None)
        folder.write(trainer)
    if bar:
        bar.close()
    if not trainer.history:
        folder.write(trainer)
    return trainer


def cmd_train(args) -> int:
    cfg = config_from_args(args)
    out = Path(args.out)
    if (out / "config.json").exists() and not args.force:
        raise UsageError(f"{out} already holds a run; pass --force to overwrite it")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    try:
        trainer = train_run(cfg, out, checkpoint_every=args.checkpoint_every)
    except ValueError as e:
        raise UsageError(str(e)) from None
    ev = trainer.evaluate()
    print(f"{cfg.preset}: step {trainer.iteration}: modes {ev['eval/modes']:.0f}/{trainer.data.n_modes}, "
          f"HQ {100 * ev['eval/hq']:.1f}%, reverse KL {ev['eval/reverse_kl']:.4f}  -> {out}")
    return 0


def cmd_presets(args) -> int:
    for name in presets.names():
        doc = (presets._PRESETS[name].__doc__ or "").strip().split("\n")[0]
        print(f"{name:<22} {doc}")
    return 0


def cmd_bench(args) -> int:
    from .bench import BENCHES
    if args.what not in BENCHES:
        raise UsageError(f"bench: unknown benchmark {args.what!r} (choose from: {', '.join(BENCHES)})")
    BENCHES[args.what](args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m toyviz", description="Train 2D GANs and see D's partition of the plane.")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the toy's small MLPs run fastest on one, and parallel "
                        "processes then do not oversubscribe the cores)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a run into a folder")
    add_config_args(t)
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--checkpoint-every", type=int, default=1000)
    t.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    t.set_defaults(fn=cmd_train)

    sub.add_parser("presets", help="list presets").set_defaults(fn=cmd_presets)

    b = sub.add_parser("bench", help="print speed figures")
    b.add_argument("what", help="train (more: see python -m toyviz bench --help)")
    b.add_argument("--steps", type=int, default=300)
    b.set_defaults(fn=cmd_bench)

    from .report import cmd_report
    from .sweep import cmd_sweep
    s = sub.add_parser("sweep", help="train many runs (seeds × a grid) in parallel into DIR/<label>/seed<N>")
    add_config_args(s)
    s.add_argument("--seeds", type=int, default=10, help="number of seeds, from --seed (default 0)")
    s.add_argument("--grid", action="append", metavar="KEY.PATH=V1,V2", help="a grid axis (repeat for more)")
    s.add_argument("--name", help="label prefix instead of the preset name")
    s.add_argument("--workers", type=int, default=1, help="parallel processes, one torch thread each")
    s.add_argument("--shard", metavar="I/N", help="run only shard I of N (1-based) of the planned runs")
    s.add_argument("--force", action="store_true", help="retrain runs that are done or hold another config")
    s.add_argument("--out", required=True, help="sweep folder")
    s.set_defaults(fn=cmd_sweep)

    r = sub.add_parser("report", help="mean ± standard error over seeds of a sweep's numbers: markdown + PNG")
    r.add_argument("dir", help="a sweep folder (runs at any depth below it)")
    r.add_argument("--at", default="final", help="steps to tabulate, e.g. 500,1000,final")
    r.add_argument("--labels", help="comma-separated labels to include, in this order (default: all)")
    r.add_argument("--pair", action="append", metavar="BASE,OTHER", help="per-seed comparison of two labels")
    r.add_argument("--title", default="")
    r.add_argument("--into", help="a markdown page: replace its <!-- report:SECTION --> block (else DIR/report.md)")
    r.add_argument("--section", help="the block name for --into (default: DIR's name)")
    r.add_argument("--plots", help="folder for the PNGs (default: beside the markdown)")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--extras", help="per-layer number families to keep, e.g. regions,div/patterns (default: all)")
    r.set_defaults(fn=cmd_report)

    from .export import add_commands
    add_commands(sub, add_config_args)       # export, figure, compare

    from .partition_figure import add_command as add_partition
    add_partition(sub)                        # partition
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.threads < 1:
            raise UsageError(f"--threads must be ≥ 1 (got {args.threads})")
        import torch
        from .allocator import reuse_freed_memory
        torch.set_num_threads(args.threads)
        reuse_freed_memory()
        return args.fn(args)
    except UsageError as e:
        print(f"toyviz: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("toyviz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                         # `python -m toyviz presets | head`
        sys.stdout = open(os.devnull, "w")
        return 0
