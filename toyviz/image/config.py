"""The image trainer's configuration: one nested dataclass tree, strict JSON round trip (the toy's `JsonConfig`),
and `validate()` with messages naming the field and its allowed values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from ..engine.config import (
    BREConfig,
    JsonConfig,
    OptimConfig,
    SharedRegConfig,
    checked,
    device_problem,
    graph_problems,
    memory_problem,
    shared_reg_problems,
)

DATASETS = ("digits", "stacked-digits", "mnist", "cifar10", "folder")
IMAGE_SIZES = (16, 28, 32, 64)


def resolution_steps(image_size: int) -> tuple[int, int]:
    """(number of stride-2 steps, base resolution): halve while even and above 4. 16 -> (2, 4), 28 -> (2, 7),
    32 -> (3, 4), 64 -> (4, 4)."""
    n, s = 0, image_size
    while s > 4 and s % 2 == 0:
        s //= 2
        n += 1
    return n, s


@dataclass
class ImageDataConfig:
    """`path`: the folder holding the files of mnist / cifar10 / folder (digits and stacked-digits need none)."""
    name: Literal["digits", "stacked-digits", "mnist", "cifar10", "folder"] = "digits"
    path: Optional[str] = None
    image_size: int = 32
    test_fraction: float = 0.2          # digits: held out for the classifier, missing mass and K+1 accuracy


@dataclass
class ConvNetsConfig:
    """DCGAN nets (Radford et al. 2016). `width`: D's first / G's last conv channels, doubling per resolution step
    ("dcgan") or constant ("equal": the BRE paper's equal-width variant). `extra_layers`: stride-1 3×3 convs after
    each of D's stride-2 convs (and before each of G's), as in the DCGAN reference `n_extra_layers`."""
    arch: Literal["dcgan", "equal"] = "dcgan"
    latent_dim: int = 100
    width: int = 64
    extra_layers: int = 0
    g_norm: Literal["batch", "vbn", "none"] = "batch"
    d_norm: Literal["batch", "layer", "none"] = "batch"
    d_spectral_norm: bool = False
    slope: float = 0.2
    minibatch_kernels: int = 0
    minibatch_dims: int = 5


@dataclass
class ImageOptimConfig(OptimConfig):
    """The toy's optimizer fields with the DCGAN / BRE-paper defaults."""
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    iters: int = 40000
    lr_schedule: Literal["constant", "linear"] = "linear"


@dataclass
class ImageBREConfig(BREConfig):
    """The toy's BRE options (METHODS §1); over D's hidden conv layers, all but the first by default."""
    layers: Union[Literal["all", "all_but_first", "all_but_first_last"], list[int]] = "all_but_first"


@dataclass
class ImageRegConfig(SharedRegConfig):
    """The shared regularizers (`SharedRegConfig`, the same names and meanings as the toy's), plus the image-scale
    K+1 classifier. Its switch differs from the toy's `semi_supervised_fraction` (a share of each batch labelled):
    here D is a K+1 classifier trained on a fixed labelled subset of `labelled_per_class` images per class."""
    bre: ImageBREConfig = field(default_factory=ImageBREConfig)
    semi_supervised: bool = False                # D is a K+1 classifier (needs a labelled data set)
    labelled_per_class: int = 10                 # labelled training images per class for the K+1 classifier


@dataclass
class ImageEvalConfig:
    """`metrics_every`: metrics and a sample grid every k steps (the toy's `viz.metrics_every`). `samples`:
    generated images the metrics see (10,000 cover 1,000 stacked-digits classes about 10 times each).
    `missing_mass_steps`: training steps of the noisy third-party discriminator (0: off)."""
    metrics_every: int = 1000
    samples: int = 10000
    grid: int = 64
    missing_mass_steps: int = 200
    missing_mass_noise: float = 0.3
    missing_mass_threshold: float = 0.9
    checkpoint_every: int = 1000


