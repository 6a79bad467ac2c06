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


# ---- exact partitions (issue 8) ------------------------------------------------------------------------------------
def _best_seconds(fn, rounds: int = 3):
    """(best CPU seconds of this process over `rounds` calls, the last result): robust on a shared machine."""
    best, out = float("inf"), None
    for _ in range(rounds):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def bench_exact(args) -> None:
    """Exact partition (regions found per second, ∇ₓD per region) vs the 512² raster of the same nets."""
    from .config import MLPConfig
    from .nets import MLP
    from .partition import exact_partition
    from .regions import rasterize

    torch.set_num_threads(1)
    nets = {}
    for depth, width in ((2, 16), (2, 64), (2, 100), (3, 128)):
        torch.manual_seed(0)
        nets[f"{depth}x{width} D"] = (MLP(2, 1, MLPConfig(width, depth, "leaky_relu", 0.2)), (-4.0, 4.0, -4.0, 4.0))
    toy = Trainer(presets.get("bre-toy"))
    nets["bre-toy D (4x10)"] = (toy.D, tuple(toy.cfg.viz.extent))
    print("CPU time of this process, best of 3, one thread; D at PyTorch's default init (seed 0), LeakyReLU 0.2; "
          "3x128 etc. over [-4, 4]², bre-toy over its extent")
    print(f"{'net':<18}{'regions':>9}{'exact s':>9}{'regions/s':>11}{'+∇ₓD s':>9}"
          f"{'raster 512² s':>15}{'(no ∇ₓD)':>10}{'grid regions':>14}")
    for name, (D, extent) in nets.items():
        t_exact, part = _best_seconds(lambda: exact_partition(D, extent))
        last = part[D.depth - 1]
        t_grad, _ = _best_seconds(lambda: exact_partition(D, extent)[D.depth - 1].grads)
        t_ras, r = _best_seconds(lambda: rasterize(D, extent, 512))
        t_ras0, _ = _best_seconds(lambda: rasterize(D, extent, 512, grad_resolution=0))
        print(f"{name:<18}{len(last):>9,}{t_exact:>9.3f}{len(last) / t_exact:>11,.0f}{t_grad:>9.3f}"
              f"{t_ras:>15.3f}{t_ras0:>10.3f}{r.cumulative_counts[-1]:>14,}")
    print("goal: >= 50,000 regions/s on 3x128; bre-toy's D exactly (with ∇ₓD) in less time than its 512² raster")


BENCHES["exact"] = bench_exact
