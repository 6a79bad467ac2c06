"""MLP generator, discriminator and encoder; every net records its per-layer features.

`forward_features(x) -> (out, Features)`: the same record feeds BRE, feature matching and the region maps, so
what the page shows is exactly what BRE regularizes (DESIGN "Features"). Hidden units are (leaky) ReLU, tanh or
maxout (METHODS §7: a unit is the max of k affine pieces, its pattern the winning piece); G's hidden layers may
batch-normalize (METHODS §8); weights may be drawn N(0, σ²) with zero biases instead of torch's default init.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config, MLPConfig

# The running statistics' update weight of G's batch norm: running = 0.95·running + 0.05·batch, as the PacGAN
# code's `m * 0.05 + p * 0.95` (METHODS §8); torch's `momentum` is the weight of the new batch.
BATCH_NORM_MOMENTUM = 0.05


@dataclass
class Features:
    """Per hidden layer l: `preacts[l]` (N, width) before the nonlinearity, `acts[l]` after it.

    A maxout layer of k pieces records its pieces' pre-activations, (N, width·k) with unit u's piece j in column
    u·k + j, and `winners[l]` (N, width) int64: each unit's winning piece (argmax, ties to the lower index);
    `winners[l]` is None for every other layer (and may be missing altogether for nets without maxout).
    `pointwise[l]` is False for a layer whose value for one sample depends on the rest of the batch (at or after
    minibatch discrimination, or batch norm in training mode): its binary pattern is only defined against a
    stated reference batch.
    """
    preacts: list[torch.Tensor] = field(default_factory=list)
    acts: list[torch.Tensor] = field(default_factory=list)
    pointwise: list[bool] = field(default_factory=list)
    winners: list[Optional[torch.Tensor]] = field(default_factory=list)

    def pattern_inputs(self) -> list[torch.Tensor]:
        """Per hidden layer, a tensor whose entries `> 0` are the layer's binary pattern bits: the pre-activations
        of a (leaky) ReLU or tanh layer; for a maxout layer of k pieces the one-hot of each unit's winning piece,
        (N, width·k), k indicator bits a unit with exactly one on (METHODS §7). Two points share a maxout pattern
        iff every unit's winning piece is the same, so whatever packs, counts or colours `pre > 0` bits reads a
        maxout layer unchanged."""
        if not any(w is not None for w in self.winners):
            return self.preacts
        out = list(self.preacts)
        for l, win in enumerate(self.winners):
            if win is not None:
                pieces = self.preacts[l].shape[1] // win.shape[1]
                out[l] = F.one_hot(win, pieces).flatten(1).to(self.preacts[l].dtype)
        return out


@contextlib.contextmanager
def eval_mode(net):
    """`net` in eval mode (batch norm reads its running statistics; spectral norm runs no power iteration), then back
    in the mode it was in. A net that is not an nn.Module (any object with `forward_features`) is left as it is."""
    module = isinstance(net, nn.Module)
    was = net.training if module else False
    if module:
        net.eval()
    try:
        yield net
    finally:
        if module:
            net.train(was)


def activation_fn(name: str, slope: float):
    """The nonlinearity as a pure function (never in-place: recorded pre-activations must stay intact)."""
    if name == "relu":
        return F.relu
    if name == "leaky_relu":
        return lambda h: F.leaky_relu(h, slope)
    if name == "tanh":
        return torch.tanh
    if name == "maxout":
        return maxout
    raise ValueError(f"activation must be one of relu, leaky_relu, tanh, maxout (got {name!r})")


def maxout(pre: torch.Tensor, pieces: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Goodfellow et al. 2013: h_u = max_j z_{u,j}, j = 1..k, from (N, width·k) pieces (unit u's piece j in column
    u·k + j, as Blocks' LinearMaxout lays them out) -> (h (N, width), winning piece (N, width) int64, ties to the
    lower index)."""
    return pre.view(len(pre), -1, pieces).max(-1)


def normal_init(layers, std: float) -> None:
    """Weights ~ N(0, std²), biases 0 (the PacGAN code's IsotropicGaussian(0.02) and Constant(0), METHODS §8),
    drawn from torch's global generator in layer order, as torch's default init is."""
    with torch.no_grad():
        for layer in layers:
            layer.weight.normal_(0.0, std)
            if layer.bias is not None:
                layer.bias.zero_()


