"""What a seed batch (`seed_batch`) is made of: S networks of one shape as stacked parameters (`StackedMLP`), Adam
over them (`StackedAdam`), and the adversarial losses of `losses.LOSSES` per seed (`SEED_LOSSES`). Seed s's
slice of each is seed s's own net, optimizer state and loss; nothing here mixes seeds.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.optim.adam import adam

from .nets import MLP, batch_closeness


# ---- per-seed adversarial losses: `losses.LOSSES` reduced over every axis but the seed's ---------------------------
def _mean(x: torch.Tensor) -> torch.Tensor:
    """(S, ...) -> (S,): each seed's mean, as `Tensor.mean()` of one run's batch."""
    return x.flatten(1).mean(1)


def _bce_d(real, fake, real_target=1.0):
    return (_mean(F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_target), reduction="none"))
            + _mean(F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake), reduction="none")))


def _lsgan_d(real, fake, real_target=1.0):
    return 0.5 * _mean((real - real_target) ** 2) + 0.5 * _mean(fake ** 2)


SEED_LOSSES: dict[str, tuple[Callable, Callable]] = {        # name -> (d(real, fake, real_target), g(fake)), (S,)
    "ns": (_bce_d, lambda fake: _mean(F.softplus(-fake))),
    "minimax": (_bce_d, lambda fake: -_mean(F.softplus(fake))),
    "wgan": (lambda real, fake, t=1.0: _mean(fake) - _mean(real), lambda fake: -_mean(fake)),
    "hinge": (lambda real, fake, t=1.0: _mean(F.relu(1 - real)) + _mean(F.relu(1 + fake)), lambda fake: -_mean(fake)),
    "lsgan": (_lsgan_d, lambda fake: 0.5 * _mean((fake - 1) ** 2)),
}


# ---- stacked networks ------------------------------------------------------------------------------------------------
class StackedMLP:
    """S `nets.MLP`s of one shape as stacked parameters: each Linear's weight (S, out, in) and bias (S, out, 1), and
    minibatch discrimination's T (S, A, B·C) where the nets have it, in the order of `MLP.parameters()`; inputs
    (S, N, in). `output` post-processes the last layer (G's tanh).

    Inside, activations are feature-major, (S, width, N): a product is W (S, out, in) @ h (S, in, N), which the
    CPU's batched GEMM runs 4–6× faster than h @ Wᵀ for the narrow layers of the toy nets (10 units: 6 µs against
    39 µs for ten 128-point products), the same for wide ones. Outputs and pre-activations come back as (S, N, ·)
    views of them."""

    def __init__(self, mlps: Sequence[MLP], output: Optional[Callable] = None):
        self.act, self.output = mlps[0].act, output
        self.depth = mlps[0].depth
        mb = mlps[0].minibatch
        self.minibatch = None if mb is None else (mb.kernels, mb.dims)
        self.params: list[torch.nn.Parameter] = []

        def stack(tensors, *shape):
            self.params.append(torch.nn.Parameter(torch.stack([t.detach() for t in tensors]).view(len(mlps), *shape)))
        for layers in zip(*(m.hidden for m in mlps)):
            stack([l.weight for l in layers], *layers[0].weight.shape)
            stack([l.bias for l in layers], -1, 1)
        if mb is not None:
            stack([m.minibatch.T for m in mlps], *mb.T.shape)
        stack([m.out.weight for m in mlps], *mlps[0].out.weight.shape)
        stack([m.out.bias for m in mlps], -1, 1)

    def forward_features(self, x: torch.Tensor, upto: Optional[int] = None,
                         params: Optional[Sequence[torch.Tensor]] = None):
        """(out (S, N, out) or None, pre-activations [(S, N, width)] of hidden layers 0..upto), as MLP's; `params`
        in place of the net's own (unrolled D's updated weights)."""
        p = self.params if params is None else params
        preacts, h = [], x.transpose(1, 2)                                         # (S, in, N)
        for i in range(self.depth):
            pre = torch.baddbmm(p[2 * i + 1], p[2 * i], h)                           # (S, width, N)
            preacts.append(pre.transpose(1, 2))
            if i == upto:
                return None, preacts
            h = self.act(pre)
        if self.minibatch is not None:                     # MinibatchDiscrimination per seed: [f, o] (S, A+B, N)
            kernels, dims = self.minibatch
            m = torch.bmm(h.transpose(1, 2), p[2 * self.depth])                      # (S, N, B·C)
            m = m.view(m.shape[0], m.shape[1], kernels, dims).transpose(1, 2)        # (S, B, N, C)
            h = torch.cat([h, batch_closeness(m)], dim=1)
        out = torch.baddbmm(p[-1], p[-2], h).transpose(1, 2)                         # (S, N, out)
        return (out if self.output is None else self.output(out)), preacts

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

    def keep(self, index: torch.Tensor) -> None:
        """Keep the seeds at `index`, as new parameters (`StackedAdam.keep` follows them)."""
        self.params = [torch.nn.Parameter(p.detach()[index].clone()) for p in self.params]


def unstacked(value: torch.Tensor, i: int, like: torch.Tensor) -> torch.Tensor:
    """Seed i's slice of a stacked parameter (or of its Adam moments), shaped like that seed's own tensor."""
    return value.detach()[i].reshape(like.shape).clone()


class StackedAdam:
    """Adam over stacked parameters through `torch.optim.adam.adam`, the function `torch.optim.Adam` calls (fused
    where the device has a fused kernel), without the optimizer object's per-call bookkeeping (half of a call's
    time at these sizes). Adam is elementwise, so this is S Adams; `seed_state` gives one seed's state in the
    form of its own `torch.optim.Adam`'s. Options as `like` (a seed's torch.optim.Adam) has them."""

    def __init__(self, params: list[torch.nn.Parameter], like: torch.optim.Adam):
        d = like.defaults
        self.lr, (self.beta1, self.beta2), self.eps = d["lr"], d["betas"], d["eps"]
        self.options = {k: d[k] for k in ("weight_decay", "amsgrad", "maximize")}
        self.fused = params[0].device.type in ("cpu", "cuda")
        self.params = params
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.max_exp_avg_sq = [torch.zeros_like(p) for p in params] if self.options["amsgrad"] else []
        self.steps = [torch.zeros((), device=p.device) for p in params]     # one tensor each: the kernel adds 1 to each

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        adam(self.params, [p.grad for p in self.params], self.exp_avg, self.exp_avg_sq, self.max_exp_avg_sq,
             self.steps, foreach=None if self.fused else True, fused=self.fused or None, beta1=self.beta1,
             beta2=self.beta2, lr=self.lr, eps=self.eps, **self.options)

    def keep(self, params: list[torch.nn.Parameter], index: torch.Tensor) -> None:
        """The seeds at `index` only, over their new parameters."""
        self.params = params
        for state in (self.exp_avg, self.exp_avg_sq, self.max_exp_avg_sq):
            state[:] = [v[index].clone() for v in state]

    def load_seed_states(self, per_param: list[list[dict]]) -> None:
        """Stack the seeds' own `torch.optim.Adam` states (for each seed, its optimizer's state of each parameter in
        the stacked order; what `seed_state` unstacks), so a batch rebuilt from its seeds' checkpoints goes on where
        it stopped. Every seed must have taken the same number of steps (none: the state stays empty)."""
        if not any(st for p in per_param for st in p):
            return
        if any(len(p) != len(self.params) or not all(p) for p in per_param):
            raise ValueError("the seeds' optimizer states do not fit the stacked parameters")
        for k, param in enumerate(self.params):
            seeds = [p[k] for p in per_param]
            steps = {float(st["step"]) for st in seeds}
            if len(steps) != 1:
                raise ValueError(f"the seeds' optimizers took different numbers of steps ({sorted(steps)})")
            for name, into in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq),
                               ("max_exp_avg_sq", self.max_exp_avg_sq)):
                if into:
                    into[k] = torch.stack([st[name] for st in seeds]).reshape(param.shape).to(param.device)
            self.steps[k] = torch.full((), steps.pop(), device=param.device)

    def tensors(self) -> list[torch.Tensor]:
        """The state: moments, then the step counts (what a divergence puts back)."""
        return [*self.exp_avg, *self.exp_avg_sq, *self.max_exp_avg_sq, *self.steps]

    def seed_state(self, i: int, params: list[torch.Tensor], state: Optional[list[torch.Tensor]] = None) -> dict:
        """Seed i's state as its own `torch.optim.Adam` keeps it for `params` (that seed's parameters), from this
        optimizer's state or from `state` (a copy of `tensors()`); empty before the first step."""
        state = self.tensors() if state is None else state
        n = len(self.params)
        steps = state[-n:]
        if float(steps[0]) == 0:
            return {}
        moments = [state[j * n:(j + 1) * n] for j in range(len(state) // n - 1)]
        names = ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"][:len(moments)]
        return {p: {"step": torch.tensor(float(steps[k])),             # a non-fused Adam's: float32, on the CPU
                    **{name: unstacked(m[k], i, p) for name, m in zip(names, moments)}}
                for k, p in enumerate(params)}
