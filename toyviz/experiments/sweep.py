"""Sweeps: many independent `train` runs (seeds × a grid of config overrides) in parallel worker processes.

Run (label, seed) goes to `OUT/<label>/seed<seed>/`, a run folder identical to `python -m toyviz train` with that
config; finished runs are skipped and runs cut off mid-way continue from their checkpoints (`run_state`,
`run_batch`), so a sweep resumes, and `--shard i/n` splits one sweep across machines.
The seeds of one grid point train as seed batches (`engine.seed_batch`: one process, stacked networks) where the
config can be batched: their folders then equal the `train` runs' within float rounding (METHODS §9).
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..engine.config import Config, parse_assignment
from ..engine.run_folder import RunFolder
from ..engine.seed_batch import refusal
from .runs import ERROR_FILE, resume_run, resume_seed_batch, train_run, train_seed_batch


@dataclass
class RunSpec:
    label: str       # the method: preset name plus the grid point, e.g. "bre-toy-bre+nets.latent_dim=8"
    seed: int
    cfg: Config      # validated, with `seed` set
    out: Path        # the run folder


@dataclass
class RunResult:
    label: str
    seed: int
    seconds: float
    final: dict      # the last evaluation's `eval/...` numbers; empty when the run failed
    error: str = ""  # one line when the run failed (e.g. a loss became NaN); "" otherwise
    skipped: bool = False


def split_values(text: str) -> list[str]:
    """`1,2,[1,2]` -> ['1', '2', '[1,2]']: commas inside brackets or quotes belong to the value."""
    out, depth, quote, cur = [], 0, False, ""
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "[{":
            depth += 1
        elif not quote and ch in "]}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def parse_grid(items: list[str]) -> list[dict]:
    """`["a.b=1,2", "c=x,y"]` -> the cartesian product as dicts of overrides (values read as JSON, else text)."""
    axes = []
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--grid expects key.path=v1,v2,... (got {item!r})")
        key, raw = item.split("=", 1)
        values = [parse_assignment(f"{key}={v}")[1] for v in split_values(raw) if v != ""]
        if not values:
            raise ValueError(f"--grid {key.strip()}: give at least one value")
        axes.append([(key.strip(), v) for v in values])
    return [dict(point) for point in itertools.product(*axes)]


def label_for(name: str, point: dict) -> str:
    """A folder-safe label for one grid point: `name+key=value+...` (values as compact JSON without quotes)."""
    parts = [name] + [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in point.items()]
    return "+".join(parts).replace('"', "").replace("/", "_").replace(" ", "")


def plan(base: Config, seeds: list[int], grid: Optional[list[dict]] = None, out=".",
         name: Optional[str] = None) -> list[RunSpec]:
    """One RunSpec per (grid point, seed), grid points outermost; each config validated (ValueError names it)."""
    specs = []
    for point in grid or [{}]:
        label = label_for(name or base.preset, point)
        for seed in seeds:
            cfg = base.replace(**point, seed=seed).validate()
            specs.append(RunSpec(label, seed, cfg, Path(out) / label / f"seed{seed}"))
    return specs


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` with 1 ≤ i ≤ n (shard 1/2 and 2/2 together cover a sweep)."""
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n, e.g. 1/2 (got {text!r})") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard {text}: need 1 ≤ i ≤ n")
    return i, n


def shard(specs: list[RunSpec], i: int, n: int) -> list[RunSpec]:
    """Shard i of n (1-based): every n-th run starting at the (i−1)-th, so shards are balanced across labels."""
    return specs[i - 1::n]


