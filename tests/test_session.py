"""The page's state machine without streamlit: transport, scrubbing, config changes and resets, A/B, uploads."""
import json
import time

import numpy as np
import pytest
import torch

from toyviz.engine import presets
from toyviz.engine.config import Config
from toyviz.page.session import (
    MAX_CSV_POINTS,
    Session,
    config_fields,
    config_with,
    panel_options,
    parse_overrides,
)


@pytest.fixture
def sess(tiny_cfg):
    return Session(tiny_cfg.replace(**{"viz.resolution": 32}), steps_per_update=3)


def nets_state(t):
    return {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in t.nets.items()}


def assert_same_state(a, b):
    for n in a:
        for k in a[n]:
            torch.testing.assert_close(a[n][k], b[n][k], rtol=0, atol=0)


def test_step_play_pause_update(sess):
    sess.step()
    assert sess.trainer.iteration == 3 and not sess.playing
    assert sess.update() is False and sess.trainer.iteration == 3     # paused: a tick trains nothing
    sess.play()
    assert sess.update() is True and sess.trainer.iteration == 6
    sess.pause()
    assert sess.update() is False and sess.trainer.iteration == 6
    sess.reset()
    assert sess.trainer.iteration == 0 and sess.trainer.history == []


def test_play_stops_exactly_at_the_configured_length(sess):
    sess.play()
    while sess.update():
        pass
    assert sess.trainer.iteration == sess.cfg.optim.iters == 20       # 3-step ticks, last one shortened
    assert not sess.playing
    with pytest.raises(ValueError, match="steps per update"):
        sess.advance(0)


def test_scrub_renders_a_snapshot_and_leaves_the_live_weights(sess):
    sess.step(7)                                      # snapshots every 2 steps: iterations 0, 2, 4, 6
    live = nets_state(sess.trainer)
    n = sess.n_snapshots
    assert sess.snapshot_steps() == [0, 2, 4, 6]
    sess.play()
    sess.scrub(1)
    assert sess.view == 1 and not sess.playing
    fd = sess.frame_data("A", ["data", "regions"])
    assert fd.step == 2 and fd.raster.resolution == 32
    assert_same_state(live, nets_state(sess.trainer))
    fd_live = (sess.scrub(None), sess.frame_data("A", ["data"]))[1]
    assert fd_live.step == 7 and sess.n_snapshots == n             # the live picture adds no stored snapshot
    with pytest.raises(ValueError, match=r"snapshot index must lie in 0\.\.3"):
        sess.scrub(4)
    sess.scrub(-1)
    assert sess.view == 3
    sess.step()
    assert sess.view is None and sess.trainer.iteration == 10


def test_frames_are_pictures(sess):
    pics = sess.frames(["data", "prob"], size=(160, 120), resolution=16)
    assert set(pics) == {"A"} and pics["A"].shape == (120, 160, 3) and pics["A"].dtype == np.uint8


def test_non_architecture_change_carries_the_run_on(sess):
    sess.step(4)
    history = len(sess.trainer.history)
    cfg = config_with(sess.cfg, {"reg.bre.weight": 1.0, "reg.bre.layers": "[1]", "optim.beta1": 0.0})
    assert sess.apply_config(cfg) is True
    t = sess.trainer
    assert t.iteration == 4 and len(t.history) == history and t.cfg.reg.bre.layers == [1]
    assert t.optims["D"].param_groups[0]["betas"] == (0.0, 0.999)
    stats = t.step()
    assert "reg/bre" in stats and stats["step"] == 5


def test_architecture_change_asks_before_resetting(sess):
    sess.step(4)
    before = nets_state(sess.trainer)
    wider = sess.cfg.replace(**{"nets.d.width": 24})
    assert sess.apply_config(wider) is False
    assert sess.pending is wider and sess.trainer.iteration == 4 and sess.cfg.nets.d.width == 16
    assert_same_state(before, nets_state(sess.trainer))
    version = sess.version
    sess.cancel_pending()
    assert sess.pending is None and sess.version == version + 1
    assert sess.apply_config(wider) is False
    sess.confirm_reset()
    assert sess.trainer.iteration == 0 and sess.trainer.D.hidden[0].out_features == 24
    with pytest.raises(ValueError, match="no configuration change"):
        sess.confirm_reset()
    assert sess.apply_config(sess.cfg.replace(seed=5)) is True      # at step 0 nothing is lost: no question
    assert sess.cfg.seed == 5


