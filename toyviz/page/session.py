"""The Streamlit page's state machine, free of streamlit: one run (or an A/B pair from one seed), play/pause/step,
snapshot scrubbing, config changes that ask before resetting, loading configs/checkpoints/CSVs with clear errors,
and the config-tree description the page turns into widgets. Every user mistake is a `ValueError`.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import tempfile
import threading
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from ..draw.frames import PANELS, frame_data, needs_raster, parse_panels
from ..draw.html_export import export_html
from ..draw.render import draw_frame
from ..draw.writers import export_video, side_by_side, write_figure
from ..engine import presets
from ..engine.config import Config, describe, parse_assignment
from ..engine.data import load_points_csv
from ..engine.trainer import Trainer, TrainingDiverged
from ..geometry.metrics import RegionMetrics
from ..geometry.raster import rasterize_latent
from . import data_edits
from .uploads import MAX_CSV_POINTS, check_size

PLAY_EVERY = 0.05          # seconds between updates while playing: shorter than any update takes, so the page
                           # runs its updates back to back (Streamlit queues a tick that comes while one is
                           # running) and the rate is set by each update's CPU, not by this interval
                           # (`python -m toyviz bench browser` counts the pictures that reach the screen)
MAX_FPS = 60                                     # a video's frames per second, at most
RESET_KEYS = ("nets", "seed", "device")          # changing these makes a new run: weights cannot carry over
HIDDEN_FIELDS = ("data.points", "device", "preset")   # set by upload / fixed / informational


# ---- the config tree as a list of fields (the page draws one widget per field) ------------------------------
@dataclass
class Field:
    """One leaf of the config tree. kind: choice (Literal), bool, int, float, multi (list of Literal),
    text (str), json (lists, unions, optionals: edited as JSON text)."""
    path: str
    kind: Literal["choice", "bool", "int", "float", "multi", "text", "json"]
    value: object
    options: tuple = ()


def config_fields(cfg: Config, hidden: Sequence[str] = HIDDEN_FIELDS) -> list[Field]:
    """Every leaf of `cfg` in declaration order, typed from the dataclass annotations (so every regularizer and
    technique appears without writing its widget by hand)."""
    out: list[Field] = []

    def walk(obj, prefix):
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            path, tp, value = prefix + f.name, hints[f.name], getattr(obj, f.name)
            if path in hidden:
                continue
            if dataclasses.is_dataclass(tp):
                walk(value, path + ".")
                continue
            origin, args = typing.get_origin(tp), typing.get_args(tp)
            if origin is Literal:
                out.append(Field(path, "choice", value, args))
            elif tp is bool:
                out.append(Field(path, "bool", value))
            elif tp is int:
                out.append(Field(path, "int", value))
            elif tp is float:
                out.append(Field(path, "float", value))
            elif tp is str:
                out.append(Field(path, "text", value))
            elif origin is list and typing.get_origin(args[0]) is Literal:
                out.append(Field(path, "multi", list(value), typing.get_args(args[0])))
            else:                                                       # list[...], Optional[...], Union[...]
                out.append(Field(path, "json", json.dumps(value)))
    walk(cfg, "")
    return out


def parse_json_field(path: str, text: str):
    """The value of a `json` field from its text; a bare word (e.g. `all`) is read as a string."""
    text = text.strip()
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        if text.replace("_", "").isalnum():
            return text
        raise ValueError(f"{path}: {text[:60]!r} is not valid JSON (e.g. [1, 2], null or a name)") from None


def config_with(cfg: Config, values: dict) -> Config:
    """`cfg` with the dotted `values` set (json fields given as text are parsed), validated."""
    fields = {f.path: f for f in config_fields(cfg)}
    parsed = {k: parse_json_field(k, v) if fields.get(k) and fields[k].kind == "json" and isinstance(v, str)
              else v for k, v in values.items()}
    return cfg.replace(**parsed).validate()


def parse_overrides(text: str) -> dict:
    """B's differences from A, one `key.path=value` per line (blank lines and # comments ignored)."""
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = parse_assignment(line)
            out[key] = value
    if not out:
        raise ValueError("A/B: name at least one option in which B differs, e.g. reg.bre.weight=1")
    return out


def option_values(cfg: Config, keys) -> dict:
    """The values of the dotted `keys` in `cfg` (e.g. what A has where B differs)."""
    values = {key: value for key, value, _ in describe(cfg)}
    return {key: values.get(key) for key in keys}


