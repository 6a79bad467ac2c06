"""End to end in a real browser: `streamlit run app.py` headless on a free port, Chromium driven by Playwright.
Step and Play change the region-map picture, an MP4 downloads and decodes, a bad CSV shows an error, the
divergences page draws.

Runs wherever a Chromium is found: $TOYVIZ_CHROMIUM, `chromium` on PATH (Debian/Ubuntu: `apt-get install
chromium`, which .ci/run does), or the one `playwright install chromium` downloads. Elsewhere it skips with one
line saying how to enable it, except under CI (CI=true), where a missing browser or Playwright fails it."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import imageio.v2 as imageio
import pytest

IN_CI = os.environ.get("CI", "").strip().lower() == "true"
ENABLE = "apt-get install chromium (Debian/Ubuntu), or `playwright install chromium`"


try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:                                   # the `dev` extra brings it: pip install -e '.[dev]'
    expect = sync_playwright = None


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


CHROMIUM = find_chromium()
MISSING = ("Playwright is not installed (pip install -e '.[dev]')" if sync_playwright is None
           else "no Chromium found" if CHROMIUM is None else None)
if MISSING and not IN_CI:                             # under CI the test runs and fails (the browser fixture)
    pytest.skip(f"browser test: {MISSING}; enable it with: {ENABLE}", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]   # containers: small /dev/shm
PICTURE = '[data-testid="stMain"] [data-testid="stImage"] img'
WAIT_MS = 90_000                          # generous: the first picture imports torch and rasterizes 256²


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.fileWatcherType", "none", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
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


@pytest.fixture(scope="module")
def browser():
    if MISSING:                                       # only under CI=true: elsewhere the module skipped
        pytest.fail(f"CI=true and {MISSING}: the browser test must run in CI; install it: {ENABLE} "
                    "(.ci/run installs chromium)", pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_for_new_picture(page, old_src: str) -> str:
    """The picture's src names a media file by its content hash: a new src is a new picture."""
    page.wait_for_function(f"old => {{ const i = document.querySelector('{PICTURE}'); "
                           "return i && i.complete && i.naturalWidth > 0 && i.getAttribute('src') !== old; }",
                           arg=old_src, timeout=WAIT_MS)
    return page.locator(PICTURE).first.get_attribute("src")


def settle(page) -> None:
    """Wait until no script run is in flight (Streamlit shows its status widget while one is)."""
    page.wait_for_timeout(300)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=WAIT_MS)


def test_step_play_export_and_errors_in_a_real_browser(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(f"{server}/?width=480&resolution=64")              # a small picture: the test times the page, not D
    picture = page.locator(PICTURE).first
    picture.wait_for(timeout=WAIT_MS)
    src0, shot0 = picture.get_attribute("src"), picture.screenshot()

    steps = page.get_by_label("steps per update")
    steps.fill("50")
    steps.press("Enter")
    page.get_by_role("button", name="Step", exact=True).click()
    src1 = wait_for_new_picture(page, src0)
    expect(page.get_by_text("paused · step 50 of 2000")).to_be_visible(timeout=WAIT_MS)
    assert picture.screenshot() != shot0                         # the region map redrew with new weights

    page.get_by_role("button", name="Play", exact=True).click()
    wait_for_new_picture(page, src1)                              # it trains and redraws on its own
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_text("paused · step")).to_be_visible(timeout=WAIT_MS)
    settle(page)                                                  # no fragment tick may swallow the next click

    page.get_by_role("button", name="Prepare video").click()
    download_button = page.get_by_role("button", name="Download MP4")
    try:
        download_button.wait_for(timeout=WAIT_MS)
    except Exception:
        page.screenshot(path="/tmp/toyviz-browser-failure.png", full_page=True)
        raise
    with page.expect_download(timeout=WAIT_MS) as info:
        download_button.click()
    video = tmp_path / "run.mp4"
    info.value.save_as(video)
    frames = [f for f in imageio.get_reader(str(video)).iter_data()]
    assert len(frames) >= 2 and frames[0].ndim == 3 and frames[0].shape[2] == 3

    page.get_by_text("Load data, config or checkpoint").click()
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n0.1,0.2\nnan,1\n")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(bad))
    expect(page.get_by_text("NaN or infinite values are not allowed")).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000

    page.goto(f"{server}/divergences")
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Minibatch view of divergences")).to_be_visible()
    page.close()
