"""A run folder filled by training, with the progress bar every long command shows; shared by `train`, `sweep`
and `compare`. The trainer logs the region numbers too (`RegionMetrics`), as every run folder has."""
from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ..engine.config import Config
from ..engine.run_folder import RunFolder
from ..engine.trainer import Trainer
from ..geometry.metrics import RegionMetrics


def progress(total, desc: str, unit: str = "step"):
    """The progress bar every long command shows (on stderr)."""
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr, mininterval=0.5)


def train_run(cfg: Config, out: Path, *, checkpoint_every: int = 1000, quiet: bool = False) -> Trainer:
    """Train `cfg.optim.iters` steps into run folder `out`, writing it every `checkpoint_every` steps and at the
    end; returns the trainer."""
    folder = RunFolder.create(out)
    trainer = Trainer(cfg, callbacks=[RegionMetrics()])
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
