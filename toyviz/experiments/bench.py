"""Benchmarks that print their figures: `python -m toyviz bench NAME|all [--quick] [--markdown PATH]`.

Each benchmark is a function of the parsed arguments registered in `BENCHES`; its docstring says what its numbers
mean (the markdown page quotes it). Stage timings come from `StageClock`, which wraps the library's stage functions
only while a benchmark runs: the library itself carries no timing code. Ratios are measured in one run.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import io
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..draw import frames as frames_module
from ..draw import writers as writers_module
from ..draw.frames import DEFAULT_PANELS
from ..draw.render import FrameRenderer, draw_frame
from ..draw.writers import export_video, video_resolution
from ..engine import presets
from ..engine.atomic_files import atomic_write_text
from ..engine.config import MLPConfig
from ..engine.nets import MLP, Discriminator
from ..engine.trainer import Trainer
from ..geometry.metrics import EVAL_GRID, RegionMetrics, region_counts
from ..geometry.patterns import _sort_order, host_array, partition_grid
from ..geometry.polygons import exact_partition
from ..geometry.raster import Probe, chunk_rows, forward_patterns, grid, input_gradient, rasterize
from ..malloc_tuning import reuse_freed_memory
from ..page.session import Session
from .runs import progress
from .seed_batch_bench import bench_sweep

BENCHES: dict[str, Callable] = {}
# Seconds each benchmark takes (full, --quick) on the 2-core machine that wrote docs/PERFORMANCE.md, for the line
# a benchmark prints before it starts.
EXPECTED_SECONDS: dict[str, tuple[float, float]] = {}
MACHINE = "a 2-core machine"


def register(name: str, seconds: float, quick_seconds: float):
    def add(fn):
        BENCHES[name], EXPECTED_SECONDS[name] = fn, (seconds, quick_seconds)
        return fn
    return add


# ---- timing ---------------------------------------------------------------------------------------------------------
def _rate(fn, steps: int, clock=time.perf_counter, rounds: int = 3, warmup: int = 10, bar=None) -> float:
    """Steps per second of fn() (after a short warm-up), best of `rounds` rounds to damp a shared machine.
    `clock=time.process_time` counts this process's CPU time only (robust when other jobs share the cores);
    `bar` (a progress bar) advances by one per call."""
    tick = bar.update if bar is not None else (lambda n: None)
    for _ in range(warmup):
        fn()
        tick(1)
    best = 0.0
    for _ in range(rounds):
        t0 = clock()
        for _ in range(steps):
            fn()
        best = max(best, steps / (clock() - t0))
        tick(steps)
    return best


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


def _best_seconds(fn, rounds: int = 3):
    """(best CPU seconds of this process over `rounds` calls, the last result): robust on a shared machine."""
    best, out = float("inf"), None
    for _ in range(rounds):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


class StageClock:
    """Wall and CPU seconds spent in named stages. `patch` swaps a library function for a timed wrapper for the
    duration of a `with` block and puts the original back after, so the library carries no timing code."""

    def __init__(self):
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str):
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - w0
            self.cpu[name] += time.process_time() - c0

    def timed(self, name: str, fn: Callable) -> Callable:
        """fn, its calls timed under `name`."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)
        return call

    def timed_iter(self, name: str, fn: Callable) -> Callable:
        """fn returning an iterator (a generator does its work in next(), not in the call): each item timed."""
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with self.stage(name):
                it = iter(fn(*args, **kwargs))
            while True:
                with self.stage(name):
                    item = next(it, StopIteration)
                if item is StopIteration:
                    return
                yield item
        return call

    def timed_methods(self, name: str, factory: Callable, methods: tuple[str, ...]) -> Callable:
        """factory, the named methods of each object it returns timed under `name`."""
        @functools.wraps(factory)
        def make(*args, **kwargs):
            obj = factory(*args, **kwargs)
            for m in methods:
                setattr(obj, m, self.timed(name, getattr(obj, m)))
            return obj
        return make

    @contextlib.contextmanager
    def patch(self, owner, attribute: str, wrap: Callable[[Callable], Callable]):
        """owner.attribute replaced by wrap(original) inside the block, restored after (also on an error)."""
        original = getattr(owner, attribute)
        setattr(owner, attribute, wrap(original))
        try:
            yield
        finally:
            setattr(owner, attribute, original)


