"""Benchmarks that print their figures: `python -m toyviz bench NAME`. Ratios are measured in one run.

Each benchmark is a function of the parsed arguments registered in `BENCHES`.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..draw.frames import DEFAULT_PANELS
from ..draw.render import draw_frame
from ..draw.writers import export_video, video_resolution
from ..engine import presets
from ..engine.config import MLPConfig
from ..engine.nets import MLP, Discriminator
from ..engine.trainer import Trainer
from ..geometry.metrics import RegionMetrics
from ..geometry.patterns import partition_grid
from ..geometry.polygons import exact_partition
from ..geometry.raster import Probe, chunk_rows, forward_patterns, grid, input_gradient, rasterize
from ..malloc_tuning import reuse_freed_memory
from ..page.session import Session


def _rate(fn, steps: int, clock=time.perf_counter) -> float:
    """Steps per second of fn() (after a short warm-up), best of three rounds to damp a shared machine.
    `clock=time.process_time` counts this process's CPU time only (robust when other jobs share the cores)."""
    for _ in range(10):
        fn()
    best = 0.0
    for _ in range(3):
        t0 = clock()
        for _ in range(steps):
            fn()
        best = max(best, steps / (clock() - t0))
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
        t = Trainer(presets.get(preset).replace(**overrides), callbacks=[RegionMetrics()])
        rows.append((name, _rate(t.step, BENCH_STEPS)))
    return rows


BENCH_STEPS = 300


def bench_train(args) -> None:
    global BENCH_STEPS
    BENCH_STEPS = args.steps
    base = Trainer(presets.get("ring8"), callbacks=[RegionMetrics()])
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
    quiet = {"viz.metrics_every": 10 ** 9}                  # the training steps alone, alternated plain / BRE
    steppers = [Trainer(presets.get("ring8").replace(**quiet, **o)) for o in ({}, {"reg.bre.weight": 1.0})]
    t_plain, t_bre = _interleaved([lambda t=t: [t.step() for _ in range(10)] for t in steppers], 30)
    print(f"without the periodic evaluation (alternated rounds of 10 steps, CPU time): a BRE step "
          f"{t_bre / t_plain:.2f}× a plain step")


# One row per technique: the techniques issue adds its variants here.
TRAIN_VARIANTS: dict[str, dict] = {
    "trainer, plain": {},
    "BRE": {"reg.bre.weight": 1.0},
    **{name: overrides for name, (_, overrides) in presets.TECHNIQUES.items()},
    "BRE + feature matching": {"reg.bre.weight": 1.0, **presets.TECHNIQUES["ring8-fm"][1]},
}

BENCHES = {"train": bench_train}


# ---- regions ------------------------------------------------------------------------------------------------------
_REGIONS_MEMORY = """
import sys, tracemalloc, torch
torch.set_num_threads(1)
from toyviz.engine import presets
from toyviz.engine.nets import Discriminator
from toyviz.geometry.raster import rasterize
D = Discriminator(presets.get("ring8").replace(**{"nets.d.width": 64, "nets.d.depth": 4}))
rasterize(D, resolution=64)
status = lambda key: int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1])
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")                    # reset the peak-RSS mark (Linux)
tracemalloc.start()
r = rasterize(D, resolution=1024, chunk=int(sys.argv[1]))
print(status("VmHWM") - before, tracemalloc.get_traced_memory()[1] // 1024, status("VmRSS") - before)
"""


def _rounds(fns, rounds: int, clock=time.process_time) -> np.ndarray:
    """(rounds, len(fns)) seconds per call, the fns called alternately round after round (after one warm-up call
    each): within a round they see the same machine load."""
    for fn in fns:
        fn()
    times = np.empty((rounds, len(fns)))
    for r in range(rounds):
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            times[r, i] = clock() - t0
    return times


def _interleaved(fns, rounds: int, clock=time.process_time) -> list[float]:
    """Seconds per call of each fn, min over alternated rounds (`_rounds`), so that their ratio holds even when
    other jobs share the cores."""
    return list(_rounds(fns, rounds, clock).min(0))


def _ratio(times: np.ndarray, num: int, den: int) -> float:
    """Median over rounds of fn num's time over fn den's time in the same round: on a machine whose speed drifts
    (a shared VM) steadier than the ratio of the two minima."""
    return float(np.median(times[:, num] / times[:, den]))


