"""The command line: `python -m toyviz train | presets | config | bench | sweep | report | export | figure | compare |
partition` (also the `toyviz` console script).

Exit codes: 0 done; 2 bad input (one line on stderr, before anything is written); 3 training diverged (a loss
became NaN, infinite or beyond ±phases.MAX_LOSS: one line on stderr naming the loss and the step, and `train`
leaves the last finite step in its run folder, from where `train --resume` continues); 130 interrupted."""
from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path

import torch

from ..draw.frames import reverse_kl_text
from ..engine import presets
from ..engine.config import describe
from ..engine.phases import MAX_LOSS
from ..engine.run_folder import RunFolder
from ..engine.trainer import TrainingDiverged
from ..experiments.bench import BENCHES, BY_NAME_ONLY, check_markdown_path, iter_names, run_benches
from ..experiments.bench_tools import bench_device_of
from ..experiments.runs import resume_run, train_run
from ..experiments.tensorboard_log import TensorBoardLog
from ..malloc_tuning import reuse_freed_memory
from . import partition, seed_batches, sweep, videos
from .common import DIVERGED, Parser, UsageError, add_config_args, config_from_args, show_notes, usage

TRAIN_EPILOG = f"""exit codes:
  0  done
  2  bad input: one line on stderr, nothing written
  3  training diverged (a loss became NaN, infinite or beyond ±{MAX_LOSS:g}): one line on stderr; the run folder
     holds the last finite step

--resume DIR continues DIR from its checkpoint to --iters N steps (default: the run's own length), bit for bit
as if it had not stopped; only --iters, --device and --checkpoint-every may be given with it."""


def cmd_train(args) -> int:
    if args.seeds is not None:
        return seed_batches.cmd_train_seeds(args)
    if args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be ≥ 1 (got {args.checkpoint_every})")
    if args.resume is not None:
        given = [flag for flag, v in (("--preset", args.preset), ("--config", args.config), ("--set", args.set),
                                      ("--seed", args.seed), ("--force", args.force)) if v]
        if given:
            raise UsageError(f"--resume continues the run folder's own config: {', '.join(given)} may not be given "
                             f"with it (only --iters, --device and --checkpoint-every)")
        out = Path(args.resume)
        if args.out is not None and Path(args.out) != out:
            raise UsageError("--resume DIR trains in DIR: leave out --out")
        if not (out / RunFolder.CHECKPOINT).is_file():
            raise UsageError(f"--resume: {out} holds no run to continue ({RunFolder.CHECKPOINT} is missing)")
        run = partial(resume_run, out, iters=args.iters, device=args.device)
    else:
        if args.out is None:
            raise UsageError("train needs --out DIR (or --resume DIR)")
        cfg = config_from_args(args)
        out = Path(args.out)
        if (out / "config.json").exists() and not args.force:
            raise UsageError(f"{out} already holds a run; pass --resume to continue it or --force to overwrite it")
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} exists and is not a folder")
        run = partial(train_run, cfg, out)
    tb = [usage(TensorBoardLog, out / "tensorboard")] if args.tensorboard else []
    try:
        trainer = usage(run, checkpoint_every=args.checkpoint_every, callbacks=tb)
    except TrainingDiverged as e:
        held = f"; {out} holds step {e.trainer.iteration}" if e.trainer is not None else ""
        print(f"toyviz: diverged: {e}{held}", file=sys.stderr)
        return DIVERGED
    finally:
        for cb in tb:
            cb.close()
    ev = trainer.evaluate()
    print(f"{trainer.cfg.preset}: step {trainer.iteration}: modes {ev['eval/modes']:.0f}/{trainer.data.n_modes}, "
          f"HQ {100 * ev['eval/hq']:.1f}%, reverse KL {reverse_kl_text(ev['eval/reverse_kl'], 4)}  -> {out}"
          + (f" (TensorBoard: {out / 'tensorboard'})" if tb else ""))
    return 0