def test_adding_a_net_counts_as_an_architecture_change(sess):
    sess.step(2)
    assert sess.apply_config(sess.cfg.replace(**{"reg.mode_lambda1": 0.2})) is False
    sess.confirm_reset()
    assert "E" in sess.trainer.nets


def test_invalid_options_name_the_field_and_keep_the_run(sess):
    sess.step(2)
    with pytest.raises(ValueError, match="reg.real_target"):
        sess.apply_config(config_with(sess.cfg, {"reg.real_target": 2.0}))
    with pytest.raises(ValueError, match="gp_weight"):
        config_with(sess.cfg, {"loss": "wgan"})
    with pytest.raises(ValueError, match="reg.bre.layers"):
        config_with(sess.cfg, {"reg.bre.layers": "[1, 2"})
    assert sess.trainer.iteration == 2 and sess.cfg.reg.real_target == 1.0


def test_ab_runs_share_a_seed_and_step_together(sess):
    sess.step(2)
    sess.set_ab({"reg.bre.weight": 1.0})
    a, b = sess.runs["A"], sess.runs["B"]
    assert a.iteration == b.iteration == 0                           # both restarted
    assert_same_state(nets_state(a), nets_state(b))                  # one seed: identical initial weights
    sess.step(2)
    assert a.iteration == b.iteration == 2
    assert "reg/bre" in b.history[-1] and "reg/bre" not in a.history[-1]
    assert set(sess.numbers()) == {"A", "B"} and sess.numbers()["B"]["step"] == 2
    assert set(sess.frames(["data"], size=(96, 96))) == {"A", "B"}
    with pytest.raises(ValueError, match="seed"):
        sess.set_ab({"seed": 3})
    with pytest.raises(ValueError, match="A/B.*reg.real_target"):
        sess.set_ab({"reg.real_target": 7.0})
    assert sess.ab == {"reg.bre.weight": 1.0}                          # the running pair is kept
    sess.set_ab(None)
    assert list(sess.runs) == ["A"] and sess.trainer.iteration == 2


def test_parse_overrides():
    assert parse_overrides("reg.bre.weight=1\n# a comment\n\nloss=hinge  # inline\n") == {
        "reg.bre.weight": 1, "loss": "hinge"}
    with pytest.raises(ValueError, match="at least one option"):
        parse_overrides("  \n# nothing\n")


def test_csv_upload_good_and_bad(sess):
    sess.step(2)
    msg = sess.load_points_bytes(b"x,y\n0,0\n1,2\n-1,0.5\n")
    assert msg.startswith("3 points") and sess.cfg.data.kind == "points" and sess.trainer.iteration == 2
    x0, x1, y0, y1 = sess.cfg.viz.extent
    assert x0 < -1 and x1 > 1 and y0 < 0 and y1 > 2
    cfg = sess.cfg
    bad = {b"": "empty", b"x,y\n1,a\n": "not numeric", b"1,2\nnan,3\n": "NaN", b"\xff\xfe\x00": "UTF-8",
           b"1\n2\n": "two numbers", ("1,1\n" * (MAX_CSV_POINTS + 1)).encode(): "at most 100000",
           b"0" * (20 * 2**20 + 1): "at most 20 MB"}
    for data, message in bad.items():
        with pytest.raises(ValueError, match=message):
            sess.load_points_bytes(data)
    assert sess.cfg is cfg and sess.trainer.iteration == 2


