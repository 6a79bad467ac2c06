"""A run folder filled by training, with the progress bar every long command shows; shared by `train`, `sweep`
and `compare`. The trainer logs the region numbers too (`RegionMetrics`), as every run folder has. A run resumes
from its checkpoint bit-exactly; a run that diverges leaves its last finite step in the folder."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

from tqdm import tqdm

from ..engine.config import Config
from ..engine.phases import HISTORY_WINDOW
from ..engine.run_folder import RunFolder
from ..engine.seed_batch import SeedBatch, refusal
from ..engine.trainer import Callback, Trainer, TrainingDiverged
from ..geometry.metrics import RegionMetrics

STATS_EVERY = HISTORY_WINDOW // 2      # stats.jsonl is appended at least this often, before the window drops a step


def progress(total, desc: str, unit: str = "step", initial: int = 0):
    """The progress bar every long command shows (on stderr)."""
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr, mininterval=0.5,
                initial=initial)


def train_run(cfg: Config, out: Path, *, checkpoint_every: int = 1000, quiet: bool = False,
              desc: Optional[str] = None, callbacks: Sequence[Callback] = ()) -> Trainer:
    """Train `cfg.optim.iters` steps into run folder `out`, writing it every `checkpoint_every` steps and at the
    end; returns the trainer. On `TrainingDiverged` the folder holds the last finite step before it propagates.
    `desc` names the progress bar (default: the preset); `callbacks` join `RegionMetrics` (e.g. TensorBoard).
    The run is staged beside `out` and swapped in whole at its first write (`RunFolder.staged`): a failure before
    it leaves an older run in `out` untouched, or no folder at all."""
    folder = RunFolder.staged(out)
    try:
        trainer = Trainer(cfg, callbacks=[RegionMetrics(), *callbacks])
        return _train_into(folder, trainer, checkpoint_every, quiet, desc)
    finally:
        folder.discard()


def resume_run(out: Path, *, iters: Optional[int] = None, device: Optional[str] = None,
               checkpoint_every: int = 1000, quiet: bool = False, callbacks: Sequence[Callback] = ()) -> Trainer:
    """Continue run folder `out` from its checkpoint to `iters` steps (default: the run's own `optim.iters`), with
    the callbacks `train_run` gives. With the run's own length the result equals the uninterrupted run bit for bit
    (its learning-rate schedule and evaluation steps read `optim.iters`); another `iters` makes it a run of that
    length from here on (a linear schedule then follows the new length, as the image trainer's `--resume` does).
    Temporary files of a killed write are removed and stats.jsonl is cut back to the checkpoint's history."""
    folder = RunFolder(out)
    trainer = folder.trainer(device=device, callbacks=[RegionMetrics(), *callbacks])
    if iters is not None:
        if iters < trainer.iteration:
            raise ValueError(f"--iters {iters} is before the checkpoint's step {trainer.iteration} in {folder.path}")
        trainer.cfg.optim.iters = iters
        trainer.cfg.validate()
    folder.prepare_resume(trainer)
    return _train_into(folder, trainer, checkpoint_every, quiet)


def _train_into(folder: RunFolder, trainer: Trainer, checkpoint_every: int, quiet: bool,
                desc: Optional[str] = None) -> Trainer:
    """Train to `optim.iters`, writing the folder at every multiple of `checkpoint_every` and at the end (and,
    on divergence, at the last finite step, which the trainer has rolled back to)."""
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be ≥ 1 (got {checkpoint_every})")
    total, start = trainer.cfg.optim.iters, trainer.iteration
    bar = None if quiet else progress(total, desc or trainer.cfg.preset, initial=start)
    try:
        while trainer.iteration < total:
            n = min(checkpoint_every - trainer.iteration % checkpoint_every, total - trainer.iteration, STATS_EVERY)
            trainer.run(n, progress_fn=(lambda i, n, s: bar.update(1)) if bar else None)
            if trainer.iteration % checkpoint_every == 0 or trainer.iteration == total:
                folder.write(trainer)
            else:                              # the trainer keeps a window of its history: stats.jsonl keeps all
                folder.write_stats(trainer)
    except TrainingDiverged:
        folder.write(trainer)
        raise
    finally:
        if bar:
            bar.close()
    if trainer.iteration == start:
        folder.write(trainer)
    return trainer


# ---- seeds as one batch (engine.seed_batch) -------------------------------------------------------------------------
ERROR_FILE = "error.txt"      # in a run folder whose run failed: the one-line reason (the sweep's and a seed batch's)


def seed_folders(out: Path, seeds) -> dict[int, Path]:
    """The run folders of `train --seeds`: seed S's is OUT/seed-S."""
    return {s: Path(out) / f"seed-{s}" for s in seeds}


def train_seed_batch(cfg: Config, folders: dict[int, Path], *, checkpoint_every: int = 1000,
                     quiet: bool = False) -> SeedBatch:
    """Train `cfg` at each seed of `folders` as one seed batch (`engine.seed_batch.SeedBatch`), each seed into its
    run folder as `train_run` would: written at every multiple of `checkpoint_every` and at the end. A seed that
    diverges stops alone with its folder at its last finite step, as `train_run` leaves a diverged run, and its
    one-line reason in ERROR_FILE (as the sweep marks a failed run); the other seeds go on. ValueError when the
    config cannot be batched (`seed_batch.refusal`). Returns the batch (`failed`, `trainer(seed)`)."""
    reason = refusal(cfg)
    if reason:
        raise ValueError(reason)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be ≥ 1 (got {checkpoint_every})")
    runs = {s: RunFolder.create(p) for s, p in folders.items()}
    batch = SeedBatch(cfg, list(folders), callbacks=[RegionMetrics()])
    return _train_batch_into(runs, batch, checkpoint_every, quiet)


def resume_seed_batch(folders: dict[int, Path], *, checkpoint_every: int = 1000, quiet: bool = False) -> SeedBatch:
    """Continue the seeds' run folders (`folders`: seed -> folder, each cut off at one checkpoint step, e.g. by a
    killed sweep) as one seed batch to their own length, as `resume_run` continues one run: each folder tidied
    (`RunFolder.prepare_resume`), then trained and written as `train_seed_batch` does. Bit for bit the batch that
    was not cut off when it held these seeds (as a killed sweep's batch does: its seeds stop at one step); other
    seeds beside them change the stacked products' rounding, not the numbers. ValueError when the folders hold
    runs of different configs (seed aside) or different steps, or a config that cannot be batched."""
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be ≥ 1 (got {checkpoint_every})")
    runs = {s: RunFolder(p) for s, p in folders.items()}
    trainers = {s: run.trainer(callbacks=[RegionMetrics()]) for s, run in runs.items()}
    first = trainers[next(iter(folders))]
    batch = SeedBatch(first.cfg, list(folders), callbacks=[RegionMetrics()], trainers=trainers)
    for seed, run in runs.items():
        run.prepare_resume(trainers[seed])
    return _train_batch_into(runs, batch, checkpoint_every, quiet)


def _train_batch_into(runs: dict[int, RunFolder], batch: SeedBatch, checkpoint_every: int,
                      quiet: bool) -> SeedBatch:
    """Train `batch` to `optim.iters`, writing each seed's folder at every multiple of `checkpoint_every` and at
    the end (a diverged seed's once, at its last finite step, with ERROR_FILE)."""
    total = batch.cfg.optim.iters
    bar = None if quiet else progress(total, f"{batch.cfg.preset} × {len(runs)} seeds", initial=batch.iteration)
    recorded: set[int] = set()

    def write() -> None:
        for seed in batch.seeds:
            runs[seed].write(batch.trainer(seed))
        for seed, message in batch.failed.items():
            if seed not in recorded:
                runs[seed].write(batch.trainers[seed])
                (runs[seed].path / ERROR_FILE).write_text(message + "\n")
                recorded.add(seed)

    start = batch.iteration
    try:
        while batch.iteration < total and batch.seeds:
            n = min(checkpoint_every - batch.iteration % checkpoint_every, total - batch.iteration)
            batch.run(n, progress_fn=(lambda i, n: bar.update(1)) if bar else None)
            write()
    finally:
        if bar:
            bar.close()
    if batch.iteration == start:
        write()
    for seed in batch.seeds:                       # a retrained seed's earlier failure is history
        (runs[seed].path / ERROR_FILE).unlink(missing_ok=True)
    return batch
