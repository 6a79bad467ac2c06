"""Run folders: `config.json`, `stats.jsonl`, `checkpoint.pt` (with the snapshots to re-render any frame).

config.json and checkpoint.pt are written to a temporary name (`.tmp-*`) and renamed, so a failure never leaves a
half-written file. stats.jsonl is written whole once, then appended (the trainer keeps only a window of its history
in memory): an append that fails is cut back, and readers skip a last line a killed process cut short. A process
killed while writing leaves a temporary file, and stats.jsonl (written before the checkpoint) may run ahead of the
checkpoint; `prepare_resume` tidies both, cutting stats.jsonl back to the checkpoint's step.

A folder is one run. A new run (`RunFolder.staged(out)`, what `train` uses) is written into a temporary sibling
folder `.tmp-run-*` and swapped in whole at its first complete write (config, stats, checkpoint): until then OUT
holds the older run untouched (or does not exist), and a failure before it removes the sibling, so nothing is
left; an older run's other entries (tensorboard/, error.txt) are moved into the new folder at the swap. The swap is
two renames (old OUT aside, the new folder in); a process killed between them leaves OUT absent and both runs in
`.tmp-run-*` siblings, never a mixture. Later writes go to OUT file by file, each file of the same run.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import torch

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
        self.target: Path | None = None          # where a staged run is swapped in at its first write
        self.written: int | None = None          # the last step in stats.jsonl written through this object

    @classmethod
    def staged(cls, path) -> "RunFolder":
        """A new run for `path`, written into a temporary sibling folder until its first complete `write`, then
        swapped in whole (see the module docstring). `discard()` removes it when training fails before that."""
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise ValueError(f"{p} exists and is not a folder")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".tmp-run-{p.name}-"))
        except OSError as e:
            raise ValueError(f"cannot create the run folder {p}: {e.strerror}") from None
        folder = cls(stage)
        folder.target = p
        return folder

    def discard(self) -> None:
        """Remove a staged run that was never swapped in (a failure before its first write)."""
        if self.target is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    def _swap_in(self) -> None:
        target, new = self.target, self.path
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-run-{target.name}-old-"))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(new, target)
        self.path, self.target = target, None
        if old is not None:
            keep = {self.CONFIG, self.STATS, self.CHECKPOINT}
            for entry in old.iterdir():
                if entry.name not in keep and not entry.name.startswith(".tmp-") \
                        and not (target / entry.name).exists():
                    os.replace(entry, target / entry.name)
            shutil.rmtree(old, ignore_errors=True)

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
        if self.target is not None:
            self._swap_in()

    def write_stats(self, trainer) -> None:
        """stats.jsonl: the first write of this folder object writes the trainer's whole history (atomically);
        later ones append the steps after the last one written, since the trainer keeps only a window of its
        history in memory (`phases.HISTORY_WINDOW`). An append that fails is cut back, so no half line stays."""
        path = self.path / self.STATS
        if self.written is None:
            atomic_write_text(path, "".join(json.dumps(_json_safe(s)) + "\n" for s in trainer.history))
        else:
            new = [s for s in trainer.history if s.get("step", 0) > self.written]
            with open(path, "a") as f:
                size = f.tell()
                try:
                    f.write("".join(json.dumps(_json_safe(s)) + "\n" for s in new))
                    f.flush()
                except BaseException:
                    f.truncate(size)
                    raise
        self.written = trainer.iteration

    def prepare_resume(self, trainer) -> None:
        """Before continuing the run from its checkpoint (loaded into `trainer`): remove the temporary files a
        killed write left, and cut stats.jsonl back to the checkpoint's step (it may run ahead of it); later
        writes append to it."""
        for tmp in self.path.glob(".tmp-*"):
            tmp.unlink(missing_ok=True)
        path = self.path / self.STATS
        kept = []
        if path.exists():
            with open(path) as f:
                for line in f:
                    if not line.endswith("\n"):
                        break                                        # a line cut short by a killed append
                    try:
                        step = json.loads(line).get("step", 0)
                    except ValueError:
                        break
                    if step > trainer.iteration:
                        break
                    kept.append(line)
        if kept or not trainer.history:
            atomic_write_text(path, "".join(kept))
            self.written = trainer.iteration
        else:                                                        # no stats file: the checkpoint's history
            self.written = None
            self.write_stats(trainer)

    def config(self) -> Config:
        return Config.from_json(self.path / self.CONFIG)

    def stats(self) -> list[dict]:
        """Every step's statistics; a last line cut short (a process killed while appending) is left out."""
        with open(self.path / self.STATS) as f:
            return [json.loads(line) for line in f if line.strip() and line.endswith("\n")]

    def checkpoint_step(self) -> int | None:
        """The step checkpoint.pt holds, read without loading its tensors (memory-mapped); None when there is no
        readable checkpoint (`trainer()` then says what is wrong)."""
        try:
            ck = torch.load(self.path / self.CHECKPOINT, map_location="cpu", weights_only=True, mmap=True)
        except Exception:                # missing, cut short or not a checkpoint: the same answer, no step to use
            return None
        step = ck.get("iteration") if isinstance(ck, dict) else None
        return step if isinstance(step, int) and not isinstance(step, bool) else None

    def trainer(self, device=None, callbacks: Sequence[Callback] = ()) -> Trainer:
        """The trainer at the end of the run, its snapshots included."""
        ck = self.path / self.CHECKPOINT
        if not ck.exists():
            raise ValueError(f"{self.path} is not a run folder: {self.CHECKPOINT} is missing")
        return Trainer.load(ck, device=device, callbacks=callbacks)