def test_config_upload(sess, tiny_cfg):
    sess.step(2)
    other = tiny_cfg.replace(**{"reg.bre.weight": 1.0, "preset": "mine"})
    assert "mine" in sess.load_config_bytes(json.dumps(other.to_dict()).encode())
    assert sess.cfg == other and sess.trainer.iteration == 0
    sess.step(1)
    for data, message in ((b"{not json", "not valid JSON"), (b'{"nope": 1}', "unknown config key nope"),
                          (b'{"optim": {"lr_g": -1.0}}', "optim.lr_g")):
        with pytest.raises(ValueError, match=message):
            sess.load_config_bytes(data)
    assert sess.cfg == other and sess.trainer.iteration == 1


def test_checkpoint_round_trip_and_refusals(sess):
    sess.step(4)
    data = sess.checkpoint_bytes()
    fresh = Session(sess.cfg)
    assert "step 4" in fresh.load_checkpoint_bytes(data)
    assert fresh.trainer.iteration == 4 and len(fresh.trainer.history) == 4
    assert_same_state(nets_state(sess.trainer), nets_state(fresh.trainer))
    other = Session(sess.cfg.replace(**{"nets.d.width": 8}))
    with pytest.raises(ValueError, match="networks differ"):
        other.load_checkpoint_bytes(data)
    with pytest.raises(ValueError, match="not a toyviz checkpoint"):
        other.load_checkpoint_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(ValueError, match="not a toyviz checkpoint"):
        other.load_checkpoint_bytes(b"")
    assert other.trainer.iteration == 0 and other.cfg.nets.d.width == 8


def test_config_fields_cover_the_whole_tree_and_round_trip(tiny_cfg):
    fields = {f.path: f for f in config_fields(tiny_cfg)}
    kinds = {"loss": "choice", "reg.bre.samples": "multi", "nets.d_spectral_norm": "bool", "nets.d.width": "int",
             "reg.bre.weight": "float", "reg.bre.layers": "json", "data.centers": "json", "viz.extent": "json"}
    assert {k: fields[k].kind for k in kinds} == kinds
    assert fields["loss"].options == ("ns", "minimax", "wgan", "hinge", "lsgan")

    def leaves(d, prefix=""):
        for k, v in d.items():
            yield from leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
    assert set(fields) == set(leaves(tiny_cfg.to_dict())) - {"data.points", "device", "preset"}
    assert config_with(tiny_cfg, {p: f.value for p, f in fields.items()}) == tiny_cfg


def test_panel_options_expand_layers():
    opts = panel_options(3)
    assert "regions:3" in opts and "cumulative:1" in opts and "regions:4" not in opts and "regions:L" not in opts


def test_default_session_is_the_classroom_preset():
    s = Session()
    assert s.cfg.preset == presets.DEFAULT == "classroom" and list(s.runs) == ["A"] and isinstance(s.cfg, Config)


def test_exports_gif_side_by_side_and_paper_figure(sess, tmp_path):
    import imageio.v2 as imageio
    sess.set_ab({"reg.bre.weight": 1.0})
    sess.step(4)                                                      # snapshots at 0, 2, 4
    gif = imageio.mimread(sess.export_video_bytes("gif", ["data"], size=(96, 96)), format="GIF")
    assert len(gif) == 3 and gif[0].shape[:2] == (96, 192)          # A beside B
    assert sess.paper_figure_bytes(["data", "regions"], "pdf")[:5] == b"%PDF-"
    assert sess.video_indices() == [0, 1, 2] and sess.video_indices(2, 4) == [1, 2]
    assert sess.video_indices(every=2) == [0, 2]
    gif = imageio.mimread(sess.export_video_bytes("gif", ["data"], size=(96, 96), indices=[0, 2]), format="GIF")
    assert len(gif) == 2 and gif[0].shape[:2] == (96, 192)          # the chosen snapshots, side by side
    for args, message in [((3,), "stored snapshot"), ((4, 0), "comes after"), ((None, None, 0), "≥ 1")]:
        with pytest.raises(ValueError, match=message):
            sess.video_indices(*args)
    for fps in (0, -1, 61):
        with pytest.raises(ValueError, match="fps"):
            sess.export_video_bytes("gif", ["data"], fps=fps)
    with pytest.raises(ValueError, match="mp4 or gif"):
        sess.export_video_bytes("avi", ["data"])
    with pytest.raises(ValueError, match="png or pdf"):
        sess.paper_figure_bytes(["data"], "svgz")


