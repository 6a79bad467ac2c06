"""render.py: frames as RGB arrays (blitting equals a fresh draw), layouts, paper figures."""
import dataclasses

import numpy as np
import pytest

import toyviz
from toyviz.draw.frames import iter_frame_data, panel_title
from toyviz.draw.render import FrameRenderer, _grid, draw_figure, draw_frame


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
    fd = frames[-1]
    assert panel_title(fd, "regions") == f"h1–h4: {fd.raster.cumulative_counts[3]} regions"
    assert panel_title(fd, "regions:2") == f"h2: {fd.raster.counts[1]} patterns"
    assert panel_title(fd, "cumulative:2") == f"h1–h2: {fd.raster.cumulative_counts[1]} regions"


def test_grid_is_closest_to_square():
    assert _grid(4, 512, 512) == (2, 2)
    assert _grid(3, 768, 256) == (1, 3)
    assert _grid(6, 512, 768) == (3, 2)


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
    assert len(fig.axes) == 4 * (1 + 4 + 1)
    assert [ax.get_title() for ax in fig.axes[:6]] == [panel_title(frames[0], p) for p in
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
