"""The Streamlit page: `streamlit run app.py`. Widgets -> Config, one `toyviz.page.session.Session` per browser
session (in st.session_state), drawing with toyviz.draw.render / toyviz.draw.plotly_figures. No maths here.
"""
from __future__ import annotations

import base64
import sys
import time
from typing import Optional

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components
import torch

from toyviz.draw.frames import COVERAGE_KEYS, DEFAULT_PANELS
from toyviz.draw.plotly_figures import plotly_panel
from toyviz.draw.render import draw_frame, frame_jpeg
from toyviz.engine import presets
from toyviz.geometry.divergences import minibatch_curves
from toyviz.malloc_tuning import reuse_freed_memory
from toyviz.page import config_form, data_edits, url_state
from toyviz.page.image_runs import find_image_runs, open_image_run, runs_root
from toyviz.page.live_runs import for_server as live_runs
from toyviz.page.session import (
    MAX_FPS,
    PLAY_EVERY,
    Session,
    config_fields,
    config_with,
    option_values,
    panel_options,
    parse_overrides,
)

torch.set_num_threads(1)                 # small nets: one thread per visitor is fastest on a shared machine
reuse_freed_memory()                     # every rerun's rasters reuse the last one's freed arrays (no page faults)
BRE_MEASURED = ("Measured over seeds 0–9 (docs/RESULTS.md). On the BRE paper's toy (λ = 1 on D's 2nd layer, "
                "decayed), BRE gives that layer more regions on 8 of 10 seeds, but G fewer high-quality samples on "
                "9 of 10. Trained to convergence (10,000 steps), BRE ends with fewer modes on ring8 on 6 of 10 seeds "
                "(as many on 4) and level with the plain GAN on grid25. The claim that BRE helps G find the modes "
                "did not reproduce in any setting tried.")
UPLOAD_ERRORS = (ValueError, KeyError, RuntimeError, TypeError)


def session() -> Session:
    """This visitor's Session; the first one is the run the URL names (a shared lesson), if it names one."""
    if "session" not in st.session_state:
        cfg = None
        try:
            cfg = url_state.config_of_query(st.query_params.to_dict())
        except ValueError as e:
            st.session_state.flash = f"The link's run could not be rebuilt, so this is the default run: {e}"
        st.session_state.session = Session(cfg, start=False)    # its runs come from live_runs(), within the cap
    return st.session_state.session


def sync_url(s: Session) -> None:
    """Keep the run's preset, seed and changed options in the URL (a link rebuilds this run); the picture's own
    parameters stay."""
    now = st.query_params.to_dict()
    want = {k: v for k, v in now.items() if k in url_state.VIEW_KEYS} | run_query(s)
    if now != want:
        st.query_params.from_dict(want)


def run_query(s: Session) -> dict[str, str]:
    """`url_state.query_of(s.cfg)`, worked out again only when the session holds another config: every update of
    a playing page syncs the URL, and comparing every option with the preset's is a real share of an update's CPU.
    The page never changes a Config in place (it makes a new one with `Config.replace`), so the same object means
    the same query."""
    cached = st.session_state.get("run_query")
    if cached is None or cached[0] is not s.cfg:
        cached = st.session_state.run_query = (s.cfg, url_state.query_of(s.cfg))
    return cached[1]


def attempt(fn, *args, errors=(ValueError,)):
    """Run a session action; a user mistake becomes an st.error and the current run is kept."""
    try:
        return fn(*args)
    except errors as e:
        st.error(str(e))
        return None


# ---- sidebar: transport, panels, configuration, A/B, files --------------------------------------------------------
def transport(s: Session) -> None:
    top, bottom = st.sidebar.columns(2), st.sidebar.columns(2)
    halves = st.sidebar.columns(2) + [st.sidebar.container()]      # Step D | Step G, then Step both across
    note = st.sidebar.container()
    st.session_state.setdefault("speed", "steady")
    st.session_state.setdefault("spu", s.steps_per_update)
    st.sidebar.select_slider("speed", list(SPEEDS), key="speed", on_change=set_speed, args=(s,),
                             help="how fast Play goes: from one training step per update, two updates a second, to "
                                  "many steps per update (a Step press takes the steps of one update)")
    # read before the buttons act: a Step pressed while the rerun of a new value is under way uses that value
    s.steps_per_update = st.sidebar.number_input("steps per update", 1, 1000, key="spu")
    if top[0].button("Play", key="play", width="stretch", icon=":material/play_arrow:"):
        s.play()
    if top[1].button("Pause", key="pause", width="stretch", icon=":material/pause:"):
        s.pause()
    if bottom[0].button("Step", key="step", width="stretch", icon=":material/skip_next:"):
        attempt(s.step)
    if bottom[1].button("Reset", key="reset", width="stretch", icon=":material/restart_alt:"):
        s.reset()
    refused = s.half_steps_refused
    for col, (label, key, player) in zip(halves, (("Step D", "step_d", "d"), ("Step G", "step_g", "g"),
                                                  ("Step both", "step_both", None))):
        tip = HALF_TIPS[key] if not refused or player is None else refused
        if col.button(label, key=key, width="stretch", disabled=bool(refused) and player is not None, help=tip):
            if player is None:
                attempt(s.step, 1)
            else:
                attempt(s.half_step, player)
    if refused:
        note.caption(f"Step D / Step G: off for this run. {refused}.")


