"""The page in a real browser, for the browser benchmarks and tests: find a Chromium, serve `app.py` headless on a
free port, open Playwright pages on it, press Play and count the distinct pictures that reach the screen.

Counting: the page's picture is an `<img>` whose `src` is the picture itself (an inline data: URL), so a new `src`
is a new picture. A `requestAnimationFrame` loop in the page records each `src` the moment the image has decoded
(`complete` with a natural width): what the screen can show at the next paint, not what the server sent. A
wrapper around the page's websocket counts the distinct pictures that arrived in the browser at all, so a picture
lost on the way can be placed: before the browser (the server dropped it) or in it (superseded before it was
drawn). The page's own update rate comes from its status caption ("playing · step N of M"): steps trained over
the window.

Playwright is imported only when a browser is launched (the `dev` extra brings it).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[2]          # the repository: app.py lives there, not in the package
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]   # containers: small /dev/shm
PICTURE = '[data-testid="stMain"] [data-testid="stImage"] img'
ENABLE = "apt-get install chromium (Debian/Ubuntu), or `playwright install chromium`"
WAIT_MS = 90_000                     # generous: the first picture imports torch and rasterizes 256²


def playwright_entry():
    """Playwright's `sync_playwright`, or None when it is not installed (pip install -e '.[dev]')."""
    try:
        from playwright.sync_api import sync_playwright as sp
    except ImportError:
        return None
    return sp


def find_chromium() -> Optional[str]:
    """$TOYVIZ_CHROMIUM, else `chromium` on PATH, else Playwright's own download (`playwright install chromium`)."""
    exe = os.environ.get("TOYVIZ_CHROMIUM") or shutil.which("chromium")
    sp = playwright_entry()
    if exe or sp is None:
        return exe
    try:
        with sp() as pw:
            bundled = pw.chromium.executable_path
    except Exception:                                 # no driver, or no browser downloaded: nothing found
        return None
    return bundled if bundled and Path(bundled).is_file() else None


def missing(chromium: Optional[str]) -> Optional[str]:
    """Why no browser can be driven here (None when one can)."""
    if playwright_entry() is None:
        return "Playwright is not installed (pip install -e '.[dev]')"
    return "no Chromium found" if chromium is None else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The live-run cap for a page a test or benchmark serves: Streamlit keeps a closed tab's session (and so its live
# run) for server.disconnectedSessionTTL (120 s), so pages opened one after another would meet the default cap
# (page.live_runs) that only tests/test_browser_classroom.py is about.
MANY_RUNS = {"TOYVIZ_MAX_RUNS": "64"}