def run_state(spec: RunSpec) -> str:
    """'new'; 'done' (finished, same config); 'cut' (same config, its checkpoint short of its length and no
    failure recorded: a sweep killed mid-way, resumed from the checkpoint); 'partial' (same config, failed or without
    a readable checkpoint: retrained); or 'different'."""
    cfg_path = spec.out / "config.json"
    if not cfg_path.exists():
        return "new"
    try:
        same = Config.from_json(cfg_path).to_dict() == spec.cfg.to_dict()
    except ValueError:
        return "different"
    if not same:
        return "different"
    step = RunFolder(spec.out).checkpoint_step()
    if (spec.out / ERROR_FILE).exists() or step is None or step > spec.cfg.optim.iters:
        return "partial"
    done = step == spec.cfg.optim.iters and (spec.out / RunFolder.STATS).exists()
    return "done" if done else "cut"


def _final_eval(stats_path: Path) -> dict:
    for line in reversed(stats_path.read_text().splitlines()):
        row = json.loads(line) if line.strip() else {}
        if "eval/modes" in row:
            return {k: v for k, v in row.items() if k.startswith("eval/")}
    return {}


def run_one(spec: RunSpec) -> RunResult:
    """Train one run exactly as `python -m toyviz train` would (one torch thread), or continue it from its checkpoint
    as `train --resume` would when its folder holds one (a run cut off mid-way); a failure is recorded in
    `error.txt` in the run folder instead of stopping the sweep."""
    import torch
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    err = spec.out / ERROR_FILE
    try:
        if RunFolder(spec.out).checkpoint_step() is None:
            train_run(spec.cfg, spec.out, quiet=True)
        else:
            resume_run(spec.out, quiet=True)
    except Exception as e:     # a diverged or broken run must not take the other runs down
        spec.out.mkdir(parents=True, exist_ok=True)
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        err.write_text(msg + "\n")
        return RunResult(spec.label, spec.seed, time.perf_counter() - t0, {}, msg)
    if err.exists():
        err.unlink()
    return RunResult(spec.label, spec.seed, time.perf_counter() - t0, _final_eval(spec.out / "stats.jsonl"))


def run_batch(specs: list[RunSpec]) -> list[RunResult]:
    """Train the seeds of one config (`specs`) as seed batches (one torch thread), each into its run folder; a seed
    that diverges is recorded as `run_one` records a failed run, the others go on.

    Seeds whose folders hold a checkpoint (a sweep cut off mid-way) continue from it: the seeds at one step as one
    batch (`runs.resume_seed_batch`: the batch that was not cut off, bit for bit when it was these seeds), a seed
    alone at its step as one run (`run_one`: its remaining steps equal the batch's within float rounding,
    METHODS §9); seeds without one train from the start, together. Each RunResult's `seconds` is its share of its
    batch's time."""
    if len(specs) == 1:
        return [run_one(specs[0])]
    by_step: dict[Optional[int], list[RunSpec]] = {}
    for spec in specs:
        by_step.setdefault(RunFolder(spec.out).checkpoint_step(), []).append(spec)
    results = {}
    for step, group in by_step.items():
        done = [run_one(group[0])] if len(group) == 1 else _run_seed_batch(group, resume=step is not None)
        results.update({(r.label, r.seed): r for r in done})
    return [results[(s.label, s.seed)] for s in specs]


def _run_seed_batch(specs: list[RunSpec], resume: bool) -> list[RunResult]:
    import torch
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    folders = {s.seed: s.out for s in specs}
    try:
        if resume:
            failed = resume_seed_batch(folders, quiet=True).failed
        else:
            failed = train_seed_batch(specs[0].cfg, folders, quiet=True).failed
    except Exception as e:     # a broken batch fails its runs, not the sweep
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        for s in specs:
            s.out.mkdir(parents=True, exist_ok=True)
            (s.out / ERROR_FILE).write_text(msg + "\n")
        failed = {s.seed: msg for s in specs}
    seconds = (time.perf_counter() - t0) / len(specs)
    return [RunResult(s.label, s.seed, seconds, {}, failed[s.seed]) if s.seed in failed
            else RunResult(s.label, s.seed, seconds, _final_eval(s.out / "stats.jsonl")) for s in specs]