def cmd_config(args) -> int:
    """Every field of the config (a preset, --config, --set) as `key = value  # meaning`, in the tree's order."""
    rows = [(k, json.dumps(v, ensure_ascii=False), m) for k, v, m in describe(config_from_args(args))]
    width = max(len(f"{k} = {v}") for k, v, _ in rows if len(f"{k} = {v}") <= 48)
    for key, value, meaning in rows:
        print(f"{f'{key} = {value}':<{width}}  # {meaning}")
    return 0


def cmd_presets(args) -> int:
    for name in presets.names():
        print(f"{name:<22} {presets.describe(name)}")
    return 0


def cmd_bench(args) -> int:
    names = usage(list, iter_names(args.what))
    if args.markdown is not None:
        usage(check_markdown_path, args.markdown)
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be ≥ 1 (got {args.steps})")
    usage(bench_device_of, args)
    run_benches(names, args, markdown=args.markdown, note=args.note)
    return 0


def add_global_options(p: argparse.ArgumentParser, default) -> None:
    """Options every subcommand accepts before or after its name; after it, SUPPRESS keeps the value given
    before it unless repeated."""
    p.add_argument("--threads", type=int, default=default,
                   help="torch threads (default 1: the toy's small MLPs run fastest on one, and parallel "
                        "processes then do not oversubscribe the cores)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="toyviz", description="Train 2D GANs and see D's partition of the plane.")
    add_global_options(p, 1)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a run into a folder", epilog=TRAIN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(t)
    t.add_argument("--out", help="run folder")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    t.add_argument("--checkpoint-every", type=int, default=1000, help="write the run folder every N steps")
    t.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    t.add_argument("--seeds", metavar="0-9", help="train these seeds (e.g. 0-9 or 0,2,5-7) in one process as a "
                   "seed batch, seed S into OUT/seed-S")
    t.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard event files in "
                   "OUT/tensorboard: every step's numbers, region map and D(x) every viz.snapshot_every steps")
    t.set_defaults(fn=cmd_train)

    sub.add_parser("presets", help="list presets").set_defaults(fn=cmd_presets)
    c = sub.add_parser("config", help="print a config's every field: dotted key, value and meaning")
    add_config_args(c)
    c.set_defaults(fn=cmd_config)

    b = sub.add_parser("bench", help="print speed figures")
    b.add_argument("what", help=f"one of: {', '.join(BENCHES)}, or all; or {' or '.join(BY_NAME_ONLY)} (a real "
                   "browser on the page: need Chromium and Playwright)")
    b.add_argument("--steps", type=int, help="bench train: steps a round (default 300; 20 with --quick)")
    b.add_argument("--quick", action="store_true", help="fewer steps and rounds: a smoke test, not figures")
    b.add_argument("--device", help="bench train, regions, device: run on this device (cpu, cuda, cuda:N, mps; "
                   "default cpu; bench train then times the bare loop, the trainer and with --cuda-graph the "
                   "captured step)")
    b.add_argument("--cuda-graph", action="store_true", help="bench train: also the step with optim.cuda_graph "
                   "(captured on CUDA; graph-ready but eager elsewhere) and its difference from eager over 20 steps")
    b.add_argument("--markdown", metavar="PATH", help="also write the output as a markdown page (e.g. "
                                                      "docs/PERFORMANCE.md), once every benchmark has finished")
    b.add_argument("--note", help="a sentence for the markdown page's header (e.g. the machine was busy)")
    b.set_defaults(fn=cmd_bench)

    sweep.add_commands(sub)                   # sweep, report
    videos.add_commands(sub)                  # export, figure, compare
    partition.add_command(sub)                # partition
    for command in sub.choices.values():
        add_global_options(command, argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    show_notes("toyviz")
    try:
        args = build_parser().parse_args(argv)
        if args.threads < 1:
            raise UsageError(f"--threads must be ≥ 1 (got {args.threads})")
        torch.set_num_threads(args.threads)
        reuse_freed_memory()
        return args.fn(args)
    except UsageError as e:
        print(f"toyviz: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:                   # a command other than train (compare, figure)
        print(f"toyviz: diverged: {e}", file=sys.stderr)
        return DIVERGED
    except KeyboardInterrupt:
        print("toyviz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                         # `toyviz presets | head`
        sys.stdout = open(os.devnull, "w")
        return 0