CENTRES = {"data.kind": "mixture", "data.stds": None, "data.weights": None, "data.points": None}


def test_new_centres_mid_run_keep_the_run(sess):
    sess.step(2)
    assert sess.edit_data({**CENTRES, "data.centers": [[0.5, 0.5], [-0.5, 0.0]]}, "2 modes") == "2 modes"
    assert sess.cfg.data.kind == "mixture" and sess.trainer.data.n_modes == 2 and sess.trainer.iteration == 2


def test_mosaic_is_computed_only_when_shown_or_hovered():
    s = Session(presets.get("bre-toy"), steps_per_update=2)
    s.advance()
    assert s.frame_data("A", ["regions", "grad"], 32).raster.mosaic.size == 0
    assert s.frame_data("A", ["mosaic"], 32).raster.mosaic.shape == (32, 32, 2)
    assert s.frame_data("A", ["regions"], 32, hover=True).raster.mosaic.shape == (32, 32, 2)


# ---- concurrency: a playing tick, a Pause rerun and a Step rerun may run at once ---------------------------------
def test_reading_a_picture_leaves_the_trainer_alone(sess):
    sess.step()                                           # step 3: between snapshots (every 2)
    t = sess.trainer
    before = [s["iteration"] for s in t.snapshots]
    ids = [id(s) for s in t.snapshots]
    fd = sess.frame_data("A", ["data", "regions", "curves"], 32)
    assert fd.step == 3 and [s["iteration"] for s in t.snapshots] == before
    assert [id(s) for s in t.snapshots] == ids


def test_pictures_and_training_from_two_threads_never_collide(sess):
    """A playing update and repeated Step presses / pictures in other threads: every call succeeds (no
    IndexError in raster_of, no 'modified by an inplace operation')."""
    import threading
    errors = []

    def run(fn):
        try:
            for _ in range(15):
                fn()
        except Exception as e:                             # noqa: BLE001 -- the test reports any
            errors.append(repr(e))
    sess.play()
    jobs = [lambda: sess.update(), lambda: sess.step(1),
            lambda: sess.frame_data("A", ["data", "regions", "grad", "curves"], 32)]
    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sess.trainer.iteration == len(sess.trainer.history)


def test_pause_stops_an_update_between_two_steps(sess):
    """Pause pressed while an update trains stops it after the step under way."""
    sess.steps_per_update = 50
    sess.cfg.optim.iters = 1000
    seen = []
    sess.trainer.callbacks.append(type("Pauser", (), {"after_step": lambda self, t, s: (
        seen.append(t.iteration), sess.pause() if t.iteration == 4 else None)})())
    sess.play()
    sess.update()
    assert not sess.playing and sess.trainer.iteration == 4
    assert sess.update() is False and sess.trainer.iteration == 4


def test_pause_returns_once_the_update_under_way_has_stopped(sess):
    """Pause pressed from another thread (the page's Pause rerun beside a playing tick) returns only when the
    update has stopped, so the step it reads next is the step the run stays at."""
    import threading
    sess.steps_per_update, sess.cfg.optim.iters = 500, 1000
    sess.play()
    update = threading.Thread(target=sess.update)
    update.start()
    while sess.trainer.iteration < 3:
        time.sleep(0.001)
    sess.pause()
    shown = sess.trainer.iteration
    update.join()
    assert 3 <= shown < 500 and sess.trainer.iteration == shown


