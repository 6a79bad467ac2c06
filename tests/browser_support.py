"""What the real-browser tests share: finding a Chromium for Playwright, the rule for when none is found (skip
with one line saying how to enable it; under CI=true, fail), and a `streamlit run app.py` server on a free port."""
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

try:
    from playwright.sync_api import sync_playwright
except ImportError:                                   # the `dev` extra brings it: pip install -e '.[dev]'
    sync_playwright = None

IN_CI = os.environ.get("CI", "").strip().lower() == "true"
ENABLE = "apt-get install chromium (Debian/Ubuntu), or `playwright install chromium`"


def find_chromium() -> str | None:
    """$TOYVIZ_CHROMIUM, else `chromium` on PATH, else Playwright's own download (`playwright install chromium`)."""
    exe = os.environ.get("TOYVIZ_CHROMIUM") or shutil.which("chromium")
    if exe or sync_playwright is None:
        return exe
    try:
        with sync_playwright() as pw:
            bundled = pw.chromium.executable_path
    except Exception:                                 # no driver, or no browser downloaded: nothing found
        return None
    return bundled if bundled and Path(bundled).is_file() else None


def missing(chromium: str | None) -> str | None:
    """Why no browser test can run here (None when one can)."""
    if sync_playwright is None:
        return "Playwright is not installed (pip install -e '.[dev]')"
    return "no Chromium found" if chromium is None else None


ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(log: Path, env: dict | None = None):
    """`streamlit run app.py` headless on a free port (with `env` added to the environment), its output in `log`;
    yields its URL once healthy, and stops it at the end."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.fileWatcherType", "none", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            assert proc.poll() is None, f"streamlit exited early:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"streamlit not healthy after 60 s:\n{log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