def needs_reset(old: Config, new: Config) -> bool:
    """True when `new` cannot continue `old`'s run (other networks, seed or device)."""
    return any(getattr(old, k) != getattr(new, k) for k in RESET_KEYS)


class NetsChanged(ValueError):
    """The new options change the set or shapes of the networks: the run cannot carry on."""


def _continue(trainer: Trainer, cfg: Config) -> Trainer:
    """A trainer for `cfg` that carries on from `trainer` (weights, optimizer moments, RNG streams, history and
    snapshots); raises NetsChanged when the nets do not match."""
    t = Trainer(cfg, callbacks=[RegionMetrics()])
    if set(t.nets) != set(trainer.nets) or any(
            {k: v.shape for k, v in t.nets[n].state_dict().items()}
            != {k: v.shape for k, v in trainer.nets[n].state_dict().items()} for n in t.nets):
        raise NetsChanged("these options change the networks, so the run must start again")
    t.load_state_dict(trainer.state_dict())
    for opt in t.optims.values():                  # loading restores the old hyper-parameters: take the new ones
        for group in opt.param_groups:
            group["betas"] = (cfg.optim.beta1, cfg.optim.beta2)
    if cfg.viz.snapshot_every != trainer.cfg.viz.snapshot_every:
        t.snapshot_every = cfg.viz.snapshot_every
    return t


def panel_options(depth: int) -> list[str]:
    """Every concrete panel name of `toyviz.draw.frames.PANELS` for a D with `depth` hidden layers (L = 1..depth)."""
    out = []
    for p in PANELS:
        if p.endswith(":L"):
            out += [p[:-1] + str(l) for l in range(1, depth + 1)]
        elif p != "regions:all":
            out.append(p)
    return out


LATENT_EXTENT = (-3.0, 3.0, -3.0, 3.0)     # z ~ N(0, I): ±3 holds 99.7 % of each coordinate


@dataclass
class GMap:
    """What the page's "G's map" shows: `raster` (G's hidden layers over the latent grid: ids, colours, counts),
    `image` (R, R, 2) = G(z) at each grid point, the data's `centers` and extent."""
    raster: object
    image: np.ndarray
    centers: np.ndarray
    extent: tuple[float, float, float, float]


class _LiveView:
    """A trainer seen read-only with its live weights as one more snapshot (copies): what `frame_data` reads of it
    (config, data, history, nets, loss, evaluation noise) passes through; its snapshot list is its own."""

    def __init__(self, trainer: Trainer):
        self._trainer = trainer
        self.snapshots = list(trainer.snapshots) + [{"iteration": trainer.iteration,
                                                     "nets": trainer.state_of_nets()}]
        self.history = list(trainer.history)

    def __getattr__(self, name):
        return getattr(self._trainer, name)


