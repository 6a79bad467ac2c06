"""`python -m toyviz.image bench`: steps/s of the image trainer on stacked-digits, plain and with BRE, beside a bare
hand-written PyTorch DCGAN loop over the same nets and data (goals: trainer ≥ 0.9× bare, BRE ≤ 1.3× plain).
"""
from __future__ import annotations

import contextlib
import sys

import torch
import torch.nn.functional as F

from ..engine.config import LIMITS
from ..image.config import ImageConfig
from ..image.trainer import ImageTrainer
from .bench_tools import MACHINE, _rate, device_clock, device_name, graph_row
from .runs import progress

# Seconds of one training step at the defaults (32×32, width 64, batch 64) on the CPU of MACHINE; a step's cost
# grows with size² · width² · batch.
STEP_SECONDS = 0.25
WARMUP, ROUNDS = 10, 3


def bench_config(size: int = 32, width: int = 64, batch: int = 64, device: str = "cpu") -> ImageConfig:
    return ImageConfig().replace(**{
        "data.name": "stacked-digits", "data.image_size": size, "nets.width": width, "optim.batch_size": batch,
        "device": device,
        **{key: int(LIMITS[f"image.{key}"][1])                  # as far as allowed: no end, no evaluation
           for key in ("optim.iters", "eval.metrics_every", "eval.checkpoint_every")}})


def bare_dcgan_step(G, D, data, batch: int, latent: int, gens, opt_g, opt_d) -> None:
    """The floor: a non-saturating DCGAN step written by hand, no features, no stats, no regularizers."""
    real = data.sample(batch, gens[0])[0]
    with torch.no_grad():
        fake = G(torch.randn(batch, latent, generator=gens[1], device=gens[1].device))
    rl, fl = D(real), D(fake)
    loss_d = (F.binary_cross_entropy_with_logits(rl, torch.ones_like(rl))
              + F.binary_cross_entropy_with_logits(fl, torch.zeros_like(fl)))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    for p in D.parameters():
        p.requires_grad_(False)
    loss_g = F.softplus(-D(G(torch.randn(batch, latent, generator=gens[1], device=gens[1].device)))).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    for p in D.parameters():
        p.requires_grad_(True)


def expected_seconds(size: int, width: int, batch: int, steps: int) -> float:
    """About how long `bench_image` takes on MACHINE: three rows of warm-up and timed steps."""
    step = STEP_SECONDS * (size / 32) ** 2 * (width / 64) ** 2 * (batch / 64)
    return step * 3 * (WARMUP + ROUNDS * steps)


