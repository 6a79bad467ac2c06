"""What the real-browser tests share: finding a Chromium for Playwright, and the rule for when none is found
(skip with one line saying how to enable it; under CI=true, fail)."""
import os
import shutil
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
