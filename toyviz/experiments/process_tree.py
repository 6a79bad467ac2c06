"""Resident memory and CPU time of a process and all its descendants, read from Linux's /proc (the load benchmark
measures the page server and the browsers with it). Elsewhere every figure is None."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> Optional[list[str]]:
    """/proc/PID/stat's fields after the command name (which may hold spaces), or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def descendants(root: int) -> list[int]:
    """`root` and every process below it (by parent pid), as /proc lists them now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))   # fields[1]: the parent pid
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def tree_rss_mib(root: int) -> Optional[float]:
    """Resident memory of `root` and its descendants, MiB (shared pages counted once per process)."""
    total = 0
    for pid in descendants(root):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
        except (OSError, IndexError, ValueError):
            continue                                  # gone meanwhile
    return total / 1024 if total else None


def cpu_seconds(pids) -> float:
    """User + system CPU seconds the processes `pids` have used so far (their own, not their waited-for children)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])    # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


class PeakSampler:
    """`with PeakSampler(pid) as s:` samples the tree's resident memory every `every` seconds; `s.peak` (MiB)."""

    def __init__(self, root: int, every: float = 0.25):
        self.root, self.every, self.peak = root, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mib(self.root) or 0.0)
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
