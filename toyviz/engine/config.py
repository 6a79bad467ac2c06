"""The run configuration: one nested dataclass tree with a strict JSON round trip and `validate()`.

Unknown keys and wrong types raise `ValueError` naming the dotted field; `Optional[...] = None` means "not
applicable"; `Literal` fields list their allowed values in the error. Every size and magnitude has its range in
`LIMITS` (one table, both trainers), and `validate()` refuses a run whose estimated memory exceeds the cap:
the environment variable TOYVIZ_MEMORY_CAP (bytes, or with a unit: 8G, 512M), else half the machine's memory
(the container's cgroup limit where set, else MemTotal).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import os
import typing
import warnings
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from .atomic_files import atomic_write_text

Activation = Literal["relu", "leaky_relu", "tanh", "maxout"]

# ---- the limits of every size and magnitude: checked by validate() before anything is allocated -------------------
# KEY: (low, high) for a number field; for a list field, each number in it; "len(KEY)": its length. Keys starting
# "image." are toyviz.image's ImageConfig fields. Generous for the published protocols (400,000 steps, widths of
# 400, 4096² rasters); what lies beyond would not fit a machine or would overflow float32 in the first step.
MAX_COORD = 1e4         # |coordinate|: data, centres, spacings, extents (float32 squares stay far from overflow)
LIMITS: dict[str, tuple[float, float]] = {
    "data.n_modes": (1, 10_000),
    "data.grid_size": (1, 100),
    "data.radius": (-MAX_COORD, MAX_COORD),
    "data.grid_spacing": (-MAX_COORD, MAX_COORD),
    "data.std": (0, MAX_COORD),
    "data.centers": (-MAX_COORD, MAX_COORD),
    "len(data.centers)": (0, 10_000),
    "data.stds": (0, MAX_COORD),
    "data.weights": (0, 1e12),
    "data.points": (-MAX_COORD, MAX_COORD),
    "len(data.points)": (0, 1_000_000),
    "nets.latent_dim": (1, 4096),
    "nets.g.width": (1, 16_384), "nets.d.width": (1, 16_384), "nets.e.width": (1, 16_384),
    "nets.g.depth": (1, 64), "nets.d.depth": (1, 64), "nets.e.depth": (1, 64),
    "nets.g.slope": (0, 100), "nets.d.slope": (0, 100), "nets.e.slope": (0, 100),
    "nets.d.pieces": (2, 64),
    "nets.init_std": (0, 100),
    "nets.g_output_scale": (0, MAX_COORD),
    "nets.g_vbn_ref": (1, 65_536),
    "nets.minibatch_kernels": (0, 1024),
    "nets.minibatch_dims": (1, 1024),
    "nets.pack": (1, 64),
    # learning rates: far above any that trains, yet Adam's step (≈ lr) must stay a float32 (≤ 3.4e38)
    "optim.lr_g": (0, 1e6), "optim.lr_d": (0, 1e6), "optim.lr_floor": (0, 1e6),
    "optim.batch_size": (2, 65_536),
    "optim.d_steps": (1, 100),
    "optim.iters": (0, 10_000_000),
    "reg.unrolled_steps": (0, 100),
    "reg.bre.weight": (0, 1e6), "reg.bre.margin_s": (0, 1e6), "reg.bre.eps_scale": (0, 1e6),
    "reg.gp_weight": (0, 1e6), "reg.historical_averaging": (0, 1e6), "reg.feature_matching": (0, 1e6),
    "reg.mode_lambda1": (0, 1e6), "reg.mode_lambda2": (0, 1e6), "reg.mdgan_lambda": (0, 1e6),
    "viz.extent": (-MAX_COORD, MAX_COORD),
    "viz.resolution": (16, 4096),
    "viz.snapshot_every": (1, 10_000_000),
    "viz.max_snapshots": (2, 100_000),
    "viz.eval_samples": (1, 1_000_000),
    "viz.metrics_every": (1, 10_000_000),
    "seed": (0, 2**40),
    "image.nets.latent_dim": (1, 4096),
    "image.nets.width": (1, 2048),
    "image.nets.extra_layers": (0, 16),
    "image.nets.minibatch_kernels": (0, 1024),
    "image.nets.minibatch_dims": (1, 1024),
    "image.nets.slope": (0, 100),
    "image.optim.lr_g": (0, 1e6), "image.optim.lr_d": (0, 1e6), "image.optim.lr_floor": (0, 1e6),
    "image.optim.batch_size": (4, 65_536),
    "image.optim.d_steps": (1, 100),
    "image.optim.iters": (0, 10_000_000),
    "image.reg.labelled_per_class": (1, 100_000),
    "image.eval.metrics_every": (1, 10_000_000),
    "image.eval.samples": (10, 1_000_000),
    "image.eval.grid": (1, 1024),
    "image.eval.missing_mass_steps": (0, 1_000_000),
    "image.eval.missing_mass_noise": (0, 1e3),
    "image.eval.checkpoint_every": (1, 5_000),      # ≤ phases.HISTORY_WINDOW // 2: stats.jsonl keeps every step
    "image.seed": (0, 2**40),
}


def _short(v) -> str:
    """A number as a short string, however large (a 400-digit integer has no float and no quick str)."""
    if isinstance(v, int) and abs(v) >= 10**15:
        return f"about {'-' if v < 0 else ''}10^{int(abs(v).bit_length() * 0.30103)}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _get_dotted(obj, key: str):
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _numbers(v):
    """The numbers in a value: itself, or those of a (nested) list; None for "not applicable"."""
    if isinstance(v, (list, tuple)):
        for x in v:
            yield from _numbers(x)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        yield v


def limit_problems(cfg, prefix: str = ""):
    """The fields of `cfg` outside `LIMITS` (the entries under `prefix`, e.g. "image."), each with its range."""
    for key, (lo, hi) in LIMITS.items():
        if prefix and not key.startswith(prefix) or not prefix and key.startswith("image."):
            continue
        name = key[len(prefix):]
        if name.startswith("len("):
            v = _get_dotted(cfg, name[4:-1])
            if v is not None and not lo <= len(v) <= hi:
                yield f"{name[4:-1]} may hold at most {_short(hi)} entries (got {len(v)})"
            continue
        v = _get_dotted(cfg, name)
        bad = [x for x in _numbers(v) if not lo <= x <= hi]
        if bad:
            each = " each" if isinstance(v, list) else ""
            yield f"{name}{each} must lie in [{_short(lo)}, {_short(hi)}] (got {_short(bad[0])})"


# ---- the memory a run needs, against a cap ------------------------------------------------------------------------
def _parse_bytes(text: str) -> int:
    """"8G", "512M", "1.5GiB", "1000000" -> bytes; ValueError naming what it reads."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        if t and t[-1] in scale:
            return int(float(t[:-1]) * scale[t[-1]])
        return int(float(t))
    except (ValueError, OverflowError):
        raise ValueError(f"TOYVIZ_MEMORY_CAP must be bytes or a number with a unit like 8G (got {text!r})") from None


