"""What the benchmarks share: timing that holds on a shared, noisy machine (best-of rounds, alternated rounds,
per-round ratios), timing on an accelerator (`--device`: synchronized clocks, the device's name), `StageClock`
(times library stages by wrapping them only while a benchmark runs), the options every benchmark reads, and the
markdown page `bench all --markdown` writes."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import platform
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .. import __version__
from ..engine.config import device_problem
from ..engine.graph_step import GraphStep

MACHINE = "a 2-core machine"     # where docs/PERFORMANCE.md's expected times were taken


# ---- timing ---------------------------------------------------------------------------------------------------------
def _rate(fn, steps: int, clock=time.perf_counter, rounds: int = 3, warmup: int = 10, bar=None) -> float:
    """Steps per second of fn() (after a short warm-up), best of `rounds` rounds to damp a shared machine.
    `clock=time.process_time` counts this process's CPU time only (robust when other jobs share the cores);
    `bar` (a progress bar) advances by one per call."""
    tick = bar.update if bar is not None else (lambda n: None)
    for _ in range(warmup):
        fn()
        tick(1)
    best = 0.0
    for _ in range(rounds):
        t0 = clock()
        for _ in range(steps):
            fn()
        best = max(best, steps / (clock() - t0))
        tick(steps)
    return best


def _rounds(fns, rounds: int, clock=time.process_time) -> np.ndarray:
    """(rounds, len(fns)) seconds per call, the fns called alternately round after round (after one warm-up call
    each): within a round they see the same machine load."""
    for fn in fns:
        fn()
    times = np.empty((rounds, len(fns)))
    for r in range(rounds):
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            times[r, i] = clock() - t0
    return times


def max_stat_difference(first, second, steps: int = 20) -> float:
    """Max |a − b| over every statistic of `steps` steps of two trainers stepped side by side (the same keys)."""
    diff = 0.0
    for _ in range(steps):
        a, b = first.step(), second.step()
        diff = max(diff, max(abs(a[k] - b[k]) for k in a))
    return diff


def graph_row(make_graph, make_eager, dev: torch.device, timing: dict, label: str = "trainer") -> tuple:
    """(variant, steps/s, max |Δ| over 20 steps, error) of the trainers `make_graph()` builds (optim.cuda_graph):
    captured on CUDA and compared with the same graph-ready step run eagerly, graph-ready but eager elsewhere and
    compared with `make_eager()`'s ordinary step. A failure (a capture torch refuses) becomes the row's error and
    NaN figures, so the other rows of a benchmark still print."""
    captures = dev.type == "cuda"
    variant = f"{label}, {'CUDA graph' if captures else 'graph-ready eager'}"
    try:
        if captures:
            reference = make_graph()
            reference.graph_step = GraphStep(reference, capture=False)
        else:
            reference = make_eager()
        diff = max_stat_difference(reference, make_graph())
        return variant, _rate(make_graph().step, **timing), diff, None
    except Exception as e:         # reported in the table, with its type: this is a measurement, not training
        return variant, float("nan"), None, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


def _interleaved(fns, rounds: int, clock=time.process_time) -> list[float]:
    """Seconds per call of each fn, min over alternated rounds (`_rounds`), so that their ratio holds even when
    other jobs share the cores."""
    return list(_rounds(fns, rounds, clock).min(0))


def _ratio(times: np.ndarray, num: int, den: int) -> float:
    """Median over rounds of fn num's time over fn den's time in the same round: on a machine whose speed drifts
    (a shared VM) steadier than the ratio of the two minima."""
    return float(np.median(times[:, num] / times[:, den]))


# ---- devices --------------------------------------------------------------------------------------------------
def bench_device_of(args) -> torch.device:
    """The `--device` a benchmark runs on (cpu when absent); ValueError naming the problem for a device this torch
    does not have."""
    name = getattr(args, "device", None) or "cpu"
    problem = device_problem(name)
    if problem is None:
        try:
            return torch.device(name)
        except RuntimeError:
            problem = f"device {name!r}: not a torch device (cpu, cuda, cuda:N, mps)"
    raise ValueError(f"--device: {problem}")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_clock(device) -> Callable[[], float]:
    """The clock the benchmarks time `device` with: this process's CPU time on the CPU (robust on a shared machine,
    see `_rounds`), else wall time read after synchronizing the device (its kernels run asynchronously)."""
    device = torch.device(device)
    if device.type == "cpu":
        return time.process_time

    def clock() -> float:
        synchronize(device)
        return time.perf_counter()
    return clock


def device_name(device) -> str:
    """The device in words: the GPU's name (`torch.cuda.get_device_name`), or the CPU's model and torch threads."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} = {torch.cuda.get_device_name(device)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    if device.type == "mps":
        return f"mps = Apple GPU (torch {torch.__version__})"
    return f"cpu = {cpu_model()} ({torch.get_num_threads()} torch threads, torch {torch.__version__})"


