"""Regularizers behind one registry: each reads a `StepContext`, returns an unweighted scalar and its stats, and
names the player whose loss it joins. A weight of 0 means off. Adding one: a class here, a config field, a test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

import torch

from .config import Config
from .nets import Features


# ---- BRE (Cao, Ding, Lui, Huang, ICLR 2018) ------------------------------------------------------------------
@dataclass
class BREResult:
    """`total = me + ac` (differentiable) and the monitors of METHODS §1 (floats)."""
    total: torch.Tensor
    me: torch.Tensor
    ac: torch.Tensor
    frac_09: float
    frac_099: float
    mean_abs_corr: float


def soft_sign(h: torch.Tensor, eps_scale: float = 1e-3) -> torch.Tensor:
    """a = h / (|h| + ε), ε = eps_scale · mean|h| over the whole tensor, with no gradient through ε."""
    eps = eps_scale * h.abs().mean().detach()
    return h / (h.abs() + eps)


def bre(preacts: list[torch.Tensor], *, margin_s: float = 3.0, eps_scale: float = 1e-3,
        pairs: Literal["paper", "code"] = "paper") -> BREResult:
    """Binarized Representation Entropy of one batch (METHODS §1).

    For each layer's pre-activations h_l, flattened to (K, d_l), with a = soft_sign(h_l):
      ME_l = mean_k (mean_i a_ik)²                     marginal entropy: each unit on half the time
      C_l  = A Aᵀ / d_l  (K×K),  H_l = max(0, |C_l| − s/√d_l)   the CLT margin s (3 by default)
    ME = mean_l ME_l;  AC = mean over pairs i≠j of (mean_l H_l)  ("paper"), or the mean over all K² entries with
    the diagonal zeroed ("code": (K−1)/K times smaller);  R_BRE = ME + AC.
    """
    if not preacts:
        raise ValueError("bre needs at least one layer of pre-activations")
    k = preacts[0].shape[0]
    if k < 2:
        raise ValueError("bre needs a batch of at least 2 samples for its pair statistics")
    mes, hinged, big09, big099, corr = [], [], [], [], []
    for h in preacts:
        a = soft_sign(h.reshape(k, -1), eps_scale)                        # (K, d)
        d = a.shape[1]
        mes.append((a.mean(0) ** 2).mean())
        c = a @ a.T / d                                                   # (K, K)
        hinged.append(torch.relu(c.abs() - margin_s / d ** 0.5))
        with torch.no_grad():
            big09.append((a.abs() > 0.9).float().mean())
            big099.append((a.abs() > 0.99).float().mean())
            off = ~torch.eye(k, dtype=torch.bool, device=c.device)
            corr.append(c.abs()[off].mean())
    me = torch.stack(mes).mean()
    hinge = torch.stack(hinged).mean(0)                                   # (K, K), averaged over layers
    off_diag = hinge * (1 - torch.eye(k, device=hinge.device, dtype=hinge.dtype))
    ac = off_diag.sum() / (k * (k - 1) if pairs == "paper" else k * k)
    return BREResult(me + ac, me, ac, float(torch.stack(big09).mean()), float(torch.stack(big099).mean()),
                     float(torch.stack(corr).mean()))


def bre_layer_indices(layers, depth: int) -> list[int]:
    """Resolve a BRE layer choice to 0-based D hidden-layer indices."""
    if layers == "all":
        return list(range(depth))
    if layers == "all_but_first_last":
        return list(range(1, depth - 1))
    return [i % depth for i in layers]


def interpolate(real: torch.Tensor, fake: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """paper: x̂ = α·x + (1−α)·x̃;  code: x + α(x − x̃) (past the real point). α ~ U(0,1) per sample."""
    alpha = torch.rand(real.shape[0], 1, generator=generator).to(real.device)
    if mode == "paper":
        return alpha * real + (1 - alpha) * fake
    return real + alpha * (real - fake)


# ---- the step context and the registry -----------------------------------------------------------------------
@dataclass
class StepContext:
    """What a regularizer may read in one phase. `fake` is detached in D's phase; D outputs are cached."""
    cfg: Config
    iteration: int
    real: torch.Tensor
    fake: torch.Tensor
    D: torch.nn.Module
    G: torch.nn.Module
    generator: torch.Generator
    real_out: Optional[torch.Tensor] = None
    fake_out: Optional[torch.Tensor] = None
    real_feats: Optional[Features] = None
    fake_feats: Optional[Features] = None
    z: Optional[torch.Tensor] = None
    extra: dict = field(default_factory=dict)


class Regularizer:
    """Interface: `name`, `player` ('d' or 'g'), `weight(cfg, iteration)`, `__call__(ctx) -> (scalar, stats)`."""
    name: str = ""
    player: str = "d"

    def weight(self, cfg: Config, iteration: int) -> float:
        raise NotImplementedError

    def __call__(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError


def linear_decay(weight: float, iteration: int, total: int) -> float:
    """λ_t = λ · (1 − t/T), floored at 0."""
    return weight * max(0.0, 1.0 - iteration / max(total, 1))


class BRERegularizer(Regularizer):
    """L_D += λ·(R_BRE(fake) + R_BRE(interp)) by default; the sample sets and layers are config choices."""
    name, player = "bre", "d"

    def weight(self, cfg, iteration):
        b = cfg.reg.bre
        return linear_decay(b.weight, iteration, cfg.optim.iters) if b.schedule == "linear" else b.weight

    def __call__(self, ctx):
        b, D = ctx.cfg.reg.bre, ctx.D
        layers = bre_layer_indices(b.layers, D.depth)
        total, stats = 0.0, {}
        for kind in b.samples:
            if kind == "fake" and ctx.fake_feats is not None:
                feats = ctx.fake_feats
            elif kind == "real" and ctx.real_feats is not None:
                feats = ctx.real_feats
            else:
                x = {"fake": ctx.fake, "real": ctx.real}.get(kind)
                if x is None:
                    x = interpolate(ctx.real, ctx.fake, b.interp, ctx.generator)
                feats = D.forward_features(x)[1]
            r = bre([feats.preacts[i] for i in layers], margin_s=b.margin_s, eps_scale=b.eps_scale, pairs=b.pairs)
            total = total + r.total
            stats.update({f"{kind}/me": r.me.item(), f"{kind}/ac": r.ac.item(), f"{kind}/frac09": r.frac_09,
                          f"{kind}/frac099": r.frac_099, f"{kind}/corr": r.mean_abs_corr})
        stats["me"] = sum(v for k, v in stats.items() if k.endswith("/me")) / len(b.samples)
        stats["ac"] = sum(v for k, v in stats.items() if k.endswith("/ac")) / len(b.samples)
        return total, stats


class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²] on x̂ = α·x + (1−α)·x̃, α ~ U(0,1)."""
    name, player = "gp", "d"

    def weight(self, cfg, iteration):
        return cfg.reg.gp_weight

    def __call__(self, ctx):
        x = interpolate(ctx.real, ctx.fake, "paper", ctx.generator).requires_grad_(True)
        (grad,) = torch.autograd.grad(ctx.D(x).sum(), x, create_graph=True)
        norm = grad.flatten(1).norm(dim=1)
        return ((norm - 1) ** 2).mean(), {"grad_norm": norm.mean().item()}


REGISTRY: list[Regularizer] = [BRERegularizer(), GradientPenalty()]