def batch_closeness(m: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Minibatch discrimination's o_b(x_i) = Σ_{j≠i} exp(−‖M_{i,b} − M_{j,b}‖₁) for M (..., B, N, C): (..., B, N).
    j = i is left out by subtracting its exp(0) = 1. With `reference` R (..., B, R, C), the sum runs over R's rows
    instead, none left out."""
    if reference is None:
        return torch.exp(-torch.cdist(m, m, p=1)).sum(-1) - 1.0
    return torch.exp(-torch.cdist(m, reference, p=1)).sum(-1)


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
        r = None if reference is None else (reference @ self.T).view(-1, self.kernels, self.dims).transpose(0, 1)
        return torch.cat([f, batch_closeness(m, r).T], dim=1)                          # o: (B, N)


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
    minibatch discrimination before the output layer, packing (PacGAN: `pack` samples concatenated) and maxout
    units (`spec.activation == "maxout"`: each hidden Linear has width·k outputs, `spec.pieces` = k).
    Used by the generator: virtual batch norm after every hidden linear layer (`vbn`), fed a reference batch, or
    batch norm (`spec.batch_norm`: hidden Linear without bias, since the norm's mean removes it, then BatchNorm1d;
    batch statistics in training mode, running statistics in eval mode). `init_std`: weights N(0, init_std²) and
    zero biases instead of torch's default.
    """

    def __init__(self, in_dim: int, out_dim: int, spec: MLPConfig, *, spectral_norm: bool = False,
                 minibatch_kernels: int = 0, minibatch_dims: int = 5, vbn: bool = False,
                 init_std: Optional[float] = None):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.act = activation_fn(spec.activation, spec.slope)
        self.activation, self.slope = spec.activation, spec.slope
        self.pieces = spec.pieces if spec.activation == "maxout" else 1
        dims = [in_dim] + [spec.width] * spec.depth
        self.hidden = nn.ModuleList(nn.Linear(a, b * self.pieces, bias=not spec.batch_norm)
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.minibatch = (MinibatchDiscrimination(dims[-1], minibatch_kernels, minibatch_dims)
                          if minibatch_kernels > 0 else None)
        self.out = nn.Linear(dims[-1] + minibatch_kernels, out_dim)
        self.vbn = nn.ModuleList(VirtualBatchNorm(spec.width) for _ in self.hidden) if vbn else None
        self.bn = (nn.ModuleList(nn.BatchNorm1d(spec.width, momentum=BATCH_NORM_MOMENTUM) for _ in self.hidden)
                   if spec.batch_norm else None)
        if init_std is not None:
            normal_init([*self.hidden, self.out], init_std)
        if spectral_norm:
            for layer in [*self.hidden, self.out]:
                nn.utils.parametrizations.spectral_norm(layer)

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def pointwise(self) -> bool:
        """True when the output for one sample does not depend on the rest of the batch."""
        return self.minibatch is None and not (self.bn is not None and self.training)

    def activate(self, pre: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(the layer's output, maxout's winning pieces or None) from its pre-activations."""
        if self.pieces > 1:
            return maxout(pre, self.pieces)
        return self.act(pre), None

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
        batch_stats = self.bn is not None and self.training
        for i, layer in enumerate(self.hidden):
            pre = layer(h)
            if self.vbn is not None:
                pre, ref_pre = self.vbn[i](pre, layer(ref_h))
                ref_h = self.act(ref_pre)
            if self.bn is not None:
                pre = self.bn[i](pre)
            h, winners = self.activate(pre)
            feats.preacts.append(pre)
            feats.acts.append(h)
            feats.pointwise.append(not batch_stats)
            feats.winners.append(winners)
            if i == upto:
                return None, feats
        if self.minibatch is not None:
            ref = None
            if reference is not None:
                ref = reference
                for layer in self.hidden:
                    ref = self.activate(layer(ref))[0]
            h = self.minibatch(h, ref)
        return self.out(h), feats

    def forward(self, x: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_features(x, reference)[0]


def init_std(n) -> Optional[float]:
    """σ of the N(0, σ²) weight init (`nets.init == "normal"`), or None for torch's default init."""
    return n.init_std if n.init == "normal" else None


class Generator(nn.Module):
    """G: z (N, latent) -> x (N, 2). Output linear, or `scale · tanh`. Optional virtual batch norm (see vbn)."""

    def __init__(self, cfg: Config):
        super().__init__()
        n = cfg.nets
        self.latent_dim = n.latent_dim
        self.mlp = MLP(n.latent_dim, 2, n.g, vbn=n.g_vbn, init_std=init_std(n))
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
                         minibatch_kernels=n.minibatch_kernels, minibatch_dims=n.minibatch_dims,
                         init_std=init_std(n))
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
        self.mlp = MLP(2, cfg.nets.latent_dim, cfg.nets.e, init_std=init_std(cfg.nets))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        return self.mlp.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
