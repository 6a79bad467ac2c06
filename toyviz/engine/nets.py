"""MLP generator, discriminator and encoder; every net records its per-layer features.

`forward_features(x) -> (out, Features)`: the same record feeds BRE, feature matching and the region maps, so
what the page shows is exactly what BRE regularizes (DESIGN "Features").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config, MLPConfig


@dataclass
class Features:
    """Per hidden layer l: `preacts[l]` (N, width) before the nonlinearity, `acts[l]` after it.

    `pointwise[l]` is False for a layer whose value for one sample depends on the rest of the batch (at or after
    minibatch discrimination): its binary pattern is only defined against a stated reference batch.
    """
    preacts: list[torch.Tensor] = field(default_factory=list)
    acts: list[torch.Tensor] = field(default_factory=list)
    pointwise: list[bool] = field(default_factory=list)


def activation_fn(name: str, slope: float):
    """The nonlinearity as a pure function (never in-place: recorded pre-activations must stay intact)."""
    if name == "relu":
        return F.relu
    if name == "leaky_relu":
        return lambda h: F.leaky_relu(h, slope)
    if name == "tanh":
        return torch.tanh
    raise ValueError(f"activation must be one of relu, leaky_relu, tanh (got {name!r})")


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, §3.2: M_i = f(x_i)·T, T ∈ R^{A×B×C}; c_b(i,j) = exp(−‖M_{i,b} − M_{j,b}‖₁);
    o_b(x_i) = Σ_{j≠i} c_b(i,j). Returns [f(x_i), o(x_i)] ∈ R^{A+B}. When `reference` (R, A) is given, the sums run
    over the reference rows instead of the batch: this is how a grid is evaluated against a stated batch.
    """

    def __init__(self, in_features: int, kernels: int, dims: int):
        super().__init__()
        self.kernels, self.dims = kernels, dims
        self.T = nn.Parameter(torch.randn(in_features, kernels * dims) * 0.1)

    def forward(self, f: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.kernels, self.dims).transpose(0, 1)          # (B, N, C)
        if reference is None:
            o = torch.exp(-torch.cdist(m, m, p=1)).sum(2) - 1.0     # (B, N); exclude j = i: exp(0) = 1
        else:
            r = (reference @ self.T).view(-1, self.kernels, self.dims).transpose(0, 1)   # (B, R, C)
            o = torch.exp(-torch.cdist(m, r, p=1)).sum(2)                               # (B, N)
        return torch.cat([f, o.T], dim=1)


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalization (Salimans et al. 2016, §3.4; METHODS §2). Each example h is normalized with the
    statistics of a reference batch R (fixed inputs, its activations recomputed every step with current weights)
    blended with the example itself at weight c = 1/(|R|+1):
      μ = c·h + (1−c)·mean_R,  s = c·h² + (1−c)·mean_R(h²),  y = γ·(h − μ)/√(s − μ² + ε) + β.
    The reference batch is normalized by its own statistics. Per example given R, so the layer stays pointwise.
    """

    def __init__(self, features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.zeros(features))

    def forward(self, h: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, F) examples and (R, F) reference pre-activations -> both normalized."""
        ref_mean, ref_sq = ref.mean(0), (ref * ref).mean(0)
        c = 1.0 / (ref.shape[0] + 1)
        mean = c * h + (1 - c) * ref_mean
        var = (c * h * h + (1 - c) * ref_sq - mean * mean).clamp_min(0)
        ref_var = (ref_sq - ref_mean * ref_mean).clamp_min(0)
        out = self.gamma * (h - mean) / torch.sqrt(var + self.eps) + self.beta
        ref_out = self.gamma * (ref - ref_mean) / torch.sqrt(ref_var + self.eps) + self.beta
        return out, ref_out


