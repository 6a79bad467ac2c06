"""DCGAN generator, discriminator and conv encoder (Radford et al. 2016) with the toy's features contract.

`forward_features(x) -> (out, toyviz.engine.nets.Features)`: per conv layer the pre-activation (after the norm that
precedes the nonlinearity: what BRE reads, METHODS §1), the activation, and whether the layer is pointwise
(train-mode batch norm makes a layer depend on the rest of the batch). `forward(x, features=True)` returns the
same pair, so a DistributedDataParallel wrapper can hand out features too.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.nets import Features, MinibatchDiscrimination
from .config import ConvNetsConfig, ImageConfig, resolution_steps


def dcgan_init(module: nn.Module) -> None:
    """DCGAN init: conv and linear weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, VirtualBatchNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class VirtualBatchNorm2d(nn.Module):
    """Virtual batch norm (Salimans et al. 2016, §3.4): each example is normalized with the per-channel
    statistics of a fixed reference batch (recomputed with the current weights every step) blended with its own
    at weight 1/(N_ref+1): μ_i = (N_ref·μ_ref + μ_i^own)/(N_ref+1), likewise E[h²]; σ² = E[h²] − μ².
    Pointwise in x."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n_ref = ref.shape[0]
        ref_mean, ref_sq = ref.mean((0, 2, 3)), (ref ** 2).mean((0, 2, 3))             # (C,)
        own_mean, own_sq = h.mean((2, 3)), (h ** 2).mean((2, 3))                       # (N, C)
        mean = (n_ref * ref_mean + own_mean) / (n_ref + 1)
        var = ((n_ref * ref_sq + own_sq) / (n_ref + 1) - mean ** 2).clamp(min=0)
        w, b = self.weight[None, :, None, None], self.bias[None, :, None, None]
        out = (h - mean[:, :, None, None]) / (var[:, :, None, None] + self.eps).sqrt() * w + b
        ref_var = (ref_sq - ref_mean ** 2).clamp(min=0)
        ref_out = (ref - ref_mean[None, :, None, None]) / (ref_var[None, :, None, None] + self.eps).sqrt() * w + b
        return out, ref_out


class DownConvNet(nn.Module):
    """x (N, C, S, S) -> stride-2 4×4 convs (plus `extra_layers` stride-1 3×3 convs after each) -> flatten ->
    [minibatch discrimination] -> linear to `out_dim`. LeakyReLU; no norm on the first layer (DCGAN)."""

    def __init__(self, n: ConvNetsConfig, image_size: int, channels: int, out_dim: int, *,
                 minibatch_kernels: int = 0, spectral_norm: bool = False):
        super().__init__()
        steps, base = resolution_steps(image_size)
        self.slope, self.norm_kind = n.slope, n.d_norm
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        c_in = channels
        for i in range(steps):
            c_out = n.width * (2 ** i if n.arch == "dcgan" else 1)
            specs = [(c_in, c_out, 4, 2, 1)] + [(c_out, c_out, 3, 1, 1)] * n.extra_layers
            for j, (a, b, k, s, p) in enumerate(specs):
                self.convs.append(nn.Conv2d(a, b, k, s, p, bias=(i == 0 and j == 0) or n.d_norm == "none"))
                self.norms.append(self._norm(b) if (i, j) != (0, 0) else nn.Identity())
            c_in = c_out
        self.feature_dim = c_in * base * base
        self.minibatch = (MinibatchDiscrimination(self.feature_dim, minibatch_kernels, n.minibatch_dims)
                          if minibatch_kernels > 0 else None)
        self.out = nn.Linear(self.feature_dim + minibatch_kernels, out_dim)
        dcgan_init(self)
        if spectral_norm:
            for layer in [*self.convs, self.out]:
                nn.utils.parametrizations.spectral_norm(layer)

    def _norm(self, c: int) -> nn.Module:
        if self.norm_kind == "batch":
            return nn.BatchNorm2d(c)
        if self.norm_kind == "layer":
            return nn.GroupNorm(1, c)          # one group: layer norm over (C, H, W), per sample
        return nn.Identity()

    @property
    def depth(self) -> int:
        return len(self.convs)

    def forward_features(self, x: torch.Tensor, upto: Optional[int] = None) -> tuple[Optional[torch.Tensor], Features]:
        """`upto`: stop after conv layer `upto` (0-based) and return `(None, features of layers 0..upto)`."""
        feats = Features()
        batch_dependent = False
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            pre = norm(conv(h))
            batch_dependent |= isinstance(norm, nn.modules.batchnorm._BatchNorm) and self.training
            h = F.leaky_relu(pre, self.slope)
            feats.preacts.append(pre)                                     # (N, C, H, W)
            feats.acts.append(h)
            feats.pointwise.append(not batch_dependent)
            if i == upto:
                return None, feats
        f = h.flatten(1)                                                  # (N, C·H·W)
        if self.minibatch is not None:
            f = self.minibatch(f)
        return self.out(f), feats

    def forward(self, x: torch.Tensor, features: bool = False, upto: Optional[int] = None):
        out, feats = self.forward_features(x, upto)
        return (out, feats) if features else out


class Discriminator(DownConvNet):
    """D: x -> one logit per image, or K class logits for the semi-supervised K+1 classifier."""

    def __init__(self, cfg: ImageConfig, channels: int, out_dim: int = 1):
        n = cfg.nets
        super().__init__(n, cfg.data.image_size, channels, out_dim, minibatch_kernels=n.minibatch_kernels,
                         spectral_norm=n.d_spectral_norm)


class Encoder(DownConvNet):
    """E: x -> z for the mode regularizers and MDGAN (Che et al. 2017): D's conv body, latent-sized output."""

    def __init__(self, cfg: ImageConfig, channels: int):
        super().__init__(cfg.nets, cfg.data.image_size, channels, cfg.nets.latent_dim)


