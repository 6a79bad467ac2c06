"""Run folders: `config.json`, `stats.jsonl`, `checkpoint.pt` (with the snapshots to re-render any frame).

Every file is written to a temporary name (`.tmp-*`) and renamed, so a failure never leaves a half-written file.
A process killed while writing leaves the temporary file, and stats.jsonl (written before the checkpoint) may run
ahead of the checkpoint; `prepare_resume` tidies both, the checkpoint's history being the record.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

from .atomic_files import atomic_write_text
from .config import Config
from .trainer import Callback, Trainer


def _json_safe(stats: dict) -> dict:
    """JSON has no inf/NaN: write them as null."""
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in stats.items()}


class RunFolder:
    """A folder holding one run. `create` refuses a path that is a file; `write(trainer)` (re)writes it all."""

    CONFIG, STATS, CHECKPOINT = "config.json", "stats.jsonl", "checkpoint.pt"

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def create(cls, path) -> "RunFolder":
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise ValueError(f"{p} exists and is not a folder")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create the run folder {p}: {e.strerror}") from None
        if not os.access(p, os.W_OK):
            raise ValueError(f"the run folder {p} is not writable")
        return cls(p)

    def write(self, trainer) -> None:
        trainer.cfg.to_json(self.path / self.CONFIG)
        self.write_stats(trainer)
        trainer.save(self.path / self.CHECKPOINT)

    def write_stats(self, trainer) -> None:
        atomic_write_text(self.path / self.STATS,
                          "".join(json.dumps(_json_safe(s)) + "\n" for s in trainer.history))

    def prepare_resume(self, trainer) -> None:
        """Before continuing the run from its checkpoint (loaded into `trainer`): remove the temporary files a
        killed write left, and rewrite stats.jsonl from the checkpoint's history (it may run ahead of it)."""
        for tmp in self.path.glob(".tmp-*"):
            tmp.unlink(missing_ok=True)
        self.write_stats(trainer)

    def config(self) -> Config:
        return Config.from_json(self.path / self.CONFIG)

    def stats(self) -> list[dict]:
        with open(self.path / self.STATS) as f:
            return [json.loads(line) for line in f if line.strip()]

    def trainer(self, device=None, callbacks: Sequence[Callback] = ()) -> Trainer:
        """The trainer at the end of the run, its snapshots included."""
        ck = self.path / self.CHECKPOINT
        if not ck.exists():
            raise ValueError(f"{self.path} is not a run folder: {self.CHECKPOINT} is missing")
        return Trainer.load(ck, device=device, callbacks=callbacks)
