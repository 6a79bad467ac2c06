"""Benchmarks of the geometry: `bench regions` (rasterize against D's bare forward pass, ∇ₓD, memory), `bench exact`
(exact partitions against the raster), `bench choices` (each speed choice of the geometry code against its
alternative)."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import defaultdict
from typing import Callable

import numpy as np
import torch

from ..engine import presets
from ..engine.config import MLPConfig
from ..engine.nets import MLP, Discriminator
from ..engine.trainer import Trainer
from ..geometry import device_patterns
from ..geometry.metrics import EVAL_GRID, RegionMetrics, region_counts
from ..geometry.patterns import _sort_order, host_array, partition_grid
from ..geometry.polygons import exact_partition
from ..geometry.raster import Probe, chunk_rows, forward_patterns, grid, input_gradient, rasterize
from ..malloc_tuning import reuse_freed_memory
from .bench_tools import (
    _best_seconds,
    _interleaved,
    _quick,
    _ratio,
    _rounds,
    bench_device_of,
    device_clock,
    device_name,
)
from .runs import progress

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


def bench_regions(args) -> None:
    """rasterize beside the bare forward pass of D over the same grid (CPU time of this process, one thread):
    'forward' is D(x) in rasterize's chunks (the floor), 'one pass' D(x) on all points at once; 'forward+bits' and
    'ids+colours' split rasterize's work; 'regions' the linear regions the grid sees. Then ∇ₓD on 64² beside a
    forward at that size, and the peak memory of one 1024² raster in a fresh process for three chunk sizes.
    `--device`: D on that device, rasterize's default backend there (torch off the CPU: the splits are then its
    device stages), wall time with the device synchronized; the memory rows are the CPU's only."""
    quick = _quick(args)
    device = bench_device_of(args)
    on_device = device.type != "cpu"
    clock = device_clock(device)
    torch.set_num_threads(1)
    allocator = "freed memory kept for reuse" if reuse_freed_memory() else "the C library's default allocator"
    extent = (-1.5, 1.5, -1.5, 1.5)
    nets = {name: make() for name, make in REGION_NETS.items()}
    sizes = ((256, 3),) if quick else ((256, 21), (512, 11))            # (R, rounds)
    grad_rounds = 5 if quick else 61
    chunks = () if on_device else (None,) if quick else (65536, 16384, None)     # None: chunk_rows(D)
    print(f"device: {device_name(device)}")
    print(f"{'wall time, device synchronized' if on_device else 'CPU time of this process'}, min over alternated "
          f"rounds; ratio = median over rounds of the two calls' "
          f"ratio in one round; torch threads {torch.get_num_threads()}; freshly "
          f"initialized D (seed 0), extent {extent}; 'forward' = D(x) over the grid in rasterize's chunks (the "
          f"floor; 'chunk' rows, sized to D by chunk_rows), 'one pass' = D(x) on all points at once; "
          f"allocator: {allocator} (toyviz.malloc_tuning, as the command line and the page set it)")
    print(f"{'net':<18}{'R':>6}{'chunk':>7}{'forward ms':>12}{'rasterize ms':>14}{'ratio':>7}{'regions':>9}"
          f"{'one pass ms':>13}{'of which: forward+bits':>24}{'ids+colours':>13}")
    with contextlib.closing(progress(len(nets) * (len(sizes) + 1) + len(chunks), "bench regions", "case")) as bar:
        for name, cfg in nets.items():
            torch.manual_seed(0)
            D = Discriminator(cfg).to(device)
            probe = Probe(D)
            for R, rounds in sizes:
                x = torch.as_tensor(grid(extent, R)[2], dtype=torch.float32, device=device)
                words, widths, _, _ = forward_patterns(probe, x, on_device=on_device)
                partition = device_patterns.partition_grid if on_device else partition_grid

                def forward():
                    with torch.no_grad():
                        for s in range(0, len(x), probe.chunk):
                            D(x[s:s + probe.chunk])

                def one_pass():
                    with torch.no_grad():
                        D(x)
                times = _rounds([forward, lambda: rasterize(D, extent, R, grad_resolution=0), one_pass,
                                 lambda: forward_patterns(probe, x, on_device=on_device),
                                 lambda: partition(words, widths, R)], rounds, clock)
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
            D = Discriminator(cfg).to(device)
            x = torch.as_tensor(grid(extent, 64)[2], dtype=torch.float32, device=device)
            probe = Probe(D)

            def forward():
                with torch.no_grad():
                    D(x)
            times = _rounds([forward, lambda: input_gradient(probe, x, on_device=on_device)], grad_rounds, clock)
            t_fwd, t_grad = times.min(0)
            t_full, = _interleaved([lambda: rasterize(D, extent, 256)], 1 if quick else 5, clock)
            print(f"{name:<18}{1e3 * t_grad:>12.2f}{1e3 * t_fwd:>12.2f}{_ratio(times, 1, 0):>7.2f}"
                  f"{1e3 * t_full:>21.1f}")
            bar.update(1)
        print("goal: ∇ₓD on 64² <= 2x a forward at that size; 'full raster' adds ∇ₓD on 64² and the mosaic glass")
        if on_device:
            print("memory: measured on the CPU only (run without --device)")
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


# ---- exact partitions ---------------------------------------------------------------------------------------------
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
