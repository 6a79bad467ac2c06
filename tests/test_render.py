"""render.py: frames as RGB arrays (blitting equals a fresh draw), layouts, paper figures."""
import dataclasses

import numpy as np
import pytest

import toyviz
from toyviz.draw.frames import header_text, iter_frame_data, panel_title
from toyviz.draw.render import FrameRenderer, _grid, draw_figure, draw_frame, frame_jpeg


@pytest.fixture(scope="module")
def trainer():
    cfg = toyviz.presets.get("bre-toy-bre").replace(**{
        "optim.batch_size": 32, "viz.eval_samples": 200, "viz.metrics_every": 10, "viz.snapshot_every": 10,
        "optim.iters": 30})
    t = toyviz.Trainer(cfg, callbacks=[toyviz.RegionMetrics()])
    t.run(30)
    return t


@pytest.fixture(scope="module")
def frames(trainer):
    return list(iter_frame_data(trainer, resolution=48))


def test_draw_frame_size_and_content(frames):
    img = draw_frame(frames[-1], size=(320, 240))
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50          # not a blank canvas


def test_every_panel_draws(frames):
    panels = ["data:push", "data:motion", "regions", "regions:2", "cumulative:3", "prob", "grad", "grad:stream",
              "mosaic", "curves"]
    img = draw_frame(frames[1], panels, size=(512, 384), header=False)
    assert img.shape == (384, 512, 3)


def test_reused_renderer_equals_a_fresh_one(frames):
    r = FrameRenderer(size=(256, 256))
    r.draw(frames[0])
    again = r.draw(frames[-1])                        # drawn over the cached background
    fresh = FrameRenderer(size=(256, 256)).draw(frames[-1])
    np.testing.assert_array_equal(again, fresh)
    assert np.abs(again.astype(int) - r.draw(frames[0])).mean() > 1.0   # training moved things


def test_titles_carry_region_counts(frames):
    fd = frames[-1]           # a layer's own patterns vs the regions of layers 1..l: said in words
    assert panel_title(fd, "regions") == f"layers 1–4: {fd.raster.cumulative_counts[3]} regions"
    assert panel_title(fd, "regions:2") == f"layer 2: {fd.raster.counts[1]} patterns"
    assert panel_title(fd, "cumulative:2") == f"layers 1–2: {fd.raster.cumulative_counts[1]} regions"
    assert panel_title(fd, "cumulative:1") == f"layer 1: {fd.raster.cumulative_counts[0]} regions"


def test_each_panel_kind_has_its_own_title(frames):
    fd = frames[-1]
    titles = [panel_title(fd, p) for p in ("data", "data:push", "data:motion", "grad", "grad:stream")]
    assert len(set(titles)) == 5 and titles[1].startswith("data, G's push: ")


def test_a_point_cloud_is_drawn_without_modes(tiny_cfg):
    from toyviz.engine.trainer import Trainer
    t = Trainer(tiny_cfg.replace(**{"data.kind": "points", "data.points": [[0.1 * i, 0.0] for i in range(9)]}))
    t.run(10)
    fd = next(iter_frame_data(t, [-1], resolution=32))
    assert fd.centers.shape == (0, 2) and fd.modes == 0 and not set(fd.curves) & {"eval/modes", "eval/hq"}
    assert "point cloud" in header_text(fd) and "modes" not in header_text(fd).replace("no modes", "")
    assert panel_title(fd, "data") == "data: a point cloud"
    r = FrameRenderer(["data", "curves"], size=(512, 256))
    r.draw(fd)
    labels = [t.get_text() for legend in r.fig.legends for t in legend.get_texts()]
    assert labels == ["real", "fake G(z)"]                              # no captured / missed modes to mark


def test_grid_gives_the_largest_square_panels_and_the_fewest_blank_cells():
    assert _grid(4, 512, 512) == (2, 2)
    assert _grid(3, 768, 256) == (1, 3)
    assert _grid(6, 512, 768) == (3, 2)
    assert _grid(4, 800, 520) == (2, 2)       # the page's 4:3 picture: 3×2 has the same side and 2 blank cells
    assert _grid(4, 480, 1400) == (4, 1)      # a phone: one panel per row
    assert _grid(3, 800, 520) == (1, 3)


def test_curves_panel_before_any_step_says_why_it_is_empty(frames):
    step0 = dataclasses.replace(frames[0], curves={})
    r = FrameRenderer(["data", "curves"], size=(512, 256))
    r.draw(step0)
    assert any("curves start" in t.get_text() for t in r.fig.texts)
    r = FrameRenderer(["data", "curves"], size=(512, 256))
    r.draw(frames[-1])
    assert not any("curves start" in t.get_text() for t in r.fig.texts) and frames[-1].curves


