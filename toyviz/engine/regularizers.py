"""Regularizers behind one registry, used by both trainers (the toy's and the image scale's): each reads a
`StepContext`, returns an unweighted scalar and its stats (tensors, read after the step), and names the player
whose loss it joins. A weight of 0 means off. Adding one: a class here, a config field, a test.
The terms themselves are pure functions (BRE, gradient penalty, feature matching, historical averaging, mode
regularizers), shape-agnostic: points (N, 2·pack) and images (N, C, H, W) alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional, Protocol

import torch
import torch.nn.functional as F

from .nets import Features
from .random_streams import to_run_device


# ---- BRE (Cao, Ding, Lui, Huang, ICLR 2018) ------------------------------------------------------------------
@dataclass
class BREResult:
    """`total = me + ac` (differentiable) and the monitors of METHODS §1 (0-d tensors, no gradient; None when not
    asked for)."""
    total: torch.Tensor
    me: torch.Tensor
    ac: torch.Tensor
    frac_09: Optional[torch.Tensor] = None
    frac_099: Optional[torch.Tensor] = None
    mean_abs_corr: Optional[torch.Tensor] = None


class _SoftSign(torch.autograd.Function):
    """a = h / (|h| + ε), ε = eps_scale · mean|h| over each set's (K, d) tensor (h: (S, K, d), S independent
    sets), with no gradient through ε: ∂a/∂h = ε / (|h| + ε)² (also at h = 0), three operations back.
    Where den² is not a normal float (float32: den below about 1e-19 or above 1e19) the backward divides twice,
    (ε / den) / den: den² would underflow to 0 or overflow to inf, while ε / den ≤ 1 keeps every intermediate
    within range wherever the result is. Elsewhere it keeps ε / den², whose rounding earlier runs were made with,
    so their numbers stay bit for bit."""

    @staticmethod
    def forward(ctx, h, eps_scale: float):
        den = h.abs()
        eps = den.mean(dim=(-2, -1), keepdim=True).mul_(eps_scale)
        den.add_(eps)
        ctx.save_for_backward(den, eps)
        return h / den

    @staticmethod
    def backward(ctx, grad):
        den, eps = ctx.saved_tensors
        sq = den.square()
        normal = (sq >= torch.finfo(sq.dtype).tiny) & (sq < float("inf"))
        return torch.where(normal, grad * eps / sq, grad * (eps / den).div_(den)), None


def soft_sign(h: torch.Tensor, eps_scale: float = 1e-3) -> torch.Tensor:
    """a = h / (|h| + ε), ε = eps_scale · mean|h| over the whole (K, d) tensor, with no gradient through ε."""
    return _SoftSign.apply(h.unsqueeze(0), eps_scale)[0]


class _HingedCorrelation(torch.autograd.Function):
    """Per set s of A (S, K, d): Σ_{i≠j} max(0, |C_ij| − m) with C = A Aᵀ / d, shape (S,); also Σ_{i≠j} |C_ij|
    (a monitor, no gradient). On the unscaled Gram matrix G = A Aᵀ = d·C, the soft-threshold residual
    R = softshrink(G, m·d) = G − clamp(G, −m·d, m·d) gives the hinge as |R| / d (R_ii = G_ii − m·d ≥ 0 on the
    diagonal, G_ii ≥ 0), and with S = sign(R), diagonal zeroed (symmetric):
      ∂/∂A = (S + Sᵀ) A / d = 2 S A / d
    one batched matrix product each way and a few passes over K×K, instead of autograd's chain."""

    @staticmethod
    def forward(ctx, a, margin: float):
        d = a.shape[2]
        gram = torch.bmm(a, a.transpose(1, 2))
        residual = F.softshrink(gram, margin * d)
        ctx.save_for_backward(a, residual)
        hinged = (residual.abs().sum((1, 2)) - residual.diagonal(dim1=1, dim2=2).sum(1)) / d
        off_abs = (gram.abs_().sum((1, 2)) - gram.diagonal(dim1=1, dim2=2).sum(1)) / d
        ctx.mark_non_differentiable(off_abs)
        return hinged, off_abs

    @staticmethod
    def backward(ctx, grad, _):
        a, residual = ctx.saved_tensors
        s = residual.sign()
        s.diagonal(dim1=1, dim2=2).zero_()
        return torch.bmm(s, a).mul_(grad.view(-1, 1, 1) * (2 / a.shape[2])), None


