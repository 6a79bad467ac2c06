"""The Streamlit page: `streamlit run app.py`. Widgets -> Config, one `toyviz.page.session.Session` per browser
session (in st.session_state), drawing with toyviz.draw.render / toyviz.draw.plotly_figures. No maths here.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from toyviz.draw.frames import DEFAULT_PANELS
from toyviz.draw.plotly_figures import plotly_panel
from toyviz.draw.render import draw_frame
from toyviz.engine import presets
from toyviz.geometry.divergences import minibatch_curves
from toyviz.malloc_tuning import reuse_freed_memory
from toyviz.page.session import Session, config_fields, config_with, open_image_run, panel_options, parse_overrides

torch.set_num_threads(1)                 # small nets: one thread per visitor is fastest on a shared machine
reuse_freed_memory()                     # every rerun's rasters reuse the last one's freed arrays (no page faults)
BRE_MEASURED = ("Measured over seeds 0–9 (docs/RESULTS.md): with BRE as in the paper (λ = 1 on D's 2nd layer, "
                "decayed), D's 2nd layer cuts the plane into more regions on 9 of 10 seeds, but G captured fewer "
                "modes at the end on 9 of 10; the claim that BRE helps G find the modes did not reproduce in any "
                "setting tried on this toy.")
UPLOAD_ERRORS = (ValueError, KeyError, RuntimeError, TypeError)
SECTIONS = {"data": "Data", "nets": "Networks", "run": "Loss and seed", "optim": "Optimizer",
            "reg": "Regularizers and techniques", "viz": "Snapshots and grid"}


def session() -> Session:
    if "session" not in st.session_state:
        st.session_state.session = Session()
    return st.session_state.session


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
    # read before the buttons act: a Step pressed while the rerun of a new value is under way uses that value
    s.steps_per_update = st.sidebar.number_input("steps per update", 1, 1000, s.steps_per_update, key="spu")
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
near the data: the maps get finer and the arrows more diverse. **The mode regularizers** (an encoder E, so
G(E(x)) stays near x) pull fake points towards every real mode: watch the rings (captured modes) in the data
panel and the modes curve.

**Step D** moves only D (the maps change, the fake points stay); **Step G** moves only the points, along the
arrows of the map you are looking at.
"""
LATENT_NOTE = "G's map needs a 2D latent plane (nets.latent_dim = 2)"

RESOLUTIONS, WIDTHS = [32, 64, 128, 256, 512], [320, 480, 640, 800, 960, 1280]
PLAY_EVERY = 0.1           # seconds between updates while playing, at most 10 a second: a light run (the default
                           # preset) keeps up; a heavier one (ring8 at 256²) runs its updates back to back, since
                           # Streamlit queues a tick that comes while one is running (`python -m toyviz bench
                           # browser` counts the pictures that reach the screen)


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


def field_widget(f, key: str):
    label = f.path.split(".", 1)[-1] if "." in f.path else f.path
    tip = f"{f.path} (command line: --set {f.path}=...)" + (", as JSON" if f.kind == "json" else "")
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


def configuration(s: Session) -> None:
    """One widget per config field, generated from the dataclass tree, applied together."""
    with st.sidebar.expander("Configuration", expanded=False):
        names = presets.names()
        name = st.selectbox("preset", names, names.index(s.cfg.preset) if s.cfg.preset in names else 0,
                            key="preset")
        if st.button("Load preset (a new run)", key="load_preset"):
            s.load_preset(name)
            st.rerun()
        with st.form(f"config{s.version}"):
            fields = config_fields(s.cfg)
            values = {}
            for section, title in SECTIONS.items():
                st.markdown(f"**{title}**")
                for f in (f for f in fields if f.section == section):
                    values[f.path] = field_widget(f, f"cfg{s.version}:{f.path}")
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
    steps = s.snapshot_steps()
    if s.playing or len(steps) < 2:
        return
    labels = [f"{i}: step {st_}" for i, st_ in enumerate(steps)] + ["live"]
    current = labels[-1] if s.view is None else labels[s.view]
    choice = st.select_slider("timeline (stored snapshots)", labels, current,
                              key=f"timeline{s.trainer.iteration}{half_key(s)}")
    s.scrub(None if choice == "live" else labels.index(choice))