def jobs(specs: list[RunSpec], workers: int = 1) -> list[list[RunSpec]]:
    """The sweep's units of work: the seeds of one config (a grid point) as seed batches where it can be batched,
    split into up to `workers` batches of at least two seeds (so one grid point keeps the workers busy); one run a
    job otherwise. A seed's numbers equal its own run's within float rounding in any batch, not bit for bit: the
    stacked products' kernels may round differently for another number of seeds, so the same seeds and `workers`
    give the same bits, another split the same numbers within rounding."""
    groups: dict[str, list[RunSpec]] = {}
    out = []
    for spec in specs:
        if refusal(spec.cfg) is None:
            key = json.dumps({**spec.cfg.to_dict(), "seed": None}, sort_keys=True)
            groups.setdefault(key, []).append(spec)
        else:
            out.append([spec])
    for group in groups.values():
        k = max(1, min(workers, len(group) // 2))
        size = -(-len(group) // k)
        out += [group[i:i + size] for i in range(0, len(group), size)]
    return out


def exit_with_parent(parent: int, every: float = 1.0) -> None:
    """A pool worker's initializer: end this process once `parent` (the sweep) is gone. A sweep killed by a signal
    Python cannot clean up after (SIGTERM's default, SIGKILL) never reaches the pool's `terminate`, and its workers
    would train on, writing into run folders that the next sweep of the same command resumes."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def pack(job: list[RunSpec]) -> list[tuple]:
    """A job as another process receives it: `(label, seed, config dict, out)` per run (plain picklable values)."""
    return [(s.label, s.seed, s.cfg.to_dict(), str(s.out)) for s in job]


def run_packed(items) -> list[RunResult]:
    """`run_batch` of a job sent to another process (`pack`)."""
    return run_batch([RunSpec(label, seed, Config.from_dict(cfg_dict), Path(out))
                      for label, seed, cfg_dict, out in items])


BACKENDS = ("local", "ray")


def run_sweep(specs: list[RunSpec], workers: int = 1, force: bool = False,
              on_result: Optional[Callable[[RunResult], None]] = None, backend: str = "local",
              address: Optional[str] = None) -> list[RunResult]:
    """Run every spec not already done, the seeds of a config that can be batched as seed batches (`jobs`): with
    the local backend in `workers` spawned processes (in this process when workers is 1); with "ray" as Ray tasks
    (`ray_sweep.run_jobs`: on the cluster at `address`, else on a local instance of `workers` CPUs).

    A folder holding a run of a different config is refused (ValueError) unless `force`, which retrains it."""
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    todo, results = [], []
    for spec in specs:
        state = run_state(spec)
        if state == "different" and not force:
            raise ValueError(f"{spec.out} holds a run of a different config; pass --force to retrain it")
        if state == "done" and not force:
            res = RunResult(spec.label, spec.seed, 0.0, _final_eval(spec.out / "stats.jsonl"), skipped=True)
            results.append(res)
            if on_result:
                on_result(res)
            continue
        if state in ("partial", "different") or (force and state != "new"):
            shutil.rmtree(spec.out)            # a cut-off run stays: its worker continues it from its checkpoint
        todo.append(spec)
    work = jobs(todo, workers)
    pool = None
    if backend == "ray":             # Ray is imported only by that backend, only now
        from .ray_sweep import run_jobs
        it = run_jobs(work, address, workers) if work else iter(())
    elif workers <= 1 or len(work) <= 1:
        it = map(run_batch, work)
    else:
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(work)), initializer=exit_with_parent,
                                                         initargs=(os.getpid(),))
        it = pool.imap_unordered(run_packed, [pack(job) for job in work])
    try:
        for job_results in it:
            for res in job_results:
                results.append(res)
                if on_result:
                    on_result(res)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if hasattr(it, "close"):                # the Ray backend's generator: cancel its tasks, disconnect
            it.close()
    return results