def test_half_steps_move_one_player(sess):
    panels = ["data", "prob"]
    before = sess.frame_data("A", panels, 32)
    sess.half_step("d")
    after_d = sess.frame_data("A", panels, 32)
    np.testing.assert_array_equal(after_d.fake, before.fake)                 # G's points stay
    assert not np.array_equal(after_d.raster.prob, before.raster.prob)       # D's map moved
    assert sess.trainer.iteration == 0
    sess.half_step("g")
    after_g = sess.frame_data("A", panels, 32)
    np.testing.assert_array_equal(after_g.raster.prob, after_d.raster.prob)  # D's map stays
    assert not np.array_equal(after_g.fake, after_d.fake)                    # G's points moved
    assert sess.trainer.iteration == 1
    with pytest.raises(ValueError, match="player"):
        sess.half_step("x")


def test_half_steps_refused_for_mdgan(tiny_cfg):
    s = Session(tiny_cfg.replace(**{"reg.mdgan": True}))
    assert s.half_steps_refused and "MDGAN" in s.half_steps_refused
    with pytest.raises(ValueError, match="MDGAN"):
        s.half_step("d")


def test_every_panel_draws_over_a_1000_step_run(tiny_cfg):
    """Each panel on one renderer per layout, at steps spread over 1,000 steps of training (the curves' axes,
    grad:stream's artists and the region maps all change on the way)."""
    s = Session(tiny_cfg.replace(**{"optim.iters": 1000, "viz.snapshot_every": 50}), steps_per_update=125)
    panels = [p for p in panel_options(s.cfg.nets.d.depth)]
    for _ in range(8):
        s.step()
        for p in panels:
            img = s.frames([p], (256, 192), 24)["A"]
            assert img.shape == (192, 256, 3) and len(np.unique(img.reshape(-1, 3), axis=0)) > 8
        img = s.frames(panels, (640, 480), 24)["A"]
        assert img.shape == (480, 640, 3)
    assert s.trainer.iteration == 1000


def test_g_map_shows_gs_partition_of_its_latent_plane(sess):
    m = sess.g_map(resolution=24)
    assert m.image.shape == (24, 24, 2) and m.raster.cumulative_counts[-1] >= 1
    assert len(m.raster.ids) >= 1 and np.isfinite(m.image).all()
    wide = Session(sess.cfg.replace(**{"nets.latent_dim": 4}))
    with pytest.raises(ValueError, match="2D latent.*4 dimensions"):
        wide.g_map(resolution=24)


def test_sessions_on_different_presets_draw_their_own_layers_and_points(tiny_cfg):
    """Two visitors: a 4-layer D (bre-toy) and a 3-layer ring8 with custom centres, drawn alternately with one
    layout: each picture equals what a private renderer draws when fed that session's frames alone (the curves'
    axes keep room after a rescale, so a renderer's picture depends on the frames it has drawn)."""
    from toyviz.draw.render import FrameRenderer
    a = Session(toyviz_preset("bre-toy", tiny_cfg))
    b = Session(tiny_cfg)
    b.edit_data({**CENTRES, "data.centers": [[-1.5, 1.5], [1.5, -1.5], [0.0, 0.0]]}, "3 modes")
    panels = ["data", "regions", "curves"]
    private = {id(a): FrameRenderer(panels, (400, 300)), id(b): FrameRenderer(panels, (400, 300))}
    for s in (a, b, a, b, a, b):
        s.step()
        fd = s.frame_data("A", panels, 32)
        got = s.frames(panels, (400, 300), 32)["A"]
        np.testing.assert_array_equal(got, private[id(s)].draw(fd))
    assert len(a.frame_data("A", ["regions:all"], 32).raster.ids) == 4
    assert len(b.frame_data("A", ["regions:all"], 32).raster.ids) == 3
    np.testing.assert_allclose(b.frame_data("A", ["data"]).centers, [[-1.5, 1.5], [1.5, -1.5], [0.0, 0.0]])


def toyviz_preset(name, tiny_cfg):
    from toyviz.engine import presets
    keep = {k: tiny_cfg.to_dict()[a][b] for k, (a, b) in {
        "optim.batch_size": ("optim", "batch_size"), "viz.eval_samples": ("viz", "eval_samples")}.items()}
    return presets.get(name).replace(**{"nets.g.width": 16, "nets.d.width": 16, "optim.iters": 20, **keep})
