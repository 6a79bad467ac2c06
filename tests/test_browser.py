"""End to end in a real browser: `streamlit run app.py` headless on a free port, Chromium driven by Playwright.
Step and Play change the region-map picture, an MP4 downloads and decodes, a bad CSV shows an error, the
divergences page draws, and `bench browser`'s harness (toyviz.experiments.browser) counts pictures on the page.

Runs wherever a Chromium is found: $TOYVIZ_CHROMIUM, `chromium` on PATH (Debian/Ubuntu: `apt-get install
chromium`, which .ci/run does), or the one `playwright install chromium` downloads. Elsewhere it skips with one
line saying how to enable it, except under CI (CI=true), where a missing browser or Playwright fails it."""
import urllib.request

import imageio.v2 as imageio
import pytest
from browser_support import ENABLE, IN_CI, find_chromium, missing, streamlit_server, sync_playwright

from toyviz.engine import presets
from toyviz.experiments import browser as harness
from toyviz.experiments.browser import CHROMIUM_ARGS, MANY_RUNS, PICTURE, WAIT_MS

if sync_playwright is not None:
    from playwright.sync_api import expect

CHROMIUM = find_chromium()
MISSING = missing(CHROMIUM)
if MISSING and not IN_CI:                             # under CI the test runs and fails (the browser fixture)
    pytest.skip(f"browser test: {MISSING}; enable it with: {ENABLE}", allow_module_level=True)
DEFAULT = presets.get(presets.DEFAULT)                # the page's first run


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("streamlit") / "server.log", env=MANY_RUNS) as url:
        yield url


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
    expect(page.get_by_text(f"paused · step 50 of {DEFAULT.optim.iters}")).to_be_visible(timeout=WAIT_MS)
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


EXCEPTION = '[data-testid="stException"]'


def no_exception(page) -> None:
    if page.locator(EXCEPTION).count():
        page.screenshot(path="/tmp/toyviz-browser-exception.png", full_page=True)
        raise AssertionError("the page shows an exception: " + page.locator(EXCEPTION).first.inner_text()[:2000])


def paused_step(page) -> int:
    """The step of the 'paused · step N of M' caption (waits for it)."""
    caption = page.get_by_text("paused · step")
    caption.first.wait_for(timeout=WAIT_MS)
    return int(caption.first.inner_text().split("step ", 1)[1].split()[0])


def open_page(browser, server):
    return harness.open_page(browser, server, "?width=480&resolution=64", viewport=(1400, 1000))


def test_config_hides_the_developer_toolbar(server, browser):
    """.streamlit/config.toml (client.toolbarMode = viewer) takes effect: no Deploy button, no developer menu; and
    while playing, no "Running… Stop" status widget either."""
    page = open_page(browser, server)
    settle(page)
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    host = urllib.request.urlopen(f"{server}/_stcore/host-config", timeout=5).read().decode()
    assert "toolbarMode" not in host or '"developer"' not in host
    harness.play(page)                       # while playing, Streamlit's "Running… Stop" widget stays hidden
    status = page.locator('[data-testid="stStatusWidget"]')
    status.first.wait_for(state="attached", timeout=WAIT_MS)
    assert not status.first.is_visible() and not page.get_by_role("button", name="Stop").first.is_visible()
    harness.pause(page)
    page.close()


def test_pause_play_cycles_and_double_steps_show_no_exception(server, browser):
    """20 Play/Pause cycles: each pause shows the step the run stopped at and holds it (no training after Pause,
    the caption stays; a caption read mid-step used to show the step before); then 10 double Step presses about a
    second apart, which used to train one trainer from two runs at once."""
    page = open_page(browser, server)
    play = page.get_by_role("button", name="Play", exact=True)
    pause = page.get_by_role("button", name="Pause", exact=True)
    for i in range(20):
        play.click()
        expect(page.get_by_text("playing · step")).to_be_visible(timeout=WAIT_MS)
        page.wait_for_timeout(300 + 37 * i % 400)                   # pause at varied points of a tick
        pause.click()
        step = paused_step(page)
        settle(page)
        page.wait_for_timeout(600)
        assert paused_step(page) == step, f"cycle {i}: Pause showed step {step}, the run stopped later"
        page.wait_for_timeout(800)
        assert paused_step(page) == step, f"cycle {i}: the run went on after Pause"
        no_exception(page)
    step = page.get_by_role("button", name="Step", exact=True)
    for i in range(10):
        before = paused_step(page)
        step.click()
        page.wait_for_timeout(700 + 60 * i)
        step.click()
        settle(page)
        no_exception(page)
        expect(page.get_by_text(f"paused · step {before + 10} of")).to_be_visible(timeout=WAIT_MS)
    page.close()