def machine_memory() -> int:
    """The memory this process may use: the container's cgroup limit where set, else MemTotal."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            raw = f.read().strip()
        if raw.isdigit():                                # "max" where no limit is set
            return int(raw)
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 16 * 2**30


def memory_cap() -> int:
    """Bytes a run may be estimated to need: TOYVIZ_MEMORY_CAP (bytes or with a unit: 8G, 512M), else half the
    machine's memory (`machine_memory`)."""
    env = os.environ.get("TOYVIZ_MEMORY_CAP")
    return _parse_bytes(env) if env else machine_memory() // 2


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def memory_problem(estimate: float, what: str = "this run"):
    """A one-line refusal when `estimate` bytes exceed the cap, else None."""
    cap = memory_cap()
    if estimate > cap:
        return (f"{what} would need about {format_bytes(estimate)} of memory (nets, optimizer state, batches, "
                f"snapshots, rasters), more than the cap of {format_bytes(cap)} (set TOYVIZ_MEMORY_CAP, e.g. 64G, "
                f"to change it)")
    return None


def device_problem(device: str):
    """A one-line refusal when this torch has no such device, else None (a syntactically wrong name included)."""
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            return f"device {device}: this torch has no CUDA device (torch.cuda.is_available() is False); use cpu"
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            return f"device {device}: there are {torch.cuda.device_count()} CUDA devices (cuda:0..)"
    if device == "mps":
        import torch
        if not torch.backends.mps.is_available():
            return "device mps: this torch has no MPS device (torch.backends.mps.is_available() is False); use cpu"
    return None


@dataclass
class DataConfig:
    """A 2D mixture. ring: `n_modes` centres at r·(cos 2πk/K, sin 2πk/K); grid: `grid_size`² centres spaced
    `grid_spacing` apart around 0; mixture: explicit `centers`/`stds`/`weights`; points: an (N, 2) cloud."""
    kind: Literal["ring", "grid", "mixture", "points"] = "ring"
    n_modes: int = 8
    radius: float = 1.0
    grid_size: int = 5
    grid_spacing: float = 2.0
    std: float = 0.01
    centers: Optional[list[list[float]]] = None
    stds: Optional[list[float]] = None
    weights: Optional[list[float]] = None
    points: Optional[list[list[float]]] = None


@dataclass
class MLPConfig:
    """`pieces`: k, the affine pieces of each maxout unit (activation "maxout" only, else None; METHODS §7).
    `batch_norm`: batch norm after each hidden linear layer (G only; METHODS §8)."""
    width: int = 128
    depth: int = 3
    activation: Activation = "relu"
    slope: float = 0.2
    pieces: Optional[int] = None
    batch_norm: bool = False


@dataclass
class NetsConfig:
    latent_dim: int = 2
    g: MLPConfig = field(default_factory=MLPConfig)
    d: MLPConfig = field(default_factory=lambda: MLPConfig(activation="leaky_relu"))
    e: MLPConfig = field(default_factory=MLPConfig)
    g_output: Literal["linear", "tanh"] = "linear"
    g_output_scale: float = 1.0
    g_vbn: bool = False
    g_vbn_ref: int = 64
    d_spectral_norm: bool = False
    minibatch_kernels: int = 0
    minibatch_dims: int = 5
    pack: int = 1
    init: Literal["default", "normal"] = "default"
    init_std: float = 0.02


@dataclass
class OptimConfig:
    batch_size: int = 256
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    iters: int = 2000
    lr_schedule: Literal["constant", "linear"] = "constant"
    lr_floor: float = 1e-6
    cuda_graph: bool = False


