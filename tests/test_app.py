"""The page's flows through Streamlit's AppTest: step, play/pause, scrub, change a regularizer (and an
architecture option, which asks first), A/B, export (the MP4 decodes), bad uploads, the divergences page."""
from pathlib import Path

import imageio.v2 as imageio
import pytest
from streamlit.testing.v1 import AppTest

from toyviz.engine import presets
from toyviz.page.session import PLAY_EVERY, Session

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def at(tiny_cfg):
    """The page on a tiny run, drawn small (the defaults are ring8 at 256² and 800 px)."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.session_state["session"] = Session(tiny_cfg, steps_per_update=3)
    app.session_state["width"] = 320
    app.session_state["resolution"] = 32
    app.session_state["panels"] = ["data", "regions"]
    app.run()
    assert not app.exception
    return app


def sess(app) -> Session:
    return app.session_state["session"]


def caption(app) -> str:
    return " ".join(c.value for c in app.caption)


def image_urls(app) -> list[str]:
    return [u for img in app.image for u in img.value]   # media ids hash the picture's bytes


def test_step_then_play_and_pause(at):
    before = image_urls(at)
    at.button(key="step").click().run()
    assert sess(at).trainer.iteration == 3 and "paused · step 3 of 20" in caption(at)
    assert image_urls(at) != before                               # the picture changed with the weights
    at.button(key="play").click().run()                           # the live fragment trains one update per run
    assert sess(at).playing and sess(at).trainer.iteration == 6
    playing = at.select_slider(key="timeline_playing")            # the timeline keeps its place, at "live"
    assert playing.disabled and playing.value == "live" and playing.options[-2] == "3: step 6"
    at.button(key="pause").click().run()
    it = sess(at).trainer.iteration
    at.run()
    assert not sess(at).playing and sess(at).trainer.iteration == it
    assert not at.select_slider(key=f"timeline{it}").disabled       # paused: it scrubs
    at.button(key="reset").click().run()
    assert sess(at).trainer.iteration == 0
    assert not at.exception and not at.error


def test_scrub_back_to_a_snapshot(at):
    at.number_input(key="spu").set_value(6).run()
    at.button(key="step").click().run()                          # snapshots at 0, 2, 4, 6
    live = image_urls(at)
    slider = at.select_slider(key="timeline6")
    assert slider.options[-1] == "live" and "1: step 2" in slider.options
    slider.set_value("1: step 2").run()
    assert sess(at).view == 1 and "snapshot · step 6" in caption(at)
    assert image_urls(at) != live and "step 2" in at.image[0].captions[0]
    at.button(key="step").click().run()                         # stepping returns to the live weights
    assert sess(at).view is None and sess(at).trainer.iteration == 12


def test_change_a_regularizer_keeps_the_run(at):
    at.button(key="step").click().run()
    at.number_input(key="cfg0:reg.bre.weight").set_value(1.0)
    at.button[[b.label for b in at.button].index("Apply")].click().run()
    s = sess(at)
    assert s.cfg.reg.bre.weight == 1.0 and s.trainer.iteration == 3
    assert any("applied" in m.value for m in at.success)
    at.button(key="step").click().run()
    assert "reg/bre" in s.trainer.history[-1]


def test_architecture_change_asks_first_and_invalid_options_are_refused(at):
    at.button(key="step").click().run()
    at.number_input(key="cfg0:nets.d.width").set_value(24)
    at.button[[b.label for b in at.button].index("Apply")].click().run()
    assert sess(at).pending is not None and sess(at).trainer.iteration == 3
    assert any("must start again" in w.value for w in at.warning)
    at.button(key="confirm_reset").click().run()
    assert sess(at).trainer.iteration == 0 and sess(at).cfg.nets.d.width == 24
    version = sess(at).version
    at.number_input(key=f"cfg{version}:reg.real_target").set_value(2.0)
    at.button[[b.label for b in at.button].index("Apply")].click().run()
    assert any("reg.real_target" in e.value for e in at.error) and sess(at).cfg.reg.real_target == 1.0
    assert not at.exception


def test_ab_side_by_side(at):
    at.text_area(key="ab_text").set_value("reg.bre.weight=1.0\n")
    at.button(key="ab_start").click().run()
    at.button(key="step").click().run()
    s = sess(at)
    assert list(s.runs) == ["A", "B"] and s.runs["B"].iteration == 3 == s.runs["A"].iteration
    assert len(at.image) == 2 and len(at.table) == 1              # one above the other; one table
    assert list(at.table[0].value.columns) == ["stat", "run A", "run B"]
    assert any("reg.bre.weight = 1.0 (A: 0.0)" in m.value for m in at.markdown)
    at.text_area(key="ab_text").set_value("seed=4")
    at.button(key="ab_start").click().run()
    assert any("seed" in e.value for e in at.error) and list(s.runs) == ["A", "B"]
    at.button(key="ab_stop").click().run()
    assert list(sess(at).runs) == ["A"] and len(at.image) == 1


def test_export_mp4_decodes_and_downloads_appear(at, tmp_path):
    at.number_input(key="spu").set_value(6).run()
    at.button(key="step").click().run()
    at.button(key="video_go").click().run()
    fmt, data = at.session_state["video"]
    assert fmt == "mp4" and data[4:8] == b"ftyp"
    (tmp_path / "v.mp4").write_bytes(data)
    frames = [f for f in imageio.get_reader(str(tmp_path / "v.mp4")).iter_data()]   # len() is inf: no list()
    assert len(frames) == sess(at).n_snapshots == 4 and frames[0].shape == (240, 320, 3)     # the picture width
    labels = [d.label for d in at.get("download_button")]
    assert "Download MP4" in labels and "Download config.json" in labels
    assert not at.exception and not at.error


def test_export_chooses_the_videos_frames_and_fps(at, tmp_path):
    at.number_input(key="spu").set_value(10).run()
    at.button(key="step").click().run()                    # 10 steps, a snapshot every 2: steps 0, 2, ..., 10
    assert sess(at).snapshot_steps() == [0, 2, 4, 6, 8, 10]
    at.select_slider(key="video_steps").set_value((2, 10)).run()
    at.number_input(key="video_every").set_value(2).run()
    at.number_input(key="video_fps").set_value(4).run()
    assert any("3 frames · 0.8 s" in c.value for c in at.caption)       # steps 2, 6, 10 at 4 a second
    at.button(key="video_go").click().run()
    _, data = at.session_state["video"]
    (tmp_path / "v.mp4").write_bytes(data)
    reader = imageio.get_reader(str(tmp_path / "v.mp4"))
    assert len(list(reader.iter_data())) == 3 and reader.get_meta_data()["fps"] == 4
    assert not at.exception and not at.error


BAD_UPLOADS = [
    ("upload_csv", "bad.csv", b"x,y\n1,nan\n", "NaN"),
    ("upload_csv", "empty.csv", b"", "empty"),
    ("upload_csv", "words.csv", b"a,b\nc,d\n", "not numeric"),
    ("upload_config", "c.json", b'{"loss": "wgan"}', "gp_weight"),
    ("upload_ckpt", "c.pt", b"not a checkpoint", "not a toyviz checkpoint"),
]


def test_bad_uploads_show_an_error_and_keep_the_run(at):
    at.button(key="step").click().run()
    cfg = sess(at).cfg
    for uploader, name, data, message in BAD_UPLOADS:
        at.file_uploader(key=uploader).upload(name, data).run()
        assert any(message in e.value for e in at.error), (name, [e.value for e in at.error])
        assert not at.exception and sess(at).cfg is cfg and sess(at).trainer.iteration == 3


def test_good_csv_upload_and_checkpoint_of_another_architecture(at, tiny_cfg):
    at.file_uploader(key="upload_csv").upload("pts.csv", b"x,y\n0,0\n1,1\n0.5,-0.5\n").run()
    assert sess(at).cfg.data.kind == "points" and any("3 points" in m.value for m in at.success)
    other = Session(tiny_cfg.replace(**{"nets.d.depth": 2}))
    at.file_uploader(key="upload_ckpt").upload("other.pt", other.checkpoint_bytes()).run()
    assert any("networks differ" in e.value for e in at.error) and sess(at).cfg.nets.d.depth == 3


def test_divergences_page():
    at = AppTest.from_string(f"import sys; sys.path.insert(0, {str(ROOT)!r}); import app; app.divergences_page()",
                             default_timeout=30)
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    at.slider(key="div_n").set_value(3).run()
    assert not at.exception and any("N=3" in str(c.proto.spec) for c in at.get("plotly_chart"))


def test_play_to_the_end_says_so(at):
    at.number_input(key="spu").set_value(12).run()
    at.button(key="play").click().run()                           # 12 steps
    at.run()                                                      # 8 more: complete, paused, told
    assert sess(at).trainer.iteration == 20 and not sess(at).playing
    assert any("run complete at step 20" in w.value for w in at.warning)


def test_image_runs_page(tmp_path, monkeypatch):
    import json

    import numpy as np
    run = tmp_path / "runs" / "img"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": "mnist"}))
    (run / "stats.jsonl").write_text('{"step": 10, "loss/d": 1.2}\n{"step": 20, "loss/d": 0.9}\n')
    for step in (10, 20):
        imageio.imwrite(run / f"samples_{step:06d}.png", np.full((8, 8, 3), step, np.uint8))
    monkeypatch.setenv("TOYVIZ_RUNS_ROOT", str(tmp_path / "runs"))
    at = AppTest.from_string(f"import sys; sys.path.insert(0, {str(ROOT)!r}); import app; app.image_runs_page()",
                             default_timeout=30)
    at.run()
    assert f"under `{tmp_path / 'runs'}` only" in at.caption[0].value
    assert at.selectbox(key="image_run_pick").options == ["img"]       # the runs root's folders, to choose from
    at.selectbox(key="image_run_pick").set_value("img").run()
    assert not at.exception and "samples at step 20" in at.image[0].captions[0]
    at.selectbox(key="image_run_pick").set_value(None)
    at.text_input(key="image_run").set_value("img").run()
    assert not at.exception and "samples at step 20" in at.image[0].captions[0]
    assert at.select_slider(key="image_step").options == ["10", "20"]
    chart = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert chart["layer"][0]["encoding"]["x"]["field"] == "step"     # the curve's x axis is the training step
    at.text_input(key="image_run").set_value("nope").run()
    assert any("is not a folder" in e.value for e in at.error) and not at.exception
    at.text_input(key="image_run").set_value(str(tmp_path)).run()
    assert any("outside the runs root" in e.value for e in at.error) and not at.exception


def test_two_visitors_have_their_own_runs(at, tiny_cfg):
    other = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    other.session_state["session"] = Session(tiny_cfg, steps_per_update=3)
    other.session_state["resolution"] = 32
    other.session_state["width"] = 320
    other.run()
    at.button(key="step").click().run()
    other.run()
    assert sess(at).trainer.iteration == 3 and sess(other).trainer.iteration == 0
    assert sess(at) is not sess(other)


def test_step_d_step_g_and_step_both(at):
    at.button(key="step_d").click().run()
    s = sess(at)
    assert s.trainer.iteration == 0 and s.trainer.d_phases == 1 and "D half taken" in caption(at)
    at.button(key="step_g").click().run()
    assert s.trainer.iteration == 1 and s.trainer.d_phases == 0
    at.button(key="step_both").click().run()
    assert s.trainer.iteration == 2 and not at.exception and not at.error


def test_half_steps_are_disabled_with_the_reason_for_mdgan(tiny_cfg):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.session_state["session"] = Session(tiny_cfg.replace(**{"reg.mdgan": True}))
    app.session_state["width"], app.session_state["resolution"] = 320, 32
    app.run()
    assert app.button(key="step_d").disabled and app.button(key="step_g").disabled
    assert not app.button(key="step_both").disabled
    assert any("MDGAN" in c.value for c in app.sidebar.caption)


def test_how_to_read_and_panel_captions(at):
    assert any(e.label == "How to read this" for e in at.expander)
    text = " ".join(m.value for m in at.markdown)
    assert "every unit of D keeps its on/off state" in text and "BRE" in text and "mode regularizers" in text
    assert "**data**:" in caption(at) and "**regions**:" in caption(at)


def test_g_map_and_the_note_for_a_larger_latent(at, tiny_cfg):
    at.session_state["g_map"] = True
    at.run()
    assert not at.exception and "G's map" in " ".join(m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 2
    at.session_state["session"] = Session(tiny_cfg.replace(**{"nets.latent_dim": 3}))
    at.run()
    assert not at.exception and any("3 dimensions" in i.value for i in at.info)


def test_step_d_after_scrubbing_shows_the_live_weights(at):
    at.number_input(key="spu").set_value(6).run()
    at.button(key="step").click().run()
    at.select_slider(key="timeline6").set_value("1: step 2").run()
    assert sess(at).view == 1
    at.button(key="step_d").click().run()
    assert sess(at).view is None and "paused · step 6 (D half taken)" in caption(at)
    assert not at.exception


def gesture(app, *events):
    """What the browser's data panel sends: every gesture so far, each with its id."""
    app.session_state["data_canvas"] = {"events": [dict(e) for e in events]}
    app.run()


