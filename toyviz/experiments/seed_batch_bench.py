"""`python -m toyviz bench sweep`: ten seeds of one config as seed batches (`engine.seed_batch`) against ten separate
runs on two worker processes (`sweep --workers 2` without batches), in seed-steps per second, for bre-toy and ring8;
where a step's time goes (matrix products, replayed bare from a profile, against the rest), the matrix-product
ceiling, and the memory the batch takes. Registered in `bench.BENCHES`; imports nothing of `bench` (which imports
this module)."""
from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections import Counter
from typing import Callable, Optional

import torch
from torch.profiler import ProfilerActivity, profile

from ..engine import presets
from ..engine.config import Config
from ..engine.seed_batch import SeedBatch
from ..engine.trainer import Trainer
from ..malloc_tuning import reuse_freed_memory
from .runs import progress

SEEDS, WORKERS = 10, 2
GOALS = {"bre-toy": 5.0, "ring8": 1.5}           # batched ÷ separate, seed-steps per second
MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
WAYS = ("separate", "batch, 1 thread", "batch, 2 threads", "sweep")
LABELS = {"separate": f"{SEEDS} separate runs, {WORKERS} workers",
          "batch, 1 thread": f"one batch of {SEEDS}, 1 thread",
          "batch, 2 threads": f"one batch of {SEEDS}, {WORKERS} threads",
          "sweep": f"{WORKERS} workers × a batch of {SEEDS // WORKERS} (sweep)"}


def bench_config(name: str) -> Config:
    """The preset with no periodic evaluation (the same RegionMetrics work per seed either way) and no end."""
    return presets.get(name).replace(**{"viz.metrics_every": 10 ** 7, "optim.iters": 10 ** 7})     # config.LIMITS


# ---- peak memory (Linux: /proc) ----------------------------------------------------------------------------------
def _status_kib(key: str) -> Optional[int]:
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith(key)).split()[1])
    return None


