"""A classroom on one page server, in real browsers: four headless Chromium sessions all playing at once against a
server capped at four live runs (TOYVIZ_MAX_RUNS=4) — no errors on any page, every session keeps updating — and a
fifth visitor gets the cap's message, not a run. Runs where `test_browser.py` runs (see tests/browser_support.py)."""
import re
import time

import pytest
from browser_support import ENABLE, IN_CI, find_chromium, missing, streamlit_server, sync_playwright

CHROMIUM = find_chromium()
MISSING = missing(CHROMIUM)
if MISSING and not IN_CI:
    pytest.skip(f"browser test: {MISSING}; enable it with: {ENABLE}", allow_module_level=True)

# each student's page is in the foreground of their own browser: keep Chromium from throttling the timers of the
# pages it considers hidden (the playing page's refresh is a browser timer)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]
SESSIONS = 4
UPDATES = 3                               # new steps each playing page must show
WAIT_MS = 120_000                         # four first pictures on two cores: generous
STEP = re.compile(r"(playing|paused) · step (\d+)")


def step_of(page) -> int:
    """The step the page's caption shows now."""
    text = page.locator('[data-testid="stCaptionContainer"]').filter(has_text=" · step ").first.inner_text()
    return int(STEP.search(text).group(2))


def test_four_sessions_play_at_once_and_a_fifth_meets_the_cap(tmp_path):
    if MISSING:
        pytest.fail(f"CI=true and {MISSING}: install it: {ENABLE}", pytrace=False)
    with streamlit_server(tmp_path / "server.log", env={"TOYVIZ_MAX_RUNS": str(SESSIONS)}) as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(SESSIONS + 1)]
        for c in contexts:
            c.set_default_timeout(WAIT_MS)
        pages = [c.new_page() for c in contexts]
        for page in pages[:SESSIONS]:                       # each context is one browser session on the server
            page.goto(f"{url}/?width=320&resolution=48")
            page.get_by_text("paused · step 0").first.wait_for(timeout=WAIT_MS)
        for page in pages[:SESSIONS]:
            page.get_by_role("button", name="Play", exact=True).click()
        for page in pages[:SESSIONS]:
            page.get_by_text("playing · step").first.wait_for(timeout=WAIT_MS)

        late = pages[SESSIONS]                               # the fifth visitor: the cap, said on the page
        late.goto(f"{url}/?width=320&resolution=48")
        late.get_by_text("already has 4 live runs, its limit (TOYVIZ_MAX_RUNS=4)").wait_for(timeout=WAIT_MS)
        assert late.get_by_role("button", name="Play", exact=True).count() == 0

        # all four playing: each page must show UPDATES new steps (a few seconds on an idle 2-core machine; the
        # deadline leaves room for a machine busy with other work)
        last = [step_of(p) for p in pages[:SESSIONS]]
        updates = [0] * SESSIONS
        deadline = time.monotonic() + 180
        while min(updates) < UPDATES and time.monotonic() < deadline:
            time.sleep(0.5)
            for i, page in enumerate(pages[:SESSIONS]):
                step = step_of(page)
                assert step >= last[i], f"session {i} went back from step {last[i]} to {step}"
                updates[i] += step > last[i]
                last[i] = step
        assert min(updates) >= UPDATES, f"a session stopped updating: updates seen {updates}, steps {last}"
        for i, page in enumerate(pages):
            assert page.locator('[data-testid="stException"]').count() == 0, f"session {i}: an exception"
            assert page.get_by_text("diverged").count() == 0
        for page in pages[:SESSIONS]:
            page.get_by_role("button", name="Pause", exact=True).click()
        browser.close()