def _count_above(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """#{x > t} per set of x (S, K, d) ≥ 0, as ⌈max(0, x − t)⌉ summed (exact for x − t ≤ 1; comparisons that
    yield booleans run several times slower on the CPU)."""
    return (x - threshold).clamp_min_(0).ceil_().sum((1, 2))


def bre_sets(sets: list[list[torch.Tensor]], *, margin_s: float = 3.0, eps_scale: float = 1e-3,
             pairs: Literal["paper", "code"] = "paper", monitors: bool = True) -> list[BREResult]:
    """`bre` of several sample sets at once (fake, interpolates, real: each its own batch statistics), one result
    per set. Sets of equal shapes are stacked, so each operation runs once for all of them. `monitors=False`
    skips the monitors (a few passes over K×d and K×K: a tenth of a training step on ring8)."""
    if not sets or any(not layers for layers in sets):
        raise ValueError("bre needs at least one layer of pre-activations")
    shapes = [[tuple(h.shape) for h in layers] for layers in sets]
    if any(s != shapes[0] for s in shapes):
        return [r for layers in sets for r in bre_sets([layers], margin_s=margin_s, eps_scale=eps_scale,
                                                        pairs=pairs, monitors=monitors)]
    k = sets[0][0].shape[0]
    stacked = [torch.stack([layers[layer].reshape(k, -1) for layers in sets]) for layer in range(len(sets[0]))]
    r = bre_stacked(stacked, margin_s=margin_s, eps_scale=eps_scale, pairs=pairs, monitors=monitors)
    if not monitors:
        return [BREResult(r.total[i], r.me[i], r.ac[i]) for i in range(len(sets))]
    return [BREResult(r.total[i], r.me[i], r.ac[i], r.frac_09[i], r.frac_099[i], r.mean_abs_corr[i])
            for i in range(len(sets))]


def bre_stacked(layers: list[torch.Tensor], *, margin_s: float = 3.0, eps_scale: float = 1e-3,
                pairs: Literal["paper", "code"] = "paper", monitors: bool = True) -> BREResult:
    """`bre` of S independent sets at once, each layer's pre-activations stacked as (S, K, d): one BREResult
    whose fields are (S,) tensors (the seed batches of `seed_batch` and `bre_sets` both call it)."""
    k = layers[0].shape[1]
    if k < 2:
        raise ValueError("bre needs a batch of at least 2 samples for its pair statistics")
    mes, hinged, big09, big099, corr = [], [], [], [], []
    for h in layers:                                                           # (S, K, d)
        a = _SoftSign.apply(h, eps_scale)
        d = a.shape[2]
        mes.append((a.mean(1) ** 2).mean(1))
        off_hinged, off_abs = _HingedCorrelation.apply(a, margin_s / d ** 0.5)
        hinged.append(off_hinged)
        if monitors:
            with torch.no_grad():
                abs_a = a.abs()
                big09.append(_count_above(abs_a, 0.9) / (k * d))
                big099.append(_count_above(abs_a, 0.99) / (k * d))
                corr.append(off_abs / (k * (k - 1)))
    me = torch.stack(mes).mean(0)                                              # (S,)
    ac = torch.stack(hinged).mean(0) / (k * (k - 1) if pairs == "paper" else k * k)
    total = me + ac
    if not monitors:
        return BREResult(total, me, ac)
    values = torch.stack([torch.stack(m).mean(0) for m in (big09, big099, corr)])     # (3, S)
    return BREResult(total, me, ac, values[0], values[1], values[2])


def bre(preacts: list[torch.Tensor], *, margin_s: float = 3.0, eps_scale: float = 1e-3,
        pairs: Literal["paper", "code"] = "paper") -> BREResult:
    """Binarized Representation Entropy of one batch (METHODS §1).

    For each layer's pre-activations h_l, flattened to (K, d_l), with a = soft_sign(h_l):
      ME_l = mean_k (mean_i a_ik)²                     marginal entropy: each unit on half the time
      C_l  = A Aᵀ / d_l  (K×K),  H_l = max(0, |C_l| − s/√d_l)   the CLT margin s (3 by default)
    ME = mean_l ME_l;  AC = mean over pairs i≠j of (mean_l H_l)  ("paper"), or the mean over all K² entries with
    the diagonal zeroed ("code": (K−1)/K times smaller);  R_BRE = ME + AC. Averaging over layers and over pairs
    commute, so AC is computed as Σ_l Σ_{i≠j} H_l,ij / (L · pairs) (`_HingedCorrelation`).
    """
    return bre_sets([preacts], margin_s=margin_s, eps_scale=eps_scale, pairs=pairs)[0]


BRE_LAYER_SETS = ("all", "all_but_first", "all_but_first_last")


def bre_layer_indices(layers, depth: int) -> list[int]:
    """Resolve a BRE layer choice to 0-based D hidden-layer indices: "all"; "all_but_first" (1..depth−1);
    "all_but_first_last" (1..depth−2: the BRE reference code's choice, which skips the last conv layer too); or
    explicit indices (negative ones count from the last)."""
    if layers == "all":
        return list(range(depth))
    if layers == "all_but_first":
        return list(range(1, depth))
    if layers == "all_but_first_last":
        return list(range(1, depth - 1))
    bad = [i for i in layers if not -depth <= i < depth]
    if bad or not layers:
        raise ValueError(f"reg.bre.layers {layers}: D has {depth} hidden layers, so indices must lie in "
                         f"{-depth}..{depth - 1}")
    return [i % depth for i in layers]


def interpolate(real: torch.Tensor, fake: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """paper: x̂ = α·x + (1−α)·x̃;  code: x + α(x − x̃) (past the real point). α ~ U(0,1) per sample, whatever
    the samples' shape (points (N, d) or images (N, C, H, W))."""
    alpha = to_run_device(torch.rand(real.shape[0], 1, generator=generator, device=generator.device), real.device)
    return mix(real, fake, alpha.view(-1, *[1] * (real.dim() - 1)), mode)


def mix(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor, mode: str) -> torch.Tensor:
    """`interpolate`'s formula for a given α (broadcast against the samples)."""
    if mode == "paper":
        return alpha * real + (1 - alpha) * fake
    return real + alpha * (real - fake)


# ---- the step context and the registry -----------------------------------------------------------------------
class BatchDistribution(Protocol):
    """How a batch is spread over processes (toyviz.image's DistContext; one process: `SINGLE_PROCESS`)."""

    def gather(self, x: torch.Tensor) -> torch.Tensor: ...

    def gather_with_grad(self, x: torch.Tensor) -> torch.Tensor: ...

    def shard(self, x: torch.Tensor) -> torch.Tensor: ...


class _SingleProcess:
    """One process holds the whole batch: gathering and sharding are the identity."""

    def gather(self, x):
        return x

    gather_with_grad = shard = gather


SINGLE_PROCESS = _SingleProcess()


@dataclass
class StepContext:
    """What a regularizer may read in one phase. `fake` is detached in D's phase; D outputs are cached.
    `features(x, upto=None)`: D's features record on D-input x (through the same module `D`, so a data-parallel
    wrapper sees it); `dist`: how the batch is spread over processes (the pair statistics of BRE and its
    interpolates are those of the global batch)."""
    cfg: object
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
    net_name: str = "D"          # which discriminator this phase trains ("D", or "D2" in MDGAN's diffusion step)
    monitors: bool = True        # whether diagnostic monitors are logged this step (the trainer's evaluation steps)
    features: Optional[Callable[..., Features]] = None
    dist: BatchDistribution = SINGLE_PROCESS

    def d_features(self, x: torch.Tensor, upto: Optional[int] = None) -> Features:
        """D's features record on D-input x: through `features` when the trainer gave it, else
        `D.forward_features`."""
        if self.features is not None:
            return self.features(x, upto=upto)
        return self.D.forward_features(x, upto=upto)[1]

    @property
    def d_depth(self) -> int:
        """D's hidden layers (read through a data-parallel wrapper's `module`)."""
        return getattr(self.D, "module", self.D).depth


class Regularizer:
    """Interface: `name`, `player` ('d' or 'g'), `weight(cfg, iteration)`, `__call__(ctx) -> (scalar, stats)`."""
    name: str = ""
    player: str = "d"

    def weight(self, cfg, iteration: int) -> float:
        raise NotImplementedError

    def __call__(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


def linear_decay(weight: float, iteration: int, total: int) -> float:
    """λ_t = λ · (1 − t/T), floored at 0."""
    return weight * max(0.0, 1.0 - iteration / max(total, 1))


class BRERegularizer(Regularizer):
    """L_D += λ·(R_BRE(fake) + R_BRE(interp)) by default; the sample sets and layers are config choices.
    ME and AC are logged every step; the monitors (fractions of |a| > 0.9, 0.99, mean |C|) when `ctx.monitors`
    (the trainer sets it on the first step and on the steps it evaluates)."""
    name, player = "bre", "d"

    def weight(self, cfg, iteration):
        b = cfg.reg.bre
        return linear_decay(b.weight, iteration, cfg.optim.iters) if b.schedule == "linear" else b.weight

    def __call__(self, ctx):
        b, dist = ctx.cfg.reg.bre, ctx.dist
        layers = bre_layer_indices(b.layers, ctx.d_depth)
        sets = []
        for kind in b.samples:
            if kind == "fake" and ctx.fake_feats is not None:
                feats = ctx.fake_feats
            elif kind == "real" and ctx.real_feats is not None:
                feats = ctx.real_feats
            else:
                x = {"fake": ctx.fake, "real": ctx.real}.get(kind)
                if x is None:          # drawn over the global batch: the same α with any number of processes
                    x = dist.shard(interpolate(dist.gather(ctx.real), dist.gather(ctx.fake), b.interp,
                                               ctx.generator))
                feats = ctx.d_features(x, upto=max(layers))      # no layer past BRE's deepest
            sets.append([dist.gather_with_grad(feats.preacts[i]) for i in layers])
        results = bre_sets(sets, margin_s=b.margin_s, eps_scale=b.eps_scale, pairs=b.pairs, monitors=ctx.monitors)
        stats = {}
        for kind, r in zip(b.samples, results):
            stats.update({f"{kind}/me": r.me.detach(), f"{kind}/ac": r.ac.detach()})
            if ctx.monitors:
                stats.update({f"{kind}/frac09": r.frac_09, f"{kind}/frac099": r.frac_099,
                              f"{kind}/corr": r.mean_abs_corr})
        # means over the sample sets in float64, one addition at a time (as Python floats would add them)
        stats["me"] = sum(v.double() for k, v in stats.items() if k.endswith("/me")) / len(b.samples)
        stats["ac"] = sum(v.double() for k, v in stats.items() if k.endswith("/ac")) / len(b.samples)
        return sum(r.total for r in results), stats


# ---- pure terms other trainers reuse (the image scale imports these) -------------------------------------------
def gradient_penalty(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """WGAN-GP (Gulrajani et al. 2017): E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²] on x̂ = α·x + (1−α)·x̃, α ~ U(0,1) per sample.

    Returns (penalty, per-sample gradient norms (N,), detached). Differentiable in D's parameters.
    """
    norm = input_gradients(D, interpolate(real, fake, "paper", generator)).flatten(1).norm(dim=1)
    return ((norm - 1) ** 2).mean(), norm.detach()


def input_gradients(D: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """∇ₓ D(x) of every sample of x (shaped like x), as a graph differentiable in D's parameters: the gradient of
    Σ D(x), which is each sample's own where D reads each sample alone (and, stacked, each seed's own)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return grad


def feature_matching_loss(real_feat: torch.Tensor, fake_feat: torch.Tensor,
                          norm: Literal["l2", "l1"] = "l2") -> torch.Tensor:
    """Feature matching (Salimans et al. 2016, §3.1), Δ = mean_batch f(x) − mean_batch f(G(z)) over (N, d) features:
      l2 (the paper):    ‖Δ‖₂² = Σ_i Δ_i²
      l1 (the CIFAR code, `T.mean(abs(m1 − m2))`):  mean_i |Δ_i|
    Features are flattened per sample, so conv maps (N, C, H, W) work too.
    """
    delta = real_feat.flatten(1).mean(0) - fake_feat.flatten(1).mean(0)
    if norm == "l2":
        return (delta ** 2).sum()
    if norm == "l1":
        return delta.abs().mean()
    raise ValueError(f"feature matching norm must be 'l2' or 'l1' (got {norm!r})")


def historical_average_penalty(params, averages) -> torch.Tensor:
    """Historical averaging (Salimans et al. 2016, §3.3): Σ_p ‖θ_p − θ̄_p‖², θ̄ = (1/t) Σ_{i≤t} θ_i held constant.

    `params` and `averages` are matching sequences of tensors.
    """
    params, averages = list(params), list(averages)
    if len(params) != len(averages):
        raise ValueError(f"historical averaging got {len(params)} parameters but {len(averages)} averages")
    return sum(((p - a.detach()) ** 2).sum() for p, a in zip(params, averages))


def update_running_mean(average: torch.Tensor, value: torch.Tensor, count: int) -> None:
    """In place: θ̄ ← θ̄ + (θ − θ̄)/count, so after `count` calls θ̄ is the mean of the values seen."""
    average.add_(value.detach() - average, alpha=1.0 / count)


def reconstruction_distance(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """d(x, G(E(x))) of Che et al. 2017: E_x ‖x − G(E(x))‖², the squared L2 distance per sample (summed over
    coordinates or pixels), averaged over the batch."""
    return (x - recon).flatten(1).pow(2).sum(1).mean()


def mode_regularizer_terms(x: torch.Tensor, recon: torch.Tensor, recon_logits: torch.Tensor,
                           sign: Literal["intent", "printed"] = "intent") -> tuple[torch.Tensor, torch.Tensor]:
    """Mode regularizers (Che et al. ICLR 2017, §3), METHODS §3, on a batch x and its reconstruction G(E(x)):
      geometric = E_x ‖x − G(E(x))‖²            (squared L2 per sample, summed over coordinates)
      mode      = E_x[−log D(G(E(x)))]           ("intent": make reconstructions of every real point look real)
                  E_x[+log D(G(E(x)))]           ("printed": the sign as printed in the paper)
    with log D = log σ(l) = −softplus(−l) for D's logit l. Returns (geometric, mode), unweighted (λ1, λ2 apart).
    """
    geometric = reconstruction_distance(x, recon)
    neg_log_d = F.softplus(-recon_logits).mean()
    if sign == "intent":
        return geometric, neg_log_d
    if sign == "printed":
        return geometric, -neg_log_d
    raise ValueError(f"mode regularizer sign must be 'intent' or 'printed' (got {sign!r})")


# ---- registry regularizers beyond BRE --------------------------------------------------------------------------
class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): L_D += λ·E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²], x̂ = α·x + (1−α)·x̃. See `gradient_penalty`."""
    name, player = "gp", "d"

    def weight(self, cfg, iteration):
        return cfg.reg.gp_weight

    def __call__(self, ctx):
        value, norm = gradient_penalty(ctx.D, ctx.real, ctx.fake, ctx.generator)
        return value, {"grad_norm": norm.mean()}


class FeatureMatching(Regularizer):
    """Feature matching for G (Salimans et al. 2016): L_G += λ·‖mean f(x) − mean f(G(z))‖² on D's hidden layer
    `reg.feature_matching_layer` (activations; L1 of the mean difference with `feature_matching_norm: l1`).
    The real batch is the one D just saw, through the current D, with no gradient."""
    name, player = "fm", "g"

    def weight(self, cfg, iteration):
        return cfg.reg.feature_matching

    def __call__(self, ctx):
        r = ctx.cfg.reg
        with torch.no_grad():
            real_feats = ctx.d_features(ctx.real)
        layer = r.feature_matching_layer
        return feature_matching_loss(real_feats.acts[layer], ctx.fake_feats.acts[layer], r.feature_matching_norm), {}


class HistoricalAveraging(Regularizer):
    """Historical averaging (Salimans et al. 2016, §3.3): a player's loss += λ·‖θ − (1/t) Σ_{i≤t} θ_i‖².

    The running means live in the trainer's `reg_state` (saved in checkpoints) under `ha/<net>/<param>`; each call
    first folds the current θ into the mean, so the first step's penalty is 0."""
    player = "d"

    def __init__(self, player: str):
        self.player, self.name = player, f"ha_{player}"

    def weight(self, cfg, iteration):
        return cfg.reg.historical_averaging

    def __call__(self, ctx):
        net_name = ctx.net_name if self.player == "d" else "G"
        net = ctx.D if self.player == "d" else ctx.G
        state, prefix = ctx.extra, f"ha/{net_name}/"
        count = int(state.get(prefix + "#count", torch.zeros(())).item()) + 1
        state[prefix + "#count"] = torch.tensor(float(count))
        params, averages = [], []
        for name, p in net.named_parameters():
            if prefix + name not in state:
                state[prefix + name] = p.detach().clone()
            else:
                update_running_mean(state[prefix + name], p, count)
            params.append(p)
            averages.append(state[prefix + name])
        return historical_average_penalty(params, averages), {}


REGISTRY: list[Regularizer] = [BRERegularizer(), GradientPenalty(), FeatureMatching(), HistoricalAveraging("d"),
                               HistoricalAveraging("g")]
