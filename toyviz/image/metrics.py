"""Numbers about generated images, read with the digits classifier: Inception-style score and MODE score
(METHODS §2–3), stacked-digits modes covered of 1,000 and KL to the training distribution, and the noisy
third-party discriminator's missing-mass estimate (METHODS §3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .classifier import SmallCNN, predict_proba


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p_i ‖ q) per row of p (N, K) against q (K,), with 0·log 0 = 0."""
    p, q = p.double(), q.double()
    return torch.where(p > 0, p * (p.clamp_min(1e-300).log() - q.clamp_min(1e-300).log()), 0.0).sum(-1)


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Salimans et al. 2016: exp(E_x KL(p(y|x) ‖ p(y))), p(y) the mean over the split; mean and std over
    `splits` equal splits."""
    scores = []
    for part in torch.tensor_split(probs, splits):
        if len(part):
            scores.append(math.exp(float(_kl_rows(part, part.mean(0)).mean())))
    return float(np.mean(scores)), float(np.std(scores))


def mode_score(probs: torch.Tensor, prior: torch.Tensor) -> float:
    """Che et al. 2017: exp(E_x KL(p(y|x) ‖ p(y)) − KL(p*(y) ‖ p(y))), p* the training labels' distribution and
    p(y) the mean of p(y|x) over the generated images."""
    p_y = probs.double().mean(0)
    return math.exp(float(_kl_rows(probs, p_y).mean()) - float(_kl_rows(prior[None], p_y)[0]))


@dataclass
class StackedModes:
    covered: int            # classes of 1,000 with at least one generated image
    kl: float               # KL(p_generated(class) ‖ p_train(class))
    counts: np.ndarray      # (1000,) images per class


def stacked_modes(classifier: SmallCNN, images: torch.Tensor, prior: torch.Tensor) -> StackedModes:
    """Classify each of the three channels as a digit: class = 100·a + 10·b + c (Che et al. 2017, §4.3)."""
    n = images.shape[0]
    digits = predict_proba(classifier, images.reshape(n * 3, 1, *images.shape[2:])).argmax(1).view(n, 3)
    labels = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    counts = torch.bincount(labels, minlength=1000)
    p = counts.double() / n
    return StackedModes(int((counts > 0).sum()), float(_kl_rows(p[None], prior)[0]), counts.numpy())


def missing_mass(real_sample, fake: torch.Tensor, real_test: torch.Tensor, *, steps: int = 200,
                 noise: float = 0.3, threshold: float = 0.9, batch_size: int = 64, seed: int = 0) -> float:
    """The third-party estimator of Che et al. 2017 (METHODS §3): train a fresh discriminator between real and
    generated images with N(0, noise²) added to its inputs; the fraction of held-out real images it scores
    P(real) > `threshold` estimates the mass of the modes G misses (a perfect G leaves it near 0.5 everywhere).

    `real_sample(n, generator)` draws training images; `fake` (M, C, S, S) generated ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN(fake.shape[1], 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    net.train()
    for _ in range(steps):
        real = real_sample(batch_size, g)
        f = fake[torch.randint(len(fake), (batch_size,), generator=g)]
        x = torch.cat([real, f])
        x = x + noise * torch.randn(x.shape, generator=g)
        target = torch.cat([torch.ones(batch_size, 1), torch.zeros(batch_size, 1)])
        loss = F.binary_cross_entropy_with_logits(net(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        x = real_test + noise * torch.randn(real_test.shape, generator=g)
        p_real = torch.sigmoid(net(x)).squeeze(1)
    return float((p_real > threshold).float().mean())


def evaluate_images(images: torch.Tensor, data, classifier: SmallCNN | None, *, missing_mass_steps: int = 0,
                    noise: float = 0.3, threshold: float = 0.9, seed: int = 0) -> dict[str, float]:
    """Every metric that applies to `data` for generated `images` (N, C, S, S) in [−1, 1], as slash keys."""
    out: dict[str, float] = {}
    if classifier is not None and data.name in ("digits", "mnist"):
        probs = predict_proba(classifier, images)
        out["eval/inception_score"], out["eval/inception_score_std"] = inception_score(probs)
        out["eval/mode_score"] = mode_score(probs, data.class_prior)
    if classifier is not None and data.name == "stacked-digits":
        m = stacked_modes(classifier, images, data.class_prior)
        out["eval/modes"], out["eval/kl"] = float(m.covered), m.kl
    if missing_mass_steps > 0:
        g = torch.Generator().manual_seed(seed + 1)
        real_test = data.sample(min(2000, max(len(data.test), 500)), g, split="test")[0]
        out["eval/missing_mass"] = missing_mass(lambda n, gen: data.sample(n, gen)[0], images, real_test,
                                                steps=missing_mass_steps, noise=noise, threshold=threshold,
                                                seed=seed)
    return out
