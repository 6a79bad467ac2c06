"""Named presets: the coverage-protocol mixtures (METHODS §5), the BRE paper's toy (METHODS §1), and twins.

Each preset is a function of no arguments returning a validated `Config`; `get(name)` and `names()` are public.
"""
from __future__ import annotations

from typing import Callable

from .config import Config, DataConfig, MLPConfig, NetsConfig, OptimConfig, VizConfig

_PRESETS: dict[str, Callable[[], Config]] = {}


def register(name: str):
    def wrap(fn):
        _PRESETS[name] = fn
        return fn
    return wrap


def names() -> list[str]:
    return list(_PRESETS)


def get(name: str) -> Config:
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r} (choose from: {', '.join(_PRESETS)})")
    cfg = _PRESETS[name]()
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


@register("ring8-bre")
def ring8_bre() -> Config:
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