def reset_peak() -> Optional[int]:
    """Reset this process's peak-RSS mark; returns the resident KiB now (None where /proc cannot say)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmRSS")
    return None


def peak_since(before: Optional[int]) -> Optional[int]:
    """KiB the peak resident memory rose above `before` (`reset_peak`'s value)."""
    peak = _status_kib("VmHWM")
    return None if before is None or peak is None else max(peak - before, 0)


# ---- one timed job: seeds as separate Trainers or one batch ----------------------------------------------------------
def _steppers(name: str, seeds: list[int], batched: bool) -> list[Callable]:
    cfg = bench_config(name)
    if batched:
        return [SeedBatch(cfg, seeds).step]
    return [Trainer(cfg.replace(seed=s)).step for s in seeds]


def timed_job(job) -> tuple[float, float, Optional[int]]:
    """(wall and CPU seconds of `steps` steps of each stepper after `warmup`, KiB its nets and steps raised the
    peak)."""
    name, seeds, batched, steps, warmup = job
    before = reset_peak()
    fns = _steppers(name, seeds, batched)
    for fn in fns:
        for _ in range(warmup):
            fn()
    t0, c0 = time.perf_counter(), time.process_time()
    for fn in fns:
        for _ in range(steps):
            fn()
    return time.perf_counter() - t0, time.process_time() - c0, peak_since(before)


def _init_worker() -> None:
    torch.set_num_threads(1)
    reuse_freed_memory()


def _on_workers(pool, name: str, batched: bool, steps: int, warmup: int) -> tuple[float, float]:
    """Seed-steps per second of SEEDS seeds split over the WORKERS processes, run at once: by wall time (the
    slower worker's) and by CPU time (each worker on a core of its own: what an unshared machine would give)."""
    share = SEEDS // WORKERS
    jobs = [(name, list(range(w * share, (w + 1) * share)), batched, steps, warmup) for w in range(WORKERS)]
    done = pool.map(timed_job, jobs, chunksize=1)
    return SEEDS * steps / max(wall for wall, _, _ in done), SEEDS * steps / max(cpu for _, cpu, _ in done)


def _in_process(name: str, threads: int, steps: int, warmup: int) -> tuple[float, float]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        wall, cpu, _ = timed_job((name, list(range(SEEDS)), True, steps, warmup))
    finally:
        torch.set_num_threads(before)
    return SEEDS * steps / wall, SEEDS * steps * threads / cpu


# ---- where a step's time goes ----------------------------------------------------------------------------------------
def step_profile(step: Callable, calls: int = 5, reps: int = 20) -> tuple[float, float]:
    """(seconds a step takes, seconds of it in matrix products), one thread. The products are those a profile of
    `calls` steps records (op and shapes), each replayed bare `reps` times (best): a profile's own overhead would
    inflate the many small ones."""
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(calls):
        step()
    seconds = (time.perf_counter() - t0) / calls
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(calls):
            step()
    seen = Counter((e.name, tuple(tuple(s) for s in e.input_shapes if s)) for e in prof.events() if e.name in MATMULS)
    total = 0.0
    for (op, shapes), count in seen.items():
        fn, args = getattr(torch, op.split("::")[1]), [torch.randn(*s) for s in shapes]
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(*args)
            best = min(best, time.perf_counter() - t0)
        total += best * count
    return seconds, total / calls


def _mib(kib: Optional[int]) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"


def memory_job(job) -> Optional[int]:
    """In a fresh process: KiB that building `seeds` of `name` (separate Trainers or one batch) and a few steps
    raise its peak resident memory above what the imports left."""
    name, seeds, batched = job
    return timed_job((name, seeds, batched, 5, 1))[2]


def bench_sweep(args) -> None:
    """Seed-steps per second of ten seeds of bre-toy and of ring8 (wall time, best of rounds, no periodic
    evaluation): ten separate runs on two worker processes, one torch thread each (the sweep's way before seed
    batches; the rate of the slower worker), against seed batches: one batch of ten in this process with one torch
    thread (and two, without --quick), and two workers each training a batch of five (what `sweep --workers 2` now
    does). '× separate' is each row's rate over the first row's; 'by CPU time' counts each process's CPU seconds
    instead of wall time (each worker on a core of its own: what an unshared machine would give, and steadier
    when other jobs share the cores). Then a step's time (one thread) split into its matrix products (replayed
    bare from a profile) and the rest, for one run's step and a batch's; the matrix-product ceiling (the rate of a
    batch whose step cost only its products: on one core, and on two); and (without --quick) the peak memory one
    run and a batch of ten add to a fresh process after its imports (both include what the libraries allocate on
    first use; their difference is the batch's own)."""
    quick = bool(getattr(args, "quick", False))
    steps, rounds, warmup = (10, 1, 2) if quick else (getattr(args, "steps", None) or 200, 2, 10)
    ways = [w for w in WAYS if not (quick and w == "batch, 2 threads")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    reuse_freed_memory()
    names = list(GOALS)
    ctx = multiprocessing.get_context("spawn")
    results, memory = {}, {}
    with contextlib.closing(progress(len(names) * (rounds * len(ways) + 3), "bench sweep", "case")) as bar:
        with ctx.Pool(WORKERS, initializer=_init_worker) as pool:
            pool.map(timed_job, [("bre-toy", [0], False, 1, 0)] * WORKERS, chunksize=1)    # workers up and warm
            for name in names:
                rates: dict[str, tuple[float, float]] = {}
                for _ in range(rounds):
                    for way in ways:
                        if way in ("separate", "sweep"):
                            rate = _on_workers(pool, name, way == "sweep", steps, warmup)
                        else:
                            rate = _in_process(name, 1 if way.endswith("1 thread") else WORKERS, steps, warmup)
                        best = rates.get(way, (0.0, 0.0))
                        rates[way] = (max(best[0], rate[0]), max(best[1], rate[1]))
                        bar.update(1)
                single = step_profile(Trainer(bench_config(name)).step, calls=2 if quick else 5)
                bar.update(1)
                batch = step_profile(SeedBatch(bench_config(name), range(SEEDS)).step, calls=2 if quick else 5)
                bar.update(1)
                results[name] = rates, single, batch
        if not quick:                                  # fresh processes: seconds each to start
            with ctx.Pool(WORKERS, initializer=_init_worker, maxtasksperchild=1) as fresh:
                jobs = [(name, list(range(n)), n > 1) for name in names for n in (1, SEEDS)]
                for job, kib in zip(jobs, fresh.map(memory_job, jobs, chunksize=1)):
                    memory[job[0], len(job[1])] = kib
        bar.update(len(names))
    torch.set_num_threads(threads)
    print(f"{SEEDS} seeds a preset, {steps} steps a round after {warmup} of warm-up, best of {rounds} round(s), "
          f"wall time; no periodic evaluation; seed-steps/s = seeds × steps ÷ seconds of the slower worker")
    for name, (rates, (t_one, mm_one), (t_batch, mm_batch)) in results.items():
        cfg = bench_config(name)
        n = cfg.nets
        print(f"\n{name}: batch {cfg.optim.batch_size}, G {n.g.depth}×{n.g.width}, D {n.d.depth}×{n.d.width}")
        print(f"{'way':<40}{'seed-steps/s':>14}{'× separate':>12}{'by CPU time':>13}{'× separate':>12}")
        (base, base_cpu) = rates["separate"]
        for way in ways:
            wall, cpu = rates[way]
            print(f"{LABELS[way]:<40}{wall:>14.0f}{wall / base:>12.2f}{cpu:>13.0f}{cpu / base_cpu:>12.2f}")
        ceiling = SEEDS / mm_batch
        for cores in (1, 2):
            print(f"{f'matrix-product ceiling, {cores} core(s)':<40}{cores * ceiling:>14.0f}"
                  f"{cores * ceiling / base:>12.2f}{cores * ceiling:>13.0f}{cores * ceiling / base_cpu:>12.2f}")
        print(f"a step, one thread: one run {1e3 * t_one:.2f} ms = products {1e3 * mm_one:.2f} "
              f"({100 * mm_one / t_one:.0f}%) + the rest {1e3 * (t_one - mm_one):.2f}; a batch of {SEEDS} "
              f"{1e3 * t_batch:.2f} ms = products {1e3 * mm_batch:.2f} ({100 * mm_batch / t_batch:.0f}%) + the rest "
              f"{1e3 * (t_batch - mm_batch):.2f}")
        if memory:
            one, batch_kib = memory[name, 1], memory[name, SEEDS]
            extra = "" if one is None or batch_kib is None else f" (the batch's own: {_mib(batch_kib - one)})"
            print(f"peak memory added to a fresh process: one run {_mib(one)}, a batch of {SEEDS} "
                  f"{_mib(batch_kib)}{extra}")
        best = max(ways[1:], key=lambda w: rates[w][0])
        one = rates["batch, 1 thread"]
        print(f"goal: batched ≥ {GOALS[name]:g}× separate: got {rates[best][0] / base:.2f}× ({LABELS[best]}; "
              f"{rates[best][1] / base_cpu:.2f}× by CPU time); one batch of {SEEDS} on one thread "
              f"{one[0] / base:.2f}× ({one[1] / base_cpu:.2f}× by CPU time)")