def picture_array(page, server):
    """The picture's pixels: inline (a data: URL, as the page sends it) or fetched from the server's media URL."""
    import base64

    import numpy as np
    src = page.locator(PICTURE).first.get_attribute("src")
    if src.startswith("data:"):
        return np.asarray(imageio.imread(base64.b64decode(src.partition(",")[2])))
    return np.asarray(imageio.imread(page.request.get(server + src if src.startswith("/") else src).body()))


def test_step_d_moves_the_map_and_step_g_the_points(server, browser):
    """Default panels in a 2×2 grid at 480×360 (data | regions over grad | curves): Step D changes the ∇ₓD panel
    (D's map) and leaves the data panel (G's points) as it was; Step G the other way round."""
    page = open_page(browser, server)
    settle(page)

    def crops():
        img = picture_array(page, server)
        H, W = img.shape[:2]
        return img[int(0.1 * H):int(0.48 * H), :int(0.48 * W)], img[int(0.53 * H):int(0.92 * H), :int(0.48 * W)]
    data0, grad0 = crops()
    old = page.locator(PICTURE).first.get_attribute("src")
    for _ in range(3):
        page.get_by_role("button", name="Step D", exact=True).click()
        old = wait_for_new_picture(page, old)
        settle(page)
    expect(page.get_by_text("D half taken")).to_be_visible(timeout=WAIT_MS)
    data1, grad1 = crops()
    assert (data1 == data0).all(), "Step D moved G's points"
    assert (grad1 != grad0).any(), "Step D left D's map unchanged"
    for _ in range(3):
        page.get_by_role("button", name="Step G", exact=True).click()
        old = wait_for_new_picture(page, old)
        settle(page)
    data2, grad2 = crops()
    assert (grad2 == grad1).all(), "Step G changed D's map"
    assert (data2 != data1).any(), "Step G left G's points where they were"
    no_exception(page)
    page.close()


def test_two_visitors_on_different_presets(server, browser):
    """One visitor loads a 4-layer D (bre-toy), another keeps the default preset (2 layers); both step in turn and
    draw with their own layers (the shared renderer cache once raised KeyError 'regions/l4' here)."""
    ctx_a, ctx_b = browser.new_context(viewport={"width": 1400, "height": 1000}), \
        browser.new_context(viewport={"width": 1400, "height": 1000})
    a, b = ctx_a.new_page(), ctx_b.new_page()
    for p in (a, b):
        p.goto(f"{server}/?width=480&resolution=64")
        p.locator(PICTURE).first.wait_for(timeout=WAIT_MS)
    a.get_by_text("Configuration", exact=True).click()
    a.locator('[data-testid="stSelectbox"]').filter(has_text="preset").click()
    a.get_by_role("option", name="bre-toy", exact=True).click()
    a.get_by_role("button", name="Load preset (a new run)").click()
    settle(a)
    for _ in range(2):
        for p in (a, b):
            old = p.locator(PICTURE).first.get_attribute("src")
            p.get_by_role("button", name="Step", exact=True).click()
            wait_for_new_picture(p, old)
            settle(p)
            no_exception(p)
    a.get_by_text("Panels", exact=True).click()
    b.get_by_text("Panels", exact=True).click()
    for p, layers, iters in ((a, 4, 3000), (b, DEFAULT.nets.d.depth, DEFAULT.optim.iters)):
        expect(p.get_by_text(f"of {iters}")).to_be_visible(timeout=WAIT_MS)
        p.locator('[data-testid="stMultiSelect"]').first.locator("input").click()
        listbox = p.locator('[role="listbox"]')
        expect(listbox.get_by_text(f"regions:{layers}", exact=True)).to_have_count(1)
        expect(listbox.get_by_text(f"regions:{layers + 1}", exact=True)).to_have_count(0)
        p.keyboard.press("Escape")
        no_exception(p)
    ctx_a.close()
    ctx_b.close()


def test_screenshots_wide_and_phone(server, browser):
    """The picture fills its column on a wide screen (panels side by side) and stacks its panels on a phone
    (taller than wide, the screen's width); screenshots of both in /tmp for a person to look at."""
    for w, h in ((1440, 900), (390, 844)):
        page = browser.new_page(viewport={"width": w, "height": h})
        page.goto(server)
        picture = page.locator(PICTURE).first
        picture.wait_for(timeout=WAIT_MS)
        settle(page)
        page.wait_for_timeout(1000)                  # the data panel reports the screen's width: one more rerun
        settle(page)
        page.screenshot(path=f"/tmp/toyviz-{w}x{h}.png")
        picture.scroll_into_view_if_needed()
        page.screenshot(path=f"/tmp/toyviz-{w}x{h}-picture.png")
        box = picture.bounding_box()
        if w > 1000:
            assert box["width"] > 0.4 * w and box["width"] > box["height"]      # wide: panels side by side
        else:
            assert box["width"] > 0.85 * w and box["height"] > 2 * box["width"]  # phone: one panel per row
        no_exception(page)
        page.close()