def test_bad_requests(frames):
    with pytest.raises(ValueError, match="size"):
        FrameRenderer(size=(32, 32))
    no_raster = dataclasses.replace(frames[0], raster=None)
    with pytest.raises(ValueError, match="raster"):
        draw_frame(no_raster, ["data", "prob"])
    assert draw_frame(no_raster, ["data", "curves"], size=(256, 128)).shape == (128, 256, 3)


def test_paper_figure_has_rows_times_panels(frames):
    rows = [("baseline", frames[0]), ("baseline", frames[-1]), ("BRE", frames[0]), ("BRE", frames[-1])]
    fig = draw_figure(rows, "data,regions:all,prob")
    panels = [ax for ax in fig.axes if ax.get_label() != "key"]
    assert len(panels) == 4 * (1 + 4 + 1)
    assert len(fig.axes) - len(panels) == 1                         # D(x)'s colour bar, once below its column
    assert [ax.get_title() for ax in panels[:6]] == [panel_title(frames[0], p) for p in
                                                       ["data", "regions:1", "regions:2", "regions:3", "regions:4",
                                                        "prob"]]



def test_exact_boundaries_overlay_cumulative_panels(trainer):
    (fd,) = iter_frame_data(trainer, [-1], resolution=48, exact=True)
    plain = draw_figure([("A", fd)], ["regions", "regions:1"])
    fig = draw_figure([("A", fd)], ["regions", "regions:1"], exact=True)
    added = [len(a.collections) - len(b.collections) for a, b in zip(fig.axes, plain.axes)]
    assert added == [1, 0]                             # the overlay; single-layer panels get none
    # a grid sees at most the exact number of regions (it misses those smaller than a pixel)
    assert fd.raster.cumulative_counts[3] <= len(fd.partition[3])


def test_frames_key_their_encodings_and_show_the_extent(frames):
    r = FrameRenderer(["data", "prob", "mosaic", "curves"], size=(512, 512))
    r.draw(frames[-1])
    keys = [ax for ax in r.fig.axes if ax.get_label() == "key"]
    assert len(keys) == 2                                               # D(x)'s colour bar, the ∇ₓD wheel
    assert [h.get_label() for h in r.fig.legends[0].legend_handles] == ["real", "fake G(z)", "mode captured",
                                                                        "mode missed"]
    data = r.items[0].ax
    assert data.get_xlim() == (-1.5, 1.5)                               # the extent, ticked at −1, 0, 1
    assert [t.get_text() for t in data.get_xticklabels() if -1.5 <= t.get_position()[0] <= 1.5] == ["−1", "0", "1"]
    assert r.style["small"] * 100 / 72 >= 10                            # ≥ 10 px text at 512²


def test_palette_and_region_style_change_the_frame(frames):
    fd = frames[-1]
    plain = draw_frame(fd, ["regions", "prob"], (256, 128), header=False).astype(int)
    cividis = draw_frame(fd, ["regions", "prob"], (256, 128), header=False, palette="cividis").astype(int)
    outline = draw_frame(fd, ["regions", "prob"], (256, 128), header=False, regions="outline").astype(int)
    assert np.abs(plain[:, 128:] - cividis[:, 128:]).mean() > 5 and np.abs(plain[:, :128] - cividis[:, :128]).max() == 0
    assert np.abs(plain[:, :128] - outline[:, :128]).mean() > 5 and np.abs(plain[:, 128:] - outline[:, 128:]).max() == 0


def test_paper_figure_width_and_keys_below_the_columns(frames):
    fig = draw_figure([("A", frames[-1])], "data,regions,prob,mosaic", width=7.0)
    assert fig.get_figwidth() == pytest.approx(7.0)
    assert len([ax for ax in fig.axes if ax.get_label() == "key"]) == 2
    assert len(fig.legends) == 1
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    W = fig.bbox.width
    for ax in fig.axes:                                                 # nothing clipped at the figure's edges
        bb = ax.get_tightbbox(r)
        assert bb.x0 >= -1 and bb.x1 <= W + 1 and bb.y0 >= -1
    with pytest.raises(ValueError, match="do not fit"):
        draw_figure([("A", frames[-1])], "data,regions:all,prob,mosaic", width=3.5)


