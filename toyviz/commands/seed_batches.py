"""`python -m toyviz train --seeds 0-9 --out DIR`: the seeds of one config in one process as a seed batch
(`engine.seed_batch`), seed S into the run folder DIR/seed-S, each equal to `train --seed S` within float rounding.
A config the batch cannot run trains its seeds one after another instead, saying why; a seed that diverges stops
alone (its folder at its last finite step, the reason in its error.txt) and the command exits 3."""
from __future__ import annotations

import sys
from pathlib import Path

from ..draw.frames import reverse_kl_text
from ..engine.seed_batch import refusal
from ..engine.trainer import TrainingDiverged
from ..experiments.runs import ERROR_FILE, seed_folders, train_run, train_seed_batch
from .common import DIVERGED, UsageError, config_from_args, usage


def parse_seeds(text: str) -> list[int]:
    """`0-9`, `3`, `0,2,5-7` -> the seeds, in that order; ValueError for anything else or a repeated seed."""
    seeds = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)
        except ValueError:
            raise ValueError(f"--seeds takes seeds and ranges such as 0-9 or 0,2,5-7 (got {text!r})") from None
        if first < 0 or last < first:
            raise ValueError(f"--seeds {part.strip()}: give a range low-high of seeds ≥ 0")
        seeds += range(first, last + 1)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text}: a seed is named twice")
    return seeds


def cmd_train_seeds(args) -> int:
    """`train --seeds`: check everything before writing, then train (batched, else one seed after another)."""
    for flag, given in (("--seed", args.seed is not None), ("--resume", getattr(args, "resume", None) is not None),
                        ("--tensorboard", getattr(args, "tensorboard", False))):
        if given:
            raise UsageError(f"--seeds trains a run folder per seed: {flag} may not be given with it")
    if args.out is None:
        raise UsageError("train --seeds needs --out DIR (seed S goes to DIR/seed-S)")
    if args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be ≥ 1 (got {args.checkpoint_every})")
    seeds = usage(parse_seeds, args.seeds)
    cfg = config_from_args(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    folders = seed_folders(out, seeds)
    held = [p for p in folders.values() if (p / "config.json").exists()]
    if held and not args.force:
        raise UsageError(f"{held[0]} already holds a run; pass --force to overwrite the seeds' folders")
    reason = refusal(cfg) if len(seeds) > 1 else None
    if len(seeds) > 1 and reason is None:
        batch = usage(train_seed_batch, cfg, folders, checkpoint_every=args.checkpoint_every)
        failed, trainers = batch.failed, {s: batch.trainers[s] for s in seeds}
    else:
        if reason:
            print(f"toyviz: note: {reason}; training the seeds one after another", file=sys.stderr)
        failed, trainers = {}, {}
        for seed, folder in folders.items():
            try:
                trainers[seed] = usage(train_run, cfg.replace(seed=seed), folder,
                                       checkpoint_every=args.checkpoint_every)
                (folder / ERROR_FILE).unlink(missing_ok=True)
            except TrainingDiverged as e:
                failed[seed] = f"{type(e).__name__}: {e}"
                (folder / ERROR_FILE).write_text(failed[seed] + "\n")
                trainers[seed] = e.trainer
    for seed, folder in folders.items():
        t = trainers[seed]
        if seed in failed:
            print(f"{cfg.preset} seed {seed}: diverged: {failed[seed].split(': ', 1)[1]}; {folder} holds step "
                  f"{t.iteration}", file=sys.stderr)
            continue
        last = t.history[-1] if t.history and "eval/modes" in t.history[-1] else t.evaluate()
        print(f"{cfg.preset} seed {seed}: step {t.iteration}: modes {last['eval/modes']:.0f}/{t.data.n_modes}, "
              f"HQ {100 * last['eval/hq']:.1f}%, reverse KL {reverse_kl_text(last['eval/reverse_kl'], 4)}  -> {folder}")
    return DIVERGED if failed else 0
