"""The image trainer's command line: `python -m toyviz.image train | bench` (also the `toyviz-image` console script
and under `torchrun`).

Exit codes: 0 done; 2 bad input (one line on stderr, before anything is written); 3 training diverged (a loss
became NaN, infinite or beyond ±phases.MAX_LOSS: one line on stderr, and the run folder holds the last finite
step); 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.config import parse_assignment
from ..engine.phases import MAX_LOSS, TrainingDiverged
from ..experiments.image_bench import bench_image
from ..experiments.runs import progress
from ..image.config import DATASETS, ImageConfig
from ..image.distributed import init_from_env, shutdown
from ..image.run import ImageRunFolder, train_run
from .common import DIVERGED, Parser, UsageError, show_notes


def config_from_args(args) -> ImageConfig:
    """--config (or the defaults), --dataset, every --set key.path=value, then --size/--iters/--seed/--device."""
    try:
        cfg = ImageConfig.from_json(args.config) if args.config else ImageConfig()
        overrides = dict(parse_assignment(a) for a in (args.set or []))
        for key, value in (("data.name", args.dataset), ("data.image_size", args.size), ("optim.iters", args.iters),
                           ("seed", args.seed), ("device", args.device)):
            if value is not None:
                overrides[key] = value
        return cfg.replace(**overrides).validate()
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None


def cmd_train(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if args.resume:
        if args.config or args.set or args.dataset or args.size:
            raise UsageError("--resume continues the run folder's own config: only --iters and --device may change")
        try:
            cfg = ImageRunFolder(out).config()
        except (ValueError, OSError) as e:
            raise UsageError(f"--resume: {out} holds no image run ({e})") from None
        cfg = cfg.replace(**{k: v for k, v in (("optim.iters", args.iters), ("device", args.device)) if v})
    else:
        if args.dataset is None and not args.config:
            raise UsageError("train needs --dataset NAME (one of: " + ", ".join(DATASETS) + ") or --config")
        if (out / "config.json").exists() and not args.force:
            raise UsageError(f"{out} already holds a run; pass --resume to continue it or --force to overwrite it")
        cfg = config_from_args(args)
    ctx, device = init_from_env(cfg.device)
    cfg.device = device
    try:
        bars = []                               # made at the first step: data and nets load first, or fail

        def show(t) -> None:
            if not bars:
                bars.append(progress(t.cfg.optim.iters, f"{cfg.data.name} {cfg.data.image_size}px"))
            bars[0].update(t.iteration - bars[0].n)
        try:
            trainer = train_run(cfg, out, resume=args.resume, dist=ctx,
                                on_step=None if args.quiet or not ctx.is_main else show)
        finally:
            for bar in bars:
                bar.close()
    except ValueError as e:
        raise UsageError(str(e)) from None
    except TrainingDiverged as e:
        held = ""
        if ctx.is_main and e.trainer is not None:       # rolled back to the last finite step: keep it
            ImageRunFolder(out).write(e.trainer)
            held = f"; {out} holds step {e.trainer.iteration}"
        print(f"toyviz.image: diverged: {e}{held}", file=sys.stderr)
        return DIVERGED
    finally:
        shutdown(ctx)
    if ctx.is_main:
        last = {k: v for s in trainer.history for k, v in s.items() if k.startswith("eval/")}
        shown = ", ".join(f"{k[5:]} {v:.4g}" for k, v in sorted(last.items()))
        print(f"{cfg.data.name}: step {trainer.iteration}{': ' + shown if shown else ''}  -> {out}")
    return 0


TRAIN_EPILOG = f"""exit codes:
  0  done
  2  bad input: one line on stderr, nothing written
  3  training diverged (a loss became NaN, infinite or beyond ±{MAX_LOSS:g}): one line on stderr; the run folder
     holds the last finite step"""


def cmd_bench(args) -> int:
    bench_image(args)
    return 0


def build_parser() -> Parser:
    p = Parser(prog="toyviz-image", description="Train DCGANs on images with the toy's regularizers.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train into a run folder (also under torchrun --nproc_per_node N)",
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--dataset", choices=DATASETS)
    t.add_argument("--config", help="a config.json to start from")
    t.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    t.add_argument("--size", type=int, help="image size (data.image_size): 16, 28, 32 or 64")
    t.add_argument("--iters", type=int, help="training steps (optim.iters)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="cpu, cuda, cuda:N")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)
    b = sub.add_parser("bench", help="steps/s on stacked-digits beside a bare PyTorch DCGAN loop")
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--size", type=int, default=32)
    b.add_argument("--width", type=int, default=64)
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--device", help="time the steps on this device (cpu, cuda, cuda:N): bare loop, trainer, and "
                   "with --cuda-graph the trainer with optim.cuda_graph")
    b.add_argument("--cuda-graph", action="store_true", help="also the step with optim.cuda_graph and its "
                   "difference from eager over 20 steps")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv=None) -> int:
    show_notes("toyviz.image")
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except UsageError as e:
        print(f"toyviz.image: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("toyviz.image: interrupted", file=sys.stderr)
        return 130