def test_click_draw_and_undo_on_the_data_panel(at):
    at.button(key="step").click().run()
    before = image_urls(at)
    add = {"id": "t-1", "kind": "click", "points": [[0.1, 0.2]]}
    gesture(at, add)
    s = sess(at)
    assert s.trainer.data.n_modes == 9 and s.trainer.iteration == 3      # the run carries on with the new data
    assert any("added a mode at (0.10, 0.20)" in i.value for i in at.info) and image_urls(at) != before
    at.run()                                               # a rerun sees the same gesture again: applied once only
    assert s.trainer.data.n_modes == 9
    remove = {"id": "t-2", "kind": "click", "points": [[0.11, 0.19]]}
    outside = {"id": "t-3", "kind": "click", "points": [[4.0, 0.0]]}
    gesture(at, add, remove, outside)                      # two made while the page was busy: neither is lost
    assert s.trainer.data.n_modes == 8 and any("outside the plot" in e.value for e in at.error)
    assert not at.exception
    at.session_state["data_tool"] = "draw"
    gesture(at, add, remove, outside, {"id": "t-4", "kind": "stroke", "points": [[-1, -1], [1, 1]]})
    assert s.cfg.data.kind == "points" and s.trainer.iteration == 3
    stats = at.table[0].value["stat"].tolist()        # a cloud has no modes: a distance instead of coverage
    assert "sliced W₁, G's points to the data" in stats and "eval/modes" not in stats
    assert "sliced Wasserstein-1 distance" in caption(at)
    gesture(at, add, remove, outside, {"id": "t-4"}, {"id": "t-5", "kind": "stroke", "points": [[0, 0]]})
    assert any("drawing is empty" in e.value for e in at.error) and s.cfg.data.kind == "points"
    at.button(key="undo_data").click().run()
    assert s.cfg.data.kind == "mixture" and s.trainer.data.n_modes == 8
    assert any("undid" in i.value for i in at.info) and not at.exception
    assert at.query_params["data.kind"] == "mixture"              # the link holds the edited modes


