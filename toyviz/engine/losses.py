"""Adversarial losses as pure functions of D's logits, looked up by name in `LOSSES`; and the semi-supervised
K+1 classifier's losses (Salimans et al. 2016, §5), shared with the image-scale trainer.

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


# ---- semi-supervised K+1 classifier (Salimans et al. 2016, §5; METHODS §2) -----------------------------------
def k_plus_one_real_logit(class_logits: torch.Tensor) -> torch.Tensor:
    """D's K class logits l (N, K), the fake class's logit fixed at 0: D(x) = Z/(Z+1), Z = Σ_k exp(l_k), so the
    logit of "real" is log Z = logsumexp(l). Returns (N, 1): every adversarial loss and map can use it as D's logit."""
    return torch.logsumexp(class_logits, dim=1, keepdim=True)


def k_plus_one_supervised_loss(class_logits: torch.Tensor, labels: torch.Tensor,
                               labelled: torch.Tensor | None = None) -> torch.Tensor:
    """−E[log p(y | x, y < K+1)] = E[−l_y + logsumexp(l)] over the labelled real points, logits (N, K), labels (N,);
    `labelled` (N,) bool picks them (all when None; 0 when none is labelled, without a host sync)."""
    per_sample = F.cross_entropy(class_logits, labels, reduction="none")
    if labelled is None:
        return per_sample.mean()
    w = labelled.to(per_sample.dtype)
    return (per_sample * w).sum() / w.sum().clamp(min=1.0)


def k_plus_one_unsupervised_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−E log D(x) − E log(1 − D(G(z))) with D = Z/(Z+1):
    E[softplus(lse(l_real)) − lse(l_real)] + E[softplus(lse(l_fake))]."""
    lse_real, lse_fake = torch.logsumexp(real_logits, 1), torch.logsumexp(fake_logits, 1)
    return (F.softplus(lse_real) - lse_real).mean() + F.softplus(lse_fake).mean()


def k_plus_one_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, labels: torch.Tensor | None = None,
                      labelled: torch.Tensor | None = None, *, halve: bool = False) -> torch.Tensor:
    """D's loss as a K+1 classifier: L = L_supervised(labelled real points) + L_unsupervised(all real, all fake).

    `labels` (N,) are the mixture components of the real batch; `labelled` (N,) bool says which of them D may
    use (none: purely unsupervised). `halve`: the reference code's ½·L_sup + ½·L_unsup (the paper: no halving).
    """
    loss = k_plus_one_unsupervised_loss(real_logits, fake_logits)
    if labels is not None:
        loss = loss + k_plus_one_supervised_loss(real_logits, labels, labelled)
    return 0.5 * loss if halve else loss


def get_loss(name: str) -> AdversarialLoss:
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {name!r})")
    return LOSSES[name]
