"""Named presets: the coverage-protocol mixtures (METHODS §5), the BRE paper's toy (METHODS §1), the PacGAN
paper's 2D protocol with its packing twins (METHODS §8), and twins.

Each preset is a function of no arguments returning a validated `Config`; `get(name)` and `names()` are public.
"""
from __future__ import annotations

from typing import Callable

from .config import Config, DataConfig, MLPConfig, NetsConfig, OptimConfig, VizConfig

_PRESETS: dict[str, Callable[[], Config]] = {}
DEFAULT = "classroom"          # the page's first view


def register(name: str):
    def wrap(fn):
        _PRESETS[name] = fn
        return fn
    return wrap


def names() -> list[str]:
    return list(_PRESETS)


def describe(name: str) -> str:
    """The preset's description: the first paragraph of its docstring, on one line."""
    first = (_builder(name).__doc__ or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in first.splitlines())


def _builder(name: str) -> Callable[[], Config]:
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r} (choose from: {', '.join(_PRESETS)})")
    return _PRESETS[name]


def get(name: str) -> Config:
    cfg = _builder(name)()
    cfg.preset = name
    return cfg.validate()


def _with_bre(base: Config, layers="all_but_first_last") -> Config:
    cfg = base.replace(**{"reg.bre.weight": 1.0})
    cfg.reg.bre.layers = layers
    return cfg


@register("ring8")
def ring8() -> Config:
    """8 Gaussians on a unit ring, σ = 0.01 (PacGAN's 2D-ring); MLPs of 3×128; 2D latent so G's plane is drawable."""
    return Config(
        data=DataConfig(kind="ring", n_modes=8, radius=1.0, std=0.01),
        nets=NetsConfig(latent_dim=2, g=MLPConfig(128, 3, "relu"), d=MLPConfig(128, 3, "leaky_relu")),
        optim=OptimConfig(batch_size=256, lr_g=1e-3, lr_d=1e-3, iters=2000),
        viz=VizConfig(extent=[-1.5, 1.5, -1.5, 1.5]))


@register("classroom")
def classroom() -> Config:
    """The page's first view: ring8's modes at σ = 0.05, G 3×64, a small D of 2×18 that learns faster than G
    (Adam 2e-3 against 3e-4) with one-sided label smoothing (real target 0.9): a few hundred regions to follow by
    eye, and all 8 modes found in about a minute of Play.

    Why these choices (screened over seeds; the figures are in the project's notes): with a D this small and
    equal learning rates G collapses onto one or two modes on most seeds, as ring8's G does with any 16–64-unit
    D. A faster D (the two-timescale rule, Heusel et al. 2017) with smoothed real labels (Salimans et al. 2016)
    keeps D's arrows pointing at every mode while G spreads over the ring. D stays pointwise (no packing), so its
    map is a function of x alone and a G step leaves it as it was. σ = 0.05 (the BRE paper's toy) gives modes
    wide enough to see at the page's resolution."""
    return ring8().replace(**{"data.std": 0.05, "nets.g.width": 64, "nets.d.width": 18, "nets.d.depth": 2,
                              "optim.lr_g": 3e-4, "optim.lr_d": 2e-3, "reg.real_target": 0.9,
                              "optim.iters": 3000})


@register("ring8-bre")
def ring8_bre() -> Config:
    """ring8 with BRE (λ = 1) on D's middle hidden layer, on fake and interpolated samples."""
    return _with_bre(ring8())


@register("grid25")
def grid25() -> Config:
    """25 Gaussians at {−4,−2,0,2,4}², σ = 0.05 (METHODS §5)."""
    return Config(
        data=DataConfig(kind="grid", grid_size=5, grid_spacing=2.0, std=0.05),
        nets=NetsConfig(latent_dim=2, g=MLPConfig(128, 3, "relu"), d=MLPConfig(128, 3, "leaky_relu")),
        optim=OptimConfig(batch_size=256, lr_g=1e-3, lr_d=1e-3, iters=4000),
        viz=VizConfig(extent=[-5.5, 5.5, -5.5, 5.5]))


@register("grid25-bre")
def grid25_bre() -> Config:
    """grid25 with BRE (λ = 1) on D's middle hidden layer, on fake and interpolated samples."""
    return _with_bre(grid25())


