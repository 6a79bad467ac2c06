"""`python -m toyviz bench device [--device cuda]`: speed figures on one given device, headed by the device's name.

The benchmark is a list of sections (`SECTIONS`), each a function of (args, device) that prints its own rows;
another measurement (the trainer's steps per second, say) is one more function appended there.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch

from ..engine import presets
from ..engine.nets import Discriminator
from ..engine.seed_batch import SeedBatch
from ..geometry.raster import rasterize
from .bench_tools import _quick, bench_device_of, device_name, device_seconds
from .bench_training import print_training_rows, training_rows
from .image_bench import image_rows, print_image_rows
from .runs import progress
from .seed_batch_bench import bench_config as quiet_config

EXTENT = (-1.5, 1.5, -1.5, 1.5)
# What each timed call asks rasterize for: the partition with D(x) (what a region map and probability panel need),
# everything (adding ∇ₓD on 64² and the mosaic glass), and the colour images alone (a video frame, the page).
PARTITION = ("ids", "cumulative_ids", "colors", "cumulative_colors", "prob")
COLOURS = ("colors", "cumulative_colors")


def _same_partition(a, b) -> bool:
    return a.counts == b.counts and a.cumulative_counts == b.cumulative_counts and all(
        np.array_equal(x, y) for name in ("ids", "cumulative_ids", "colors", "cumulative_colors")
        for x, y in zip(getattr(a, name), getattr(b, name)))


def raster_section(args, device: torch.device) -> None:
    """ring8's D (3x128, freshly initialized, seed 0) rasterized on `device` at several R²: the call returning
    per-layer and cumulative ids, colours, counts and D(x); the full call (adding ∇ₓD on 64² and the mosaic glass);
    the colours alone. rasterize's default backend: torch (every stage on the device) off the CPU, numpy on it."""
    quick = _quick(args)
    gpu = device.type != "cpu"
    sizes = ((256, 1024) if quick else (256, 1024, 2048, 4096)) if gpu else ((256,) if quick else (256, 512))
    rounds = 3 if quick else 9 if gpu else 5
    torch.manual_seed(0)
    D = Discriminator(presets.get("ring8")).to(device)
    backend = "torch (every stage on the device)" if gpu else "numpy (the CPU path)"
    print(f"rasterize, ring8's D (3x128, seed 0, fresh), extent {EXTENT}, backend {backend}; median of {rounds} "
          f"calls after 2 warm-ups, each timed to its arrays on the host" +
          ("" if gpu else "; on the CPU up to 512² only (the numpy path's sizes: see bench regions)"))
    if gpu:     # the torch backend must give the numpy backend's partition: checked here, where it runs
        same = _same_partition(rasterize(D, EXTENT, 256, fields=PARTITION, backend="numpy"),
                               rasterize(D, EXTENT, 256, fields=PARTITION, backend="torch"))
        print(f"check at 256²: the torch backend's ids, colours and counts equal the numpy backend's: "
              f"{'yes' if same else 'NO'}")
    rows = []          # printed once the bar is gone: a row written beside a live bar shares its terminal line
    with contextlib.closing(progress(len(sizes), "bench device: rasterize", "size")) as bar:
        for R in sizes:
            times = [device_seconds(lambda f=f, R=R: rasterize(D, EXTENT, R, fields=f), device, rounds)
                     for f in (PARTITION, None, COLOURS)]
            n = rasterize(D, EXTENT, R, fields=()).cumulative_counts[-1]
            rows.append(f"{R:>5}²{n:>9}" + "".join(f"{1e3 * t:>{w}.1f}" for t, w in zip(times, (28, 24, 17))))
            bar.update(1)
    print(f"{'R':>6}{'regions':>9}{'ids+colours+counts+prob ms':>28}{'full (+∇ₓD, mosaic) ms':>24}"
          f"{'colours only ms':>17}")
    print("\n".join(rows))
    if gpu:
        print("goal on an H200: the ids+colours+counts+prob call ≤ 5 ms at 256², ≤ 59 ms at 2048² (1.5x the "
              "39.5 ms of issue 17's prototype)")


def training_section(args, device: torch.device) -> None:
    """The toy trainer's steps per second (ring8, bre-toy): a bare eager loop, the trainer, and on CUDA the trainer
    with optim.cuda_graph (`bench_training.training_rows`)."""
    steps, rounds, warmup = (20, 1, 2) if _quick(args) else (300, 3, 10)
    print_training_rows(training_rows(str(device), device.type == "cuda", steps, rounds, warmup), steps, rounds)


def image_section(args, device: torch.device) -> None:
    """The image trainer's steps per second on the bench config (stacked digits 32×32, width 64, batch 64): bare
    eager DCGAN loop, trainer plain and with BRE, and on CUDA with optim.cuda_graph (`image_bench.image_rows`).
    Off the CPU only: on it, `python -m toyviz.image bench` times the same rows with more care for its speed."""
    if device.type == "cpu":
        print("image trainer: skipped on the CPU (python -m toyviz.image bench --device cpu times it)")
        return
    steps = 10 if _quick(args) else 50
    print_image_rows(image_rows(str(device), device.type == "cuda", steps=steps), 32, 64, 64, steps)


SEED_BATCH_GOAL = 10_000        # issue 17: ring8's seed batch on a GPU, seed-steps per second


def seed_batch_section(args, device: torch.device) -> None:
    """Seeds trained as one batch (`engine.seed_batch`) on `device`: seed-steps per second of ring8 and bre-toy for
    batches of 10 and 100 seeds (the step alone: no periodic evaluation)."""
    sizes = (10,) if _quick(args) or device.type == "cpu" else (10, 100)
    steps = 5 if _quick(args) else 50
    print(f"seed batches: seed-steps/s, median of 3 rounds of {steps} steps after 2 warm-ups")
    print(f"{'preset':<10}{'seeds':>6}{'seed-steps/s':>14}")
    best = 0.0
    for name in ("ring8", "bre-toy"):
        for n in sizes:
            batch = SeedBatch(quiet_config(name).replace(device=str(device)), list(range(n)))

            def steps_of(batch=batch) -> None:
                for _ in range(steps):
                    batch.step()
            rate = n * steps / device_seconds(steps_of, device, rounds=3)
            best = max(best, rate) if name == "ring8" else best
            print(f"{name:<10}{n:>6}{rate:>14.0f}")
    if device.type == "cuda":
        print(f"goal on a GPU: ring8 ≥ {SEED_BATCH_GOAL:,} seed-steps/s (got {best:,.0f})")


SECTIONS: list[Callable[[object, torch.device], None]] = [raster_section, training_section, image_section,
                                                         seed_batch_section]


def bench_device(args) -> None:
    """Figures on one device (`--device`, default cpu), headed by its name; each of `SECTIONS` prints its rows.
    Off the CPU, times are wall times with the device synchronized around each call; on it, CPU time."""
    device = bench_device_of(args)
    print(f"device: {device_name(device)}")
    for section in SECTIONS:
        section(args, device)