# ---- train --------------------------------------------------------------------------------------------------------
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


# One row per technique: a new technique preset adds its row here.
TRAIN_VARIANTS: dict[str, dict] = {
    "trainer, plain": {},
    "BRE": {"reg.bre.weight": 1.0},
    **{name: overrides for name, (_, overrides) in presets.TECHNIQUES.items()},
    "BRE + feature matching": {"reg.bre.weight": 1.0, **presets.TECHNIQUES["ring8-fm"][1]},
}


def _steps(args) -> int:
    steps = getattr(args, "steps", None)
    return steps if steps else (20 if _quick(args) else 300)


def _quick(args) -> bool:
    return bool(getattr(args, "quick", False))


@register("train", 240, 10)
def bench_train(args) -> None:
    """Training steps per second on ring8 (wall time, best of rounds): a bare hand-written PyTorch GAN loop over the
    same nets (the floor), the trainer plain, with BRE and with each technique preset; '÷ bare' and '÷ plain' are
    each row's speed over those two rows'. The trainer's rows include its periodic evaluation (RegionMetrics every
    viz.metrics_every steps); the last line compares a BRE step with a plain one without it, in CPU time."""
    steps, quick = _steps(args), _quick(args)
    rounds, warmup, alternated = (1, 2, 3) if quick else (3, 10, 30)
    base = Trainer(presets.get("ring8"), callbacks=[RegionMetrics()])
    G, D, data, cfg = base.G, base.D, base.data, base.cfg
    rngs = (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    per_row = warmup + rounds * steps
    total = (1 + len(TRAIN_VARIANTS)) * per_row + 2 * (alternated + 1)       # + the alternated rounds' warm-up
    with contextlib.closing(progress(total, "bench train")) as bar:
        bare = _rate(lambda: bare_loop_step(G, D, data, cfg, rngs, opt_g, opt_d), steps, rounds=rounds,
                     warmup=warmup, bar=bar)
        rows = []
        for name, overrides in TRAIN_VARIANTS.items():
            t = Trainer(presets.get("ring8").replace(**overrides), callbacks=[RegionMetrics()])
            rows.append((name, _rate(t.step, steps, rounds=rounds, warmup=warmup, bar=bar)))
        quiet = {"viz.metrics_every": 10 ** 9}                  # the training steps alone, alternated plain / BRE
        steppers = [Trainer(presets.get("ring8").replace(**quiet, **o)) for o in ({}, {"reg.bre.weight": 1.0})]

        def ten_steps(t):
            for _ in range(10):
                t.step()
            bar.update(1)
        t_plain, t_bre = _interleaved([lambda t=t: ten_steps(t) for t in steppers], alternated)
    plain = rows[0][1]
    print(f"ring8, batch {cfg.optim.batch_size}, torch threads {torch.get_num_threads()}, {steps} steps a round, "
          f"best of {rounds}")
    print(f"{'variant':<28}{'steps/s':>10}{'÷ bare':>9}{'÷ plain':>9}")
    print(f"{'bare PyTorch loop':<28}{bare:>10.1f}{1.0:>9.2f}{bare / plain:>9.2f}")
    for name, rate in rows:
        print(f"{name:<28}{rate:>10.1f}{rate / bare:>9.2f}{rate / plain:>9.2f}")
    print(f"goal: trainer ≥ 0.9× bare (got {plain / bare:.2f}); a BRE step ≤ 1.5× a plain step "
          f"(got {plain / dict(rows)['BRE'] :.2f}×)")
    print(f"without the periodic evaluation (alternated rounds of 10 steps, CPU time): a BRE step "
          f"{t_bre / t_plain:.2f}× a plain step")


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


def _subprocess_env() -> dict:
    """This process's environment with the package's folder on PYTHONPATH, for `python -c` helpers."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


REGION_NETS = {"bre-toy D (4x10)": lambda: presets.get("bre-toy"),
               "4x64 D": lambda: presets.get("ring8").replace(**{"nets.d.width": 64, "nets.d.depth": 4}),
               "ring8 D (3x128)": lambda: presets.get("ring8")}


@register("regions", 60, 10)
def bench_regions(args) -> None:
    """rasterize beside the bare forward pass of D over the same grid (CPU time of this process, one thread):
    'forward' is D(x) in rasterize's chunks (the floor), 'one pass' D(x) on all points at once; 'forward+bits' and
    'ids+colours' split rasterize's work; 'regions' the linear regions the grid sees. Then ∇ₓD on 64² beside a
    forward at that size, and the peak memory of one 1024² raster in a fresh process for three chunk sizes."""
    quick = _quick(args)
    torch.set_num_threads(1)
    allocator = "freed memory kept for reuse" if reuse_freed_memory() else "the C library's default allocator"
    extent = (-1.5, 1.5, -1.5, 1.5)
    nets = {name: make() for name, make in REGION_NETS.items()}
    sizes = ((256, 3),) if quick else ((256, 21), (512, 11))            # (R, rounds)
    grad_rounds = 5 if quick else 61
    chunks = (None,) if quick else (65536, 16384, None)                 # None: the default, chunk_rows(D)
    print(f"CPU time of this process, min over alternated rounds; ratio = median over rounds of the two calls' "
          f"ratio in one round; torch threads {torch.get_num_threads()}; freshly "
          f"initialized D (seed 0), extent {extent}; 'forward' = D(x) over the grid in rasterize's chunks (the "
          f"floor; 'chunk' rows, sized to D by chunk_rows), 'one pass' = D(x) on all points at once; "
          f"allocator: {allocator} (toyviz.malloc_tuning, as the command line and the page set it)")
    print(f"{'net':<18}{'R':>6}{'chunk':>7}{'forward ms':>12}{'rasterize ms':>14}{'ratio':>7}{'regions':>9}"
          f"{'one pass ms':>13}{'of which: forward+bits':>24}{'ids+colours':>13}")
    with contextlib.closing(progress(len(nets) * (len(sizes) + 1) + len(chunks), "bench regions", "case")) as bar:
        for name, cfg in nets.items():
            torch.manual_seed(0)
            D = Discriminator(cfg)
            probe = Probe(D)
            for R, rounds in sizes:
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
                                rounds)
                t_fwd, t_ras, t_one, t_bits, t_ids = times.min(0)
                n = rasterize(D, extent, R, grad_resolution=0).cumulative_counts[-1]
                print(f"{name:<18}{R:>6}{probe.chunk:>7}{1e3 * t_fwd:>12.1f}{1e3 * t_ras:>14.1f}"
                      f"{_ratio(times, 1, 0):>7.2f}{n:>9}"
                      f"{1e3 * t_one:>13.1f}{1e3 * t_bits:>24.1f}{1e3 * t_ids:>13.1f}")
                bar.update(1)
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
            times = _rounds([forward, lambda: input_gradient(probe, x)], grad_rounds)
            t_fwd, t_grad = times.min(0)
            t_full, = _interleaved([lambda: rasterize(D, extent, 256)], 1 if quick else 5)
            print(f"{name:<18}{1e3 * t_grad:>12.2f}{1e3 * t_fwd:>12.2f}{_ratio(times, 1, 0):>7.2f}"
                  f"{1e3 * t_full:>21.1f}")
            bar.update(1)
        print("goal: ∇ₓD on 64² <= 2x a forward at that size; 'full raster' adds ∇ₓD on 64² and the mosaic glass")
        # glibc keeps freed heap memory resident; a fixed mmap threshold returns every large buffer on free, so the
        # peak RSS growth is the peak of live memory
        env = {**_subprocess_env(), "MALLOC_MMAP_THRESHOLD_": "65536"}
        default = chunk_rows(Discriminator(nets["4x64 D"]))
        for chunk in chunks:
            chunk = chunk or default
            out = subprocess.run([sys.executable, "-c", _REGIONS_MEMORY, str(chunk)], capture_output=True,
                                 text=True, check=True, env=env)
            peak, numpy_peak, kept = (int(v) / 1024 for v in out.stdout.split())
            label = f"{chunk} (the default)" if chunk == default else chunk
            print(f"memory, 4x64 D, R = 1024, chunk {label}: peak {peak:.0f} MiB above the process before the call "
                  f"(Linux VmHWM); numpy's own peak {numpy_peak:.0f} MiB (tracemalloc); the Raster keeps "
                  f"{kept:.0f} MiB")
            bar.update(1)


# ---- the page and the video export ---------------------------------------------------------------------------------
@register("app", 5, 2)
def bench_app(args) -> None:
    """One page update on ring8 as the page does it: train k steps, gather + rasterize the live FrameData, draw the
    default panels (800×600), at two raster sizes. Goal: ≥ 5 updates/s at 256². Prints the median over updates of
    wall time and of this process's CPU time (the fair figure when other jobs share the cores; the median, because
    single updates on a shared machine vary widely), their mean, and the CPU shares of each part."""
    import statistics
    k, rounds = 5, (3 if _quick(args) else 11)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                 # as app.py does
    print(f"ring8, {k} steps an update, panels {','.join(DEFAULT_PANELS)} at 800x600, 1 torch thread, "
          f"{rounds} updates after two warm-up ones")
    print(f"{'grid':<7}{'wall ms':>9}{'cpu ms':>8}{'updates/s (cpu)':>17}{'mean cpu ms':>13}{'train':>7}"
          f"{'raster':>8}{'gather':>8}{'draw':>6}")
    clock = StageClock()
    with contextlib.closing(progress(2 * (rounds + 2), "bench app", "update")) as bar, \
            clock.patch(frames_module, "raster_of", lambda f: clock.timed("rasterize", f)):
        for res in (256, 128):
            s = Session(presets.get("ring8"), steps_per_update=k)
            cpu = {"train": 0.0, "rasterize": 0.0, "gather": 0.0, "draw": 0.0}
            walls, cpus = [], []
            for i in range(rounds + 2):                          # two warm-up updates
                r0 = clock.cpu["rasterize"]
                w0, c0 = time.perf_counter(), time.process_time()
                s.advance()
                c1 = time.process_time()
                fd = s.frame_data("A", DEFAULT_PANELS, res)
                c2 = time.process_time()
                draw_frame(fd, DEFAULT_PANELS, (800, 600))
                c3, w3 = time.process_time(), time.perf_counter()
                if i >= 2:
                    walls.append(w3 - w0)
                    cpus.append(c3 - c0)
                    raster = clock.cpu["rasterize"] - r0
                    for key, v in (("train", c1 - c0), ("rasterize", raster), ("gather", c2 - c1 - raster),
                                   ("draw", c3 - c2)):
                        cpu[key] += v
                bar.update(1)
            total = statistics.median(cpus)
            share = {key: f"{100 * v / sum(cpu.values()):.0f}%" for key, v in cpu.items()}
            print(f"{f'{res}²':<7}{1000 * statistics.median(walls):>9.0f}{1000 * total:>8.0f}{1 / total:>17.2f}"
                  f"{1000 * statistics.fmean(cpus):>13.0f}{share['train']:>7}{share['rasterize']:>8}"
                  f"{share['gather']:>8}{share['draw']:>6}")
    print("goal: ≥ 5 updates/s at 256² (the page redraws once per update); times are medians over the updates")
    torch.set_num_threads(threads)


@register("export", 15, 4)
def bench_export(args) -> None:
    """A 512×512 MP4 of the default panels from a bre-toy run with a snapshot every 5 steps (200 frames from 995
    steps; 40 from 195 with --quick), one torch thread: frames written per second (wall time) and the file's size,
    then the wall time per frame of each stage: rasterize (D's raster), gather (the rest of a frame's data: G's
    points, coverage, the push arrows), draw (the matplotlib panels) and encode (H.264)."""
    import tempfile
    steps = 195 if _quick(args) else 995
    torch.set_num_threads(1)
    t = Trainer(presets.get("bre-toy").replace(**{"optim.iters": steps, "viz.snapshot_every": 5}),
                callbacks=[RegionMetrics()])
    size = (512, 512)
    clock = StageClock()
    with contextlib.closing(progress(steps, "bench export: training")) as bar:
        t.run(steps, progress_fn=lambda i, total, s: bar.update(1))
    with tempfile.TemporaryDirectory() as tmp, \
            contextlib.closing(progress(len(t.snapshots), "bench export: frames", "frame")) as bar, \
            clock.patch(frames_module, "raster_of", lambda f: clock.timed("rasterize", f)), \
            clock.patch(writers_module, "iter_frame_data", lambda f: clock.timed_iter("frame data", f)), \
            clock.patch(FrameRenderer, "draw", lambda f: clock.timed("draw", f)), \
            clock.patch(writers_module, "_mp4_writer",
                        lambda f: clock.timed_methods("encode", f, ("append_data", "close"))):
        t0 = time.perf_counter()
        n = export_video(t, Path(tmp) / "bench.mp4", panels=DEFAULT_PANELS, size=size,
                         progress_fn=lambda i, total: bar.update(1))
        total = time.perf_counter() - t0
        mb = (Path(tmp) / "bench.mp4").stat().st_size / 2**20
    tm = {"rasterize": clock.wall["rasterize"], "gather": clock.wall["frame data"] - clock.wall["rasterize"],
          "draw": clock.wall["draw"], "encode": clock.wall["encode"]}
    res = video_resolution(t, DEFAULT_PANELS, size)
    print(f"bre-toy, {n} frames {size[0]}x{size[1]}, panels {','.join(DEFAULT_PANELS)}, raster {res}², "
          f"torch threads {torch.get_num_threads()}: {n / total:.1f} frames/s ({mb:.1f} MB)")
    print(f"{'phase':<12}{'ms/frame':>10}{'share':>8}")
    for key, v in tm.items():
        print(f"{key:<12}{1000 * v / n:>10.1f}{100 * v / total:>7.0f}%")
    print(f"goal: draw + encode ≤ rasterize (got {(tm['draw'] + tm['encode']) / max(tm['rasterize'], 1e-9):.2f}×)")


# ---- exact partitions ---------------------------------------------------------------------------------------------
@register("exact", 10, 2)
def bench_exact(args) -> None:
    """The exact partition (toyviz.exact_partition) beside the 512² raster of the same nets, CPU time of this
    process, best of 3 (1 with --quick), one thread: the regions found, the seconds to find them and regions found
    per second, the seconds with ∇ₓD per region, the 512² raster with and without ∇ₓD, and the regions its grid
    sees (fewer: a grid misses regions smaller than a pixel)."""
    quick = _quick(args)
    rounds = 1 if quick else 3
    torch.set_num_threads(1)
    nets = {}
    for depth, width in ((2, 16), (2, 64)) if quick else ((2, 16), (2, 64), (2, 100), (3, 128)):
        torch.manual_seed(0)
        nets[f"{depth}x{width} D"] = (MLP(2, 1, MLPConfig(width, depth, "leaky_relu", 0.2)), (-4.0, 4.0, -4.0, 4.0))
    toy = Trainer(presets.get("bre-toy"), callbacks=[RegionMetrics()])
    nets["bre-toy D (4x10)"] = (toy.D, tuple(toy.cfg.viz.extent))
    print(f"CPU time of this process, best of {rounds}, one thread; D at PyTorch's default init (seed 0), LeakyReLU "
          f"0.2; {', '.join(n for n in nets if not n.startswith('bre'))} over [-4, 4]², bre-toy over its extent")
    print(f"{'net':<18}{'regions':>9}{'exact s':>9}{'regions/s':>11}{'+∇ₓD s':>9}"
          f"{'raster 512² s':>15}{'(no ∇ₓD)':>10}{'grid regions':>14}")
    with contextlib.closing(progress(len(nets), "bench exact", "net")) as bar:
        for name, (D, extent) in nets.items():
            t_exact, part = _best_seconds(lambda: exact_partition(D, extent), rounds)
            last = part[D.depth - 1]
            t_grad, _ = _best_seconds(lambda: exact_partition(D, extent)[D.depth - 1].grads, rounds)
            t_ras, r = _best_seconds(lambda: rasterize(D, extent, 512), rounds)
            t_ras0, _ = _best_seconds(lambda: rasterize(D, extent, 512, grad_resolution=0), rounds)
            print(f"{name:<18}{len(last):>9,}{t_exact:>9.3f}{len(last) / t_exact:>11,.0f}{t_grad:>9.3f}"
                  f"{t_ras:>15.3f}{t_ras0:>10.3f}{r.cumulative_counts[-1]:>14,}")
            bar.update(1)
    print("goal: >= 50,000 regions/s on 3x128; bre-toy's D exactly (with ∇ₓD) in less time than its 512² raster")


# ---- the measured choices in the geometry code ------------------------------------------------------------------
_ALLOCATOR = """
import resource, sys, time, torch
torch.set_num_threads(1)
from toyviz.engine import presets
from toyviz.engine.nets import Discriminator
from toyviz.geometry.raster import rasterize
from toyviz.malloc_tuning import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
torch.manual_seed(0)
for preset, R in (("ring8", 256), ("bre-toy", 512)):
    D = Discriminator(presets.get(preset))
    for _ in range(3):
        rasterize(D, resolution=R)
    calls, u0 = int(sys.argv[2]), resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(calls):
        rasterize(D, resolution=R)
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    print(preset, R, (u1.ru_minflt - u0.ru_minflt) / calls, 1e3 * (u1.ru_stime - u0.ru_stime) / calls,
          1e3 * (u1.ru_utime - u0.ru_utime) / calls)