@register("bre-toy")
def bre_toy() -> Config:
    """The BRE paper's 2D toy: 8 Gaussians, radius 1, σ = 0.05; G 4 layers ReLU + tanh output; D 5 layers
    LeakyReLU(0.2); 10 units per hidden layer; Adam 2e-3, β = (0.5, 0.999), lr decayed linearly to 1e-6.
    Latent size, batch size and length are not published: 2, 128, 3000 here."""
    return Config(
        data=DataConfig(kind="ring", n_modes=8, radius=1.0, std=0.05),
        nets=NetsConfig(latent_dim=2, g=MLPConfig(10, 3, "relu"), d=MLPConfig(10, 4, "leaky_relu", 0.2),
                        g_output="tanh", g_output_scale=1.5),
        optim=OptimConfig(batch_size=128, lr_g=2e-3, lr_d=2e-3, iters=3000, lr_schedule="linear",
                          lr_floor=1e-6),
        viz=VizConfig(extent=[-1.5, 1.5, -1.5, 1.5]))


@register("bre-toy-bre")
def bre_toy_bre() -> Config:
    """The paper's setting: BRE on D's 2nd hidden layer only, λ = 1 decayed linearly to 0."""
    cfg = _with_bre(bre_toy(), layers=[1])
    cfg.reg.bre.schedule = "linear"
    return cfg


# ---- one preset per technique on ring8 (issue 3); the overrides also feed `bench train`'s rows ---------------
TECHNIQUES: dict[str, tuple[str, dict]] = {
    "ring8-fm": ("feature matching replaces G's loss: ‖mean f(x) − mean f(G(z))‖² on D's last hidden layer "
                 "(Salimans et al. 2016)",
                 {"reg.feature_matching": 1.0, "reg.feature_matching_replace": True}),
    "ring8-mbd": ("minibatch discrimination before D's last layer, 8 kernels × 3 dims (Salimans et al. 2016; "
                  "their 100 × 5 costs N²·B·C per batch)",
                  {"nets.minibatch_kernels": 8, "nets.minibatch_dims": 3}),
    "ring8-ha": ("historical averaging of G and D, λ = 0.01 (Salimans et al. 2016)",
                 {"reg.historical_averaging": 0.01}),
    "ring8-smooth": ("one-sided label smoothing, real target 0.9 (Salimans et al. 2016)",
                     {"reg.real_target": 0.9}),
    "ring8-vbn": ("virtual batch norm in G, a fixed 64-point reference batch (Salimans et al. 2016)",
                  {"nets.g_vbn": True}),
    "ring8-wgan-gp": ("WGAN-GP: critic loss, λ = 10 on interpolates, 5 critic steps, β = (0.5, 0.9) "
                      "(Gulrajani et al. 2017)",
                      {"loss": "wgan", "reg.gp_weight": 10.0, "optim.d_steps": 5, "optim.beta2": 0.9}),
    "ring8-sn": ("spectral normalization of every D layer (Miyato et al. 2018)", {"nets.d_spectral_norm": True}),
    "ring8-pac4": ("PacGAN: D sees 4 samples concatenated (Lin et al. 2018)", {"nets.pack": 4}),
    "ring8-unrolled": ("unrolled GAN: G looks through 5 differentiable Adam steps of D (Metz et al. 2017)",
                       {"reg.unrolled_steps": 5}),
    "ring8-modereg": ("mode regularizers with an encoder, λ1 = 0.2, λ2 = 0.4 (Che et al. 2017)",
                      {"reg.mode_lambda1": 0.2, "reg.mode_lambda2": 0.4}),
    "ring8-mdgan": ("MDGAN: manifold step (D1, λ = 0.2) then diffusion step (D2) (Che et al. 2017)",
                    {"reg.mdgan": True, "reg.mdgan_lambda": 0.2}),
    "ring8-semi": ("semi-supervised K+1 D with 10% of real points labelled by mode, feature matching for G "
                   "(Salimans et al. 2016)",
                   {"reg.semi_supervised_fraction": 0.1, "reg.feature_matching": 1.0,
                    "reg.feature_matching_replace": True}),
}


def _technique_preset(name: str, doc: str, overrides: dict) -> None:
    def build() -> Config:
        return ring8().replace(**overrides)
    build.__doc__ = doc[0].upper() + doc[1:] + " on ring8."
    register(name)(build)


for _name, (_doc, _overrides) in TECHNIQUES.items():
    _technique_preset(_name, _doc, _overrides)


