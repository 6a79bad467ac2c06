"""Direct manipulation of the data (toyviz.page.data_edits through Session.gesture): a click adds a mode or removes
the one under it, a stroke draws a cloud, undo puts the data back; the networks carry on except for a K+1 D; bad
gestures are refused with the reason and leave the run as it was; the sliced Wasserstein distance."""
import numpy as np
import pytest
import torch

from toyviz.page.data_edits import MAX_MODES, cloud_of_stroke, sliced_wasserstein
from toyviz.page.session import Session


def click(x, y, gid="c"):
    return {"id": gid, "kind": "click", "points": [[x, y]]}


def test_click_adds_a_mode_and_the_run_carries_on(tiny_cfg):
    s = Session(tiny_cfg)
    s.step(3)
    d_before = {k: v.clone() for k, v in s.trainer.D.state_dict().items()}
    message = s.gesture(click(0.1, 0.2))
    assert "9 modes" in message and s.trainer.data.n_modes == 9 and s.trainer.iteration == 3
    assert s.cfg.data.kind == "mixture" and s.cfg.data.centers[-1] == [0.1, 0.2]
    for k, v in s.trainer.D.state_dict().items():                 # the same D: its weights came across
        torch.testing.assert_close(v, d_before[k])
    s.step(2)
    assert s.trainer.iteration == 5


def test_click_on_a_mode_removes_it_and_undo_puts_it_back(tiny_cfg):
    s = Session(tiny_cfg)
    assert "7 modes" in s.gesture(click(0.99, 0.01))              # ring8's mode at (1, 0)
    assert not np.any(np.all(np.isclose(s.trainer.data.centers.numpy(), [1.0, 0.0], atol=1e-3), axis=1))
    assert "undid" in s.undo_data()
    assert s.cfg.data.kind == "ring" and s.trainer.data.n_modes == 8
    with pytest.raises(ValueError, match="nothing to undo"):
        s.undo_data()


@pytest.mark.parametrize("event, message", [
    (click(2.0, 0.0), "outside the plot"),
    ({"id": "s", "kind": "stroke", "points": [[0.1, 0.1]]}, "drawing is empty"),
    ({"id": "s", "kind": "stroke", "points": [[5, 5], [6, 6]]}, "drawing is empty"),
    ({"id": "w", "kind": "wave", "points": [[0, 0]]}, "click or stroke"),
    ({"id": "x", "kind": "click"}, "unreadable gesture"),
])
def test_bad_gestures_are_refused_and_keep_the_run(tiny_cfg, event, message):
    s = Session(tiny_cfg)
    s.step(2)
    cfg, trainer = s.cfg, s.trainer
    with pytest.raises(ValueError, match=message):
        s.gesture(event)
    assert s.cfg is cfg and s.trainer is trainer and not s.data_undo


def test_the_last_mode_stays_and_at_most_64(tiny_cfg):
    s = Session(tiny_cfg.replace(**{"data.kind": "mixture", "data.centers": [[0.0, 0.0]]}))
    with pytest.raises(ValueError, match="last mode"):
        s.gesture(click(0.0, 0.0))
    xs = np.linspace(-1.4, 1.4, 8)
    full = [[float(x), float(y)] for x in xs for y in xs]           # 64 modes
    s = Session(tiny_cfg.replace(**{"data.kind": "mixture", "data.centers": full}))
    assert s.trainer.data.n_modes == MAX_MODES
    with pytest.raises(ValueError, match="64"):
        s.gesture(click(-1.2, -1.2))


def test_a_drawn_cloud_becomes_the_data_and_strokes_add_up(tiny_cfg):
    s = Session(tiny_cfg)
    s.step(2)
    first = s.gesture({"id": "a", "kind": "stroke", "points": [[-1, 0], [1, 0]]})
    n = len(s.cfg.data.points)
    assert "points as the data" in first and s.cfg.data.kind == "points" and s.trainer.iteration == 2
    assert n == 201                              # filled in every 3/300 over its length 2, not the two ends alone
    s.gesture({"id": "b", "kind": "stroke", "points": [[0, -1], [0, 1]]})
    assert len(s.cfg.data.points) > n
    with pytest.raises(ValueError, match="no modes"):
        s.gesture(click(0.5, 0.5))
    s.undo_data()
    assert len(s.cfg.data.points) == n


def test_stroke_is_filled_in_evenly(tiny_cfg):
    pts = cloud_of_stroke(tiny_cfg, [[-1, 0], [1, 0]])
    gaps = np.diff(pts[:, 0])
    assert gaps.max() <= 3 / 300 + 1e-9 and pts[0, 0] == -1 and pts[-1, 0] == 1


def test_k_plus_1_d_must_restart_and_says_why(tiny_cfg):
    s = Session(tiny_cfg.replace(**{"reg.semi_supervised_fraction": 0.5}))
    s.step(2)
    message = s.gesture(click(0.1, 0.1))
    assert "K+1" in message and "start again" in message
    assert s.pending is not None and s.trainer.data.n_modes == 8 and s.trainer.iteration == 2
    s.confirm_reset()
    assert s.trainer.data.n_modes == 9 and s.trainer.iteration == 0
    with pytest.raises(ValueError, match="K\\+1"):
        s.gesture({"id": "s", "kind": "stroke", "points": [[0, 0], [1, 1]]})


def test_sliced_wasserstein():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 2))
    assert sliced_wasserstein(a, a) == 0.0
    # a shift by t moves every projection by |t cos θ|: the mean over the half circle is 2t/π
    assert sliced_wasserstein(a, a + [0.5, 0.0], slices=512) == pytest.approx(1 / np.pi, rel=1e-3)
    assert sliced_wasserstein(a, a[::-1]) == 0.0                  # order does not matter
    with pytest.raises(ValueError, match="at least one point"):
        sliced_wasserstein(a, np.zeros((0, 2)))
