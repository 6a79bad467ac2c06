"""TensorBoard output: `TensorBoardLog`, the trainer callback behind `toyviz train --tensorboard` (every step's
numbers as scalars, the region map and D(x) as images every `viz.snapshot_every` steps, the config as text and
hyperparameters), and `sweep_to_tensorboard`, a sweep's evaluated curves as one TensorBoard run per label and seed
for `toyviz report --tensorboard`. stats.jsonl stays the record the page and `report` read; these are copies.

Needs the `tensorboard` package (`pip install tensorboard`, the `tensorboard` extra), imported only here.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

from ..draw.frames import prob_rgb, region_rgb
from ..engine.config import Config
from ..engine.trainer import Callback
from ..geometry.raster import raster_of
from .report import CORE_KEYS, Run

METRICS = CORE_KEYS                          # the hparams plugin's metric columns (scalar tags of the run)


def require_tensorboard():
    """torch's SummaryWriter class, or a ValueError saying what to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError("tensorboard: the `tensorboard` package is not installed (pip install tensorboard, "
                         "or pip install 'toyviz[tensorboard]')") from None
    return SummaryWriter


def flat_config(cfg: Config) -> dict:
    """The config as dotted keys -> TensorBoard hyperparameter values (numbers, booleans, strings; lists as
    JSON, None as 'None'), so runs can be compared by any field."""
    out = {}

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            elif isinstance(v, (bool, int, float, str)):
                out[prefix + k] = v
            else:
                out[prefix + k] = json.dumps(v)
    walk(cfg.to_dict(), "")
    return out


def write_config(writer, cfg: Config, label: Optional[str] = None) -> None:
    """The config as text (a JSON block) and as hyperparameters, with its seed (and `label`) named up front."""
    from torch.utils.tensorboard.summary import hparams
    head = (f"label **{label}**, " if label else "") + f"preset **{cfg.preset}**, seed **{cfg.seed}**"
    writer.add_text("config", f"{head}\n\n```json\n{json.dumps(cfg.to_dict(), indent=2)}\n```", 0)
    hp = flat_config(cfg)
    if label is not None:
        hp["label"] = label
    for summary in hparams(hp, {k: 0.0 for k in METRICS}):
        writer.file_writer.add_summary(summary)


class TensorBoardLog(Callback):
    """Writes a training run to TensorBoard event files in `logdir`: each step's numbers as scalars under their
    stats.jsonl keys (`loss/d`, `eval/modes`, ...; a value that is not finite, such as the reverse KL with no
    high-quality sample, is left out as stats.jsonl writes it null), and at step 0 and every
    `viz.snapshot_every` steps two images: D's linear regions (the region map of all layers together, in the
    page's hashed colours) and D(x) (red = fake, blue = real, the 0.5 level black), on a `resolution`² grid
    (default viz.resolution). The folder is created at the first step; `close()` (or a `with` block) flushes it.
    """

    def __init__(self, logdir, resolution: Optional[int] = None, flush_secs: int = 10):
        self.SummaryWriter = require_tensorboard()       # fails now, before training, if not installed
        self.logdir, self.resolution, self.flush_secs = Path(logdir), resolution, flush_secs
        self.writer = None

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def after_step(self, trainer, stats: dict[str, float]) -> None:
        step = int(stats.get("step", trainer.iteration))
        if self.writer is None:
            self.writer = self.SummaryWriter(str(self.logdir), flush_secs=self.flush_secs)
            write_config(self.writer, trainer.cfg)
            if step == 1 and trainer.snapshots and trainer.snapshots[0]["iteration"] == 0:
                self.images(trainer, 0, snapshot=0)            # the untrained nets, as the first snapshot holds
        for k, v in stats.items():
            if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)
        every = trainer.cfg.viz.snapshot_every
        if step % every == 0 or step == trainer.cfg.optim.iters:
            self.images(trainer, step)

    def images(self, trainer, step: int, snapshot: Optional[int] = None) -> None:
        """The region map of all D's layers and D(x), of the current nets (or of a stored `snapshot`)."""
        r = raster_of(trainer, self.resolution, snapshot=snapshot, grad_resolution=0, mosaic=False)
        depth = len(r.ids)
        view = _RasterView(r, trainer.cfg.loss in ("ns", "minimax"))
        self.writer.add_image(f"maps/regions, layers 1-{depth}", region_rgb(view, "regions"), step,
                              dataformats="HWC")
        self.writer.add_image("maps/D(x)", prob_rgb(view), step, dataformats="HWC")


class _RasterView:
    """What `region_rgb` and `prob_rgb` read of a FrameData: its raster and whether D is a probability."""

    def __init__(self, raster, probability: bool):
        self.raster, self.probability = raster, probability


def sweep_to_tensorboard(runs: list[Run], out) -> list[Path]:
    """One TensorBoard run per (label, seed) in `out/<label>/seed<N>/`: the evaluated curves a report draws, the
    config as text and hyperparameters. TensorBoard pointed at `out` shows the runs side by side. Returns the
    run folders written."""
    SummaryWriter = require_tensorboard()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--tensorboard {out} exists and is not a folder")
    written = []
    for r in runs:
        folder = out / r.label / f"seed{r.seed}"
        with SummaryWriter(str(folder)) as w:
            write_config(w, r.cfg, r.label)
            for key, (steps, values) in sorted(r.series.items()):
                for s, v in zip(steps, values):
                    if math.isfinite(v):
                        w.add_scalar(key, float(v), int(s))
        written.append(folder)
    return written