# While playing, the next update starts as soon as this one ends, and Streamlit drops from its send queue whatever
# a fragment's last run had not yet sent when the fragment runs again: on a busy server a whole picture now and
# then. A short pause at the end of each playing update lets the server's event loop hand the update to the
# websocket first (`python -m toyviz bench browser`: "arrived" against "page updates").
HAND_OVER = 0.01
SPEEDS = {          # the speed slider's words -> (training steps per update, seconds between updates while playing)
    "slow motion": (1, 0.5), "slow": (1, 0.2), "steady": (5, PLAY_EVERY), "fast": (20, PLAY_EVERY),
    "fastest": (100, PLAY_EVERY)}


def set_speed(s: Session) -> None:
    """The speed slider sets the steps per update (its number box follows) and the pause between updates."""
    s.steps_per_update, s.play_every = SPEEDS[st.session_state.speed]
    st.session_state.spu = s.steps_per_update


HALF_TIPS = {"step_d": "one D update (optim.d_steps D phases): D's map changes, G's points stay where they are",
             "step_g": "one G update, which completes the iteration: G's points move, D's map stays",
             "step_both": "one whole iteration: D's update, then G's"}
PANEL_CAPTIONS = {   # one line per panel, under the picture
    "data": "real points (blue) and G's fake points (red); rings mark captured modes, crosses missed ones",
    "data:push": "the fake points with −∇ₓ of G's loss: where G's next update pushes each point",
    "data:motion": "the fake points with arrows to where they are at the next stored snapshot",
    "regions": "D's linear regions: each colour is one on/off pattern of all D's units, so D is affine there",
    "regions:": "the on/off patterns of layer {l}'s units alone (one colour per pattern)",
    "cumulative:": "the regions of layers 1–{l} together: where every unit up to layer {l} keeps its state",
    "prob": "D(x) over the plane, the black line where D is undecided (0.5, or 0 for a critic)",
    "grad": "∇ₓD as arrows over D's faded map: the direction that makes a point look more real",
    "grad:stream": "∇ₓD as stream lines: the paths fake points would slide along",
    "mosaic": "∇ₓD averaged per region (mosaic glass): hue = direction, brightness = length",
    "curves": "the run's numbers so far: losses, regularizers, modes captured, regions on the grid",
}
HOW_TO_READ = """
**A region** is a set of points where every unit of D keeps its on/off state (each ReLU is either passing or
cut off). The region maps colour each such pattern differently; the count in a panel's title is how many the
grid sees.

**Inside a region D is affine**, so its input gradient ∇ₓD is one constant arrow per region: the *mosaic
glass* panel paints each region by that arrow's direction (hue) and length (brightness), and the ∇ₓD panels
draw the arrows.

**G's points slide along those arrows.** G's update moves each fake point in the direction that raises D, so a
point follows the arrow of the region it sits in; points in one region all move the same way, which is how a
few large regions herd the fake points onto too few modes.

**BRE** (binarized representation entropy) rewards D for splitting the plane into more, more varied regions
near the data: the maps get finer and the arrows more diverse (on the paper's toy they do; on these toys it did not
help G find more modes, see the A/B panel's note). **The mode regularizers** (an encoder E, so
G(E(x)) stays near x) pull fake points towards every real mode: watch the rings (captured modes) in the data
panel and the modes curve.

**Step D** moves only D (the maps change, the fake points stay); **Step G** moves only the points, along the
arrows of the map you are looking at.
"""
LATENT_NOTE = "G's map needs a 2D latent plane (nets.latent_dim = 2)"

RESOLUTIONS, WIDTHS = [32, 64, 128, 256, 512], [320, 480, 640, 800, 960, 1280]