def test_a_phone_gets_the_panels_stacked(at):
    wide = at.image[0].proto.imgs[0].url
    at.session_state["data_canvas"] = {"events": [], "screen": 390}     # what the data panel reports on a phone
    at.run()
    assert at.image[0].proto.imgs[0].url != wide and not at.exception


def test_picture_size_stacks_on_a_phone():
    import sys
    sys.path.insert(0, str(ROOT))
    import app
    assert app.picture_size(800, 4, 1440) == (800, 600) == app.picture_size(800, 4, 0)   # 0: not reported yet
    assert app.picture_size(800, 4, 390) == (480, 1536)                                   # one panel per row


def test_speed_slider_from_slow_motion_to_fast(at):
    at.select_slider(key="speed").set_value("slow motion").run()
    s = sess(at)
    assert (s.steps_per_update, s.play_every) == (1, 0.5) and at.number_input(key="spu").value == 1
    at.button(key="play").click().run()
    assert s.trainer.iteration == 1                                # one step per update
    at.button(key="pause").click().run()
    at.select_slider(key="speed").set_value("fast").run()
    assert s.steps_per_update == 20 and s.play_every == PLAY_EVERY < 0.5
    at.button(key="step").click().run()
    assert s.trainer.iteration == 1 + 20 and not at.exception


