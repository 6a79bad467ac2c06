"""Image run folders: `config.json`, `stats.jsonl`, `checkpoint.pt`, `classifier.pt`, `samples_{step:06d}.png`;
and the training loop that fills one (rank 0 writes; every rank trains), resuming exactly from its checkpoint.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..engine.run_folder import RunFolder
from .config import ImageConfig
from .distributed import DistContext
from .trainer import ImageTrainer


def grid_png(images: torch.Tensor, path, pad: int = 2) -> None:
    """Images (N, C, S, S) in [−1, 1] tiled in a near-square grid, written to a PNG by temp name + rename."""
    import imageio.v3 as iio
    n, c, s, _ = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()   # (N, S, S, C)
    grid = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[pad + r * (s + pad):pad + r * (s + pad) + s, pad + q * (s + pad):pad + q * (s + pad) + s] = x[i]
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    iio.imwrite(tmp, grid[..., 0] if c == 1 else grid, extension=".png")
    tmp.replace(path)


class ImageRunFolder(RunFolder):
    """The toy's run folder (same files, same atomic writes) plus the classifier cache and the sample grids."""

    CLASSIFIER = "classifier.pt"

    def config(self) -> ImageConfig:
        return ImageConfig.from_json(self.path / self.CONFIG)

    def samples(self) -> list[tuple[int, Path]]:
        """(step, path) of every sample grid, by step."""
        out = []
        for f in self.path.glob("samples_*.png"):
            digits = f.stem.split("_", 1)[1]
            if digits.isdigit():
                out.append((int(digits), f))
        return sorted(out)

    def write_samples(self, trainer: ImageTrainer) -> Path:
        path = self.path / f"samples_{trainer.iteration:06d}.png"
        grid_png(trainer.grid_images(), path)
        return path

    def trainer(self, device=None, dist=None, iters=None) -> ImageTrainer:
        ck = self.path / self.CHECKPOINT
        if not ck.exists():
            raise ValueError(f"{self.path} is not an image run folder: {self.CHECKPOINT} is missing")
        return ImageTrainer.load(ck, device=device, dist=dist, classifier_path=self.path / self.CLASSIFIER,
                                 iters=iters)


def train_run(cfg: ImageConfig, out, *, resume: bool = False, dist: DistContext | None = None,
              on_step: Optional[Callable[[ImageTrainer], None]] = None) -> ImageTrainer:
    """Train to `cfg.optim.iters` into run folder `out` (from its checkpoint with `resume`). Sample grids every
    `eval.metrics_every` steps and at the end; config, stats and checkpoint every `eval.checkpoint_every` and at
    the end. `on_step(trainer)` after every step (the command line's progress bar)."""
    dist = dist or DistContext()
    folder = ImageRunFolder(out)
    if resume:
        trainer = folder.trainer(device=cfg.device, dist=dist, iters=cfg.optim.iters)
    else:                                   # data and nets first: a bad data path writes nothing
        trainer = ImageTrainer(cfg, dist, classifier_path=folder.path / folder.CLASSIFIER)
        if dist.is_main:
            ImageRunFolder.create(out)
    dist.barrier()
    e, total = trainer.cfg.eval, trainer.cfg.optim.iters
    if dist.is_main and trainer.iteration == 0:
        folder.write_samples(trainer)
    while trainer.iteration < total:
        trainer.step()
        if on_step is not None:
            on_step(trainer)
        it = trainer.iteration
        if dist.is_main and (it % e.metrics_every == 0 or it == total):
            folder.write_samples(trainer)
        if dist.is_main and (it % e.checkpoint_every == 0 or it == total):
            folder.write(trainer)
    if dist.is_main and not (folder.path / folder.CHECKPOINT).exists():
        folder.write(trainer)
    dist.barrier()
    return trainer