@dataclass
class ImageConfig(JsonConfig):
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    nets: ConvNetsConfig = field(default_factory=ConvNetsConfig)
    loss: Literal["ns", "minimax", "wgan", "hinge", "lsgan"] = "ns"
    optim: ImageOptimConfig = field(default_factory=ImageOptimConfig)
    reg: ImageRegConfig = field(default_factory=ImageRegConfig)
    eval: ImageEvalConfig = field(default_factory=ImageEvalConfig)
    seed: int = 0
    device: str = "cpu"

    RENAMED = {"eval.every": "eval.metrics_every"}

    @property
    def d_depth(self) -> int:
        """D's hidden conv layers: a stride-2 conv per halving of the image, each followed by `extra_layers`."""
        steps, _ = resolution_steps(self.data.image_size)
        return steps * (1 + self.nets.extra_layers)

    def validate(self) -> "ImageConfig":
        problems = checked(self, _problems(self), "image.")      # sizes: engine.config.LIMITS["image.…"]
        if not problems:
            problems = [p for p in (device_problem(self.device), memory_problem(estimate_memory(self))) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def estimate_memory(c: ImageConfig) -> float:
    """Bytes an image run needs at most, roughly: the conv nets' parameters with gradients, Adam's moments and a
    rollback copy (G and D, E and D2 alike counted as a D); a step's activations (values, pre-activations and
    gradients of real and fake batches) over every resolution; the generated evaluation samples."""
    n, o, e = c.nets, c.optim, c.eval
    steps, base = resolution_steps(c.data.image_size) if c.data.image_size in IMAGE_SIZES else (4, 4)
    chans = [n.width * (2 ** i if n.arch == "dcgan" else 1) for i in range(steps)]
    d_params = sum(16 * a * b for a, b in zip([3] + chans, chans)) + sum(9 * ch * ch for ch in chans) * n.extra_layers
    d_params += chans[-1] * base * base * (1 + n.minibatch_kernels * n.minibatch_dims) if chans else 0
    g_params = d_params + n.latent_dim * chans[-1] * base * base if chans else 0
    params = g_params + 3 * d_params
    pixels = sum(ch * (c.data.image_size // 2 ** (i + 1)) ** 2 for i, ch in enumerate(chans)) * (1 + n.extra_layers)
    step = o.batch_size * (pixels * 2 + 3 * c.data.image_size ** 2) * 3 * 3
    step += o.batch_size ** 2 * n.minibatch_kernels * n.minibatch_dims * 3
    samples = e.samples * 3 * c.data.image_size ** 2
    return 4 * (params * 5 + step + samples)


def _problems(c: ImageConfig):
    d, n, o, r, e = c.data, c.nets, c.optim, c.reg, c.eval
    if not isinstance(d.image_size, int) or d.image_size not in IMAGE_SIZES:
        yield f"data.image_size must be one of {', '.join(map(str, IMAGE_SIZES))} (got {d.image_size})"
    if d.name in ("mnist", "cifar10", "folder") and not d.path:
        yield f"data.path must name the folder holding the {d.name} files"
    if not 0 < d.test_fraction < 1:
        yield f"data.test_fraction must lie in (0, 1) (got {d.test_fraction})"
    if n.latent_dim < 1 or n.width < 1 or n.extra_layers < 0:
        yield "nets.latent_dim and nets.width must be ≥ 1, nets.extra_layers ≥ 0"
    if n.minibatch_kernels < 0 or n.minibatch_dims < 1:
        yield "nets.minibatch_kernels must be ≥ 0 and nets.minibatch_dims ≥ 1"
    if o.lr_g <= 0 or o.lr_d <= 0 or o.lr_floor < 0:
        yield "optim.lr_g and optim.lr_d must be > 0 and optim.lr_floor ≥ 0"
    if not (0 <= o.beta1 < 1 and 0 <= o.beta2 < 1):
        yield "optim.beta1 and optim.beta2 must lie in [0, 1)"
    if o.batch_size < 4 or o.d_steps < 1 or o.iters < 0:
        yield "optim.batch_size must be ≥ 4, optim.d_steps ≥ 1 and optim.iters ≥ 0"
    if d.image_size in IMAGE_SIZES:
        yield from shared_reg_problems(r, c.loss, c.d_depth, n.d_spectral_norm)
    yield from graph_problems(o, r)
    if o.cuda_graph and r.semi_supervised:
        yield ("optim.cuda_graph replays one fixed step: reg.semi_supervised draws its labelled batch from a subset "
               "kept on the host; set reg.semi_supervised=false")
    if r.gp_weight > 0 and n.d_norm == "batch":
        yield "reg.gp_weight needs a D without batch norm (the penalty is per sample): set nets.d_norm=layer or none"
    if r.semi_supervised:
        if d.name not in ("digits", "mnist", "cifar10"):
            yield f"reg.semi_supervised needs a labelled data set: digits, mnist or cifar10 (got {d.name})"
        if c.loss != "ns":
            yield "reg.semi_supervised uses its own K+1 loss: leave loss at ns"
        if r.mdgan or r.mode_lambda1 or r.mode_lambda2:
            yield "reg.semi_supervised does not combine with the mode regularizers"
        if r.labelled_per_class < 1:
            yield "reg.labelled_per_class must be ≥ 1"
    if r.mdgan and c.loss != "ns":
        yield "reg.mdgan uses the non-saturating loss of its paper: leave loss at ns"
    if r.mdgan and o.d_steps != 1:
        yield "reg.mdgan runs one D1, G, D2, G update per iteration: optim.d_steps must be 1"
    if e.metrics_every < 1 or e.samples < 10 or e.grid < 1 or e.checkpoint_every < 1 or e.missing_mass_steps < 0:
        yield ("eval.metrics_every, eval.grid, eval.checkpoint_every must be ≥ 1, eval.samples ≥ 10 and "
               "eval.missing_mass_steps ≥ 0")
    if not 0 < e.missing_mass_threshold < 1 or e.missing_mass_noise < 0:
        yield "eval.missing_mass_threshold must lie in (0, 1) and eval.missing_mass_noise be ≥ 0"
    if not (c.device == "cpu" or c.device.startswith("cuda") or c.device == "mps"):
        yield f"device must be cpu, cuda, cuda:N or mps (got {c.device!r})"