def test_the_url_holds_the_run_and_rebuilds_it(tiny_cfg):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.query_params.update({"preset": "ring8-bre", "seed": "4", "nets.d.width": "16", "nets.g.width": "16",
                             "optim.iters": "30", "width": "320", "resolution": "32"})
    app.session_state["panels"] = ["data"]
    app.run()
    s = sess(app)
    assert not app.exception and s.cfg.preset == "ring8-bre" and s.cfg.seed == 4 and s.cfg.nets.d.width == 16
    assert s.cfg.reg.bre.weight == 1.0                         # the preset's own options come with it
    app.number_input(key="cfg0:reg.real_target").set_value(0.9)
    app.button[[b.label for b in app.button].index("Apply")].click().run()
    query = app.query_params
    assert query["reg.real_target"] == "0.9" and query["seed"] == "4" and query["width"] == "320"
    shared = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)   # another visitor opens that link
    shared.query_params.update(dict(query))
    shared.session_state["panels"] = ["data"]
    shared.run()
    assert sess(shared).cfg == s.cfg and not shared.exception


@pytest.mark.parametrize("query, message", [({"preset": "nope"}, "not a preset"),
                                            ({"reg.bre.weight": "lots"}, "reg.bre.weight must be a number"),
                                            ({"reg.bogus": "1"}, "unknown config key reg.bogus")])