def device_seconds(fn, device: torch.device, rounds: int, warmup: int = 2) -> float:
    """Median seconds per call of fn() on `device` (`device_clock`), after `warmup` calls (caches, allocator,
    kernels' first launches)."""
    clock = device_clock(device)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return float(np.median(times))


def _best_seconds(fn, rounds: int = 3):
    """(best CPU seconds of this process over `rounds` calls, the last result): robust on a shared machine."""
    best, out = float("inf"), None
    for _ in range(rounds):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


class StageClock:
    """Wall and CPU seconds spent in named stages. `patch` swaps a library function for a timed wrapper for the
    duration of a `with` block and puts the original back after, so the library carries no timing code."""

    def __init__(self):
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str):
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - w0
            self.cpu[name] += time.process_time() - c0

    def timed(self, name: str, fn: Callable) -> Callable:
        """fn, its calls timed under `name`."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)
        return call

    def timed_iter(self, name: str, fn: Callable) -> Callable:
        """fn returning an iterator (a generator does its work in next(), not in the call): each item timed."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with self.stage(name):
                it = iter(fn(*args, **kwargs))
            while True:
                with self.stage(name):
                    item = next(it, StopIteration)
                if item is StopIteration:
                    return
                yield item
        return call

    def timed_methods(self, name: str, factory: Callable, methods: tuple[str, ...]) -> Callable:
        """factory, the named methods of each object it returns timed under `name`."""
        @functools.wraps(factory)
        def make(*args, **kwargs):
            obj = factory(*args, **kwargs)
            for m in methods:
                setattr(obj, m, self.timed(name, getattr(obj, m)))
            return obj
        return make

    @contextlib.contextmanager
    def patch(self, owner, attribute: str, wrap: Callable[[Callable], Callable]):
        """owner.attribute replaced by wrap(original) inside the block, restored after (also on an error)."""
        original = getattr(owner, attribute)
        setattr(owner, attribute, wrap(original))
        try:
            yield
        finally:
            setattr(owner, attribute, original)


def _steps(args) -> int:
    steps = getattr(args, "steps", None)
    return steps if steps else (20 if _quick(args) else 300)


def _quick(args) -> bool:
    return bool(getattr(args, "quick", False))




def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


@dataclass
class Section:
    """One benchmark's part of the markdown page."""
    name: str
    doc: str          # what the numbers mean: the benchmark's docstring
    output: str       # what it printed
    seconds: float    # how long it took, wall time


class _Tee(io.TextIOBase):
    """A text stream writing to several others: the terminal and the buffer of the markdown page."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def check_markdown_path(path) -> Path:
    """The page's path, checked before any benchmark runs: its folder exists and it is not a folder."""
    path = Path(path)
    if path.suffix.lower() != ".md":
        raise ValueError(f"--markdown: expected a .md file (got {str(path)!r})")
    if not path.parent.is_dir():
        raise ValueError(f"--markdown: the folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"--markdown: {str(path)!r} is a folder")
    return path


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine_facts() -> list[tuple[str, str]]:
    """(label, value) rows of the page's header: when, on what, with which versions."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return [("date", datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")), ("CPU", cpu_model()),
            ("cores", f"{cores}" + (f" ({usable} usable by this process)" if usable != cores else "")),
            ("torch", torch.__version__), ("numpy", np.__version__), ("toyviz", __version__),
            ("python", platform.python_version()), ("load average before (1, 5, 15 min)", load_average())]


def load_average() -> str:
    """The system's load averages: other jobs on the cores while a benchmark runs slow it down."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def markdown_page(sections: list[Section], facts: list[tuple[str, str]], command: str,
                  note: Optional[str] = None) -> str:
    """The page: a header of facts about the run, then one section per benchmark (its meaning, then its output)."""
    lines = ["# toyviz performance", "",
             f"Written by `{command}`; run it again to refresh this page. The figures are of the machine below; "
             f"ratios taken within one run carry over to other machines better than times do.", "",
             "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts)]
    if note:
        lines += ["", f"**Note.** {note}"]
    for s in sections:
        lines += ["", f"## bench {s.name}", "", f"*What the numbers mean.* {' '.join(s.doc.split())}", "",
                  "```text", s.output.rstrip("\n"), "```", "", f"({_duration(s.seconds)} wall time)"]
    return "\n".join(lines) + "\n"