@contextlib.contextmanager
def serve_page(log_path, app: Path = ROOT / "app.py", timeout: float = 60.0,
               env: Optional[dict] = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run app.py` headless on a free local port (with `env` added to its environment), its output in
    `log_path`; yields (url, process) once
    `/_stcore/health` answers, and stops the server on exit. RuntimeError (with the log's tail) when it exits
    early or is not healthy within `timeout` seconds."""
    if not app.is_file():
        raise RuntimeError(f"{app} not found: the page is served from a clone of the repository")
    port = free_port()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
             "--server.fileWatcherType", "none", "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false"],
            cwd=app.parent, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{Path(log_path).read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy after {timeout:.0f} s:\n"
                                   f"{Path(log_path).read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# Records each new picture once it has decoded; window.__toyviz holds the distinct srcs and their arrival times.
_WATCH = """sel => {
  const w = window.__toyviz = {seen: new Set(), times: [], last: null, on: false};
  const tick = () => {
    const img = document.querySelector(sel);
    if (w.on && img && img.complete && img.naturalWidth > 0 && img.currentSrc !== w.last) {
      w.last = img.currentSrc;
      if (!w.seen.has(w.last)) { w.seen.add(w.last); w.times.push(performance.now()); }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
# Records each distinct picture that arrives over the page's websocket, before the frontend renders anything: the
# pictures travel inline as data: URLs inside Streamlit's binary messages; each is keyed by its length and a hash
# of its whole base64 text (consecutive pictures share long stretches: titles, axes, the panels' top rows).
# Installed before the page loads (an init script), so it wraps the socket Streamlit opens; window.__toyvizWire
# holds the keys.
_WIRE = r"""(() => {
  const w = window.__toyvizWire = {seen: new Set(), on: false};
  const Native = window.WebSocket, marker = "data:image/jpeg;base64,";
  const base64 = c => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 47 && c <= 57) || c === 43 || c === 61;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", e => {
        if (!w.on || !(e.data instanceof ArrayBuffer)) return;
        const bytes = new Uint8Array(e.data), text = new TextDecoder("latin1").decode(bytes);
        for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + 1)) {
          let j = i + marker.length, h = 2166136261;
          for (; j < bytes.length && base64(bytes[j]); j++) h = Math.imul(h ^ bytes[j], 16777619);
          w.seen.add(`${j - i}:${h >>> 0}`);
        }
      });
    }
  };
})();"""
_STEP = re.compile(r"(?:playing|paused|snapshot) · step (\d+)")


def shown_step(page) -> int:
    """The step of the page's status caption ("playing · step N of M")."""
    text = page.locator('[data-testid="stMain"]').inner_text(timeout=WAIT_MS)
    m = _STEP.search(text)
    if m is None:
        raise RuntimeError("the page shows no 'playing · step N' caption")
    return int(m.group(1))


def open_page(browser_or_context, url: str, query: str = "", viewport=(1440, 900)):
    """A new page on `url` + `query` (e.g. "?resolution=256"), waited for until its first picture shows."""
    page = browser_or_context.new_page()
    page.add_init_script(_WIRE)
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    page.goto(url + "/" + query)
    page.locator(PICTURE).first.wait_for(timeout=WAIT_MS)
    return page


def load_preset(page, name: str) -> None:
    """Choose preset `name` in the Configuration expander and load it (a new run)."""
    page.get_by_text("Configuration", exact=True).click()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="preset").click()
    page.get_by_role("option", name=name, exact=True).click()
    page.get_by_role("button", name="Load preset (a new run)").click()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=WAIT_MS)
    page.get_by_text("Configuration", exact=True).click()          # closed again: the picture keeps its place


@dataclass
class Count:
    pictures: int          # distinct pictures decoded in the browser during the window
    seconds: float         # the window
    steps: int             # training steps the page took during the window
    arrived: int = 0       # distinct pictures that reached the browser over the websocket meanwhile

    @property
    def per_second(self) -> float:
        return self.pictures / self.seconds


def start_watching(page) -> None:
    page.evaluate(_WATCH, PICTURE)


def play(page) -> None:
    """Press Play and wait until the page says it is playing."""
    page.get_by_role("button", name="Play", exact=True).click()
    page.get_by_text("playing · step").first.wait_for(timeout=WAIT_MS)


def count_window(pages, seconds: float) -> list[Count]:
    """Count, for each page, the distinct pictures that decode during the same `seconds` (start_watching must
    have run on each). The browsers run on their own meanwhile: this process only sleeps."""
    step0 = [shown_step(p) for p in pages]
    for p in pages:
        p.evaluate("sel => { const w = window.__toyviz; w.seen.clear(); w.times.length = 0; "
                   "w.last = document.querySelector(sel)?.currentSrc ?? null; w.on = true; "
                   "const wire = window.__toyvizWire; if (wire) { wire.seen.clear(); wire.on = true; } }", PICTURE)
    t0 = time.perf_counter()
    time.sleep(seconds)
    counts = [p.evaluate("() => { const w = window.__toyviz, wire = window.__toyvizWire; w.on = false; "
                         "if (wire) wire.on = false; return [w.seen.size, wire ? wire.seen.size : 0]; }")
              for p in pages]
    elapsed = time.perf_counter() - t0
    return [Count(n, elapsed, shown_step(p) - s0, arrived)
            for (n, arrived), p, s0 in zip(counts, pages, step0)]


def pause(page) -> None:
    page.get_by_role("button", name="Pause", exact=True).click()