def _small(preset, **kw):
    cfg = toyviz.presets.get(preset).replace(**{
        "nets.g.width": 16, "nets.d.width": 16, "optim.batch_size": 32, "viz.eval_samples": 200,
        "viz.metrics_every": 5, "viz.snapshot_every": 5, "optim.iters": 20, **kw})
    t = toyviz.Trainer(cfg, callbacks=[toyviz.RegionMetrics()])
    t.run(10)
    return list(iter_frame_data(t, resolution=32))[-1]


def test_renderer_cache_keeps_each_runs_layers_and_points():
    """Two visitors with one layout: a 4-layer D's run and a 3-layer D's, then custom centres beside the ring.
    Each frame equals a fresh renderer's (no KeyError 'regions/l4', no other run's real points)."""
    four, three = _small("bre-toy"), _small("ring8")
    custom = _small("ring8", **{"data.kind": "mixture", "data.centers": [[-1.0, 0.5], [1.0, -0.5]],
                                "data.stds": None, "data.weights": None})
    panels, size = ["data", "regions", "curves"], (480, 360)
    for fd in (four, three, custom, four, custom, three):
        got = draw_frame(fd, panels, size)
        fresh = FrameRenderer(panels, size).draw(fd)
        np.testing.assert_array_equal(got, fresh)


def test_a_renderer_whose_draw_raised_is_not_cached(frames, monkeypatch):
    from toyviz.draw import render
    calls = []
    real_draw = FrameRenderer.draw

    def broken(self, fd):
        calls.append(self)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_draw(self, fd)
    monkeypatch.setattr(FrameRenderer, "draw", broken)
    render._CACHE.clear()
    with pytest.raises(RuntimeError):
        draw_frame(frames[-1], ["grad:stream"], (300, 240))
    assert not render._CACHE
    draw_frame(frames[-1], ["grad:stream"], (300, 240))
    assert calls[1] is not calls[0] and len(render._CACHE) == 1


def test_grad_stream_redraws_as_training_moves(trainer):
    """grad:stream on one renderer over frames whose ∇ₓD changes: no 'cannot remove artist', no list.remove
    error, and each frame equals a fresh renderer's."""
    fds = list(iter_frame_data(trainer, resolution=32))
    r = FrameRenderer(["grad:stream", "curves"], (400, 300))
    for fd in fds + fds[::-1]:
        img = r.draw(fd)
        np.testing.assert_array_equal(img, FrameRenderer(["grad:stream", "curves"], (400, 300)).draw(fd))
    assert len(r.items[0].ax.get_children()) < 200          # old stream lines and arrows were removed


def test_curves_axes_follow_the_run(frames):
    """A renderer built on an early frame's history rescales its curve axes when later values leave them."""
    fd0 = frames[-1]
    curves = {k: (s[:1], np.full(1, 0.01)) for k, (s, v) in fd0.curves.items()}
    first = dataclasses.replace(fd0, curves=curves, step=0)
    r = FrameRenderer(["curves"], (320, 400), header=False)
    r.draw(first)
    ax = r.items[0].axes[0]
    lo0, hi0 = ax.get_ylim()
    later = dataclasses.replace(fd0, curves={k: (s, 50.0 + np.arange(len(v), dtype=float)) for k, (s, v)
                                             in fd0.curves.items()})
    img = r.draw(later)
    lo1, hi1 = ax.get_ylim()
    top = 50.0 + max(len(v) for _, v in later.curves.values()) - 1
    assert hi1 > top > 50 > hi0 and lo1 < 50 and (lo1, hi1) != (lo0, hi0)
    assert hi1 - top >= 0.2 * (top - 50)                  # room above: the next larger value need not rescale
    r.background = None                                   # the same frame, its background drawn afresh
    np.testing.assert_array_equal(img, r.draw(later))


def test_frame_jpeg_keeps_the_picture_and_refuses_a_bad_quality():
    """The page's picture bytes decode to the frame's size with its colours (flat regions within JPEG's error), in
    fewer bytes than Streamlit's own quality-100 encoding of the same array."""
    import io

    from PIL import Image
    from streamlit.elements.lib.image_utils import _np_array_to_bytes
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :80] = (31, 119, 180)                       # two flat regions, as a region map has
    frame[:, 80:] = (255, 127, 14)
    frame[::7, ::5] = 0                                  # and fine detail (points, arrows)
    data = frame_jpeg(frame)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert back.shape == frame.shape
    assert np.abs(back[30:90, 20:60] - frame[30:90, 20:60]).mean() < 12
    assert len(data) < len(_np_array_to_bytes(frame, "JPEG"))
    with pytest.raises(ValueError, match="quality"):
        frame_jpeg(frame, quality=100)
