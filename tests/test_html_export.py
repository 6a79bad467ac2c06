"""toyviz.draw.html_export and `python -m toyviz export RUN --out run.html`: the file's contents and bad input
without a browser; then the page itself in headless Chromium, opened from disk: its region colours, counts, D(x),
hover bits and ∇ₓD against `rasterize` for the same D, play, and a preset name that tries to break out of its
<script> block.

The browser part runs wherever a Chromium is found ($TOYVIZ_CHROMIUM, `chromium` on PATH, or Playwright's own
download); elsewhere it skips with one line saying how to enable it, except under CI (CI=true), where it fails."""
import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from browser_support import ENABLE, IN_CI, find_chromium, missing, sync_playwright

import toyviz
from toyviz.commands.cli import main
from toyviz.draw.frames import header_text, iter_frame_data, panel_title
from toyviz.draw.html_export import export_html, json_for_script, pack_field
from toyviz.engine.run_folder import RunFolder

WAIT_MS = 60_000


def manifest_of(path: Path) -> dict:
    text = path.read_text("utf-8")
    m = re.search(r'<script type="application/json" id="toyviz-manifest">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def train(cfg, steps: int) -> toyviz.Trainer:
    t = toyviz.Trainer(cfg)
    t.run(steps)
    return t


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A bre-toy run folder: 40 steps, a snapshot every 10 (5 frames), 64² grid."""
    out = tmp_path_factory.mktemp("runs") / "bre-toy"
    assert main(["train", "--preset", "bre-toy", "--iters", "40", "--set", "viz.snapshot_every=10",
                 "--set", "viz.resolution=64", "--set", "viz.metrics_every=10", "--out", str(out)]) == 0
    return out


# ---- without a browser -------------------------------------------------------------------------------------------
def unpack_field(data: bytes, frames: int, count: int, dtype) -> np.ndarray:
    """html_player.js's unpackField, in numpy."""
    size = np.dtype(dtype).itemsize
    planes = np.frombuffer(data, np.uint8).reshape(size, frames * count)
    words = planes.T.copy().view(f"<u{size}").reshape(frames, count)
    for f in range(1, frames):
        words[f] ^= words[f - 1]
    return words.view(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_pack_field_is_inverted_by_the_players_unpacking(dtype):
    rows = np.random.default_rng(0).normal(size=(5, 7)).astype(dtype)
    rows[2, 3] = np.nan
    np.testing.assert_array_equal(unpack_field(pack_field(rows), 5, 7, dtype).view(f"u{rows.itemsize}"),
                                  rows.view(f"u{rows.itemsize}"))


def test_json_for_script_cannot_close_its_script_block():
    text = json_for_script({"name": "</script><script>alert(1)</script> & <!-- \u2028"})
    assert not set("<>&\u2028") & set(text)
    assert json.loads(text)["name"] == "</script><script>alert(1)</script> & <!-- \u2028"


def test_cli_writes_one_self_contained_page(run_dir, tmp_path, capsys):
    out = tmp_path / "run.html"
    assert main(["export", str(run_dir), "--out", str(out), "--steps", "0,21", "--panels",
                 "data,regions:all,prob,curves"]) == 0
    line = capsys.readouterr().out
    assert "2 frames (steps 0, 20;" in line and str(out) in line
    html = out.read_text("utf-8")
    assert "<script src" not in html and "<link" not in html                     # nothing to fetch
    m = manifest_of(out)
    cfg = RunFolder(run_dir).config()
    assert m["toyviz"] == toyviz.__version__ and m["seed"] == cfg.seed and m["config"] == cfg.to_dict()
    assert [f["step"] for f in m["frames"]] == [0, 20]
    assert m["panels"] == ["data", "regions:1", "regions:2", "regions:3", "regions:4", "prob", "curves"]
    assert m["resolution"] == 64 and m["net"] == {"widths": [10] * 4, "activation": "leaky_relu", "slope": 0.2}
    assert html.count("<script") == 4 and [p.name for p in tmp_path.iterdir()] == ["run.html"]


def no_snapshots(tmp_path) -> Path:
    out = tmp_path / "bare"
    t = toyviz.Trainer(toyviz.presets.get("bre-toy"))
    t.snapshots = []
    RunFolder.create(out).write(t)
    return out


@pytest.mark.parametrize("case,match", [
    ("panel", "unknown panel 'nope' (choose from: data,"),
    ("stream", "grad:stream is not available in an .html export"),
    ("empty", "not a run folder"),
    ("no-snapshots", "stored no snapshots"),
    ("extension", "unknown extension '.htm' of"),
    ("steps", "steps: expected non-negative integers"),
    ("video-steps", "steps: only an .html export picks snapshots"),
])
def test_bad_input_one_line_exit_2_nothing_written(run_dir, tmp_path, capsys, case, match):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    run, target, extra = str(run_dir), out / "x.html", []
    if case == "panel":
        extra = ["--panels", "data,nope"]
    elif case == "stream":
        extra = ["--panels", "grad:stream"]
    elif case == "empty":
        run = str(empty)
    elif case == "no-snapshots":
        run = str(no_snapshots(tmp_path))
    elif case == "extension":
        target = out / "x.htm"
    elif case == "steps":
        extra = ["--steps=-1,x"]
    elif case == "video-steps":
        target, extra = out / "x.gif", ["--steps", "0"]
    assert main(["export", run, "--out", str(target), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err
    if case == "extension":
        assert "(choose from: .mp4, .gif, .html)" in err
    assert list(out.iterdir()) == [] and list(empty.iterdir()) == []


def test_a_d_the_page_cannot_recompute_is_refused_naming_the_option(tmp_path, tiny_cfg):
    for sets, option in (({"nets.minibatch_kernels": 4}, "nets.minibatch_kernels"), ({"nets.pack": 2}, "nets.pack"),
                         ({"nets.d.activation": "tanh"}, "nets.d.activation = tanh")):
        t = toyviz.Trainer(tiny_cfg.replace(**sets))
        with pytest.raises(ValueError, match=re.escape(option)) as e:
            export_html(t, tmp_path / "x.html")
        assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_the_page_offers_the_html_download(tiny_cfg):
    from streamlit.testing.v1 import AppTest

    from toyviz.page.session import Session
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    app.session_state["session"] = Session(tiny_cfg, steps_per_update=4)
    app.session_state["width"], app.session_state["resolution"] = 320, 32
    app.session_state["panels"] = ["data", "regions"]
    app.run()
    app.button(key="step").click().run()
    app.button(key="html_go").click().run()
    html = app.session_state["html"].decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and '"preset":"ring8"' in html and '"size":[320,240]' in html
    assert "Download HTML" in [d.label for d in app.get("download_button")]
    assert not app.exception and not app.error


# ---- in a browser ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    why = missing(chromium)
    if why and IN_CI:
        pytest.fail(f"CI=true and {why}: the browser test must run in CI; install it: {ENABLE}", pytrace=False)
    if why:
        pytest.skip(f"browser test: {why}; enable it with: {ENABLE}")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True,
                               args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


class Page:
    """An exported file opened from disk (file://), with its console errors and dialogs recorded."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.errors, self.dialogs = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.toyviz && window.toyviz.ready", timeout=WAIT_MS)
        self.page.evaluate("window.toyviz.ready")

    def js(self, expr, arg=None):
        return self.page.evaluate(expr, arg)

    def text(self, selector) -> str:
        return self.page.locator(selector).text_content()


def net_cfg(name):
    """Small Ds of every supported kind: LeakyReLU(0.2) 4×10 (one 32-bit half word), spectrally normalized
    LeakyReLU 2×40 (two half words), ReLU 3×70 (two 64-bit words, the second partial)."""
    base = {"viz.resolution": 96, "viz.snapshot_every": 10, "viz.eval_samples": 300, "optim.batch_size": 64,
            "nets.g.width": 16}
    if name == "bre-toy":
        return toyviz.presets.get("bre-toy").replace(**base)
    if name == "sn":
        return toyviz.presets.get("ring8-sn").replace(**base, **{"nets.d.width": 40, "nets.d.depth": 2})
    return toyviz.presets.get("ring8").replace(**base, **{"nets.d.width": 70, "nets.d.activation": "relu"})


MATCHED = []          # (pixels whose colour matches rasterize's, pixels) per map compared


@pytest.mark.parametrize("name", ["bre-toy", "sn", "relu"])
def test_page_maps_match_rasterize(browser, tmp_path, name):
    t = train(net_cfg(name), 20)
    path = tmp_path / "run.html"
    export_html(t, path, panels="data,regions:all,cumulative:all,prob,grad,mosaic")
    page = Page(browser, path)
    R = page.js("toyviz.resolution")
    assert R == 96
    rng = np.random.default_rng(0)
    for f in range(len(t.snapshots)):
        r = toyviz.raster_of(t, R, snapshot=f)
        got = page.js("f => toyviz.raw(f)", f)
        for l in range(r.depth):
            for js, py in ((got["colors"][l], r.colors[l]), (got["cumColors"][l], r.cumulative_colors[l])):
                same = (np.frombuffer(base64.b64decode(js), np.uint8).reshape(R, R, 3) == py).all(-1)
                # a pixel may differ only on a region boundary: torch sums in float32, the page in float64
                assert same.mean() >= 0.999, (name, f, l, same.mean())
                MATCHED.append((same.sum(), same.size))
            assert abs(got["counts"][l] - r.counts[l]) <= max(1, r.counts[l] // 1000)
            assert abs(got["cumCounts"][l] - r.cumulative_counts[l]) <= max(1, r.cumulative_counts[l] // 1000)
        logit = np.frombuffer(base64.b64decode(got["logit"]), np.float32).reshape(R, R)
        np.testing.assert_allclose(logit, r.output[..., 0], rtol=1e-4, atol=1e-4)
        for i, j in rng.integers(0, R, (12, 2)).tolist():           # hover: bits and ∇ₓD of a pixel
            if not same[i, j]:
                continue
            info = page.js("([f, i, j]) => toyviz.pixelInfo(f, i, j)", [f, i, j])
            assert info["bits"] == ["".join("1" if b else "0" for b in r.pattern_at(l, i, j))
                                    for l in range(r.depth)]
            np.testing.assert_allclose(info["grad"], r.mosaic[i, j], rtol=1e-4, atol=1e-5)
        arrows = page.js("f => toyviz.arrows(f).vec", f)
        np.testing.assert_allclose(np.array(arrows), r.grad[::4, ::4].reshape(-1, 2), rtol=1e-4, atol=1e-5)
    assert page.errors == []
    page.page.close()


def test_play_changes_the_frame_and_hover_shows_bits(browser, run_dir, tmp_path):
    path = tmp_path / "run.html"
    assert main(["export", str(run_dir), "--out", str(path), "--size", "640x480"]) == 0
    page = Page(browser, path)
    raster = '.tv-panel[data-panel="regions"] canvas.tv-raster'
    picture = f"document.querySelector('{raster}').toDataURL()"
    label0, pixels0 = page.text("#tv-step"), page.js(picture)
    assert label0.startswith("step 0 (1/5)")
    page.page.click("#tv-play")
    page.page.wait_for_function("document.getElementById('tv-step').textContent.startsWith('step 40 (5/5)')",
                                timeout=WAIT_MS)
    assert page.js(picture) != pixels0 and page.text("#tv-play") == "Play"
    assert re.search(r"layers 1–4: \d+ regions", page.text('.tv-panel[data-panel="regions"] .tv-title'))

    box = page.page.locator('.tv-panel[data-panel="regions"] .tv-map').bounding_box()
    page.page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    tip = page.page.locator("#tv-tooltip")
    assert tip.is_visible()
    assert re.search(r"h1–h4 bits [01]{10} \| [01]{10} \| [01]{10} \| [01]{10}\n∇ₓD = \(", tip.text_content())

    page.page.locator("#tv-slider").fill("2")                           # the slider shows a stored snapshot
    page.page.wait_for_function("document.getElementById('tv-step').textContent.startsWith('step 20 (3/5)')",
                                timeout=WAIT_MS)
    assert page.errors == [] and page.dialogs == []
    page.page.close()


def test_a_preset_name_cannot_break_out_of_the_page(browser, tmp_path, tiny_cfg):
    name = 'x</script><script>alert(1)</script><b id="bold">&amp;</b>'
    t = train(tiny_cfg.replace(preset=name), 4)
    path = tmp_path / "run.html"
    export_html(t, path, panels="data,regions,curves")
    assert manifest_of(path)["preset"] == name
    page = Page(browser, path)
    assert page.dialogs == [] and page.errors == []
    assert page.text("#tv-header").startswith(name + " · step 0")      # shown as text
    assert page.js("document.title") == "toyviz · " + name
    assert page.js("document.querySelectorAll('script').length") == 4
    assert page.js("document.getElementById('bold')") is None
    assert name in page.text("#tv-meta")
    page.page.close()


def test_a_point_cloud_has_no_modes_in_the_page(browser, tmp_path, tiny_cfg):
    """A drawn cloud: the header and the data panels say so instead of counting modes (frames.header_text and
    panel_title, which the player mirrors), and the push panel is named apart from the plain data panel."""
    cloud = [[0.1 * i, -0.05 * i] for i in range(-5, 6)]
    t = train(tiny_cfg.replace(**{"data.kind": "points", "data.points": cloud}), 4)
    path = tmp_path / "run.html"
    export_html(t, path, panels="data,data:push,curves")
    fd = next(iter_frame_data(t, [0], raster=False))
    page = Page(browser, path)
    assert page.text("#tv-header") == header_text(fd, regions=False) == f"{t.cfg.preset} · step 0 · " \
        "data: a point cloud (no modes)"
    assert page.text('.tv-panel[data-panel="data"] .tv-title') == panel_title(fd, "data") == "data: a point cloud"
    assert page.text('.tv-panel[data-panel="data:push"] .tv-title') == "data, G's push: a point cloud"
    assert page.errors == []
    page.page.close()


def test_the_players_colour_hash_is_splitmix64(browser, run_dir, tmp_path):
    """SplitMix64 in 32-bit halves against numpy's uint64, on values that exercise every carry."""
    from toyviz.geometry.patterns import hash_colors, splitmix64
    path = tmp_path / "run.html"
    export_html(run_dir, path, panels="regions")
    page = Page(browser, path)
    x = np.random.default_rng(1).integers(0, 2 ** 64, 500, dtype=np.uint64, endpoint=False)
    x[:4] = [0, 2 ** 64 - 1, 0xFFFFFFFF, 2 ** 32]
    halves = [[int(v >> np.uint64(32)), int(v & np.uint64(0xFFFFFFFF))] for v in x]
    got = page.js("xs => xs.map(([h, l]) => { const K = toyviz.kernel; K.splitmix(h, l); "
                  "return [K.H, K.L, ...K.hashRGB(K.L)]; })", halves)
    h = splitmix64(x)
    assert [(a << 32) | b for a, b, *_ in got] == h.tolist()
    assert [rgb for _, _, *rgb in got] == hash_colors(h).tolist()
    page.page.close()