def image_rows(device: str, cuda_graph: bool, size: int = 32, width: int = 64, batch: int = 64, steps: int = 20,
               rounds: int = ROUNDS, warmup: int = WARMUP) -> list[dict]:
    """Steps/s of the image trainer on `device` (wall time after the device's queued work, best of `rounds`): the
    bare eager DCGAN loop, the trainer plain and with BRE (fake + interp), each eager and, with `cuda_graph`, with
    optim.cuda_graph (captured on CUDA, graph-ready but eager elsewhere). Each row: variant, device, steps_per_s,
    `max_abs_diff_20` (graph rows: the largest difference of any statistic over 20 steps against the same
    graph-ready step run eagerly on CUDA, or against the ordinary step elsewhere; None on the other rows).
    Another command (`bench device`) calls this too."""
    dev = torch.device(device)
    cfg = bench_config(size, width, batch, device)
    base = ImageTrainer(cfg)
    gens = tuple(torch.Generator(device=dev).manual_seed(i) for i in (0, 1))
    opt_g = torch.optim.Adam(base.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(base.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    timing = {"steps": steps, "rounds": rounds, "warmup": warmup, "clock": device_clock(dev)}
    found = [("bare eager DCGAN loop", _rate(lambda: bare_dcgan_step(base.G, base.D, base.data, batch,
                                                                     cfg.nets.latent_dim, gens, opt_g, opt_d),
                                             **timing), None, None)]
    for label, overrides in (("plain", {}), ("BRE (fake + interp)", {"reg.bre.weight": 1.0})):
        c = cfg.replace(**overrides)
        found.append((f"trainer, {label}", _rate(ImageTrainer(c).step, **timing), None, None))
        if cuda_graph:
            g = c.replace(**{"optim.cuda_graph": True})
            found.append(graph_row(lambda g=g: ImageTrainer(g), lambda c=c: ImageTrainer(c), dev, timing,
                                   f"trainer, {label}"))
    return [{"variant": v, "device": device_name(dev), "steps_per_s": rate, "max_abs_diff_20": diff, "error": error}
            for v, rate, diff, error in found]


def bench_image(args) -> None:
    if getattr(args, "device", None) or getattr(args, "cuda_graph", False):
        rows = image_rows(args.device or "cpu", args.cuda_graph, args.size, args.width, args.batch, args.steps)
        return print_image_rows(rows, args.size, args.width, args.batch, args.steps)
    seconds = expected_seconds(args.size, args.width, args.batch, args.steps)
    print(f"image bench: about {seconds:.0f} s on {MACHINE}; the image trainer runs on the CPU here, which is slow "
          f"(fewer --steps, a smaller --size or --width shorten it)", file=sys.stderr, flush=True)
    cfg = bench_config(args.size, args.width, args.batch)
    base = ImageTrainer(cfg)
    G, D = base.G, base.D
    gens = (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rates = {}
    with contextlib.closing(progress(3 * (WARMUP + ROUNDS * args.steps), "image bench")) as bar:
        timing = {"rounds": ROUNDS, "warmup": WARMUP, "bar": bar}
        bare = _rate(lambda: bare_dcgan_step(G, D, base.data, args.batch, cfg.nets.latent_dim, gens, opt_g, opt_d),
                     args.steps, **timing)
        rates["trainer, plain"] = _rate(ImageTrainer(cfg).step, args.steps, **timing)
        rates["trainer, BRE (fake + interp)"] = _rate(ImageTrainer(cfg.replace(**{"reg.bre.weight": 1.0})).step,
                                                      args.steps, **timing)
    rows = list(rates.items())
    plain, with_bre = rows[0][1], rows[1][1]
    print(f"stacked-digits {args.size}×{args.size}, width {args.width}, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}, {args.steps} steps a round (best of {ROUNDS})")
    print(f"{'variant':<30}{'steps/s':>10}{'÷ bare':>9}")
    print(f"{'bare PyTorch DCGAN loop':<30}{bare:>10.2f}{1.0:>9.2f}")
    for name, rate in rows:
        print(f"{name:<30}{rate:>10.2f}{rate / bare:>9.2f}")
    print(f"goal: trainer ≥ 0.9× bare (got {plain / bare:.2f}×); a BRE step ≤ 1.3× a plain step "
          f"(got {plain / with_bre:.2f}×)")


def print_image_rows(rows: list[dict], size: int, width: int, batch: int, steps: int) -> None:
    """`image_rows` as a table, with the goals: trainer ≥ 0.9× bare, ≥ 400 steps/s with the option on a GPU, a
    BRE step ≤ 1.3× a plain step."""
    rate = {r["variant"]: r["steps_per_s"] for r in rows}
    bare = rate["bare eager DCGAN loop"]
    print(f"stacked-digits {size}×{size}, width {width}, batch {batch}, {rows[0]['device']}, "
          f"{steps} steps a round (best of {ROUNDS})")
    print(f"{'variant':<50}{'steps/s':>10}{'÷ bare':>9}{'max |Δ| 20 steps':>18}")
    for r in rows:
        diff = "" if r["max_abs_diff_20"] is None else f"{r['max_abs_diff_20']:.3g}"
        print(f"{r['variant']:<50}{r['steps_per_s']:>10.2f}{r['steps_per_s'] / bare:>9.2f}{diff:>18}")
        if r.get("error"):
            print(f"    failed: {r['error']}")
    print(f"goal: trainer ≥ 0.9× bare (got {rate['trainer, plain'] / bare:.2f}×); a BRE step ≤ 1.3× a plain step "
          f"(got {rate['trainer, plain'] / rate['trainer, BRE (fake + interp)']:.2f}× eager)")
    graph = {v: x for v, x in rate.items() if v.endswith("CUDA graph")}
    if graph:
        plain, bre = graph["trainer, plain, CUDA graph"], graph["trainer, BRE (fake + interp), CUDA graph"]
        print(f"goal with optim.cuda_graph: ≥ 400 steps/s (got {plain:.0f}); BRE ≤ 1.3× plain (got {plain / bre:.2f}×)")
