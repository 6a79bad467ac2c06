"""`bench browser` and `bench load`: the page as a visitor's browser sees it (issue 16, "Smooth in the browser";
issue 20, "A classroom of browsers"), driven by `browser.py`'s harness: a real Streamlit server, headless
Chromium, Play pressed, distinct pictures counted as they decode on screen.

The page's own update rate is the steps it trained during the window over its steps per update: when the browser
shows fewer pictures than that, the difference was lost between the server's drawing and the screen (encoding,
transfer, the frontend's rerun of the other elements, decoding).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from ..engine import presets
from .bench_tools import _quick, load_average
from .browser import (
    CHROMIUM_ARGS,
    ENABLE,
    MANY_RUNS,
    count_window,
    find_chromium,
    load_preset,
    missing,
    open_page,
    pause,
    play,
    playwright_entry,
    serve_page,
    start_watching,
)
from .process_tree import PeakSampler, cpu_seconds, descendants

RESOLUTION = 256           # the page's default grid; ring8 at 256² is the heavy case
WARMUP_S = 2.0             # after Play, before counting: the first updates import and allocate


@contextlib.contextmanager
def _browser_and_page_server():
    """(url, server process, Playwright, Chromium): a headless Chromium and the page, both stopped on exit."""
    chromium = find_chromium()
    why = missing(chromium)
    if why:
        raise RuntimeError(f"bench browser needs a Chromium and Playwright: {why}; enable it with: {ENABLE}")
    with tempfile.TemporaryDirectory(prefix="toyviz-bench-") as tmp, \
            serve_page(Path(tmp) / "server.log", env=MANY_RUNS) as (url, server), playwright_entry()() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield url, server, browser
        finally:
            browser.close()


def _playing_pages(browser, url: str, n: int, preset: str):
    """`n` visitors (separate browser contexts, so separate page sessions) on `preset`, all playing."""
    contexts = [browser.new_context() for _ in range(n)]
    pages = [open_page(c, url, f"?resolution={RESOLUTION}") for c in contexts]
    for page in pages:
        if preset != presets.DEFAULT:
            load_preset(page, preset)
        start_watching(page)
    for page in pages:
        play(page)
    time.sleep(WARMUP_S)
    return contexts, pages


def _steps_per_update(page) -> int:
    return int(page.get_by_label("steps per update").input_value())


def _server_and_browser_pids(server) -> tuple[list[int], list[int]]:
    """The page server's process tree, and the other processes this one started (the browser's)."""
    server_pids = set(descendants(server.pid))
    return sorted(server_pids), [p for p in descendants(os.getpid()) if p not in server_pids and p != os.getpid()]


def bench_browser(args) -> None:
    """The page in headless Chromium, Play pressed, for the default preset and for ring8, at 256²: distinct
    pictures decoded on screen per second over a 10 s window (3 s with --quick), beside the distinct pictures
    that reached the browser over its websocket, the page's own update rate (steps trained ÷ steps per update),
    the page server's CPU per update and the browser's CPU (in cores: on a small machine the two share the
    cores). Goals: ≥ 10 visible updates/s for the default preset, ≥ 5 for ring8 at 256²."""
    seconds = 3.0 if _quick(args) else 10.0
    print(f"headless Chromium at 1440x900, grid {RESOLUTION}², {seconds:.0f} s counted after {WARMUP_S:.0f} s of "
          f"Play; load average before: {load_average()}")
    print(f"{'preset':<12}{'visible/s':>10}{'arrived/s':>10}{'page updates/s':>16}{'steps/s':>9}"
          f"{'server cpu ms/update':>22}{'browser cores':>15}")
    with _browser_and_page_server() as (url, server, browser):
        for preset in (presets.DEFAULT, "ring8"):
            contexts, pages = _playing_pages(browser, url, 1, preset)
            k = _steps_per_update(pages[0])
            server_pids, browser_pids = _server_and_browser_pids(server)
            cpu0, b0 = cpu_seconds(server_pids), cpu_seconds(browser_pids)
            count, = count_window(pages, seconds)
            cpu = cpu_seconds(server_pids) - cpu0
            browser_cores = (cpu_seconds(browser_pids) - b0) / count.seconds
            updates = count.steps / k
            per_update = f"{1000 * cpu / updates:.0f}" if updates else "-"
            print(f"{preset:<12}{count.per_second:>10.1f}{count.arrived / count.seconds:>10.1f}"
                  f"{updates / count.seconds:>16.1f}"
                  f"{count.steps / count.seconds:>9.0f}{per_update:>22}{browser_cores:>15.2f}")
            pause(pages[0])
            for c in contexts:
                c.close()
    print("arrived: distinct pictures that reached the browser over its websocket (page updates − arrived: dropped "
          "by the server; arrived − visible: superseded in the browser before it drew them)")
    print("goals: ≥ 10 visible updates/s (default preset), ≥ 5 (ring8 at 256²)")


def bench_load(args) -> None:
    """N = 1, 2, 4 visitors (separate sessions of one page server) all playing the default preset at 256²: the
    visible updates per second each one sees over a 10 s window (3 s with --quick), the server's peak resident
    memory (its whole process tree, sampled every 0.25 s from the first visitor's arrival), and the CPU the page
    server and the browsers themselves used during the window, in cores (CPU seconds ÷ seconds)."""
    seconds = 3.0 if _quick(args) else 10.0
    print(f"headless Chromium, preset {presets.DEFAULT}, grid {RESOLUTION}², {seconds:.0f} s counted; "
          f"{os.cpu_count()} CPUs; load average before: {load_average()}")
    print(f"{'N':<3}{'visible updates/s, each session':<36}{'server peak MiB':>16}{'server cores':>14}"
          f"{'browser cores':>15}")
    for n in (1, 2, 4):
        with _browser_and_page_server() as (url, server, browser), PeakSampler(server.pid) as memory:
            contexts, pages = _playing_pages(browser, url, n, presets.DEFAULT)
            server_pids, browser_pids = _server_and_browser_pids(server)
            s0, b0 = cpu_seconds(server_pids), cpu_seconds(browser_pids)
            counts = count_window(pages, seconds)
            server_cores = (cpu_seconds(server_pids) - s0) / counts[0].seconds
            browser_cores = (cpu_seconds(browser_pids) - b0) / counts[0].seconds
            for page in pages:
                pause(page)
            for c in contexts:
                c.close()
        each = " ".join(f"{c.per_second:.1f}" for c in counts)
        print(f"{n:<3}{each:<36}{memory.peak:>16.0f}{server_cores:>14.2f}{browser_cores:>15.2f}")
