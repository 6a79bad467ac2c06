"""Benchmarks that print their figures: `python -m toyviz bench NAME|all [--quick] [--markdown PATH]`.

Each benchmark is a function of the parsed arguments registered in `BENCHES` (here, one line each); its docstring
says what its numbers mean (the markdown page quotes it). They live in bench_training (train, app, export),
bench_geometry (regions, exact, choices), seed_batch_bench (sweep), device_bench (device) and browser_bench (browser,
load: run only when named, never by `all`); what they share in bench_tools. Stage timings come from
`bench_tools.StageClock`: the library itself carries no timing code. Ratios are measured in one run.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import sys
import time
from typing import Callable, Iterator, Optional

from ..engine.atomic_files import atomic_write_text
from .bench_geometry import bench_choices, bench_exact, bench_regions
from .bench_tools import (
    MACHINE,
    Section,
    _duration,
    _quick,
    _Tee,
    check_markdown_path,
    load_average,
    machine_facts,
    markdown_page,
)
from .bench_training import bench_app, bench_export, bench_train
from .browser_bench import bench_browser, bench_load
from .device_bench import bench_device
from .seed_batch_bench import bench_sweep

BENCHES: dict[str, Callable] = {}
# Run only when named, never by `all`: they need Chromium and Playwright and serve the page themselves.
BY_NAME_ONLY: dict[str, Callable] = {}
# Seconds each benchmark takes (full, --quick) on the 2-core machine that wrote docs/PERFORMANCE.md, for the line
# a benchmark prints before it starts.
EXPECTED_SECONDS: dict[str, tuple[float, float]] = {}


def register(name: str, seconds: float, quick_seconds: float, in_all: bool = True):
    def add(fn):
        (BENCHES if in_all else BY_NAME_ONLY)[name] = fn
        EXPECTED_SECONDS[name] = (seconds, quick_seconds)
        return fn
    return add


register("train", 240, 10)(bench_train)
register("regions", 60, 10)(bench_regions)
register("app", 5, 2)(bench_app)
register("export", 15, 4)(bench_export)
register("exact", 10, 2)(bench_exact)
register("choices", 35, 12)(bench_choices)
register("sweep", 80, 15)(bench_sweep)
register("device", 30, 8)(bench_device)
register("browser", 50, 25, in_all=False)(bench_browser)
register("load", 120, 60, in_all=False)(bench_load)


def expected_time(name: str, args) -> str:
    """The line a benchmark prints before it starts: about how long it takes."""
    full, quick = EXPECTED_SECONDS[name]
    seconds = quick if _quick(args) else full
    if name == "train" and getattr(args, "steps", None):
        seconds *= args.steps / (20 if _quick(args) else 300)
    return f"bench {name}: about {_duration(seconds)} on {MACHINE}"


def run_bench(name: str, args) -> Section:
    """Run benchmark `name`, its output echoed to stdout and kept; its expected time goes first, on stderr."""
    print(expected_time(name, args), file=sys.stderr, flush=True)
    buffer = io.StringIO()
    t0 = time.perf_counter()
    fn = BENCHES.get(name) or BY_NAME_ONLY[name]
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        fn(args)
    return Section(name, inspect.getdoc(fn) or "", buffer.getvalue(), time.perf_counter() - t0)


def run_benches(names: list[str], args, markdown=None, note: Optional[str] = None,
                command: Optional[str] = None) -> list[Section]:
    """Run the named benchmarks in order; with `markdown`, write their page there once all have finished
    (atomically: a failure on the way leaves no file, and an earlier page as it was)."""
    path = check_markdown_path(markdown) if markdown is not None else None
    facts = machine_facts()
    sections = [run_bench(name, args) for name in names]
    facts.append(("load average after (1, 5, 15 min)", load_average()))
    if path is not None:
        command = command or f"python -m toyviz bench {' '.join(names) if len(names) == 1 else 'all'}" \
                             f"{' --quick' if _quick(args) else ''} --markdown {path}"
        atomic_write_text(path, markdown_page(sections, facts, command, note))
    return sections


def iter_names(what: str) -> Iterator[str]:
    """The benchmarks `what` names: one, or every one for 'all'; ValueError for an unknown name."""
    if what == "all":
        yield from BENCHES
    elif what in BENCHES or what in BY_NAME_ONLY:
        yield what
    else:
        raise ValueError(f"bench: unknown benchmark {what!r} (choose from: {', '.join([*BENCHES, *BY_NAME_ONLY])}, "
                         "all)")