class MLP(nn.Module):
    """`depth` hidden layers of `width` units, then a linear output layer.

    Options used by the discriminator: spectral normalization of every linear layer (Miyato et al. 2018),
    minibatch discrimination before the output layer, and packing (PacGAN: `pack` samples concatenated).
    Used by the generator: virtual batch norm after every hidden linear layer (`vbn`), fed a reference batch.
    """

    def __init__(self, in_dim: int, out_dim: int, spec: MLPConfig, *, spectral_norm: bool = False,
                 minibatch_kernels: int = 0, minibatch_dims: int = 5, vbn: bool = False):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.act = activation_fn(spec.activation, spec.slope)
        self.activation, self.slope = spec.activation, spec.slope
        dims = [in_dim] + [spec.width] * spec.depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.minibatch = (MinibatchDiscrimination(dims[-1], minibatch_kernels, minibatch_dims)
                          if minibatch_kernels > 0 else None)
        self.out = nn.Linear(dims[-1] + minibatch_kernels, out_dim)
        self.vbn = nn.ModuleList(VirtualBatchNorm(spec.width) for _ in self.hidden) if vbn else None
        if spectral_norm:
            for layer in [*self.hidden, self.out]:
                nn.utils.parametrizations.spectral_norm(layer)

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def pointwise(self) -> bool:
        """True when the output for one sample does not depend on the rest of the batch."""
        return self.minibatch is None

    def forward_features(self, x: torch.Tensor, reference: torch.Tensor | None = None,
                         vbn_ref: torch.Tensor | None = None,
                         upto: int | None = None) -> tuple[torch.Tensor | None, Features]:
        """`reference`: (R, in_dim) points the minibatch layer compares against (grid evaluation only).
        `vbn_ref`: (R, in_dim) the virtual-batch-norm reference inputs (required when the net has `vbn`);
        recorded pre-activations are then the normalized ones (what the nonlinearity sees).
        `upto`: stop after hidden layer `upto` (0-based) and return `(None, features of layers 0..upto)`: what a
        regularizer reading only those layers needs, at the cost of those layers alone."""
        feats = Features()
        h, ref_h = x, vbn_ref
        for i, layer in enumerate(self.hidden):
            pre = layer(h)
            if self.vbn is not None:
                pre, ref_pre = self.vbn[i](pre, layer(ref_h))
                ref_h = self.act(ref_pre)
            h = self.act(pre)
            feats.preacts.append(pre)
            feats.acts.append(h)
            feats.pointwise.append(True)
            if i == upto:
                return None, feats
        if self.minibatch is not None:
            ref = None
            if reference is not None:
                ref = reference
                for layer in self.hidden:
                    ref = self.act(layer(ref))
            h = self.minibatch(h, ref)
        return self.out(h), feats

    def forward(self, x: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_features(x, reference)[0]


class Generator(nn.Module):
    """G: z (N, latent) -> x (N, 2). Output linear, or `scale · tanh`. Optional virtual batch norm (see vbn)."""

    def __init__(self, cfg: Config):
        super().__init__()
        n = cfg.nets
        self.latent_dim = n.latent_dim
        self.mlp = MLP(n.latent_dim, 2, n.g, vbn=n.g_vbn)
        self.output, self.scale = n.g_output, n.g_output_scale
        if n.g_vbn:    # the fixed VBN reference noise, from its own seeded stream (the init stream is untouched)
            g = torch.Generator().manual_seed(cfg.seed * 1000 + 17)
            self.register_buffer("vbn_ref_z", torch.randn(n.g_vbn_ref, n.latent_dim, generator=g))

    def forward_features(self, z: torch.Tensor) -> tuple[torch.Tensor, Features]:
        ref = self.vbn_ref_z if self.mlp.vbn is not None else None
        out, feats = self.mlp.forward_features(z, vbn_ref=ref)
        if self.output == "tanh":
            out = self.scale * torch.tanh(out)
        return out, feats

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.forward_features(z)[0]


class Discriminator(MLP):
    """D: x (N, 2·pack) -> one logit per sample (or K logits for the semi-supervised K+1 classifier)."""

    def __init__(self, cfg: Config, out_dim: int = 1):
        n = cfg.nets
        super().__init__(2 * n.pack, out_dim, n.d, spectral_norm=n.d_spectral_norm,
                         minibatch_kernels=n.minibatch_kernels, minibatch_dims=n.minibatch_dims)
        self.pack = n.pack


class KPlusOneDiscriminator(Discriminator):
    """The semi-supervised D (Salimans et al. 2016, §5): K class logits l, the fake class's logit fixed at 0.

    `classify(x) -> (l (N, K), Features)`; `forward_features` / `forward` return the logit of "real", log Z =
    logsumexp(l) (N, 1), so σ(log Z) = Z/(Z+1) = D(x) and every loss, map and regularizer sees one logit as usual.
    """

    def __init__(self, cfg: Config, n_classes: int):
        super().__init__(cfg, out_dim=n_classes)
        self.n_classes = n_classes

    def classify(self, x: torch.Tensor, reference: torch.Tensor | None = None,
                 upto: int | None = None) -> tuple[torch.Tensor, Features]:
        return super().forward_features(x, reference, upto=upto)

    def forward_features(self, x, reference=None, vbn_ref=None, upto=None):
        logits, feats = self.classify(x, reference, upto)
        return (None if logits is None else torch.logsumexp(logits, dim=1, keepdim=True)), feats


class Encoder(nn.Module):
    """E: x (N, 2) -> z (N, latent), for the mode regularizers and MDGAN (Che et al. 2017)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.mlp = MLP(2, cfg.nets.latent_dim, cfg.nets.e)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        return self.mlp.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
