"""mpl_panels.py: the pixel-exact raster artist, arrow scaling, curves drawn up to the frame's step."""
import dataclasses

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from toyviz.draw.frames import FrameData
from toyviz.draw.mpl_panels import CurvesPanel, _arrow_uv, _PixelImage, compact


def test_pixel_image_puts_each_raster_pixel_on_its_screen_pixels():
    fig = Figure(figsize=(1, 1), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.2, 0.2, 0.4, 0.4))                # 40×40 screen pixels at (20, 20) from bottom-left
    ax.set_axis_off()
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [0, 0, 0]]], np.uint8)   # row 0 = top
    ax.add_artist(_PixelImage(ax, rgb))
    canvas.draw()
    buf = np.asarray(canvas.buffer_rgba())[..., :3]           # row 0 = top of the canvas
    top, left = 100 - 60, 20
    np.testing.assert_array_equal(buf[top:top + 20, left:left + 20], np.broadcast_to(rgb[0, 0], (20, 20, 3)))
    np.testing.assert_array_equal(buf[top:top + 20, left + 20:left + 40], np.broadcast_to(rgb[0, 1], (20, 20, 3)))
    np.testing.assert_array_equal(buf[top + 20:top + 40, left:left + 20], np.broadcast_to(rgb[1, 0], (20, 20, 3)))
    assert (buf[top - 1, left:left + 40] == 255).all() and (buf[top + 40, left:left + 40] == 255).all()


def test_arrow_uv_scales_the_longest_to_length():
    v = np.array([[3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(_arrow_uv(v, 0.5), [[0.3, 0.4], [0.0, 0.1]])
    np.testing.assert_array_equal(_arrow_uv(np.zeros((2, 2)), 1.0), np.zeros((2, 2)))


def test_curves_panel_draws_up_to_the_step():
    steps = np.arange(1, 11)
    fd = FrameData(preset="p", step=4, total_steps=10, extent=(-1, 1, -1, 1), real=np.zeros((1, 2)),
                   fake=np.zeros((1, 2)), centers=np.zeros((4, 2)), captured=np.zeros(4, bool), hq=0.0,
                   reverse_kl=0.0, probability=True,
                   curves={"loss/d": (steps, steps * 0.1), "eval/modes": (np.array([5, 10]), np.array([2.0, 4.0]))})
    fig = Figure(figsize=(3, 3), dpi=100)
    style = {"fs": 8.0, "W": 300, "H": 300}
    panel = CurvesPanel(fig, (0, 0, 1, 1), "curves", fd, style)
    panel.draw(fd)
    lines = {key: line for line, key in panel.lines}
    np.testing.assert_array_equal(lines["loss/d"].get_xdata(), [1, 2, 3, 4])
    assert len(lines["eval/modes"].get_xdata()) == 0                   # first logged at step 5
    panel.draw(dataclasses.replace(fd, step=10))
    np.testing.assert_allclose(lines["eval/modes"].get_ydata(), [0.5, 1.0])   # modes / K
    assert [ax.get_title(loc="left") for ax in panel.axes] == ["losses", "coverage"]
    assert panel.axes[0].get_ylim() == pytest.approx((0.1 - 0.045, 1.0 + 0.045))   # fixed over the whole run


def _fd(curves):
    return FrameData(preset="p", step=10, total_steps=10, extent=(-1, 1, -1, 1), real=np.zeros((1, 2)),
                     fake=np.zeros((1, 2)), centers=np.zeros((4, 2)), captured=np.zeros(4, bool), hq=0.0,
                     reverse_kl=0.0, probability=True, curves=curves)


def test_curves_legends_sit_above_the_plots_and_a_missing_group_says_so():
    steps = np.arange(1, 11)
    fd = _fd({"loss/d": (steps, steps * 0.1), "loss/g": (steps, steps * 0.2)})
    layout = [("losses", ["loss/d", "loss/g"], (0.0, 2.0)), ("BRE", ["reg/bre/me", "reg/bre/ac"], (0.0, 1.0))]
    fig = Figure(figsize=(3, 3), dpi=100)
    canvas = FigureCanvasAgg(fig)
    panel = CurvesPanel(fig, (0, 0, 1, 1), "curves", fd, {"fs": 8.0, "small": 7.0, "W": 300, "H": 300,
                                                         "curve_layout": layout})
    panel.draw(fd)
    canvas.draw()
    assert [ax.get_title(loc="left") for ax in panel.axes] == ["losses", "BRE"]
    assert panel.axes[1].get_ylim() == (0.0, 1.0)                         # the shared range, not this run's
    assert any(t.get_text() == "not logged in this run" for t in panel.axes[1].texts)
    r = canvas.get_renderer()
    for ax in panel.axes:
        assert ax.get_legend().get_window_extent(r).y0 >= ax.get_window_extent(r).y1 - 1   # above, not on
    assert [t.get_text() for t in panel.axes[0].get_legend().get_texts()] == ["D", "G"]
    for ax in panel.axes:                                                 # tick labels inside the figure
        for label in ax.get_xticklabels() + ax.get_yticklabels():
            if label.get_visible() and label.get_text():
                bb = label.get_window_extent(r)
                assert bb.x0 >= 0 and bb.x1 <= 300 and bb.y0 >= 0


def test_compact_tick_labels():
    assert [compact(v) for v in (3000, 1500, 0.5, -1, 0)] == ["3k", "1.5k", "0.5", "−1", "0"]