def view_options(s: Session) -> dict:
    options = panel_options(s.cfg.nets.d.depth)
    defaults = {"panels": [p for p in DEFAULT_PANELS if p in options], "resolution": 256, "width": 800,
                "interactive": False}
    for key, allowed in (("resolution", RESOLUTIONS), ("width", WIDTHS)):     # a link may preset ?width=480
        q = st.query_params.get(key, "")
        if q.isdigit() and int(q) in allowed:
            defaults[key] = int(q)
    for key, value in defaults.items():              # defaults via the state, so a test or a link may preset them
        st.session_state.setdefault(key, value)
    st.session_state.panels = [p for p in st.session_state.panels if p in options] or ["data"]
    with st.sidebar.expander("Panels", expanded=False):
        panels = st.multiselect("panels", options, key="panels")
        res = st.select_slider("grid resolution", RESOLUTIONS, key="resolution")
        width = st.select_slider("picture width", WIDTHS, key="width")
        interactive = st.checkbox("interactive panels (zoom, hover bits and ∇ₓD)", key="interactive")
        g_map = st.checkbox("G's map: G's partition of its latent plane and where G sends it", key="g_map")
    return {"panels": panels or ["data"], "resolution": res, "width": width, "interactive": interactive,
            "g_map": g_map}


def panel_caption(panel: str) -> str:
    name, _, layer = panel.partition(":")
    if layer.isdigit():
        return f"**{panel}**: " + PANEL_CAPTIONS[name + ":"].format(l=layer)
    return f"**{panel}**: {PANEL_CAPTIONS.get(panel, '')}"


