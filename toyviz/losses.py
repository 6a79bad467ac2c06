"""Adversarial losses as pure functions of D's logits, looked up by name in `LOSSES`.

Each entry gives `d(real_logits, fake_logits, real_target)` and `g(fake_logits)`; shapes (N, 1) or (N,).
`real_target` < 1 is one-sided label smoothing (Salimans et al. 2016, §3.4): only the real target moves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AdversarialLoss:
    d: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]
    prob: Callable[[torch.Tensor], torch.Tensor]     # what the maps show: P(real), or the critic's value


def _bce_d(real, fake, real_target=1.0):
    """−E[t·log D(x) + (1−t)·log(1−D(x))] − E[log(1−D(G(z)))]."""
    return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_target))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def _ns_g(fake):
    """Non-saturating: −E[log D(G(z))] = E[softplus(−l)]."""
    return F.softplus(-fake).mean()


def _minimax_g(fake):
    """Minimax (Goodfellow et al. 2014): E[log(1 − D(G(z)))] = −E[softplus(l)]."""
    return -F.softplus(fake).mean()


def _wgan_d(real, fake, real_target=1.0):
    """Critic: E[D(G(z))] − E[D(x)] (Arjovsky et al. 2017); the Lipschitz control is a separate term."""
    return fake.mean() - real.mean()


def _hinge_d(real, fake, real_target=1.0):
    """E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _lsgan_d(real, fake, real_target=1.0):
    """½E[(D(x) − t)²] + ½E[D(G(z))²] (Mao et al. 2017, a = 0, b = c = 1)."""
    return 0.5 * ((real - real_target) ** 2).mean() + 0.5 * (fake ** 2).mean()


def _lsgan_g(fake):
    return 0.5 * ((fake - 1) ** 2).mean()


LOSSES: dict[str, AdversarialLoss] = {
    "ns": AdversarialLoss(_bce_d, _ns_g, torch.sigmoid),
    "minimax": AdversarialLoss(_bce_d, _minimax_g, torch.sigmoid),
    "wgan": AdversarialLoss(_wgan_d, lambda fake: -fake.mean(), lambda x: x),
    "hinge": AdversarialLoss(_hinge_d, lambda fake: -fake.mean(), lambda x: x),
    "lsgan": AdversarialLoss(_lsgan_d, _lsgan_g, lambda x: x),
}


def get_loss(name: str) -> AdversarialLoss:
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {name!r})")
    return LOSSES[name]