def test_a_bad_url_gives_a_message_and_the_default_run(query, message):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.query_params.update(query | {"width": "320", "resolution": "32"})
    app.session_state["panels"] = ["data"]
    app.run()
    assert not app.exception and any(message in w.value for w in app.warning)
    assert sess(app).cfg.preset == presets.DEFAULT


def test_config_in_groups_in_words_with_advanced_options(at):
    headings = [m.value for m in at.sidebar.markdown]
    for group in ("Data", "Generator", "Discriminator", "Training", "Regularizers", "View"):
        assert f"**{group}**" in headings
    width = at.number_input(key="cfg0:nets.d.width")
    assert width.label == "D: units per hidden layer" and "`nets.d.width`" in width.help
    assert "hidden units per layer" in width.help                 # the config's own meaning
    assert at.number_input(key="cfg0:data.std").label == "width σ of each mode (data units)"
    keys = {w.key for w in at.sidebar.number_input}
    assert "cfg0:optim.beta1" not in keys                         # rarely used: under advanced options
    at.toggle(key="cfg_advanced").set_value(True).run()
    assert "cfg0:optim.beta1" in {w.key for w in at.sidebar.number_input}
    assert at.selectbox(key="preset").value == "ring8" and not at.exception


def test_a_k_plus_1_d_says_why_a_data_edit_must_restart(tiny_cfg):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.session_state["session"] = Session(tiny_cfg.replace(**{"reg.semi_supervised_fraction": 0.5}))
    app.session_state["width"], app.session_state["resolution"] = 320, 32
    app.session_state["panels"] = ["data"]
    app.run()
    app.button(key="step").click().run()
    gesture(app, {"id": "k-1", "kind": "click", "points": [[0.1, 0.2]]})
    assert any("K+1 classifier with one output per mode" in w.value for w in app.warning)
    assert sess(app).trainer.data.n_modes == 8 and sess(app).trainer.iteration == 5
    app.button(key="confirm_reset").click().run()
    assert sess(app).trainer.data.n_modes == 9 and sess(app).trainer.iteration == 0 and not app.exception
