"""plotly_figures.py: interactive panels; the hover of a region map names the pixel's pattern bits and ∇ₓD."""
import numpy as np
import plotly.graph_objects as go
import pytest

import toyviz
from toyviz.draw.frames import frame_data
from toyviz.draw.plotly_figures import pixel_hover, plotly_panel


@pytest.fixture(scope="module")
def fd():
    cfg = toyviz.presets.get("bre-toy").replace(**{
        "optim.batch_size": 32, "viz.eval_samples": 200, "viz.metrics_every": 10, "optim.iters": 20})
    t = toyviz.Trainer(cfg, callbacks=[toyviz.RegionMetrics()])
    t.run(20)
    return frame_data(t, -1, resolution=40)


@pytest.mark.parametrize("panel", ["data", "data:push", "regions", "regions:2", "cumulative:3", "prob", "grad",
                                   "mosaic", "curves"])
def test_every_panel_is_a_figure(fd, panel):
    fig = plotly_panel(fd, panel)
    assert isinstance(fig, go.Figure) and len(fig.data) >= 1
    fig.to_json()                                        # serializable, as the page sends it


def test_region_hover_names_the_pixel_bits_and_gradient(fd):
    r = fd.raster
    fig = plotly_panel(fd, "regions:2")
    img = fig.data[0]
    assert isinstance(img, go.Image) and np.asarray(img.z).shape == (40, 40, 3)
    hover = np.asarray(img.hovertext)[::-1]               # the image is flipped so that y grows upwards
    for i, j in [(0, 0), (17, 29), (39, 5)]:
        bits = "".join("1" if b else "0" for b in r.pattern_at(1, i, j))
        g = r.mosaic[i, j]
        assert hover[i, j] == f"h2 bits {bits}<br>∇ₓD = ({g[0]:.3g}, {g[1]:.3g})"
    np.testing.assert_array_equal(np.asarray(img.z)[::-1], r.colors[1])


def test_cumulative_hover_joins_layers(fd):
    text = pixel_hover(fd, 2, cumulative=True)[3, 4]
    assert text.startswith("h1–h3 bits ") and text.count(" | ") == 2


def test_one_panel_only(fd):
    with pytest.raises(ValueError, match="give one"):
        plotly_panel(fd, "regions:all")
    with pytest.raises(ValueError, match="panels"):
        plotly_panel(fd, "nope")


def test_hover_without_the_mosaic_shows_bits_only(fd):
    import dataclasses
    bare = dataclasses.replace(fd, raster=dataclasses.replace(fd.raster, mosaic=np.zeros((0, 0, 2), np.float32)))
    text = pixel_hover(bare, 1, cumulative=False)[3, 4]
    assert text.startswith("h2 bits ") and "∇ₓD" not in text
