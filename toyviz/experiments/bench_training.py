"""Benchmarks of training and of what the page and videos do per frame: `bench train` (the trainer against a bare
hand-written loop, every technique), `bench app` (one page update), `bench export` (a video's frames by stage)."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..draw import frames as frames_module
from ..draw import writers as writers_module
from ..draw.frames import DEFAULT_PANELS
from ..draw.render import FrameRenderer, draw_frame
from ..draw.writers import export_video, video_resolution
from ..engine import presets
from ..engine.config import LIMITS
from ..engine.trainer import Trainer
from ..geometry.metrics import RegionMetrics
from ..page.session import Session
from .bench_tools import (
    StageClock,
    _interleaved,
    _quick,
    _rate,
    _steps,
    device_clock,
    device_name,
    graph_row,
)
from .runs import progress


# ---- train --------------------------------------------------------------------------------------------------------
def bare_loop_step(G, D, data, cfg, rngs, opt_g, opt_d):
    """A hand-written non-saturating GAN step over the same nets: the floor the trainer is measured against."""
    B, k = cfg.optim.batch_size, cfg.nets.latent_dim
    real = data.sample(B, rngs[0])
    with torch.no_grad():
        fake = G(torch.randn(B, k, generator=rngs[1], device=rngs[1].device))
    rl, fl = D(real), D(fake)
    loss_d = (F.binary_cross_entropy_with_logits(rl, torch.ones_like(rl))
              + F.binary_cross_entropy_with_logits(fl, torch.zeros_like(fl)))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    fl = D(G(torch.randn(B, k, generator=rngs[1], device=rngs[1].device)))
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


GRAPH_PRESETS = ("ring8", "bre-toy")


def training_rows(device: str, cuda_graph: bool, steps: int = 300, rounds: int = 3, warmup: int = 10,
                  presets_: tuple[str, ...] = GRAPH_PRESETS) -> list[dict]:
    """Steps/s of training on `device` (wall time after the device's queued work, best of `rounds`), per preset:
    a bare hand-written eager GAN loop over the same nets ("bare eager loop"), the trainer's ordinary eager step
    ("trainer, eager") and with `cuda_graph` the trainer with optim.cuda_graph ("trainer, graph-ready eager" on a
    device that cannot capture, "trainer, CUDA graph" on CUDA). The trainers run without periodic evaluation and
    without callbacks: the step alone. Each row: preset, variant, device, steps_per_s, and `max_abs_diff_20`:
    the largest difference of any statistic over 20 steps between the graph variant and its reference (on CUDA the
    same graph-ready step run eagerly, which draws the same numbers; elsewhere the ordinary eager step), None on
    the other rows. Another command (`bench device`) calls this too."""
    dev = torch.device(device)
    clock = device_clock(dev)
    quiet = {"viz.metrics_every": LIMITS["viz.metrics_every"][1], "device": device}
    rows = []
    for name in presets_:
        cfg = presets.get(name).replace(**quiet)
        graph_cfg = cfg.replace(**{"optim.cuda_graph": True})
        base = Trainer(cfg)
        rngs = tuple(torch.Generator(device=dev).manual_seed(i) for i in (0, 1))
        opt_g = torch.optim.Adam(base.G.parameters(), lr=1e-3, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(base.D.parameters(), lr=1e-3, betas=(0.5, 0.999))
        timing = {"steps": steps, "rounds": rounds, "warmup": warmup, "clock": clock}
        bare = _rate(lambda: bare_loop_step(base.G, base.D, base.data, cfg, rngs, opt_g, opt_d), **timing)
        found = [("bare eager loop", bare, None, None),
                 ("trainer, eager", _rate(Trainer(cfg).step, **timing), None, None)]
        if cuda_graph:
            found.append(graph_row(lambda: Trainer(graph_cfg), lambda: Trainer(cfg), dev, timing))
        rows += [{"preset": name, "variant": v, "device": device_name(dev), "steps_per_s": rate,
                  "max_abs_diff_20": diff, "error": error} for v, rate, diff, error in found]
    return rows


def print_training_rows(rows: list[dict], steps: int, rounds: int) -> None:
    """`training_rows` as a table, with each row's speed over its preset's bare loop and ordinary trainer."""
    print(f"{rows[0]['device']}, torch threads {torch.get_num_threads()}, {steps} steps a round, best of {rounds}; "
          f"no periodic evaluation")
    print(f"{'preset':<10}{'variant':<28}{'steps/s':>10}{'÷ bare':>9}{'÷ eager':>9}{'max |Δ| 20 steps':>18}")
    for row in rows:
        ref = {r["variant"]: r["steps_per_s"] for r in rows if r["preset"] == row["preset"]}
        diff = "" if row["max_abs_diff_20"] is None else f"{row['max_abs_diff_20']:.3g}"
        print(f"{row['preset']:<10}{row['variant']:<28}{row['steps_per_s']:>10.1f}"
              f"{row['steps_per_s'] / ref['bare eager loop']:>9.2f}"
              f"{row['steps_per_s'] / ref['trainer, eager']:>9.2f}{diff:>18}")
        if row.get("error"):
            print(f"    failed: {row['error']}")
    graph = [r for r in rows if r["variant"] == "trainer, CUDA graph" and r["preset"] == "ring8"]
    if graph:
        print(f"goal: ring8 with optim.cuda_graph ≥ 1,000 steps/s on a GPU (got {graph[0]['steps_per_s']:.0f})")
    print("max |Δ|: the graph variant against the same graph-ready step run eagerly (CUDA: the same device streams), "
          "or against the ordinary step (CPU: the same CPU streams)")


def bench_train(args) -> None:
    """Training steps per second on ring8 (wall time, best of rounds): a bare hand-written PyTorch GAN loop over the
    same nets (the floor), the trainer plain, with BRE and with each technique preset; '÷ bare' and '÷ plain' are
    each row's speed over those two rows'. The trainer's rows include its periodic evaluation (RegionMetrics every
    viz.metrics_every steps); the last line compares a BRE step with a plain one without it, in CPU time.
    With --device DEV (and --cuda-graph): `training_rows` on that device instead, ring8 and bre-toy."""
    steps, quick = _steps(args), _quick(args)
    if getattr(args, "device", None) or getattr(args, "cuda_graph", False):
        rounds, warmup = (1, 2) if quick else (3, 10)
        rows = training_rows(args.device or "cpu", args.cuda_graph, steps, rounds, warmup)
        print_training_rows(rows, steps, rounds)
        return
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
        quiet = {"viz.metrics_every": LIMITS["viz.metrics_every"][1]}     # the steps alone, alternated plain / BRE
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


# ---- the page and the video export ---------------------------------------------------------------------------------
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