# ---- the session -----------------------------------------------------------------------------------------------
class Session:
    """One visitor's state. `runs` maps "A" (and "B" in A/B mode) to a Trainer; B = A's config + `ab` overrides,
    same seed, stepped together. `view` is a snapshot index while scrubbing, None for the live weights."""

    def __init__(self, cfg: Optional[Config] = None, steps_per_update: int = 5, start: bool = True):
        """`start=False`: no runs yet (`runs` empty) until `reset()`; the page's server-wide cap (`live_runs`)
        decides when a session gets them."""
        self.cfg = (cfg or presets.get(presets.DEFAULT)).validate()
        self.ab: Optional[dict] = None
        self.playing = False
        self.steps_per_update = steps_per_update
        self.play_every = PLAY_EVERY          # seconds between updates while playing (the page's speed control)
        self.view: Optional[int] = None
        self.pending: Optional[Config] = None
        self.version = 0                      # bumped when the config changes from outside the widgets
        self.data_undo: list[dict] = []       # the data before each edit on the page (data_edits.data_state)
        self.runs: dict[str, Trainer] = {}
        # Streamlit may run two scripts of one session at once (a playing fragment's tick and a button's rerun):
        # every training call and every read of a trainer for a picture holds this lock, so a trainer is never
        # stepped by two runs together nor read while it changes. Re-entrant, so a Pause from inside a training
        # callback (the same thread) does not wait on itself
        self.lock = threading.RLock()
        self.freed: Optional[str] = None      # why the runs were freed (`free`), until the next `reset`
        if start:
            self.reset()

    # ---- runs ------------------------------------------------------------------------------------------------
    @property
    def trainer(self) -> Trainer:
        return self.runs["A"]

    def config_of(self, label: str) -> Config:
        return self.cfg if label == "A" else self.cfg.replace(**self.ab).validate()

    def reset(self) -> None:
        """Fresh runs from the current config(s), paused at step 0."""
        runs = {"A": Trainer(self.cfg, callbacks=[RegionMetrics()])}
        if self.ab is not None:
            runs["B"] = Trainer(self.config_of("B"), callbacks=[RegionMetrics()])
        self.runs, self.view, self.playing, self.pending, self.freed = runs, None, False, None, None

    def free(self, reason: str) -> None:
        """Pause and drop the runs (their memory goes back to the server), keeping the config; `reason` is what the
        page says until `reset()` builds new runs."""
        self.playing = False                  # an update under way stops after its step, then the lock is ours
        with self.lock:
            self.runs, self.view, self.pending, self.freed = {}, None, None, reason

    def set_ab(self, overrides: Optional[dict]) -> None:
        """Turn A/B on (B = A's config with `overrides`, both restarted from one seed) or off (None)."""
        if overrides is not None:
            if "seed" in overrides:
                raise ValueError("A/B: B shares A's seed; choose other options to compare")
            try:
                self.cfg.replace(**overrides).validate()
            except ValueError as e:
                raise ValueError(f"A/B: option B is not valid: {e}") from None
            if overrides == self.ab:
                return
            self.ab = dict(overrides)
            self.reset()
        elif self.ab is not None:
            self.ab = None
            self.runs = {"A": self.runs["A"]}

    # ---- transport -------------------------------------------------------------------------------------------
    def play(self) -> None:
        self.view, self.playing = None, True

    def pause(self) -> None:
        """Stop playing now: an update under way stops after the step it is taking (it checks between steps), and
        this returns once it has, so whatever the Pause press draws next shows the step the run stopped at (not
        the one before, which a caption read mid-step showed until the next rerun)."""
        self.playing = False
        with self.lock:
            pass

    def step(self, n: Optional[int] = None) -> None:
        """Pause and train `n` (default: steps per update) steps."""
        self.playing = False
        self.advance(n)

    def half_step(self, player: str) -> None:
        """Pause and take one half of an iteration on every run: 'd' (D's update; G's points stay where they are)
        or 'g' (G's update, which completes the iteration; D's map stays). Refused (ValueError, with the reason)
        where a run's halves cannot be taken apart (MDGAN)."""
        if player not in ("d", "g"):
            raise ValueError(f"player must be 'd' or 'g' (got {player!r})")
        refused = self.half_steps_refused
        if refused:
            raise ValueError(refused)
        self.playing, self.view = False, None
        with self.lock:
            for label, t in self.runs.items():
                try:
                    t.half_step(player)
                except TrainingDiverged as e:
                    raise ValueError(f"run {label} diverged: {e}. Reset, or lower the learning rates.") from None

    @property
    def half_steps_refused(self) -> Optional[str]:
        """Why "Step D" / "Step G" are not offered (MDGAN), or None."""
        return next((t.half_steps_refused for t in self.runs.values() if t.half_steps_refused), None)

    def update(self) -> bool:
        """One tick of the page: train a batch of steps when playing (never past `optim.iters`, where playing
        stops). True when something was trained."""
        if not self.playing:
            return False
        remaining = max(t.cfg.optim.iters - t.iteration for t in self.runs.values())
        if remaining <= 0:
            self.playing = False                       # the run is complete: stop rather than overshoot
            return False
        self.advance(min(self.steps_per_update, remaining), playing=True)
        if remaining <= self.steps_per_update and self.playing:
            self.playing = False                       # reached the end: the page says so once
        return True

    def advance(self, n: Optional[int] = None, *, playing: bool = False) -> None:
        """Train `n` steps on every run (under the session's lock). `playing`: an update of the playing page,
        which stops between two steps as soon as Pause is pressed (so a paused run stays at the step it showed)."""
        n = self.steps_per_update if n is None else n
        if not 1 <= n <= 10_000:
            raise ValueError(f"steps per update must lie in 1..10000 (got {n})")
        with self.lock:
            if playing and not self.playing:
                return
            self.view = None
            stop = (lambda: not self.playing) if playing else None
            for label, t in self.runs.items():
                try:
                    if playing and t is not self.trainer:        # B keeps A's step: it stops where A stopped
                        t.run(max(0, self.trainer.iteration - t.iteration))
                    else:
                        t.run(n, abort_fn=stop)
                except TrainingDiverged as e:
                    self.playing = False
                    raise ValueError(f"run {label} diverged: {e}. Reset, or lower the learning rates.") from None

    # ---- scrubbing ---------------------------------------------------------------------------------------------
    @property
    def n_snapshots(self) -> int:
        return min(len(t.snapshots) for t in self.runs.values())

    def snapshot_steps(self) -> list[int]:
        return [s["iteration"] for s in self.trainer.snapshots[:self.n_snapshots]]

    def scrub(self, index: Optional[int]) -> None:
        """Show snapshot `index` (pauses), or the live weights with None."""
        if index is not None:
            if not -self.n_snapshots <= index < self.n_snapshots:
                raise ValueError(f"snapshot index must lie in 0..{self.n_snapshots - 1} (got {index})")
            self.playing = False
            index %= self.n_snapshots
        self.view = index

    def frame_data(self, label: str, panels: Sequence[str], resolution: Optional[int] = None, *,
                   hover: bool = False):
        """`toyviz.draw.frames.FrameData` of run `label` at the current view: the scrubbed snapshot, or the live
        weights (a copy of them as the last snapshot of a read-only view of the trainer: the trainer itself is
        never changed by drawing). Holds the session's lock, so no training runs meanwhile. The raster is computed
        only for panels that show it, its mosaic glass only for the mosaic panel or `hover` (the interactive
        panels show ∇ₓD per pixel)."""
        with self.lock:
            t = self.runs[label]
            parsed = parse_panels(panels, t.D.depth)
            kw = {"raster": needs_raster(parsed),
                  "mosaic": hover or "mosaic" in parsed, "resolution": resolution}
            if self.view is not None and self.view < len(t.snapshots):
                return frame_data(t, self.view, **kw)
            if t.snapshots and t.snapshots[-1]["iteration"] == t.iteration and not t.d_phases:
                return frame_data(t, -1, **kw)
            return frame_data(_LiveView(t), -1, **kw)

    def g_map(self, label: str = "A", resolution: int = 128, extent=LATENT_EXTENT) -> GMap:
        """G's own partition of its 2D latent plane (`rasterize_latent`, on a copy of G at the current view) and
        the image G(z) of every grid point, to show how G folds the plane onto the modes. ValueError naming the
        latent size when it is not 2."""
        with self.lock:
            t = self.runs[label]
            dim = t.cfg.nets.latent_dim
            if dim != 2:
                raise ValueError(f"G's map needs a 2D latent plane; this run's latent has {dim} dimensions "
                                 "(set nets.latent_dim = 2 to see it)")
            G = copy.deepcopy(t.G)
            if self.view is not None and self.view < len(t.snapshots):
                G.load_state_dict(t.snapshots[self.view]["nets"]["G"])
            centers = t.data.centers.cpu().numpy()
            data_extent = tuple(float(v) for v in t.cfg.viz.extent)
        r = rasterize_latent(G, extent, resolution)
        return GMap(r, np.asarray(r.output, np.float64), centers, data_extent)

    def frames(self, panels: Sequence[str], size=(640, 480), resolution: Optional[int] = None) -> dict:
        """label -> (H, W, 3) uint8 picture of the current view, drawn by `toyviz.draw.render.draw_frame`."""
        return {label: draw_frame(self.frame_data(label, panels, resolution), panels, size) for label in self.runs}

    # ---- config changes --------------------------------------------------------------------------------------
    def apply_config(self, cfg: Config) -> bool:
        """Use `cfg` from now on. Options that leave the networks alone carry the run on; if the networks (or
        seed) change after training started, nothing happens yet: `pending` holds cfg until `confirm_reset()`.
        Returns True when applied. Raises ValueError (naming the field) for an invalid config."""
        cfg = cfg.validate()
        if self.ab is not None:
            try:
                cfg.replace(**self.ab).validate()
            except ValueError as e:
                raise ValueError(f"with A/B on, option B would be invalid: {e}") from None
        if not needs_reset(self.cfg, cfg):
            try:
                with self.lock:
                    runs = {label: _continue(t, cfg if label == "A" else cfg.replace(**self.ab))
                            for label, t in self.runs.items()}
            except NetsChanged:                   # e.g. a mode regularizer adds the encoder E
                runs = None
            if runs is not None:
                self.cfg, self.runs, self.pending = cfg, runs, None
                return True
        if any(t.iteration > 0 for t in self.runs.values()):
            self.pending = cfg
            return False
        self.cfg = cfg
        self.reset()
        return True

    def confirm_reset(self) -> None:
        if self.pending is None:
            raise ValueError("no configuration change is waiting for a reset")
        self.cfg = self.pending
        self.reset()

    def cancel_pending(self) -> None:
        self.pending = None
        self.version += 1                     # redraw the widgets from the current config

    def load_preset(self, name: str) -> None:
        self.cfg = presets.get(name)
        self.ab, self.data_undo = None, []
        self.reset()
        self.version += 1

    # ---- files in and out ------------------------------------------------------------------------------------
    def load_config_bytes(self, data: bytes) -> str:
        """A config.json upload: a new run from it (the current one is kept when it is invalid)."""
        check_size("config", len(data))
        cfg = Config.from_json_bytes(data, "the config file").validate()
        self.cfg, self.ab = cfg, None
        self.reset()
        self.version += 1
        return f"config loaded ({cfg.preset}): a new run"

    def load_checkpoint_bytes(self, data: bytes) -> str:
        """A checkpoint upload (loaded with weights_only=True) continues as run A; it must have the current
        networks. A/B is switched off."""
        check_size("checkpoint", len(data))
        fd, tmp = tempfile.mkstemp(suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            t = Trainer.load(tmp, expect=self.cfg, callbacks=[RegionMetrics()])
        except ValueError as e:
            hint = " (load its config.json or preset first)" if "networks differ" in str(e) else ""
            raise ValueError(str(e).replace(tmp, "the uploaded file") + hint) from None
        finally:
            os.unlink(tmp)
        self.cfg, self.ab, self.runs, self.view, self.playing = t.cfg, None, {"A": t}, None, False
        self.version += 1
        return f"checkpoint loaded: run A continues from step {t.iteration}"

    def load_points_bytes(self, data: bytes) -> str:
        """A CSV of x,y points becomes the data (the run carries on; the view's extent fits the points)."""
        check_size("csv", len(data))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("the CSV is not UTF-8 text") from None
        pts = load_points_csv(text, max_points=MAX_CSV_POINTS)
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.15 * max(float((hi - lo).max()), 1e-3)
        extent = [float(lo[0] - pad), float(hi[0] + pad), float(lo[1] - pad), float(hi[1] + pad)]
        cfg = self.cfg.replace(**{"data.kind": "points", "data.points": pts.tolist(), "viz.extent": extent})
        applied = self.apply_config(cfg)
        self.version += 1
        if not applied:
            raise ValueError("unexpected: new data needed a reset")    # data never changes the networks
        return f"{len(pts)} points loaded as the data"

    # ---- direct manipulation of the data (toyviz.page.data_edits) ------------------------------------------------
    def gesture(self, event: dict) -> str:
        """Apply one gesture of the data panel ({"id", "kind": "click" | "stroke", "points": [[x, y], ...]}): a click
        adds a mode or removes the one under it, a stroke draws a cloud. The run carries on; ValueError (the run
        unchanged) for a bad gesture."""
        g = data_edits.Gesture.parse(event)
        if g.kind == "click":
            data = self.trainer.data
            overrides, message = data_edits.click(self.cfg, data.centers.cpu().numpy(), data.stds.cpu().numpy(),
                                                  *g.points[0])
        elif g.kind == "stroke":
            overrides, message = data_edits.stroke(self.cfg, g.points)
        else:
            raise ValueError(f"data panel: gesture kind must be click or stroke (got {g.kind!r})")
        return self.edit_data(overrides, message)

    def edit_data(self, overrides: dict, message: str) -> str:
        """Replace the data mid-run (the nets, optimizers and history carry on through `apply_config`) and remember
        the old data for `undo_data`. Where D's outputs are the data's modes (K+1 semi-supervised) the change waits
        in `pending` and the message says why the run must restart."""
        before = data_edits.data_state(self.cfg)
        applied = self.apply_config(self.cfg.replace(**overrides))
        self.data_undo = (self.data_undo + [before])[-data_edits.UNDO_DEPTH:]
        self.version += 1
        if not applied:
            return (f"{message}, but not yet applied: this run's D is a K+1 classifier with one output per mode, so "
                    "other modes mean another D and the run must start again (Reset and apply)")
        return message

    def undo_data(self) -> str:
        """Put back the data as it was before the last edit (the run carries on)."""
        if not self.data_undo:
            raise ValueError("nothing to undo: the data has not been edited on this page")
        before = self.data_undo.pop()
        applied = self.apply_config(self.cfg.replace(**before))
        self.version += 1
        return "undid the last data edit" + ("" if applied else " (it waits for a reset: K+1 D)")

    def config_json(self) -> str:
        return json.dumps(self.cfg.to_dict(), indent=2) + "\n"

    def checkpoint_bytes(self, label: str = "A") -> bytes:
        fd, tmp = tempfile.mkstemp(suffix=".pt")
        os.close(fd)
        try:
            with self.lock:
                self.runs[label].save(tmp)
            return Path(tmp).read_bytes()
        finally:
            os.unlink(tmp)

    def paper_figure_bytes(self, panels: Sequence[str], fmt: str = "png") -> bytes:
        """A BRE-paper-style figure (rows: start, middle and end of each run, A's above B's) as PNG or PDF, by
        `toyviz.draw.writers.write_figure`."""
        if fmt not in ("png", "pdf"):
            raise ValueError(f"figure format must be png or pdf (got {fmt!r})")
        its = self.snapshot_steps()
        steps = sorted({its[0], its[len(its) // 2], its[-1]})
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"figure.{fmt}"
            with self.lock:
                write_figure(list(self.runs.items()), path, steps=steps, panels=list(panels))
            return path.read_bytes()

    def video_indices(self, first_step: Optional[int] = None, last_step: Optional[int] = None,
                      every: int = 1) -> list[int]:
        """The stored snapshots a video shows: from the one at `first_step` to the one at `last_step` (steps of
        stored snapshots, `snapshot_steps()`; default the first and the last), every `every`-th of them."""
        steps = self.snapshot_steps()
        if not steps:
            raise ValueError("the run stored no snapshots yet: nothing to put in a video")
        first = steps[0] if first_step is None else first_step
        last = steps[-1] if last_step is None else last_step
        for name, step in (("first step", first), ("last step", last)):
            if step not in steps:
                raise ValueError(f"video {name} must be the step of a stored snapshot (got {step}; stored: "
                                 f"{steps[0]}..{steps[-1]})")
        if first > last:
            raise ValueError(f"video: the first step ({first}) comes after the last ({last})")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"video: every must be a whole number of snapshots ≥ 1 (got {every!r})")
        return list(range(steps.index(first), steps.index(last) + 1, every))

    def export_video_bytes(self, fmt: str, panels: Sequence[str], size=(640, 480), progress_fn=None,
                           fps: float = 10, indices: Optional[Sequence[int]] = None) -> bytes:
        """The stored snapshots so far (or those of `indices`, see `video_indices`) as an MP4 or GIF at `fps`
        frames a second, by `toyviz.draw.writers` (A/B: side by side, each `size`)."""
        if fmt not in ("mp4", "gif"):
            raise ValueError(f"video format must be mp4 or gif (got {fmt!r})")
        if not 0 < fps <= MAX_FPS:
            raise ValueError(f"video fps must lie in (0, {MAX_FPS}] (got {fps!r})")
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"run.{fmt}"
            if "B" in self.runs:
                label_b = "B: " + ", ".join(f"{k}={v}" for k, v in self.ab.items())
                run = side_by_side(self.runs["A"], self.runs["B"], ("A", label_b), panels=list(panels),
                                   size=(2 * size[0], size[1]), indices=indices)
                indices = None                                      # the side-by-side frames are those already
            else:
                run = self.trainer
            with self.lock:
                export_video(run, path, fps=fps, panels=list(panels), size=size, progress_fn=progress_fn,
                             indices=indices)
            return path.read_bytes()

    def export_html_bytes(self, panels: Sequence[str], size=(640, 480), fps: float = 10) -> bytes:
        """Run A's stored snapshots as one self-contained HTML page by `toyviz.draw.html_export` (D's maps are
        recomputed in the browser from the shipped weights)."""
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "run.html"
            with self.lock:
                export_html(self.trainer, path, panels=list(panels), size=size, fps=fps)
            return path.read_bytes()

    def numbers(self) -> dict[str, dict[str, float]]:
        """label -> the latest value of every logged statistic (the A/B table)."""
        out = {}
        for label, t in self.runs.items():
            latest: dict[str, float] = {"step": t.iteration}
            for s in list(t.history):
                latest.update({k: v for k, v in s.items() if isinstance(v, (int, float))})
            out[label] = latest
        return out