@register("modereg-toy")
def modereg_toy() -> Config:
    """Che et al.'s 2D toy (after Metz et al.), plain GAN: 6 Gaussians on a ring of radius 2, σ = 0.1 (assumed: the
    text breaks off at "0."); MLPs of 3×128, 2D latent. Pair with modereg-toy-reg."""
    return Config(
        data=DataConfig(kind="ring", n_modes=6, radius=2.0, std=0.1),
        nets=NetsConfig(latent_dim=2, g=MLPConfig(128, 3, "relu"), d=MLPConfig(128, 3, "leaky_relu"),
                        e=MLPConfig(128, 3, "relu")),
        optim=OptimConfig(batch_size=256, lr_g=1e-3, lr_d=1e-3, iters=2000),
        viz=VizConfig(extent=[-3.0, 3.0, -3.0, 3.0]))


@register("modereg-toy-reg")
def modereg_toy_reg() -> Config:
    """Che et al.'s 2D toy with their regularizers, λ1 = λ2 = 0.005 (mode term with the stated intent's sign)."""
    return modereg_toy().replace(**{"reg.mode_lambda1": 0.005, "reg.mode_lambda2": 0.005})


# ---- the PacGAN paper's 2D protocol (METHODS §8) ----------------------------------------------------------------
PACGAN_SOURCE = ("The 2D protocol of PacGAN's Table 1 (Lin, Khetan, Fanti, Oh, NeurIPS 2018) as its code runs it "
                 "(fjxmlzn/PacGAN, synthetic_data_experiments/*/config.py and pacgan_task.py; METHODS §8)")
PACGAN_DATA = {
    "ring8": ("8 Gaussians on a unit ring, σ = 0.01", DataConfig(kind="ring", n_modes=8, radius=1.0, std=0.01),
              [-1.5, 1.5, -1.5, 1.5]),
    "grid25": ("25 Gaussians at {−4,−2,0,2,4}², σ = 0.05",
               DataConfig(kind="grid", grid_size=5, grid_spacing=2.0, std=0.05), [-5.5, 5.5, -5.5, 5.5]),
}
PACGAN_PACKS = (1, 2, 3, 4)
PACGAN_ROWS = 100           # D's batch: 100 rows, each `pack` samples concatenated (their stream packs the examples)


def pacgan(data: str, pack: int = 1) -> Config:
    """The PacGAN protocol on `data` ("ring8" or "grid25") with D reading `pack` samples a row.

    G: 2D standard normal z, 4 hidden layers × 400, each Linear without bias → batch norm → ReLU, linear output.
    D: 3 hidden layers × 200 maxout units of 5 pieces, linear logit. Weights N(0, 0.02²), biases 0. Adam lr 1e-4,
    β = (0.8, 0.999), one D step per G step, the non-saturating loss; 100 D rows a step (100·pack samples);
    400,000 steps (400 epochs of 1,000 batches). Coverage evaluated once an epoch.
    """
    _, mixture, extent = PACGAN_DATA[data]
    return Config(
        data=mixture,
        nets=NetsConfig(latent_dim=2, g=MLPConfig(400, 4, "relu", batch_norm=True),
                        d=MLPConfig(200, 3, "maxout", pieces=5), pack=pack, init="normal", init_std=0.02),
        loss="ns",
        optim=OptimConfig(batch_size=PACGAN_ROWS * pack, lr_g=1e-4, lr_d=1e-4, beta1=0.8, beta2=0.999, d_steps=1,
                          iters=400_000),
        viz=VizConfig(extent=extent, metrics_every=1000))


def _pacgan_preset(data: str, pack: int) -> None:
    name = f"pacgan-{data}" + (f"-pac{pack}" if pack > 1 else "")
    what = PACGAN_DATA[data][0]
    packing = f"PacGAN{pack}: D reads {pack} samples a row" if pack > 1 else "the plain GAN row (no packing)"

    def build() -> Config:
        return pacgan(data, pack)
    build.__doc__ = (f"{what}; {packing}. {PACGAN_SOURCE}: G 4×400 ReLU with batch norm, D 3×200 maxout-5, "
                     f"N(0, 0.02²) init, Adam 1e-4 β1 = 0.8, 100 D rows a step, 400,000 steps.\n\n"
                     f"Differences from their code: fresh samples every step (theirs: a fixed set of 100,000 "
                     f"iterated in epochs); D then G each step (theirs: both updated from one batch); batch norm's "
                     f"running statistics move at every training-mode pass of G (twice a step; theirs once), with "
                     f"torch's ε = 1e-5.")
    register(name)(build)


for _data in PACGAN_DATA:
    for _pack in PACGAN_PACKS:
        _pacgan_preset(_data, _pack)