@dataclass
class BREConfig:
    """Cao et al. 2018, METHODS §1. `layers`: D hidden-layer indices (0-based) or a named set: "all",
    "all_but_first" (1..L−1), "all_but_first_last" (1..L−2, the reference code's choice)."""
    weight: float = 0.0
    layers: Union[Literal["all", "all_but_first", "all_but_first_last"], list[int]] = "all_but_first_last"
    samples: list[Literal["fake", "interp", "real"]] = field(default_factory=lambda: ["fake", "interp"])
    interp: Literal["paper", "code"] = "paper"
    pairs: Literal["paper", "code"] = "paper"
    margin_s: float = 3.0
    eps_scale: float = 1e-3
    schedule: Literal["constant", "linear"] = "constant"


@dataclass
class SharedRegConfig:
    """The regularizers and techniques both trainers have, with the same names and meanings (the toy's `RegConfig`
    and `toyviz.image`'s extend it); a weight of 0 (1 for real_target, False for switches) means off and absent.

    gp_weight: WGAN-GP λ (10 is the paper's).  real_target: one-sided label smoothing (0.9 the paper's).
    historical_averaging: λ on ‖θ − mean of past θ‖² for G and D.  feature_matching: λ on G's feature matching on
    D's hidden layer `feature_matching_layer` (l2 paper / l1 CIFAR code); `_replace`: it becomes G's whole loss.
    mode_lambda1/2: Che et al.'s geometric and mode terms with an encoder E (their defaults: 0.2, 0.4); mode_sign:
    "intent" minimizes −log D(G(E(x))), "printed" the sign as printed.  mdgan: the manifold/diffusion procedure with
    D1 (= D), D2 and E, geometric weight mdgan_lambda.
    """
    bre: BREConfig = field(default_factory=BREConfig)
    gp_weight: float = 0.0
    real_target: float = 1.0
    historical_averaging: float = 0.0
    feature_matching: float = 0.0
    feature_matching_layer: int = -1
    feature_matching_norm: Literal["l2", "l1"] = "l2"
    feature_matching_replace: bool = False
    mode_lambda1: float = 0.0
    mode_lambda2: float = 0.0
    mode_sign: Literal["intent", "printed"] = "intent"
    mdgan: bool = False
    mdgan_lambda: float = 0.2


@dataclass
class RegConfig(SharedRegConfig):
    """The toy's techniques beyond the shared ones: unrolled_steps: k of Metz et al.'s unrolled D.
    semi_supervised_fraction: share of each real batch labelled by mixture component for a K+1 classifier D
    (0 = off); `_halve`: the reference code's ½ on its loss."""
    unrolled_steps: int = 0
    semi_supervised_fraction: float = 0.0
    semi_supervised_halve: bool = False


@dataclass
class VizConfig:
    extent: list[float] = field(default_factory=lambda: [-1.5, 1.5, -1.5, 1.5])
    resolution: int = 256
    snapshot_every: int = 50
    max_snapshots: int = 200
    eval_samples: int = 2500
    metrics_every: int = 100


class ConfigRenamed(UserWarning):
    """A config file, checkpoint or option used a field's old name; it was read under the new one."""