def pictures(s: Session, view: dict) -> None:
    cols = st.columns(len(s.runs))
    width = view["width"] // len(s.runs)
    resolution = view["resolution"]
    numbers = s.numbers()
    for col, label in zip(cols, s.runs):
        with col:
            fd = s.frame_data(label, view["panels"], resolution, hover=view["interactive"])
            if len(s.runs) > 1:
                diff = "" if label == "A" else " · " + ", ".join(f"{k}={v}" for k, v in s.ab.items())
                st.markdown(f"**{label}**{diff}")
            if view["interactive"]:
                for p in view["panels"]:
                    st.plotly_chart(plotly_panel(fd, p), key=f"plot_{label}_{p}")
            else:
                height = int(width * 0.75)
                st.image(draw_frame(fd, view["panels"], (width, height)), caption=f"run {label} · step {fd.step}")
            if label == "A" or view["interactive"]:
                st.caption("  \n".join(panel_caption(p) for p in view["panels"]))
            n = numbers[label]
            keys = [k for k in ("step", "loss/d", "loss/g", "eval/modes", "eval/hq", "eval/reverse_kl",
                                "reg/bre/me", "reg/bre/ac") if k in n]
            st.dataframe({"stat": keys, "value": [f"{n[k]:.4g}" for k in keys]}, hide_index=True,
                         key=f"numbers_{label}")


def live(s: Session, view: dict) -> None:
    """Trains while playing (a fragment that reruns itself) and draws the current view."""
    @st.fragment(run_every=PLAY_EVERY if s.playing else None)
    def body():
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
        pictures(s, view)
        if view.get("g_map"):
            g_map_view(s, view)
    body()


def export(s: Session, view: dict) -> None:
    st.subheader("Export")
    c = st.columns(4)
    fmt = c[0].selectbox("video format", ["mp4", "gif"], key="video_fmt")
    if c[0].button("Prepare video", key="video_go"):
        bar = st.progress(0.0, "encoding")
        size = (view["width"] // 16 * 16, view["width"] * 3 // 64 * 16)       # MP4 sides: multiples of 16
        data = attempt(s.export_video_bytes, fmt, view["panels"], size,
                       lambda done, total: bar.progress(min(done / max(total, 1), 1.0),
                                                        f"encoding {done}/{total}"))
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


def centre_picker(s: Session) -> None:
    """Place Gaussian centres by selecting points of a grid over the view (click, shift-click, box or lasso)."""
    with st.expander("Place Gaussian centres by clicking", expanded=False):
        x0, x1, y0, y1 = s.cfg.viz.extent
        gx, gy = np.meshgrid(np.linspace(x0, x1, 25), np.linspace(y0, y1, 25))
        centres = s.trainer.data.centers.numpy()
        fig = go.Figure([go.Scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", name="grid",
                                    marker={"size": 7, "color": "#cccccc"}),
                         go.Scatter(x=centres[:, 0], y=centres[:, 1], mode="markers", name="current centres",
                                    marker={"size": 10, "color": "#1f5fbf", "symbol": "x"})])
        fig.update_layout(height=420, width=460, margin={"t": 10, "b": 10}, dragmode="select",
                          yaxis={"scaleanchor": "x"}, showlegend=False)
        event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"),
                                key=f"centre_pick{s.version}", width="content")
        chosen = [[p["x"], p["y"]] for p in event.selection.points if p.get("curve_number") == 0]
        if st.button(f"Use the {len(chosen)} selected points as centres", key="centres_go", disabled=not chosen):
            message = attempt(s.set_centers, chosen)
            if message:
                st.rerun()


def explore_page() -> None:
    s = session()
    st.title("toyviz: how D partitions the plane")
    if "flash" in st.session_state:
        st.warning(st.session_state.pop("flash"))
    transport(s)
    view = view_options(s)
    with st.expander("How to read this", expanded=False):
        st.markdown(HOW_TO_READ)
    configuration(s)
    ab_controls(s)
    uploads(s)
    live(s, view)
    centre_picker(s)
    export(s, view)


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
    path = st.text_input("run folder (holds config.json, stats.jsonl, samples_XXXXXX.png)", key="image_run")
    if not path:
        return
    run = attempt(open_image_run, path)
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
            st.line_chart({key: values}, height=160)
    with st.expander("config.json"):
        st.json(run.config)


def main() -> None:
    st.set_page_config(page_title="toyviz", layout="wide")
    st.navigation([st.Page(explore_page, title="Explore a run", default=True),
                   st.Page(divergences_page, title="Minibatch divergences", url_path="divergences"),
                   st.Page(image_runs_page, title="Image-scale runs", url_path="image-runs")]).run()


if __name__ == "__main__":          # `streamlit run app.py` runs this file as __main__; tests import the pages
    main()
