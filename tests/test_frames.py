"""frames.py: what one snapshot shows (FrameData), curves from a history, panel names, colour maps."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import toyviz
from toyviz.draw.frames import (
    curve_groups,
    curve_layout,
    curves_of,
    frame_data,
    header_text,
    iter_frame_data,
    mosaic_rgb,
    nearest_snapshot,
    palette_of,
    parse_panels,
    prob_rgb,
    region_rgb,
    reverse_kl_text,
)
from toyviz.geometry import metrics


@pytest.fixture(scope="module")
def trainer():
    cfg = toyviz.presets.get("ring8").replace(**{
        "nets.g.width": 16, "nets.d.width": 16, "optim.batch_size": 32, "viz.eval_samples": 200,
        "viz.metrics_every": 10, "viz.snapshot_every": 2, "optim.iters": 20})
    t = toyviz.Trainer(cfg, callbacks=[toyviz.RegionMetrics()])
    t.run(20)
    return t


def test_curves_of_by_hand():
    hist = [{"step": 1, "loss/d": 1.0, "eval/modes": 2.0}, {"step": 2, "loss/d": 3.0, "lr/g": None}]
    c = curves_of(hist)
    np.testing.assert_array_equal(c["loss/d"][0], [1, 2])
    np.testing.assert_array_equal(c["loss/d"][1], [1.0, 3.0])
    np.testing.assert_array_equal(c["eval/modes"][0], [1])
    assert "lr/g" not in c and "step" not in c


def test_curves_of_smooths_losses_causally():
    hist = [{"step": i + 1, "loss/g": float(i % 2), "eval/hq": float(i % 2)} for i in range(200)]
    c = curves_of(hist)            # window = 200 // 100 = 2: the mean of a value and the one before it
    assert c["loss/g"][1][0] == 0.0
    np.testing.assert_allclose(c["loss/g"][1][1:], 0.5)
    np.testing.assert_array_equal(c["eval/hq"][1][:4], [0, 1, 0, 1])     # only losses are smoothed


def test_parse_panels_expands_and_rejects():
    assert parse_panels("data, regions:all ,prob", 3) == ["data", "regions:1", "regions:2", "regions:3", "prob"]
    assert parse_panels(["cumulative:2", "grad:stream"], 3) == ["cumulative:2", "grad:stream"]
    for bad in ("nope", "regions:4", "regions:0", "cumulative:x", ""):
        with pytest.raises(ValueError, match="panels"):
            parse_panels(bad, 3)


def test_frame_data_of_a_past_snapshot_restores_the_latest_weights(trainer):
    before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    fd = frame_data(trainer, 0, resolution=32)
    for k, v in trainer.D.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert fd.step == 0 and fd.total_steps == 20 and fd.raster.resolution == 32
    ref = toyviz.Trainer(trainer.cfg)                 # a fresh trainer holds the step-0 weights
    np.testing.assert_allclose(fd.fake, ref.eval_samples().numpy(), rtol=0, atol=0)
    cov = metrics.mode_coverage(fd.fake, fd.centers, trainer.data.std, trainer.data.weights.numpy())
    np.testing.assert_array_equal(fd.captured, cov.counts > 0)
    assert fd.hq == pytest.approx(cov.hq) and fd.probability


def test_motion_and_push(trainer):
    fds = list(iter_frame_data(trainer, [3, 4], raster=False, arrows=50))
    np.testing.assert_allclose(fds[0].motion, fds[1].fake[:50] - fds[0].fake[:50], atol=1e-6)
    assert fds[0].raster is None and frame_data(trainer, -1, raster=False).motion is None   # no next snapshot
    # push = −∇ₓ of G's loss at each point, the same as for the point alone
    x = torch.tensor(fds[1].fake[:1], requires_grad=True)
    trainer.load_snapshot(4)
    (g,) = torch.autograd.grad(trainer.loss.g(trainer.D(x)), x)
    trainer.load_snapshot(-1)
    np.testing.assert_allclose(fds[1].push[0], -g[0].numpy(), rtol=1e-4, atol=1e-7)


def test_nearest_snapshot(trainer):
    steps = [s["iteration"] for s in trainer.snapshots]
    assert steps == list(range(0, 21, 2))
    assert nearest_snapshot(trainer, 13) == 6 and nearest_snapshot(trainer, 1000) == 10
    assert nearest_snapshot(trainer, 0) == 0
    with pytest.raises(ValueError, match="stored no snapshots"):
        nearest_snapshot(SimpleNamespace(snapshots=[]), 0)


def test_curve_groups_pick_the_run_keys(trainer):
    fd = frame_data(trainer, -1, raster=False)
    groups = dict(curve_groups(fd))
    assert groups["losses"] == ["loss/d", "loss/g"]
    assert groups["coverage"] == ["eval/modes", "eval/hq"]
    assert "BRE" not in groups                         # BRE off: no ME/AC logged
    assert groups["fake-point diversity"] == ["div/cumulative/l3", "div/grad_dirs"]


def test_prob_rgb_paints_the_half_level_black():
    p = np.tile(np.linspace(0.0, 1.0, 9, dtype=np.float32), (4, 1))      # 0.5 in column 4
    fd = SimpleNamespace(raster=SimpleNamespace(prob=p), probability=True)
    rgb = prob_rgb(fd, contour=True)
    black = (rgb == 0).all(-1)
    assert black[:, 4].all() and black.sum() == 4                         # the column where p crosses 0.5
    plain = prob_rgb(fd, contour=False)
    assert plain[0, 0, 0] > plain[0, 0, 2] and plain[0, 8, 2] > plain[0, 8, 0]   # p=0 red, p=1 blue


def test_mosaic_rgb_hue_is_direction_brightness_is_magnitude():
    g = np.zeros((1, 3, 2), np.float32)
    g[0, 0] = (1.0, 0.0)           # +x: hue 0, red
    g[0, 1] = (0.0, 0.25)          # +y: hue 1/4, a quarter of the longest -> brightness sqrt(1/4)
    fd = SimpleNamespace(raster=SimpleNamespace(mosaic=g))
    rgb = mosaic_rgb(fd).astype(int)
    assert rgb[0, 0, 0] == 255 and rgb[0, 0, 1] < 60 and rgb[0, 0, 2] < 60
    assert rgb[0, 1].max() == pytest.approx(127, abs=1) and rgb[0, 1, 1] > rgb[0, 1, 2]
    assert (rgb[0, 2] == 0).all()  # no gradient: black


def test_region_rgb_outline_is_light_fills_and_dark_boundaries():
    ids = np.array([[0, 0, 1, 1]] * 3)                                  # two regions, a boundary between columns
    colors = np.zeros((3, 4, 3), np.uint8)
    colors[:, 2:] = (200, 0, 0)
    raster = SimpleNamespace(cumulative_ids=[ids], cumulative_colors=[colors], ids=[ids], colors=[colors])
    fd = SimpleNamespace(raster=raster)
    np.testing.assert_array_equal(region_rgb(fd, "regions"), colors)     # hashed: the raster's colours
    out = region_rgb(fd, "regions", "outline")
    assert (out[:, 2] == 60).all()                                       # the boundary, dark grey
    np.testing.assert_array_equal(out[0, 0], [204, 204, 204])            # black mixed with 80 % white
    np.testing.assert_array_equal(out[0, 3], [244, 204, 204])             # 255 − (255 − 200) // 5
    with pytest.raises(ValueError, match="choose from: hashed, outline"):
        region_rgb(fd, "regions", "dots")


def test_palettes_colour_d_of_x():
    p = np.tile(np.linspace(0.0, 1.0, 9, dtype=np.float32), (2, 1))
    fd = SimpleNamespace(raster=SimpleNamespace(prob=p), probability=True)
    cividis = prob_rgb(fd, contour=False, palette="cividis").astype(int)
    lum = cividis @ np.array([0.299, 0.587, 0.114])
    assert (np.diff(lum[0]) > 0).all()                                   # lighter with D(x): reads in grayscale
    assert palette_of("cividis").real != palette_of("default").real
    with pytest.raises(ValueError, match="choose from: default, cividis"):
        palette_of("rainbow")


def test_curve_layout_lines_up_two_runs():
    a = {"loss/d": (np.array([1, 2]), np.array([1.0, 3.0])), "eval/modes": (np.array([2]), np.array([4.0]))}
    b = {"loss/d": (np.array([1, 2]), np.array([0.0, 1.0])), "reg/bre/me": (np.array([1]), np.array([0.5]))}
    layout = curve_layout([(a, 8), (b, 8)])
    assert [(t, k) for t, k, _ in layout] == [("losses", ["loss/d"]), ("BRE", ["reg/bre/me"]),
                                               ("coverage", ["eval/modes"])]
    assert layout[0][2] == pytest.approx((0.0 - 0.15, 3.0 + 0.15))       # over both runs
    assert layout[2][2] == pytest.approx((0.5 - 0.5, 0.5 + 0.5))         # modes / K; one value: ± 0.5


def test_reverse_kl_says_why_it_is_undefined():
    assert reverse_kl_text(0.1234) == "0.12" and reverse_kl_text(0.1234, 4) == "0.1234"
    assert reverse_kl_text(math.inf) == "undefined (no high-quality sample)"
    fd = SimpleNamespace(preset="p", step=3, modes=0, centers=np.zeros((8, 2)), hq=0.0, reverse_kl=math.inf,
                         raster=None)
    assert header_text(fd) == "p · step 3 · modes 0/8 · HQ 0% · reverse KL undefined (no HQ sample)"