def bench_regions(args) -> None:
    """rasterize vs the bare forward pass of D over the grid (CPU time, one thread), ∇ₓD on 64², memory at 1024²."""
    import os
    import subprocess
    import sys


    torch.set_num_threads(1)
    allocator = "freed memory kept for reuse" if reuse_freed_memory() else "the C library's default allocator"
    extent = (-1.5, 1.5, -1.5, 1.5)
    nets = {"bre-toy D (4x10)": presets.get("bre-toy"),
            "4x64 D": presets.get("ring8").replace(**{"nets.d.width": 64, "nets.d.depth": 4}),
            "ring8 D (3x128)": presets.get("ring8")}
    print(f"CPU time of this process, min over alternated rounds; ratio = median over rounds of the two calls' "
          f"ratio in one round; torch threads {torch.get_num_threads()}; freshly "
          f"initialized D (seed 0), extent {extent}; 'forward' = D(x) over the grid in rasterize's chunks (the "
          f"floor; 'chunk' rows, sized to D by regions.chunk_rows), 'one pass' = D(x) on all points at once; "
          f"allocator: {allocator} (toyviz.allocator, as the command line and the page set it)")
    print(f"{'net':<18}{'R':>6}{'chunk':>7}{'forward ms':>12}{'rasterize ms':>14}{'ratio':>7}{'regions':>9}"
          f"{'one pass ms':>13}{'of which: forward+bits':>24}{'ids+colours':>13}")
    for name, cfg in nets.items():
        torch.manual_seed(0)
        D = Discriminator(cfg)
        probe = Probe(D)
        for R in (256, 512):
            x = torch.as_tensor(grid(extent, R)[2], dtype=torch.float32)
            words, widths, _, _ = forward_patterns(probe, x)

            def forward():
                with torch.no_grad():
                    for s in range(0, len(x), probe.chunk):
                        D(x[s:s + probe.chunk])

            def one_pass():
                with torch.no_grad():
                    D(x)
            times = _rounds([forward, lambda: rasterize(D, extent, R, grad_resolution=0), one_pass,
                             lambda: forward_patterns(probe, x), lambda: partition_grid(words, widths, R)],
                            21 if R == 256 else 11)
            t_fwd, t_ras, t_one, t_bits, t_ids = times.min(0)
            n = rasterize(D, extent, R, grad_resolution=0).cumulative_counts[-1]
            print(f"{name:<18}{R:>6}{probe.chunk:>7}{1e3 * t_fwd:>12.1f}{1e3 * t_ras:>14.1f}"
                  f"{_ratio(times, 1, 0):>7.2f}{n:>9}"
                  f"{1e3 * t_one:>13.1f}{1e3 * t_bits:>24.1f}{1e3 * t_ids:>13.1f}")
    print("goal: rasterize (all layers: ids, cumulative ids, colours, counts, patterns, prob) <= 1.5x the forward")
    print(f"{'net':<18}{'grad 64² ms':>12}{'forward ms':>12}{'ratio':>7}{'full raster 256² ms':>21}")
    for name, cfg in nets.items():
        torch.manual_seed(0)
        D = Discriminator(cfg)
        x = torch.as_tensor(grid(extent, 64)[2], dtype=torch.float32)
        probe = Probe(D)

        def forward():
            with torch.no_grad():
                D(x)
        times = _rounds([forward, lambda: input_gradient(probe, x)], 61)
        t_fwd, t_grad = times.min(0)
        t_full, = _interleaved([lambda: rasterize(D, extent, 256)], 5)
        print(f"{name:<18}{1e3 * t_grad:>12.2f}{1e3 * t_fwd:>12.2f}{_ratio(times, 1, 0):>7.2f}{1e3 * t_full:>21.1f}")
    print("goal: ∇ₓD on 64² <= 2x a forward at that size; 'full raster' adds ∇ₓD on 64² and the mosaic glass")
    # glibc keeps freed heap memory resident; a fixed mmap threshold returns every large buffer on free, so the
    # peak RSS growth is the peak of live memory
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    default = chunk_rows(Discriminator(nets["4x64 D"]))
    for chunk in (65536, 16384, default):
        out = subprocess.run([sys.executable, "-c", _REGIONS_MEMORY, str(chunk)], capture_output=True, text=True,
                             check=True, env=env)
        peak, numpy_peak, kept = (int(v) / 1024 for v in out.stdout.split())
        label = f"{chunk} (the default)" if chunk == default else chunk
        print(f"memory, 4x64 D, R = 1024, chunk {label}: peak {peak:.0f} MiB above the process before the call "
              f"(Linux VmHWM); numpy's own peak {numpy_peak:.0f} MiB (tracemalloc); the Raster keeps {kept:.0f} MiB")


BENCHES["regions"] = bench_regions