class Generator(nn.Module):
    """G: z (N, latent) -> linear to (C0, s0, s0) -> stride-2 4×4 transposed convs doubling the resolution
    (channels halving to `width`, or constant for "equal") -> tanh image (N, channels, S, S). ReLU; batch norm,
    virtual batch norm (against a reference z fixed at construction) or none before each ReLU."""

    def __init__(self, cfg: ImageConfig, channels: int, vbn_reference: int = 64):
        super().__init__()
        n = cfg.nets
        steps, base = resolution_steps(cfg.data.image_size)
        self.latent_dim, self.base, self.norm_kind = n.latent_dim, base, n.g_norm
        width = [n.width * (2 ** (steps - 1 - i) if n.arch == "dcgan" else 1) for i in range(steps)]
        self.c0 = width[0]
        self.fc = nn.Linear(n.latent_dim, self.c0 * base * base, bias=n.g_norm == "none")
        self.layers, self.norms = nn.ModuleList(), nn.ModuleList([self._norm(self.c0)])
        for i in range(steps):
            c_in = width[i]
            last = i == steps - 1
            c_out = channels if last else width[i + 1]
            for _ in range(n.extra_layers):
                self.layers.append(nn.Conv2d(c_in, c_in, 3, 1, 1, bias=n.g_norm == "none"))
                self.norms.append(self._norm(c_in))
            self.layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=last or n.g_norm == "none"))
            if not last:
                self.norms.append(self._norm(c_out))
        dcgan_init(self)
        if n.g_norm == "vbn":
            g = torch.Generator().manual_seed(cfg.seed * 1000 + 13)
            self.register_buffer("z_ref", torch.randn(vbn_reference, n.latent_dim, generator=g))
        else:
            self.z_ref = None

    def _norm(self, c: int) -> nn.Module:
        return {"batch": nn.BatchNorm2d, "vbn": VirtualBatchNorm2d}.get(self.norm_kind, lambda c: nn.Identity())(c)

    def forward_features(self, z: torch.Tensor) -> tuple[torch.Tensor, Features]:
        feats = Features()
        h = self.fc(z).view(-1, self.c0, self.base, self.base)           # (N, C0, s0, s0)
        ref = None
        if self.z_ref is not None:
            ref = self.fc(self.z_ref).view(-1, self.c0, self.base, self.base)
        ops = [None] + list(self.layers)                                  # the first norm follows the linear layer
        for i, layer in enumerate(ops):
            if layer is not None:
                h = layer(h)
                ref = layer(ref) if ref is not None else None
            if i >= len(self.norms):
                break                                                     # the last transposed conv: no norm
            norm = self.norms[i]
            if isinstance(norm, VirtualBatchNorm2d):
                pre, ref = norm(h, ref)
                ref = F.relu(ref)
            else:
                pre = norm(h)
            h = F.relu(pre)
            feats.preacts.append(pre)
            feats.acts.append(h)
            feats.pointwise.append(not (self.norm_kind == "batch" and self.training))
        return torch.tanh(h), feats

    def forward(self, z: torch.Tensor, features: bool = False):
        out, feats = self.forward_features(z)
        return (out, feats) if features else out