class JsonConfig:
    """The strict JSON round trip shared by every config tree (the toy's `Config`, `toyviz.image`'s ImageConfig).

    `RENAMED` maps a field's old dotted name to its new one: files and options written with the old name still
    load, with a one-line `ConfigRenamed` warning naming the rename."""

    RENAMED: dict[str, str] = {}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        try:
            return cls._from_dict(d)
        except RecursionError:
            raise ValueError("the config is nested too deeply to be a config") from None

    @classmethod
    def _from_dict(cls, d: dict):
        if isinstance(d, dict) and any(_has_dotted(d, old) for old in cls.RENAMED):
            d = copy.deepcopy(d)
            for old, new in cls.RENAMED.items():
                if _has_dotted(d, old):
                    parent, _, leaf = old.rpartition(".")
                    new_parent, _, new_leaf = new.rpartition(".")
                    _node(d, new_parent)[new_leaf] = _node(d, parent).pop(leaf)
                    _note_rename(old, new)
        return _build(cls, d, "")

    def to_json(self, path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_json(cls, path):
        with open(path, "rb") as f:
            return cls.from_json_bytes(f.read(), str(path))

    @classmethod
    def from_json_bytes(cls, data: bytes, name: str = "the config file"):
        """A config from JSON text (UTF-8); ValueError "NAME: ..." for anything that is not one, deep nesting and
        integers of thousands of digits included."""
        try:
            d = json.loads(data.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{name}: not valid JSON ({str(e)[:120]})") from None
        except RecursionError:
            raise ValueError(f"{name}: the JSON is nested too deeply to be a config") from None
        except ValueError as e:              # an integer of more than 4,300 digits
            raise ValueError(f"{name}: not a config ({str(e)[:120]})") from None
        return cls.from_dict(d)

    def replace(self, **dotted):
        """A copy with dotted keys set, e.g. `cfg.replace(**{"reg.bre.weight": 1.0})`."""
        d = self.to_dict()
        for key, value in dotted.items():
            if key in self.RENAMED:
                _note_rename(key, self.RENAMED[key])
                key = self.RENAMED[key]
            set_dotted(d, key, value)
        return type(self).from_dict(d)


@dataclass
class Config(JsonConfig):
    data: DataConfig = field(default_factory=DataConfig)
    nets: NetsConfig = field(default_factory=NetsConfig)
    loss: Literal["ns", "minimax", "wgan", "hinge", "lsgan"] = "ns"
    optim: OptimConfig = field(default_factory=OptimConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    viz: VizConfig = field(default_factory=VizConfig)
    preset: str = "custom"
    seed: int = 0
    device: str = "cpu"

    # ---- validation ------------------------------------------------------------------------------------------
    def validate(self) -> "Config":
        """Raise ValueError with a message a person understands; return self when the config is usable."""
        problems = checked(self, _problems(self), "")
        if not problems:
            problems = [p for p in (device_problem(self.device), memory_problem(estimate_memory(self))) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def checked(cfg, problems, prefix: str) -> list[str]:
    """The field checks' problems, then the `LIMITS` problems of fields no earlier message names."""
    out = list(problems)
    said = " ".join(out)
    return out + [p for p in limit_problems(cfg, prefix) if p.split(" ")[0] not in said]


def estimate_memory(c: Config) -> float:
    """Bytes a toy run needs at most, roughly: the nets' parameters with gradients, Adam's two moments and the
    divergence rollback's copy; the snapshots; a step's batches and activations (minibatch discrimination's
    batch × batch × kernels × dims differences included, for each unrolled step); the evaluation samples; the data;
    a raster of viz.resolution² pixels with its chunk of D's activations."""
    F = 4                                                    # float32
    n, o, r, v, d = c.nets, c.optim, c.reg, c.viz, c.data
    modes = {"ring": d.n_modes, "grid": d.grid_size ** 2, "mixture": len(d.centers or []), "points": 1}[d.kind]

    def mlp(i: int, spec: MLPConfig, out: int) -> int:
        k = spec.pieces or 1                                 # maxout: each hidden layer has width·k outputs
        return ((i + 1) * spec.width * k + (spec.depth - 1) * (spec.width + 1) * spec.width * k
                + (spec.width + 1) * out + 2 * spec.width * spec.depth * spec.batch_norm)

    semi = r.semi_supervised_fraction > 0
    mb, mbd = n.minibatch_kernels, n.minibatch_dims
    d_params = mlp(2 * n.pack, n.d, modes if semi else 1) + n.d.width * mb * mbd + mb * (modes if semi else 1)
    params = mlp(n.latent_dim, n.g, 2) + d_params
    if r.mode_lambda1 > 0 or r.mode_lambda2 > 0 or r.mdgan:
        params += mlp(2, n.e, n.latent_dim)
    if r.mdgan:
        params += d_params
    snapshots = min(v.max_snapshots + 1, o.iters // v.snapshot_every + 2)
    b, bd = o.batch_size, o.batch_size // n.pack
    per_sample = (n.g.width * n.g.depth + n.latent_dim + 2
                  + 2 * (n.d.width * (n.d.pieces or 1) * n.d.depth + mb + 2 * n.pack))
    # real, fake, interpolates; values, pre-activations, gradients
    batches = 4 * b * per_sample * 3 + 4 * bd * bd * mb * mbd * 3
    step = batches * (1 + r.unrolled_steps)
    evaluation = v.eval_samples * (n.g.width * n.g.depth + n.latent_dim + 2) * 2 + v.eval_samples * modes * 6
    data = len(d.points or []) * 16 + modes * 32
    bits = n.d.width * (n.d.pieces or 1)                  # pattern bits a hidden layer (maxout: units·k)
    activations = 65_536 * (bits * n.d.depth + mb * mbd)        # one chunk of D's outputs, floats
    # a raster's bytes a pixel: per hidden layer its ids and cumulative ids (int64), two RGBA colour maps, the
    # pattern bits (uint64 words) and the sort's two int64 temporaries; then prob, the mosaic (2 floats), the output
    raster = v.resolution ** 2 * (n.d.depth * (8 + 8 + 4 + 4 + 8 * -(-bits // 64) + 16) + 16)
    return F * (params * (6 + snapshots) + step + evaluation + activations) + raster + data


def _problems(c: Config):
    d, n, o, r, v = c.data, c.nets, c.optim, c.reg, c.viz
    if d.kind == "ring" and d.n_modes < 1:
        yield "data.n_modes must be ≥ 1"
    if d.kind == "grid" and d.grid_size < 1:
        yield "data.grid_size must be ≥ 1"
    if d.std <= 0:
        yield f"data.std must be > 0 (got {d.std})"
    if d.kind == "mixture":
        if not d.centers:
            yield "data.centers must list at least one [x, y] centre for a custom mixture"
        else:
            k = len(d.centers)
            if any(len(p) != 2 for p in d.centers):
                yield "data.centers must be [x, y] pairs"
            if d.stds is not None and (len(d.stds) != k or min(d.stds) <= 0):
                yield f"data.stds must hold {k} values > 0"
            if d.weights is not None and (len(d.weights) != k or min(d.weights) < 0 or sum(d.weights) <= 0):
                yield f"data.weights must hold {k} non-negative values with a positive sum"
    if d.kind == "points" and (not d.points or any(len(p) != 2 for p in d.points)):
        yield "data.points must be a non-empty list of [x, y] pairs"
    for name, spec in (("g", n.g), ("d", n.d), ("e", n.e)):
        if spec.width < 1 or spec.depth < 1:
            yield f"nets.{name}: width and depth must be ≥ 1 (got width {spec.width}, depth {spec.depth})"
        if spec.slope < 0:
            yield f"nets.{name}.slope must be ≥ 0"
    yield from _unit_problems(c)
    if n.latent_dim < 1:
        yield "nets.latent_dim must be ≥ 1"
    if n.g_output_scale <= 0:
        yield "nets.g_output_scale must be > 0"
    if n.pack < 1:
        yield "nets.pack must be ≥ 1"
    if n.minibatch_kernels < 0 or n.minibatch_dims < 1:
        yield "nets.minibatch_kernels must be ≥ 0 and nets.minibatch_dims ≥ 1"
    if o.lr_g <= 0 or o.lr_d <= 0:
        yield f"optim.lr_g and optim.lr_d must be > 0 (got {o.lr_g}, {o.lr_d})"
    if not (0 <= o.beta1 < 1 and 0 <= o.beta2 < 1):
        yield "optim.beta1 and optim.beta2 must lie in [0, 1)"
    if o.batch_size < 2:
        yield "optim.batch_size must be ≥ 2"
    if o.d_steps < 1 or o.iters < 0:
        yield "optim.d_steps must be ≥ 1 and optim.iters ≥ 0"
    if o.lr_floor < 0:
        yield "optim.lr_floor must be ≥ 0"
    if n.pack >= 1 and o.batch_size % n.pack:
        yield f"optim.batch_size ({o.batch_size}) must be a multiple of nets.pack ({n.pack})"
    yield from shared_reg_problems(r, c.loss, n.d.depth, n.d_spectral_norm)
    if r.bre.weight > 0 and n.pack >= 1 and o.batch_size // n.pack < 4:
        yield "optim.batch_size is too small for BRE's pair statistics (need ≥ 4 samples per D batch)"
    yield from _technique_problems(c)
    yield from graph_problems(o, r)
    if len(v.extent) != 4 or not (v.extent[0] < v.extent[1] and v.extent[2] < v.extent[3]):
        yield f"viz.extent must be [xmin, xmax, ymin, ymax] with xmin < xmax and ymin < ymax (got {v.extent})"
    if v.snapshot_every < 1 or v.max_snapshots < 2 or v.metrics_every < 1 or v.eval_samples < 1:
        yield "viz.snapshot_every, viz.metrics_every, viz.eval_samples must be ≥ 1 and viz.max_snapshots ≥ 2"
    if not (c.device == "cpu" or c.device.startswith("cuda") or c.device == "mps"):
        yield f"device must be cpu, cuda, cuda:N or mps (got {c.device!r})"


def graph_problems(o: OptimConfig, r: SharedRegConfig):
    """Why a step cannot be captured as a CUDA graph (`optim.cuda_graph`; engine/graph_step.py): a graph replays
    fixed kernels on fixed buffers, so a technique that reads a value on the host inside the step, or changes a
    constant of the step from one iteration to the next, is refused with that reason. Both trainers call it."""
    if not o.cuda_graph:
        return
    why = "optim.cuda_graph replays one fixed step"
    if r.historical_averaging > 0:
        yield f"{why}: reg.historical_averaging counts its steps on the host inside the step; set it to 0"
    if r.mdgan:
        yield f"{why}: reg.mdgan's manifold and diffusion steps are not captured; set reg.mdgan=false"
    if getattr(r, "unrolled_steps", 0) > 0:
        yield (f"{why}: reg.unrolled_steps reads Adam's step count on the host to unroll D; "
               f"set reg.unrolled_steps=0")


def shared_reg_problems(r: SharedRegConfig, loss: str, d_depth: int, d_spectral_norm: bool):
    """The checks of the fields both trainers share (`SharedRegConfig`); `d_depth`: D's hidden layers."""
    b = r.bre
    if b.weight < 0:
        yield "reg.bre.weight must be ≥ 0"
    if b.weight > 0:
        if isinstance(b.layers, list):
            bad = [i for i in b.layers if not -d_depth <= i < d_depth]
            if bad or not b.layers:
                yield (f"reg.bre.layers {b.layers}: D has {d_depth} hidden layers, so indices must lie in "
                       f"0..{d_depth - 1}")
        elif b.layers == "all_but_first_last" and d_depth < 3:
            yield f"reg.bre.layers 'all_but_first_last' needs a D with ≥ 3 hidden layers (has {d_depth})"
        elif b.layers == "all_but_first" and d_depth < 2:
            yield f"reg.bre.layers 'all_but_first' needs a D with ≥ 2 hidden layers (has {d_depth})"
        if not b.samples:
            yield "reg.bre.samples must name at least one of fake, interp, real"
        if b.margin_s < 0 or b.eps_scale <= 0:
            yield "reg.bre.margin_s must be ≥ 0 and reg.bre.eps_scale > 0"
    for key in ("gp_weight", "historical_averaging", "feature_matching", "mode_lambda1", "mode_lambda2",
                "mdgan_lambda"):
        if getattr(r, key) < 0:
            yield f"reg.{key} must be ≥ 0"
    if not 0 < r.real_target <= 1:
        yield f"reg.real_target must lie in (0, 1] (got {r.real_target})"
    if r.real_target != 1 and loss in ("wgan", "hinge"):
        yield f"reg.real_target (one-sided label smoothing) has no meaning for the {loss} loss, which has no targets"
    if loss == "wgan" and r.gp_weight == 0 and not d_spectral_norm:
        yield "the wgan loss needs a Lipschitz control: set reg.gp_weight > 0 (e.g. 10) or nets.d_spectral_norm"
    if r.feature_matching_replace and r.feature_matching == 0:
        yield "reg.feature_matching_replace makes feature matching G's whole loss: it needs reg.feature_matching > 0"
    if r.feature_matching > 0 and not -d_depth <= r.feature_matching_layer < d_depth:
        yield (f"reg.feature_matching_layer {r.feature_matching_layer}: D has {d_depth} hidden layers, so it must "
               f"lie in {-d_depth}..{d_depth - 1}")
    if r.mode_lambda2 > 0 and loss not in ("ns", "minimax"):
        yield (f"reg.mode_lambda2 (the mode term log D(G(E(x)))) needs a D that outputs a probability: use the ns or "
               f"minimax loss, not {loss}")
    if r.mdgan and (r.mode_lambda1 > 0 or r.mode_lambda2 > 0):
        yield ("reg.mdgan has its own geometric weight reg.mdgan_lambda and no mode term: set reg.mode_lambda1 "
               "and reg.mode_lambda2 to 0")


def _unit_problems(c: Config):
    """Maxout units (D only), batch norm (G only), the weight init, and what they cannot be combined with."""
    n, r = c.nets, c.reg
    for name, spec in (("g", n.g), ("e", n.e)):
        if spec.activation == "maxout":
            yield (f"nets.{name}.activation 'maxout' is implemented for D's hidden layers only: use relu, "
                   f"leaky_relu or tanh")
        elif spec.pieces is not None:
            yield f"nets.{name}.pieces applies to maxout units only, which {name.upper()} has not: leave it null"
    if n.d.activation == "maxout":
        lo, hi = LIMITS["nets.d.pieces"]
        if n.d.pieces is None:
            yield f"nets.d.pieces: a maxout unit needs k pieces, an integer in [{lo}, {hi}] (got null)"
        if r.bre.weight > 0:
            yield ("reg.bre: BRE's entropy is of sign patterns (a unit on or off, METHODS §1), and a maxout unit has "
                   "no sign, only a winning piece among k: use relu or leaky_relu for D, or reg.bre.weight=0")
    elif n.d.pieces is not None:
        yield (f"nets.d.pieces applies to maxout units only (nets.d.activation is {n.d.activation}): leave it "
               f"null, or set nets.d.activation to maxout")
    for name, spec in (("d", n.d), ("e", n.e)):
        if spec.batch_norm:
            what = ("D's output on a point would depend on the rest of its batch" if name == "d"
                    else "E is not a generator")
            yield f"nets.{name}.batch_norm is implemented for G only ({what}): set it to false"
    if n.g.batch_norm and n.g_vbn:
        yield "nets.g.batch_norm and nets.g_vbn both normalize G's hidden layers: choose one"
    if n.init == "normal" and not n.init_std > 0:
        yield f"nets.init_std must be > 0 for the normal init (got {n.init_std})"


def _technique_problems(c: Config):
    """Combinations of techniques that cannot work together, each refused with the reason."""
    d, n, o, r = c.data, c.nets, c.optim, c.reg
    prob_losses = ("ns", "minimax")
    semi = r.semi_supervised_fraction > 0
    if n.g_vbn and n.g_vbn_ref < 2:
        yield f"nets.g_vbn_ref (the virtual batch norm reference size) must be ≥ 2 (got {n.g_vbn_ref})"
    if r.mdgan:
        if o.d_steps != 1:
            yield "reg.mdgan runs one D1, G, D2, G update per iteration: optim.d_steps must be 1"
        if r.unrolled_steps > 0 or semi:
            yield "reg.mdgan cannot be combined with reg.unrolled_steps or reg.semi_supervised_fraction"
    if r.gp_weight > 0 and n.minibatch_kernels > 0:
        yield ("reg.gp_weight's gradient penalty is per sample, and minibatch discrimination makes D's output on a "
               "sample depend on the whole batch: set nets.minibatch_kernels=0 or reg.gp_weight=0")
    if r.unrolled_steps < 0:
        yield "reg.unrolled_steps must be ≥ 0"
    if r.unrolled_steps > 0:
        if n.d_spectral_norm:
            yield ("reg.unrolled_steps cannot differentiate through spectral norm's power iteration: turn off "
                   "nets.d_spectral_norm")
        if r.feature_matching_replace:
            yield ("reg.unrolled_steps unrolls D for G's adversarial loss, which reg.feature_matching_replace "
                   "removes: use one or the other")
        if semi:
            yield "reg.unrolled_steps is not implemented for the semi-supervised K+1 discriminator"
        if n.minibatch_kernels > 0:     # unrolling differentiates D's gradient, so torch.cdist's gradient again
            yield ("reg.unrolled_steps cannot differentiate twice through minibatch discrimination's L1 distances "
                   "(torch has no second derivative of cdist): set nets.minibatch_kernels=0 or reg.unrolled_steps=0")
    if not 0 <= r.semi_supervised_fraction <= 1:
        yield "reg.semi_supervised_fraction must lie in [0, 1]"
    if semi:
        if c.loss not in prob_losses:
            yield (f"reg.semi_supervised_fraction: the K+1 classifier's D(x) = Z/(Z+1) is a probability, so the "
                   f"loss must be ns or minimax, not {c.loss}")
        if n.pack > 1:
            yield "reg.semi_supervised_fraction labels single points: nets.pack must be 1"
        if d.kind == "points":
            yield "reg.semi_supervised_fraction needs mixture components as labels: data.kind 'points' has none"
        if r.real_target != 1:
            yield "reg.real_target (label smoothing) is not defined for the K+1 classifier's loss: leave it at 1"


# ---- strict construction from plain data --------------------------------------------------------------------
def _build(cls, d, path: str):
    if not isinstance(d, dict):
        raise ValueError(f"{path or 'config'}: expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ValueError(_unknown_key(key, _dotted_fields(cls, path), f"allowed: {', '.join(sorted(names))}"))
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}" if path else k) for k, v in d.items()}
    return cls(**kwargs)


build_dataclass = _build    # public: other config trees (toyviz.image) reuse the strict construction


def _coerce(tp, v, path: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, v, path)
    if origin is Union:
        if v is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, v, path)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[-1] if errors else f"{path}: may not be null")
    if origin is Literal:
        if v not in args:
            raise ValueError(f"{path} must be one of {', '.join(map(repr, args))} (got {v!r})")
        return v
    if origin is list:
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{path} must be a list (got {type(v).__name__})")
        return [_coerce(args[0], x, f"{path}[{i}]") for i, x in enumerate(v)]
    if tp is bool:
        if not isinstance(v, bool):
            raise ValueError(f"{path} must be true or false (got {v!r})")
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise ValueError(f"{path} must be an integer (got {v!r})")
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{path} must be a number (got {v!r})")
        try:
            f = float(v)
        except OverflowError:
            raise ValueError(f"{path} is too large for a number (got {_short(v)})") from None
        if not math.isfinite(f):
            raise ValueError(f"{path} must be finite (got {v!r})")
        return f
    if tp is str:
        if not isinstance(v, str):
            raise ValueError(f"{path} must be a string (got {v!r})")
        return v
    raise TypeError(f"unsupported config type {tp} at {path}")


def _note_rename(old: str, new: str) -> None:
    warnings.warn(f"the config field {old} is now called {new} (read as {new})", ConfigRenamed, stacklevel=4)


def _node(d: dict, path: str) -> dict:
    for p in path.split(".") if path else []:
        d = d[p]
    return d


def _has_dotted(d: dict, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    try:
        node = _node(d, parent)
    except (KeyError, TypeError):
        return False
    return isinstance(node, dict) and leaf in node


def _dotted_fields(cls, path: str = "") -> list[str]:
    """Every leaf field of a config dataclass as a dotted key (`optim.lr_g`), under `path`."""
    hints, out = typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}" if path else f.name
        out += _dotted_fields(hints[f.name], key) if dataclasses.is_dataclass(hints[f.name]) else [key]
    return out


def _dotted_leaves(d: dict, path: str = "") -> list[str]:
    """Every leaf of a nested dict as a dotted key."""
    out = []
    for k, v in d.items():
        key = f"{path}.{k}" if path else k
        out += _dotted_leaves(v, key) if isinstance(v, dict) else [key]
    return out


def _unknown_key(key: str, known: list[str], fallback: str = "") -> str:
    """"unknown config key KEY (did you mean A, B?)" with the nearest real keys (difflib), else the fallback."""
    near = difflib.get_close_matches(key, known, n=3, cutoff=0.8)
    hint = f"did you mean {', '.join(near)}?" if near else fallback
    shown = key if key.isprintable() and len(key) <= 80 else repr(key[:80])   # one line, whatever the key holds
    return f"unknown config key {shown}" + (f" ({hint})" if hint else "")


def set_dotted(d: dict, key: str, value) -> None:
    """Set `a.b.c` in a nested dict, refusing paths that do not exist (so typos are caught, with the nearest real
    keys suggested)."""
    parts = key.split(".")
    node = d
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            break
        node = node[p]
    else:
        if parts[-1] in node:
            node[parts[-1]] = value
            return
    raise ValueError(_unknown_key(key, _dotted_leaves(d), f"allowed: {', '.join(sorted(node))}"))


def parse_assignment(text: str) -> tuple[str, object]:
    """`key.path=value` from the command line; the value is read as JSON when it parses, else as a string."""
    if "=" not in text:
        raise ValueError(f"expected key.path=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    except RecursionError:
        raise ValueError(f"{key.strip()}: the value is nested too deeply") from None
    except ValueError as e:                   # an integer of more than 4,300 digits
        raise ValueError(f"{key.strip()}: {str(e)[:120]}") from None
    return key.strip(), value


# ---- what each field means (the `config` command prints it beside the value) ---------------------------------------
MEANINGS: dict[str, str] = {
    "data.kind": "the data: ring of modes, square grid, custom mixture, or a point cloud",
    "data.n_modes": "ring: number of Gaussian modes",
    "data.radius": "ring: radius of the circle of centres",
    "data.grid_size": "grid: modes per side (grid_size² in all)",
    "data.grid_spacing": "grid: distance between neighbouring centres",
    "data.std": "standard deviation of every mode (a point cloud's σ for coverage)",
    "data.centers": "mixture: the [x, y] centres",
    "data.stds": "mixture: each centre's σ (default data.std)",
    "data.weights": "mixture: each centre's weight (default equal)",
    "data.points": "points: the (N, 2) cloud sampled uniformly",
    "nets.latent_dim": "dimension of G's noise z",
    "nets.*.width": "{net}: hidden units per layer",
    "nets.*.depth": "{net}: hidden layers",
    "nets.*.activation": "{net}: hidden activation",
    "nets.*.slope": "{net}: negative slope of leaky_relu",
    "nets.*.pieces": "{net}: pieces k of each maxout unit (maxout only, else null)",
    "nets.*.batch_norm": "{net}: batch norm after each hidden linear layer (G only)",
    "nets.init": "weight init: torch's default, or normal N(0, init_std²) with zero biases",
    "nets.init_std": "σ of the normal weight init",
    "nets.g_output": "G's output: linear, or tanh scaled by g_output_scale",
    "nets.g_output_scale": "scale of G's tanh output",
    "nets.g_vbn": "virtual batch norm in G (Salimans et al.)",
    "nets.g_vbn_ref": "size of the virtual batch norm's reference batch",
    "nets.d_spectral_norm": "spectral normalization of D's layers",
    "nets.minibatch_kernels": "minibatch discrimination kernels before D's output (0 = off)",
    "nets.minibatch_dims": "dimensions of each minibatch discrimination kernel",
    "nets.pack": "PacGAN: samples packed into one D input",
    "loss": "the GAN loss: ns (non-saturating), minimax, wgan, hinge, lsgan",
    "optim.batch_size": "samples per batch (real and fake)",
    "optim.lr_g": "G's Adam learning rate (E's too)",
    "optim.lr_d": "D's Adam learning rate (D2's too)",
    "optim.beta1": "Adam β1",
    "optim.beta2": "Adam β2",
    "optim.d_steps": "D updates per G update",
    "optim.iters": "training steps",
    "optim.lr_schedule": "constant, or linear decay to lr_floor",
    "optim.lr_floor": "the linear schedule's final learning rate",
    "optim.cuda_graph": ("capture the whole training step as a CUDA graph and replay it (on a CPU the same "
                         "graph-ready step runs eagerly); random draws come from device-resident streams"),
    "reg.bre.weight": "BRE's weight on D's loss (0 = off)",
    "reg.bre.layers": "D's hidden layers BRE regularizes (indices or a named set)",
    "reg.bre.samples": "the batches BRE sees: fake, interp, real",
    "reg.bre.interp": "interpolates as in the paper or its code",
    "reg.bre.pairs": "the AC term's pairs as in the paper or its code",
    "reg.bre.margin_s": "the soft-sign's margin s",
    "reg.bre.eps_scale": "the soft-sign's ε, relative to the pre-activations' scale",
    "reg.bre.schedule": "BRE's weight: constant, or linear decay to 0",
    "reg.gp_weight": "WGAN-GP gradient penalty λ (0 = off)",
    "reg.real_target": "one-sided label smoothing: D's target for real (1 = off)",
    "reg.historical_averaging": "λ on ‖θ − mean of past θ‖² (0 = off)",
    "reg.feature_matching": "λ on G's feature matching (0 = off)",
    "reg.feature_matching_layer": "D's hidden layer feature matching reads",
    "reg.feature_matching_norm": "feature matching's distance: l2 or l1",
    "reg.feature_matching_replace": "feature matching becomes G's whole loss",
    "reg.mode_lambda1": "Che et al.'s geometric term λ1 (with an encoder E; 0 = off)",
    "reg.mode_lambda2": "Che et al.'s mode term λ2 (0 = off)",
    "reg.mode_sign": "the mode term's sign: intent or as printed",
    "reg.mdgan": "MDGAN's manifold/diffusion procedure (D2 and E)",
    "reg.mdgan_lambda": "MDGAN's geometric weight",
    "reg.unrolled_steps": "unrolled GAN: D steps G looks through (0 = off)",
    "reg.semi_supervised_fraction": "share of real batches labelled for a K+1 classifier D (0 = off)",
    "reg.semi_supervised_halve": "the reference code's ½ on the K+1 loss",
    "viz.extent": "the plane drawn: [xmin, xmax, ymin, ymax]",
    "viz.resolution": "pixels per side of the region maps",
    "viz.snapshot_every": "steps between weight snapshots (doubles when max_snapshots is reached)",
    "viz.max_snapshots": "snapshots kept in memory and the checkpoint",
    "viz.eval_samples": "G samples on fixed noise for the metrics",
    "viz.metrics_every": "steps between evaluations (coverage, regions)",
    "preset": "the preset this config came from",
    "seed": "seed of data, noise and initialization",
    "device": "cpu, cuda, cuda:N or mps",
}


def describe(cfg: JsonConfig) -> list[tuple[str, object, str]]:
    """(dotted key, value, one-line meaning) for every leaf field of a config, in the tree's order."""
    out = []
    for key in _dotted_fields(type(cfg)):
        parts = key.split(".")
        generic = ".".join([parts[0], "*", *parts[2:]]) if len(parts) == 3 else key
        meaning = MEANINGS.get(key, MEANINGS.get(generic, ""))
        net = {"g": "G", "d": "D", "e": "E (the encoder)"}.get(parts[1] if len(parts) == 3 else "", "")
        out.append((key, _get_dotted(cfg, key), meaning.format(net=net)))
    return out