def g_map_figures(m) -> tuple[go.Figure, go.Figure]:
    """G's partition of the latent plane (left) and the image of a latent grid in data space (right), each grid
    point coloured by its latent region: the colours show which piece of the plane G folds onto which mode."""
    r = m.raster
    colors = r.cumulative_colors[-1]
    z0, z1, w0, w1 = r.extent
    R = r.resolution
    left = go.Figure(go.Image(z=colors, x0=z0, dx=(z1 - z0) / (R - 1), y0=w1, dy=-(w1 - w0) / (R - 1),
                              hoverinfo="skip"))
    left.update_layout(title=f"G's regions in its latent plane: {r.cumulative_counts[-1]}",
                       xaxis_title="z₁", yaxis_title="z₂", yaxis={"autorange": True, "scaleanchor": "x"})
    k = max(1, R // 32)
    pts, cols = m.image[::k, ::k], colors[::k, ::k]
    right = go.Figure()
    for line in list(pts) + list(pts.transpose(1, 0, 2)):            # the latent grid's rows and columns
        right.add_scatter(x=line[:, 0], y=line[:, 1], mode="lines", line={"width": 0.5, "color": "#bbbbbb"},
                          hoverinfo="skip", showlegend=False)
    flat = cols.reshape(-1, 3)
    right.add_scatter(x=pts[..., 0].ravel(), y=pts[..., 1].ravel(), mode="markers", showlegend=False,
                      marker={"size": 4, "color": [f"rgb({a},{b},{c})" for a, b, c in flat]}, hoverinfo="skip")
    right.add_scatter(x=m.centers[:, 0], y=m.centers[:, 1], mode="markers", name="modes", showlegend=False,
                      marker={"size": 10, "symbol": "x", "color": "black"})
    x0, x1, y0, y1 = m.extent
    right.update_layout(title="G(z) of that grid, coloured by z's region", xaxis={"range": [x0, x1]},
                        yaxis={"range": [y0, y1], "scaleanchor": "x"})
    for fig in (left, right):
        fig.update_layout(height=360, margin={"t": 40, "b": 10, "l": 10, "r": 10})
    return left, right


def g_map_view(s: Session, view: dict) -> None:
    st.markdown("**G's map**")
    if s.cfg.nets.latent_dim != 2:
        st.info(f"{LATENT_NOTE}; this run's latent has {s.cfg.nets.latent_dim} dimensions, so its partition "
                "cannot be drawn as a plane.")
        return
    m = attempt(s.g_map, "A", min(view["resolution"], 128))
    if m is None:
        return
    left, right = g_map_figures(m)
    c = st.columns(2)
    c[0].plotly_chart(left, key="g_map_latent")
    c[1].plotly_chart(right, key="g_map_image")
    st.caption("Left: each colour is one on/off pattern of G's units over z ∈ [−3, 3]² (G is affine on each). "
               "Right: the same grid sent through G; lines are the grid's rows and columns, × the modes.")


def field_widget(f, key: str, tip: str):
    """One config field's widget, labelled in words with its unit (toyviz.page.config_form); the tooltip holds
    the one-line meaning and the dotted key."""
    label = config_form.label_of(f.path)
    tip += ", as JSON" if f.kind == "json" else ""
    if f.kind == "choice":
        return st.selectbox(label, f.options, list(f.options).index(f.value), key=key, help=tip)
    if f.kind == "bool":
        return st.checkbox(label, f.value, key=key, help=tip)
    if f.kind == "int":
        return st.number_input(label, value=int(f.value), step=1, key=key, help=tip)
    if f.kind == "float":
        return st.number_input(label, value=float(f.value), format="%g", key=key, help=tip)
    if f.kind == "multi":
        return st.multiselect(label, f.options, f.value, key=key, help=tip)
    return st.text_input(label, f.value, key=key, help=tip)


def preset_picker(s: Session) -> None:
    """The presets, one choice and one click from a new run, at the top of the sidebar."""
    names = presets.names()
    name = st.sidebar.selectbox("preset", names, names.index(s.cfg.preset) if s.cfg.preset in names else 0,
                                key="preset", help="a ready-made run: data, networks and options")
    st.sidebar.caption(presets.describe(name))
    if st.sidebar.button("Load preset (a new run)", key="load_preset"):
        s.load_preset(name)
        st.rerun()


def configuration(s: Session) -> None:
    """One widget per config field, generated from the dataclass tree, grouped and labelled in words; rarely used
    fields only with "advanced options" on; applied together."""
    with st.sidebar.expander("Configuration", expanded=False):
        advanced = st.toggle("advanced options", key="cfg_advanced", help="show the rarely used options too")
        with st.form(f"config{s.version}"):
            fields, tips = config_fields(s.cfg), config_form.help_texts(s.cfg)
            values = {}
            for group in config_form.GROUPS:
                shown = [f for f in fields if config_form.group_of(f.path) == group
                         and (advanced or not config_form.is_advanced(f.path))]
                if shown:
                    st.markdown(f"**{group}**")
                for f in shown:
                    values[f.path] = field_widget(f, f"cfg{s.version}:{f.path}", tips.get(f.path, f.path))
            submitted = st.form_submit_button("Apply")
    if submitted:
        cfg = attempt(config_with, s.cfg, values)
        if cfg is not None and attempt(s.apply_config, cfg):
            st.sidebar.success("applied")
    if s.pending is not None:
        st.sidebar.warning(f"These options change the networks or the seed: the run (step {s.trainer.iteration}) "
                           "must start again.")
        c = st.sidebar.columns(2)
        if c[0].button("Reset and apply", key="confirm_reset"):
            s.confirm_reset()
            st.rerun()
        if c[1].button("Keep current run", key="cancel_reset"):
            s.cancel_pending()
            st.rerun()


def ab_controls(s: Session) -> None:
    with st.sidebar.expander("A/B comparison", expanded=s.ab is not None):
        st.caption(BRE_MEASURED)
        text = st.text_area("B differs from A in (key.path=value per line)", "reg.bre.weight=1.0", key="ab_text")
        c = st.columns(2)
        if c[0].button("Start A/B", key="ab_start", help="restarts both runs from the same seed"):
            overrides = attempt(parse_overrides, text)
            if overrides is not None:
                attempt(s.set_ab, overrides)
        if c[1].button("Stop A/B", key="ab_stop"):
            s.set_ab(None)


def uploads(s: Session) -> None:
    """Each upload is read once (by its file id): a CSV of points, a config.json or a checkpoint."""
    with st.sidebar.expander("Load data, config or checkpoint", expanded=False):
        for kind, label, types, action in (
                ("csv", "points CSV (x,y rows)", ["csv", "txt"], s.load_points_bytes),
                ("config", "config.json", ["json"], s.load_config_bytes),
                ("ckpt", "checkpoint.pt", ["pt"], s.load_checkpoint_bytes)):
            f = st.file_uploader(label, type=types, key=f"upload_{kind}")
            if f is not None and st.session_state.get(f"seen_{kind}") != f.file_id:
                st.session_state[f"seen_{kind}"] = f.file_id
                message = attempt(action, f.getvalue(), errors=UPLOAD_ERRORS)
                if message:
                    st.success(message)
        pasted = st.text_area("or paste points (x,y per line)", "", key="paste_csv", height=80)
        if st.button("Use pasted points", key="paste_go"):
            message = attempt(s.load_points_bytes, pasted.encode())
            if message:
                st.success(message)


# ---- the run: timeline, pictures, numbers, export ------------------------------------------------------------------
def half_key(s: Session) -> str:
    """'' between iterations, '.dN' after N D halves: a D half leaves the iteration as it was, but a scrubbed
    timeline must still go back to the live weights."""
    return f".d{s.trainer.d_phases}" if s.trainer.d_phases else ""


def timeline(s: Session) -> None:
    """The stored snapshots and the live weights on one slider. While playing it stays in its place, at "live"
    and disabled (the page keeps its layout, and the snapshots can be seen to accumulate); paused, it scrubs."""
    steps = s.snapshot_steps()
    if len(steps) < 2:
        return
    labels = [f"{i}: step {st_}" for i, st_ in enumerate(steps)] + ["live"]
    if s.playing:
        st.select_slider("timeline (stored snapshots)", labels, "live", key="timeline_playing", disabled=True,
                         help="Pause to go back to a stored snapshot")
        return
    current = labels[-1] if s.view is None else labels[s.view]
    choice = st.select_slider("timeline (stored snapshots)", labels, current,
                              key=f"timeline{s.trainer.iteration}{half_key(s)}")
    s.scrub(None if choice == "live" else labels.index(choice))


NARROW_SCREEN = 640        # CSS pixels: below it Streamlit stacks columns, and the picture stacks its panels
STAT_KEYS = ("step", "loss/d", "loss/g", "eval/modes", "eval/hq", "eval/reverse_kl", "reg/bre/me", "reg/bre/ac")
CLOUD_DISTANCE = "sliced W₁, G's points to the data"
CLOUD_NOTE = (f"The data is a point cloud, which has no modes to cover: *{CLOUD_DISTANCE}* is the sliced "
              f"Wasserstein-1 distance (the mean over {data_edits.SLICES} directions of the 1D transport distance "
              "of the projections, in data units; 0 when G's points match the data) between G's points on fixed "
              "noise and a fixed sample of the cloud.")


def run_numbers(s: Session, label: str, n: dict, fd) -> dict:
    """The statistics the table shows for one run. A point cloud has no modes, so its coverage numbers give way
    to the sliced Wasserstein distance between G's fixed-noise points and a fixed sample of the data."""
    if s.config_of(label).data.kind != "points":
        return {k: n[k] for k in STAT_KEYS if k in n}
    shown = {k: n[k] for k in STAT_KEYS if k in n and k not in COVERAGE_KEYS}
    return shown | {CLOUD_DISTANCE: data_edits.sliced_wasserstein(fd.fake, fd.real)}


def picture_size(width: int, n_panels: int, screen: int) -> tuple[int, int]:
    """The picture's (width, height) in pixels: 4:3 (the panels side by side), or on a phone's screen tall, so the
    panels lie one above the other, each about square (toyviz.draw.render picks the grid closest to square cells)."""
    if 0 < screen < NARROW_SCREEN:
        w = min(width, 480)
        return w, int(w * 0.8 * n_panels)
    return width, int(width * 0.75)


def view_frame(s: Session, label: str, view: dict):
    """Run `label`'s FrameData for the picture's panels at the current view (`Session.frame_data`)."""
    return s.frame_data(label, view["panels"], view["resolution"], hover=view["interactive"])


def inline_jpeg(frame: np.ndarray) -> str:
    """A picture as a data: URL of our own JPEG encoding (`render.frame_jpeg`, a fraction of the bytes of
    Streamlit's quality-100 encoding of an array). Inline, it reaches the browser in the same message as the rest
    of the update: a media URL is one more request per picture, which a playing page's next update can overtake
    (the picture it named is then never shown, or is gone from the server: a 404)."""
    return "data:image/jpeg;base64," + base64.b64encode(frame_jpeg(frame)).decode("ascii")


def pictures(s: Session, view: dict, frame_a=None) -> None:
    """Each run's picture at the column's full width (A/B: one above the other, so both stay legible), then one
    table of the numbers with the runs side by side. `frame_a`: run A's FrameData when the data panel already
    computed it in this update (each computation copies the nets and runs G; the raster the most of it)."""
    width = view["width"]
    numbers, table = s.numbers(), {}
    for label in s.runs:
        fd = frame_a if label == "A" and frame_a is not None else view_frame(s, label, view)
        if len(s.runs) > 1:
            a_values = option_values(s.cfg, s.ab)
            diff = "the reference run" if label == "A" else "differs from A in " + ", ".join(
                f"{k} = {v} (A: {a_values[k]})" for k, v in s.ab.items())
            st.markdown(f"**run {label}** · {diff}")
        if view["interactive"]:
            for p in view["panels"]:
                st.plotly_chart(plotly_panel(fd, p), key=f"plot_{label}_{p}")
        else:
            size = picture_size(width, len(view["panels"]), screen_width())
            st.image(inline_jpeg(draw_frame(fd, view["panels"], size)), caption=f"run {label} · step {fd.step}",
                     width="stretch")
        if label == "A" or view["interactive"]:
            st.caption("  \n".join(panel_caption(p) for p in view["panels"]))
        table[label] = run_numbers(s, label, numbers[label], fd)
    keys = list(dict.fromkeys(k for n in table.values() for k in n))
    st.table({"stat": keys} | {f"run {label}": [f"{n[k]:.4g}" if k in n else "" for k in keys]
                               for label, n in table.items()}, hide_index=True)
    if any(s.config_of(label).data.kind == "points" for label in s.runs):
        st.caption(CLOUD_NOTE)


def live(s: Session, view: dict) -> None:
    """Trains while playing (a fragment that reruns itself) and draws the current view."""
    @st.fragment(run_every=s.play_every if s.playing else None)
    def body():
        with live_runs().visit(s, active=False) as refused:
            if refused:                        # freed while idle: the whole page says so
                st.rerun()
            tick()

    def tick():
        was_playing = s.playing
        try:
            s.update()
        except ValueError as e:
            st.session_state.flash = str(e)
        if was_playing and not s.playing:      # the run finished or diverged: redraw the controls, say why
            st.session_state.setdefault("flash", f"run complete at step {s.trainer.iteration}")
            st.rerun()
        timeline(s)
        state = "playing" if s.playing else ("snapshot" if s.view is not None else "paused")
        half = " (D half taken)" if s.trainer.d_phases else ""
        st.caption(f"{state} · step {s.trainer.iteration}{half} of {s.cfg.optim.iters} · {s.n_snapshots} "
                   "snapshots")
        editor, picture = st.columns([1, 2])
        with editor:
            frame_a = data_editor(s, view)
        with picture:
            pictures(s, view, frame_a)
        if view.get("g_map"):
            g_map_view(s, view)
        if s.playing:
            time.sleep(HAND_OVER)
    body()


def video_frames(s: Session, col) -> tuple[Optional[list[int]], float]:
    """The video's frames (indices of stored snapshots: a range of steps, every k-th) and its frames per second,
    chosen in `col`, with the length they make; (None, fps) when the choice is refused (the message says why)."""
    steps = s.snapshot_steps()
    fps = col.number_input("frames per second", 1, MAX_FPS, 10, key="video_fps",
                           help="one frame per stored snapshot; the run stores one every viz.snapshot_every steps")
    first, last = (steps[0], steps[-1]) if steps else (None, None)
    if len(steps) > 1:
        chosen = st.session_state.get("video_steps")
        if not (isinstance(chosen, (tuple, list)) and len(chosen) == 2 and all(x in steps for x in chosen)):
            st.session_state.video_steps = (steps[0], steps[-1])     # none chosen yet, or a new run: all of it
        first, last = col.select_slider("video: from step … to step", steps, key="video_steps")
    every = col.number_input("every k-th snapshot", 1, max(1, len(steps)), 1, key="video_every")
    indices = attempt(s.video_indices, first, last, int(every))
    if indices is not None:
        n = len(indices)
        col.caption(f"{n} frame{'s' if n != 1 else ''} · {n / fps:.1f} s")
    return indices, float(fps)


def export(s: Session, view: dict) -> None:
    st.subheader("Export")
    c = st.columns(4)
    fmt = c[0].selectbox("video format", ["mp4", "gif"], key="video_fmt")
    indices, fps = video_frames(s, c[0])
    if c[0].button("Prepare video", key="video_go", disabled=indices is None):
        bar = st.progress(0.0, "encoding")
        size = (view["width"] // 16 * 16, view["width"] * 3 // 64 * 16)       # MP4 sides: multiples of 16
        data = attempt(s.export_video_bytes, fmt, view["panels"], size,
                       lambda done, total: bar.progress(min(done / max(total, 1), 1.0),
                                                        f"encoding {done}/{total}"), fps, indices)
        if data is not None:
            st.session_state.video = (fmt, data)
        bar.empty()
    if "video" in st.session_state:
        vfmt, vdata = st.session_state.video
        c[0].download_button(f"Download {vfmt.upper()}", vdata, f"toyviz.{vfmt}",
                             "video/mp4" if vfmt == "mp4" else "image/gif", key="video_dl", on_click="ignore")
    if c[0].button("Prepare HTML", key="html_go", help="one self-contained page of run A's snapshots that plays "
                   "offline: the maps are recomputed in the browser, hover shows a pixel's bits and ∇ₓD"):
        with st.spinner("packing the snapshots"):
            size = (view["width"], view["width"] * 3 // 4)                  # the picture's size on this page
            st.session_state.html = attempt(s.export_html_bytes, view["panels"], size)
    if st.session_state.get("html") is not None:
        c[0].download_button("Download HTML", st.session_state.html, "toyviz.html", "text/html", key="html_dl",
                             on_click="ignore")
    ffmt = c[1].selectbox("figure format", ["png", "pdf"], key="fig_fmt")
    if c[1].button("Prepare figure", key="fig_go"):
        st.session_state.figure = (ffmt, attempt(s.paper_figure_bytes, view["panels"], ffmt))
    if st.session_state.get("figure", (None, None))[1] is not None:
        ffmt, fdata = st.session_state.figure
        c[1].download_button(f"Download {ffmt.upper()}", fdata, f"toyviz-figure.{ffmt}", key="fig_dl",
                             on_click="ignore")
    c[2].download_button("Download config.json", s.config_json(), "config.json", "application/json", key="cfg_dl",
                         on_click="ignore")
    if c[3].button("Prepare checkpoint", key="ckpt_go"):
        st.session_state.checkpoint = s.checkpoint_bytes()
    if "checkpoint" in st.session_state:
        c[3].download_button("Download checkpoint.pt", st.session_state.checkpoint, "checkpoint.pt", key="ckpt_dl",
                             on_click="ignore")


DATA_CANVAS = components.declare_component("toyviz_data_panel", path=str(data_edits.CANVAS_DIR))
DATA_TOOLS = {"click": "click: add a mode (on a ×: remove it)", "draw": "draw a cloud of points"}
CANVAS_POINTS = 600                      # real and fake points sent to the browser's data panel: enough to see


def data_editor(s: Session, view: dict):
    """The data panel the visitor edits (toyviz/page/data_canvas): click to add a Gaussian mode or remove one, drag
    to draw a cloud, undo. Gestures are applied before the panel is drawn, so it shows their result at once.
    Returns run A's FrameData for the `view`'s panels, which the picture beside it reuses."""
    st.markdown("**The data** · blue: real points, red: G's points, ×: the modes' centres")
    tool = st.radio("data tool", list(DATA_TOOLS), format_func=DATA_TOOLS.get, key="data_tool", horizontal=True,
                    label_visibility="collapsed")
    panel = st.container()            # the panel keeps its place: messages go below it, so clicks stay on target
    st.button("Undo the last data edit", key="undo_data", icon=":material/undo:", disabled=not s.data_undo,
              on_click=undo_data, args=(s,), help="put back the data as it was before the last click or drawing")
    if "data_message" in st.session_state:
        st.info(st.session_state.pop("data_message"))
    seen = st.session_state.setdefault("gestures_seen", [])
    value = st.session_state.get("data_canvas")
    for event in value.get("events", []) if isinstance(value, dict) else []:
        gid = str(event.get("id")) if isinstance(event, dict) else ""
        if gid in seen:
            continue
        seen.append(gid)
        message = attempt(s.gesture, event)
        if message and s.pending is not None:      # a K+1 D: the sidebar's Reset and apply must appear, and the
            st.session_state.flash = message       # sidebar is outside this fragment: the whole page reruns
            st.rerun(scope="app")
        if message:
            st.info(message)
    del seen[:-500]
    fd = view_frame(s, "A", view)
    centers = [] if s.cfg.data.kind == "points" else fd.centers.round(4).tolist()
    hint = "drag to draw; each stroke adds points" if tool == "draw" else "click to add a mode, click a × to remove"
    with panel:
        DATA_CANVAS(extent=list(fd.extent), real=fd.real[:CANVAS_POINTS].round(3).tolist(),
                    fake=fd.fake[:CANVAS_POINTS].round(3).tolist(), centers=centers, tool=tool, hint=hint,
                    screen=screen_width(), key="data_canvas", default=None)
    sync_url(s)                                # an edit made in this fragment's rerun: the link follows it
    return fd


def undo_data(s: Session) -> None:
    """The Undo button's callback: it runs before the page, so the data panel drawn next shows the old data."""
    try:
        st.session_state.data_message = s.undo_data()
    except ValueError as e:
        st.session_state.data_message = str(e)


def screen_width() -> int:
    """The visitor's screen width in CSS pixels as the data panel's component reported it (0 before it has)."""
    value = st.session_state.get("data_canvas")
    width = value.get("screen") if isinstance(value, dict) else None
    return int(width) if isinstance(width, (int, float)) else 0


def explore_page() -> None:
    """The run page, once this session holds a live run (the server's cap and idle timeout: page.live_runs)."""
    s = session()
    live_server = attempt(live_runs)
    if live_server is None:
        return
    with live_server.visit(s) as refused:
        if refused:
            st.title("toyviz: how D partitions the plane")
            st.warning(refused)
            if st.button("Start again" if s.freed else "Try again", key="live_start", type="primary"):
                if attempt(live_server.start, s) is None and s.runs:
                    st.rerun()
            return
        explore(s)


def explore(s: Session) -> None:
    st.title("toyviz: how D partitions the plane")
    if "flash" in st.session_state:
        st.warning(st.session_state.pop("flash"))
    transport(s)
    view = view_options(s)
    preset_picker(s)
    with st.expander("How to read this", expanded=False):
        st.markdown(HOW_TO_READ)
    configuration(s)
    ab_controls(s)
    uploads(s)
    live(s, view)
    export(s, view)
    sync_url(s)


# ---- second page: the minibatch view of divergences (METHODS §4) ---------------------------------------------------
def divergences_page() -> None:
    st.title("Minibatch view of divergences")
    st.markdown("P = Bernoulli(p), Q = Bernoulli(q). A discriminator that sees minibatches of N samples compares "
                "Pᴺ with Qᴺ: KL grows exactly N-fold, JS saturates at log 2, so JS[Pᴺ‖Qᴺ]/N falls with N "
                "(Huszár). Exact sums over the N+1 counts of ones.")
    c = st.columns(2)
    n = c[0].slider("N (minibatch size)", 1, 64, 8, key="div_n")
    p = c[1].slider("p", 0.01, 0.99, 0.2, 0.01, key="div_p")
    cur = minibatch_curves(p, n, np.linspace(0.0, 1.0, 201))
    fig = go.Figure()
    for key, name, dash in (("js_1", "JS[P‖Q]", "dot"), ("js_n_over_n", f"JS[Pᴺ‖Qᴺ]/N, N={n}", "solid"),
                            ("js_n", f"JS[Pᴺ‖Qᴺ], N={n}", "dash")):
        fig.add_scatter(x=cur["q"], y=cur[key], name=name, line={"dash": dash})
    fig.update_layout(xaxis_title="q", yaxis_title="nats", height=420, margin={"t": 30})
    st.plotly_chart(fig, key="div_js")
    kl = go.Figure()
    kl.add_scatter(x=cur["q"], y=cur["kl_1"], name="KL[P‖Q]")
    kl.add_scatter(x=cur["q"], y=cur["kl_n_over_n"], name=f"KL[Pᴺ‖Qᴺ]/N, N={n}", line={"dash": "dash"})
    kl.update_layout(xaxis_title="q", yaxis_title="nats", yaxis_range=[0, 3], height=320, margin={"t": 30})
    st.plotly_chart(kl, key="div_kl")


# ---- third page: image-scale run folders (toyviz.image) ------------------------------------------------------------
def image_runs_page() -> None:
    st.title("Image-scale runs")
    root = runs_root(argv=sys.argv[1:])
    st.caption(f"This page opens run folders under `{root}` only: the server's runs root (`TOYVIZ_RUNS_ROOT`, or "
               "`streamlit run app.py -- --runs-root DIR`).")
    found = find_image_runs(root)
    picked = st.selectbox("run folder", found, index=None, key="image_run_pick",
                          placeholder=f"choose one of the {len(found)} run folders under the runs root"
                          if found else "no run folders under the runs root yet")
    if not found:
        st.caption(f"`python -m toyviz.image train --dataset digits --iters 2000 --out {root / 'img'}` makes one.")
    typed = st.text_input("or type a run folder under the runs root (holds config.json, stats.jsonl, "
                          "samples_XXXXXX.png)", key="image_run")
    path = typed or picked
    if not path:
        return
    run = attempt(open_image_run, path, root)
    if run is None:
        return
    if run.samples:
        steps = [step for step, _ in run.samples]
        step = st.select_slider("samples at step", steps, steps[-1], key="image_step")
        st.image(str(dict(run.samples)[step]), caption=f"samples at step {step}")
    else:
        st.info("no samples_XXXXXX.png in this folder yet")
    curves = run.curves()
    for key in sorted(curves):
        steps, values = curves[key]
        if len(steps) > 1:
            st.line_chart({"step": steps, key: values}, x="step", y=key, height=160)
    with st.expander("config.json"):
        st.json(run.config)


# Streamlit's status widget ("Running…" and a Stop button) shows in the page's corner during every run, so while
# playing it never leaves, and Stop would halt a student's page mid-update: the page has its own Pause.
HIDE_STATUS = '<style>[data-testid="stStatusWidget"] { visibility: hidden; }</style>'


def main() -> None:
    st.set_page_config(page_title="toyviz", layout="wide")
    st.html(HIDE_STATUS)
    st.navigation([st.Page(explore_page, title="Explore a run", default=True),
                   st.Page(divergences_page, title="Minibatch divergences", url_path="divergences"),
                   st.Page(image_runs_page, title="Image-scale runs", url_path="image-runs")]).run()


if __name__ == "__main__":          # `streamlit run app.py` runs this file as __main__; tests import the pages
    main()