CANVAS_MARGIN = 22                        # toyviz/page/data_canvas/index.html: the frame around the plot


def data_panel_point(box, x, y, extent=(-1.5, 1.5, -1.5, 1.5)):
    """Page coordinates of the data point (x, y) on the data panel's canvas (its bounding box)."""
    x0, x1, y0, y1 = extent
    scale = (box["width"] - 2 * CANVAS_MARGIN) / (x1 - x0)
    return box["x"] + CANVAS_MARGIN + (x - x0) * scale, box["y"] + CANVAS_MARGIN + (y1 - y) * scale


def test_click_and_draw_on_the_data_panel(server, browser):
    """A click on the data panel adds a mode there (the data and the picture change, the run keeps its step), a
    click in the frame outside the plot says so, a click on the new mode removes it, a drawn stroke becomes a
    cloud with a distance in place of coverage, Undo puts the modes back; no exception, no console error."""
    page = open_page(browser, server)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    settle(page)
    page.get_by_role("button", name="Step", exact=True).click()
    expect(page.get_by_text("paused · step 5 of")).to_be_visible(timeout=WAIT_MS)
    step = paused_step(page)
    canvas = page.frame_locator("iframe").first.locator("canvas")
    canvas.wait_for(timeout=WAIT_MS)
    box = canvas.bounding_box()
    old = page.locator(PICTURE).first.get_attribute("src")
    page.mouse.click(*data_panel_point(box, 0.3, -0.4))
    expect(page.get_by_text("added a mode at (0.30, -0.40): 9 modes")).to_be_visible(timeout=WAIT_MS)
    wait_for_new_picture(page, old)
    settle(page)
    assert paused_step(page) == step and "data.kind=mixture" in page.url      # the link holds the new modes
    page.mouse.click(box["x"] + 5, box["y"] + box["height"] / 2)
    expect(page.get_by_text("is outside the plot")).to_be_visible(timeout=WAIT_MS)
    page.mouse.click(*data_panel_point(box, 0.31, -0.41))
    expect(page.get_by_text("removed the mode at (0.30, -0.40): 8 modes")).to_be_visible(timeout=WAIT_MS)
    settle(page)
    page.get_by_text("draw a cloud of points").click()
    settle(page)
    page.mouse.move(*data_panel_point(box, -1, -1))
    page.mouse.down()
    for t in range(1, 11):
        page.mouse.move(*data_panel_point(box, -1 + 0.2 * t, -1 + 0.15 * t))
    page.mouse.up()
    expect(page.get_by_text("points as the data")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("is the sliced Wasserstein-1 distance")).to_be_visible(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("button", name="Undo the last data edit").click()
    expect(page.get_by_text("undid the last data edit")).to_be_visible(timeout=WAIT_MS)
    settle(page)
    no_exception(page)
    assert paused_step(page) == step
    page.get_by_text("click: add a mode").click()
    settle(page)
    page.get_by_role("button", name="Play", exact=True).click()      # clicks while the picture keeps updating
    expect(page.get_by_text("playing · step")).to_be_visible(timeout=WAIT_MS)
    for x, y in ((0.3, -0.4), (-0.3, 0.4), (0.2, 0.2)):
        page.mouse.click(*data_panel_point(box, x, y))
        page.wait_for_timeout(120)
    expect(page.get_by_text("added a mode at (0.20, 0.20): 11 modes")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name="Pause", exact=True).click()
    paused_step(page)
    settle(page)
    no_exception(page)
    assert not errors, errors
    page.close()


def test_bench_harness_counts_distinct_pictures_while_playing(server, browser):
    """`bench browser`'s counting on the real page: a couple of seconds of Play bring more than one distinct
    picture to the screen, at least as many arrived over the websocket, and the page trained meanwhile."""
    page = open_page(browser, server)
    harness.start_watching(page)
    harness.play(page)
    count, = harness.count_window([page], 2.5)
    harness.pause(page)
    assert count.pictures > 1, f"only {count.pictures} distinct picture(s) decoded in {count.seconds:.1f} s"
    # every picture drawn came over the websocket, seen there by the harness's wrapper before the frontend had it;
    # one picture may have arrived just before the window opened and been drawn just after (counted drawn only)
    assert count.arrived >= count.pictures - 1 and count.arrived > 1, (count.arrived, count.pictures)
    assert count.steps > 0
    no_exception(page)
    page.close()
