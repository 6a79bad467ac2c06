"""Benchmarks that print their figures: `python -m toyviz bench NAME`. Ratios are measured in one run.

Each benchmark is a function of the parsed arguments registered in `BENCHES`.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from . import presets
from .trainer import Trainer


def _rate(fn, steps: int) -> float:
    """Steps per second of fn() (after a short warm-up), best of three rounds to damp a shared machine."""
    for _ in range(10):
        fn()
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def bare_loop_step(G, D, data, cfg, rngs, opt_g, opt_d):
    """A hand-written non-saturating GAN step over the same nets: the floor the trainer is measured against."""
    B, k = cfg.optim.batch_size, cfg.nets.latent_dim
    real = data.sample(B, rngs[0])
    with torch.no_grad():
        fake = G(torch.randn(B, k, generator=rngs[1]))
    rl, fl = D(real), D(fake)
    loss_d = (F.binary_cross_entropy_with_logits(rl, torch.ones_like(rl))
              + F.binary_cross_entropy_with_logits(fl, torch.zeros_like(fl)))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    fl = D(G(torch.randn(B, k, generator=rngs[1])))
    loss_g = F.softplus(-fl).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()


def training_rows(preset: str, variants: dict[str, dict]) -> list[tuple[str, float]]:
    """steps/s of the trainer for each named set of config overrides on `preset`."""
    rows = []
    for name, overrides in variants.items():
        t = Trainer(presets.get(preset).replace(**overrides))
        rows.append((name, _rate(t.step, BENCH_STEPS)))
    return rows


BENCH_STEPS = 300


def bench_train(args) -> None:
    global BENCH_STEPS
    BENCH_STEPS = args.steps
    base = Trainer(presets.get("ring8"))
    G, D, data, cfg = base.G, base.D, base.data, base.cfg
    rngs = (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    bare = _rate(lambda: bare_loop_step(G, D, data, cfg, rngs, opt_g, opt_d), args.steps)
    rows = training_rows("ring8", TRAIN_VARIANTS)
    plain = rows[0][1]
    print(f"ring8, batch {cfg.optim.batch_size}, torch threads {torch.get_num_threads()}, {args.steps} steps a round")
    print(f"{'variant':<28}{'steps/s':>10}{'÷ bare':>9}{'÷ plain':>9}")
    print(f"{'bare PyTorch loop':<28}{bare:>10.1f}{1.0:>9.2f}{bare / plain:>9.2f}")
    for name, rate in rows:
        print(f"{name:<28}{rate:>10.1f}{rate / bare:>9.2f}{rate / plain:>9.2f}")
    print(f"goal: trainer ≥ 0.9× bare (got {plain / bare:.2f}); a BRE step ≤ 1.5× a plain step "
          f"(got {plain / dict(rows)['BRE'] :.2f}×)")


# One row per technique: the techniques issue adds its variants here.
TRAIN_VARIANTS: dict[str, dict] = {
    "trainer, plain": {},
    "BRE": {"reg.bre.weight": 1.0},
    **{name: overrides for name, (_, overrides) in presets.TECHNIQUES.items()},
    "BRE + feature matching": {"reg.bre.weight": 1.0, **presets.TECHNIQUES["ring8-fm"][1]},
}

BENCHES = {"train": bench_train}
