"""What the real-browser tests share: the library's Chromium finder (toyviz.experiments.browser, which the browser
benchmarks use too) and the rule for when none is found (skip with one line saying how to enable it; under
CI=true, fail)."""
import os

from toyviz.experiments.browser import ENABLE, find_chromium, missing, playwright_entry  # noqa: F401

sync_playwright = playwright_entry()                  # None without the `dev` extra (pip install -e '.[dev]')
IN_CI = os.environ.get("CI", "").strip().lower() == "true"