def bench_app(args) -> None:
    """One page update on ring8 as the page does it: train k steps, gather + rasterize the live FrameData at
    256², draw the default panels (800×600). Goal: ≥ 5 updates/s. Prints the median over updates of wall time and
    of this process's CPU time (the fair figure when other jobs share the cores; the median, because single
    updates on a shared machine vary by ±25 %), their mean, and the CPU shares of each part."""
    import statistics
    k, rounds = 5, 11
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                 # as app.py does
    print(f"ring8, {k} steps an update, panels {','.join(DEFAULT_PANELS)} at 800x600, 1 torch thread, "
          f"{rounds} updates after two warm-up ones")
    print(f"{'grid':<7}{'wall ms':>9}{'cpu ms':>8}{'updates/s (cpu)':>17}{'mean cpu ms':>13}{'train':>7}"
          f"{'raster':>8}{'gather':>8}{'draw':>6}")
    for res in (256, 128):
        s = Session(presets.get("ring8"), steps_per_update=k)
        cpu = {"train": 0.0, "rasterize": 0.0, "gather": 0.0, "draw": 0.0}
        walls, cpus = [], []
        for i in range(rounds + 2):                          # two warm-up updates
            tm: dict = {}
            w0, c0 = time.perf_counter(), time.process_time()
            s.advance()
            c1 = time.process_time()
            fd = s.frame_data("A", DEFAULT_PANELS, res, timings=tm)
            c2 = time.process_time()
            draw_frame(fd, DEFAULT_PANELS, (800, 600))
            c3, w3 = time.process_time(), time.perf_counter()
            if i >= 2:
                walls.append(w3 - w0)
                cpus.append(c3 - c0)
                raster_share = tm["rasterize"] / max(tm["rasterize"] + tm["gather"], 1e-9)   # wall split
                for key, v in (("train", c1 - c0), ("rasterize", (c2 - c1) * raster_share),
                               ("gather", (c2 - c1) * (1 - raster_share)), ("draw", c3 - c2)):
                    cpu[key] += v
        total = statistics.median(cpus)
        share = {key: f"{100 * v / sum(cpu.values()):.0f}%" for key, v in cpu.items()}
        print(f"{f'{res}²':<7}{1000 * statistics.median(walls):>9.0f}{1000 * total:>8.0f}{1 / total:>17.2f}"
              f"{1000 * statistics.fmean(cpus):>13.0f}{share['train']:>7}{share['rasterize']:>8}"
              f"{share['gather']:>8}{share['draw']:>6}")
    print("goal: ≥ 5 updates/s at 256² (the page redraws once per update); times are medians over the updates")
    torch.set_num_threads(threads)


BENCHES["app"] = bench_app


def bench_export(args) -> None:
    """A 200-frame 512×512 MP4 of the default panels from a 995-step bre-toy run (a snapshot every 5 steps)."""
    import tempfile
    from pathlib import Path

    torch.set_num_threads(1)
    t = Trainer(presets.get("bre-toy").replace(**{"optim.iters": 995, "viz.snapshot_every": 5}),
                callbacks=[RegionMetrics()])
    t.run(995)
    size = (512, 512)
    tm: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        n = export_video(t, Path(tmp) / "bench.mp4", panels=DEFAULT_PANELS, size=size, timings=tm)
        total = time.perf_counter() - t0
        mb = (Path(tmp) / "bench.mp4").stat().st_size / 2**20
    res = video_resolution(t, DEFAULT_PANELS, size)
    print(f"bre-toy, {n} frames {size[0]}x{size[1]}, panels {','.join(DEFAULT_PANELS)}, raster {res}², "
          f"torch threads {torch.get_num_threads()}: {n / total:.1f} frames/s ({mb:.1f} MB)")
    print(f"{'phase':<12}{'ms/frame':>10}{'share':>8}")
    for key in ("rasterize", "gather", "draw", "encode"):
        print(f"{key:<12}{1000 * tm.get(key, 0) / n:>10.1f}{100 * tm.get(key, 0) / total:>7.0f}%")
    de = tm.get("draw", 0) + tm.get("encode", 0)
    print(f"goal: draw + encode ≤ rasterize (got {de / max(tm.get('rasterize', 1e-9), 1e-9):.2f}×)")


BENCHES["export"] = bench_export


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

    torch.set_num_threads(1)
    nets = {}
    for depth, width in ((2, 16), (2, 64), (2, 100), (3, 128)):
        torch.manual_seed(0)
        nets[f"{depth}x{width} D"] = (MLP(2, 1, MLPConfig(width, depth, "leaky_relu", 0.2)), (-4.0, 4.0, -4.0, 4.0))
    toy = Trainer(presets.get("bre-toy"), callbacks=[RegionMetrics()])
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