"""


def _repeat(fn, k: int) -> Callable:
    """fn called k times: a call too short for the clock's resolution, timed as a batch."""
    def batch():
        for _ in range(k):
            fn()
    return batch


def _seconds(t: float) -> str:
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def _choice_cases() -> list[tuple[str, Callable, Callable, int]]:
    """(what is chosen over what, the chosen call, the alternative, calls a timing) of each measured choice."""
    extent = (-1.5, 1.5, -1.5, 1.5)
    torch.manual_seed(0)
    D = Discriminator(presets.get("ring8"))
    probe = Probe(D)
    x256 = probe.grid(*grid(extent, 256)[:2])
    x64 = probe.grid(*grid(extent, 64)[:2])
    xs, ys, _ = grid(extent, 512)
    g = torch.randn(2048, D.hidden[0].out_features)
    w1 = D.hidden[0].weight.detach()[:, :2]
    w1t = w1.T.contiguous().T
    values = np.random.default_rng(0).integers(0, 2 ** 40, 65536)
    table = np.random.default_rng(1).integers(0, 2 ** 32, 4096, dtype=np.uint32)
    pixels = 512 * 512
    paint = {}
    for every in (8, 64):                        # a run every `every` pixels
        lengths = np.full(pixels // every, every)
        run_ids = np.arange(len(lengths)) % len(table)
        ids = np.repeat(run_ids, lengths)
        paint[every] = (lambda r=run_ids, n=lengths: np.repeat(table[r], n), lambda i=ids: np.take(table, i))
    small = torch.zeros(2048, 2)
    return [
        ("raster pass in chunks sized to D, vs one pass (ring8 D, 256²)",
         lambda: forward_patterns(probe, x256), lambda: forward_patterns(probe, x256, chunk=len(x256)), 1),
        ("∇ₓD chain's last product from W₁ᵀ, vs W₁'s layout (2048 rows)",
         lambda: g @ w1t, lambda: g @ w1, 100),
        ("∇ₓD forward stopped at the last hidden layer, vs the full one (64²)",
         lambda: input_gradient(probe, x64),
         lambda: forward_patterns(probe, x64, gradient=True, patterns=False, outputs=True), 1),
        ("grid built in float32, vs the float64 grid converted (512²)",
         lambda: probe.grid(xs, ys), lambda: torch.as_tensor(grid(extent, 512)[2], dtype=torch.float32), 1),
        ("grid by one copy of broadcast axes, vs repeat + interleave (512²)",
         lambda: probe.grid(xs, ys),
         lambda: torch.stack([probe.tensor(xs).repeat(len(ys)), probe.tensor(ys).repeat_interleave(len(xs))],
                             -1), 1),
        ("unique ids by one np.sort of value·2^b + index, vs np.argsort (65,536)",
         lambda: _sort_order(values), lambda: (lambda o: (o, values[o]))(np.argsort(values)), 1),
        ("colours: runs by np.repeat, vs a lookup per pixel (a run every 64 px)",
         paint[64][0], paint[64][1], 1),
        ("the same at a run every 8 px, where the code switches to the lookup",
         paint[8][0], paint[8][1], 1),
        ("rasterize without the mosaic glass, vs with it (ring8 D, 256²)",
         lambda: rasterize(D, extent, 256, mosaic=False), lambda: rasterize(D, extent, 256), 1),
        (f"logged region counts on {EVAL_GRID}², vs 128² (ring8 D)",
         lambda: region_counts(D, extent, EVAL_GRID), lambda: region_counts(D, extent, 128), 1),
        ("host_array: .numpy() first, vs detach().cpu().numpy() (a call)",
         lambda: host_array(small), lambda: small.detach().cpu().numpy(), 1000),
    ]


@register("choices", 35, 12)
def bench_choices(args) -> None:
    """Each speed-motivated choice in the geometry code beside the alternative it was chosen over (CPU time of this
    process, one thread, min over alternated rounds; 'alt ÷ chosen' = median over rounds of the alternative's time
    over the choice's: above 1, the choice is the faster here). The code's comments say why each choice is made;
    these rows say by how much on this machine. Then the rows per chunk that make ∇ₓD on 64² fastest for each net
    (chunk_rows picks one for every net from its widths), and the C allocator's page faults and system time per
    rasterize call, glibc's default beside toyviz.malloc_tuning's thresholds (a fresh process each, after three
    warm-up calls)."""
    quick = _quick(args)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rounds = 3 if quick else 15
    cases = _choice_cases()
    processes = 1 if quick else 2
    with contextlib.closing(progress(len(cases) + len(REGION_NETS) + 2 * processes, "bench choices",
                                     "case")) as bar:
        print(f"{'choice':<72}{'chosen':>11}{'alternative':>13}{'alt ÷ chosen':>14}")
        for label, chosen, alternative, k in cases:
            times = _rounds([_repeat(chosen, k), _repeat(alternative, k)], rounds) / k
            t_chosen, t_alt = times.min(0)
            print(f"{label:<72}{_seconds(t_chosen):>11}{_seconds(t_alt):>13}{_ratio(times, 1, 0):>14.2f}")
            bar.update(1)
        chunks = (512, 1024, 2048, 4096)
        print(f"∇ₓD on 64², ms by rows per chunk: {'net':<18}" + "".join(f"{c:>8}" for c in chunks)
              + f"{'fastest':>9}{'chunk_rows':>12}")
        x = torch.as_tensor(grid((-1.5, 1.5, -1.5, 1.5), 64)[2], dtype=torch.float32)
        for name, make in REGION_NETS.items():
            torch.manual_seed(0)
            probe = Probe(Discriminator(make()))
            best = _rounds([lambda c=c: input_gradient(probe, x, c) for c in chunks], rounds).min(0)
            print(f"{'':<34}{name:<18}" + "".join(f"{1e3 * t:>8.2f}" for t in best)
                  + f"{chunks[int(np.argmin(best))]:>9}{probe.chunk:>12}")
            bar.update(1)
        env = {k: v for k, v in _subprocess_env().items() if not k.startswith("MALLOC_")}
        calls = 3 if quick else 8
        print(f"{'allocator':<34}{'D, R':<18}{'faults a call':>15}{'system ms':>11}{'user ms':>9}  "
              f"({calls} calls a process)")
        for setting, label in (("default", "glibc's default"), ("reuse", "toyviz.malloc_tuning")):
            rows: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
            for _ in range(processes):
                out = subprocess.run([sys.executable, "-c", _ALLOCATOR, setting, str(calls)], capture_output=True,
                                     text=True, check=True, env=env)
                for line in out.stdout.splitlines():
                    preset, R, *figures = line.split()
                    rows[preset, R].append(np.array(figures, float))
                bar.update(1)
            for (preset, R), figures in rows.items():
                lo, hi = np.min(figures, 0), np.max(figures, 0)
                span = ["–".join(dict.fromkeys(f"{v:.{d}f}" for v in (a, b)))
                        for a, b, d in zip(lo, hi, (0, 1, 0))]
                print(f"{label:<34}{f'{preset} {R}²':<18}{span[0]:>15}{span[1]:>11}{span[2]:>9}")
    torch.set_num_threads(threads)


register("sweep", 80, 15)(bench_sweep)          # seeds as one batch: toyviz.experiments.seed_batch_bench


# ---- running benchmarks, the markdown page -------------------------------------------------------------------------
def expected_time(name: str, args) -> str:
    """The line a benchmark prints before it starts: about how long it takes."""
    full, quick = EXPECTED_SECONDS[name]
    seconds = quick if _quick(args) else full
    if name == "train" and getattr(args, "steps", None):
        seconds *= args.steps / (20 if _quick(args) else 300)
    return f"bench {name}: about {_duration(seconds)} on {MACHINE}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


@dataclass
class Section:
    """One benchmark's part of the markdown page."""
    name: str
    doc: str          # what the numbers mean: the benchmark's docstring
    output: str       # what it printed
    seconds: float    # how long it took, wall time


class _Tee(io.TextIOBase):
    """A text stream writing to several others: the terminal and the buffer of the markdown page."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def run_bench(name: str, args) -> Section:
    """Run benchmark `name`, its output echoed to stdout and kept; its expected time goes first, on stderr."""
    print(expected_time(name, args), file=sys.stderr, flush=True)
    buffer = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        BENCHES[name](args)
    return Section(name, inspect.getdoc(BENCHES[name]) or "", buffer.getvalue(), time.perf_counter() - t0)


def check_markdown_path(path) -> Path:
    """The page's path, checked before any benchmark runs: its folder exists and it is not a folder."""
    path = Path(path)
    if path.suffix.lower() != ".md":
        raise ValueError(f"--markdown: expected a .md file (got {str(path)!r})")
    if not path.parent.is_dir():
        raise ValueError(f"--markdown: the folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"--markdown: {str(path)!r} is a folder")
    return path


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine_facts() -> list[tuple[str, str]]:
    """(label, value) rows of the page's header: when, on what, with which versions."""
    from .. import __version__
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return [("date", datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")), ("CPU", cpu_model()),
            ("cores", f"{cores}" + (f" ({usable} usable by this process)" if usable != cores else "")),
            ("torch", torch.__version__), ("numpy", np.__version__), ("toyviz", __version__),
            ("python", platform.python_version()), ("load average before (1, 5, 15 min)", load_average())]


def load_average() -> str:
    """The system's load averages: other jobs on the cores while a benchmark runs slow it down."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def markdown_page(sections: list[Section], facts: list[tuple[str, str]], command: str,
                  note: Optional[str] = None) -> str:
    """The page: a header of facts about the run, then one section per benchmark (its meaning, then its output)."""
    lines = ["# toyviz performance", "",
             f"Written by `{command}`; run it again to refresh this page. The figures are of the machine below; "
             f"ratios taken within one run carry over to other machines better than times do.", "",
             "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts)]
    if note:
        lines += ["", f"**Note.** {note}"]
    for s in sections:
        lines += ["", f"## bench {s.name}", "", f"*What the numbers mean.* {' '.join(s.doc.split())}", "",
                  "```text", s.output.rstrip("\n"), "```", "", f"({_duration(s.seconds)} wall time)"]
    return "\n".join(lines) + "\n"


def run_benches(names: list[str], args, markdown=None, note: Optional[str] = None,
                command: Optional[str] = None) -> list[Section]:
    """Run the named benchmarks in order; with `markdown`, write their page there once all have finished
    (atomically: a failure on the way leaves no file, and an earlier page as it was)."""
    path = check_markdown_path(markdown) if markdown is not None else None
    facts = machine_facts()
    sections = [run_bench(name, args) for name in names]
    facts.append(("load average after (1, 5, 15 min)", load_average()))
    if path is not None:
        command = command or f"python -m toyviz bench {' '.join(names) if len(names) == 1 else 'all'}" \
                             f"{' --quick' if _quick(args) else ''} --markdown {path}"
        atomic_write_text(path, markdown_page(sections, facts, command, note))
    return sections


def iter_names(what: str) -> Iterator[str]:
    """The benchmarks `what` names: one, or every one for 'all'; ValueError for an unknown name."""
    if what == "all":
        yield from BENCHES
    elif what in BENCHES:
        yield what
    else:
        raise ValueError(f"bench: unknown benchmark {what!r} (choose from: {', '.join(BENCHES)}, all)")
