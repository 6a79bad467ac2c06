"""What the real-browser tests share: the library's Chromium finder and page server (toyviz.experiments.browser,
which the browser benchmarks use too) and the rule for when none is found (skip with one line saying how to enable
it; under CI=true, fail)."""
import contextlib
import os

from toyviz.experiments.browser import ENABLE, find_chromium, missing, playwright_entry, serve_page  # noqa: F401

sync_playwright = playwright_entry()                  # None without the `dev` extra (pip install -e '.[dev]')
IN_CI = os.environ.get("CI", "").strip().lower() == "true"


@contextlib.contextmanager
def streamlit_server(log, env: dict | None = None):
    """The page served headless on a free port (`serve_page`, with `env` added to its environment); yields its URL."""
    with serve_page(log, env=env) as (url, _):
        yield url
