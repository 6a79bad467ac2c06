import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from toyviz.commands.cli import main
from toyviz.engine import presets
from toyviz.engine.run_folder import RunFolder
from toyviz.engine.seed_batch import SeedBatch
from toyviz.experiments.process_tree import descendants
from toyviz.experiments.sweep import (
    ERROR_FILE,
    jobs,
    label_for,
    parse_grid,
    parse_shard,
    plan,
    run_state,
    run_sweep,
    shard,
    split_values,
)

TINY = {"nets.g.width": 8, "nets.d.width": 8, "optim.batch_size": 16, "optim.iters": 6,
        "viz.eval_samples": 64, "viz.metrics_every": 3, "viz.snapshot_every": 3}
TINY_ARGS = [a for k, v in TINY.items() if k != "optim.iters" for a in ("--set", f"{k}={v}")] + ["--iters", "6"]


def tiny():
    return presets.get("bre-toy").replace(**TINY)


def test_split_values_keeps_brackets_and_quotes_together():
    assert split_values('1,[1,2],"a,b",x') == ["1", "[1,2]", '"a,b"', "x"]


def test_parse_grid_is_the_cartesian_product_with_json_values():
    pts = parse_grid(["reg.bre.layers=[1],[1,2],all", "optim.batch_size=32,64"])
    assert len(pts) == 6
    assert pts[0] == {"reg.bre.layers": [1], "optim.batch_size": 32}
    assert pts[3] == {"reg.bre.layers": [1, 2], "optim.batch_size": 64}
    assert pts[4]["reg.bre.layers"] == "all"
    assert parse_grid([]) == [{}]
    with pytest.raises(ValueError, match="--grid expects key.path=v1,v2"):
        parse_grid(["optim.batch_size"])


def test_plan_labels_folders_and_seeds(tmp_path):
    specs = plan(tiny(), [3, 4], parse_grid(["optim.batch_size=16,32"]), tmp_path)
    assert [(s.label, s.seed) for s in specs] == [
        ("bre-toy+optim.batch_size=16", 3), ("bre-toy+optim.batch_size=16", 4),
        ("bre-toy+optim.batch_size=32", 3), ("bre-toy+optim.batch_size=32", 4)]
    assert specs[2].cfg.optim.batch_size == 32 and specs[2].cfg.seed == 3
    assert specs[3].out == tmp_path / "bre-toy+optim.batch_size=32" / "seed4"
    assert label_for("x", {"reg.bre.layers": [1, 2], "reg.bre.samples": ["fake"]}) == \
        "x+reg.bre.layers=[1,2]+reg.bre.samples=[fake]"
    with pytest.raises(ValueError, match="optim.batch_size must be ≥ 2"):
        plan(tiny(), [0], [{"optim.batch_size": 1}], tmp_path)


def test_shards_partition_the_plan():
    specs = list(range(10))
    parts = [shard(specs, i, 3) for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == specs and parts[0] == [0, 3, 6, 9]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_a_sweep_run_is_a_train_run_and_resumes(tmp_path, capsys):
    assert main(["train", "--preset", "bre-toy", *TINY_ARGS, "--seed", "1", "--out", str(tmp_path / "t")]) == 0
    specs = plan(tiny(), [1], None, tmp_path / "s")
    res = run_sweep(specs)
    assert res[0].error == "" and not res[0].skipped and "eval/modes" in res[0].final
    assert (tmp_path / "s/bre-toy/seed1/stats.jsonl").read_text() == (tmp_path / "t/stats.jsonl").read_text()
    assert run_state(specs[0]) == "done"
    again = run_sweep(specs)
    assert again[0].skipped and again[0].final == res[0].final
    other = plan(tiny().replace(**{"optim.lr_d": 1e-3}), [1], None, tmp_path / "s")
    with pytest.raises(ValueError, match="different config; pass --force"):
        run_sweep(other)


def test_parallel_spawned_workers_match_in_process_runs(tmp_path):
    specs = plan(tiny(), [0, 1], None, tmp_path / "par")
    res = run_sweep(specs, workers=2)
    assert sorted(r.seed for r in res) == [0, 1] and all(r.error == "" for r in res)
    seq = plan(tiny(), [0, 1], None, tmp_path / "seq")
    run_sweep(seq, workers=1)
    for a, b in zip(specs, seq):
        assert (a.out / "stats.jsonl").read_text() == (b.out / "stats.jsonl").read_text()


def test_cli_sweep_shard_and_bad_input(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "--preset", "bre-toy", *TINY_ARGS, "--seeds", "3", "--seed", "100", "--shard", "2/2",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "bre-toy").iterdir()) == ["seed101"]
    assert json.loads((out / "bre-toy/seed101/config.json").read_text())["seed"] == 101
    assert "1 runs trained" in capsys.readouterr().out
    for argv, match in [(["--grid", "optim.batch_size=1"], "optim.batch_size must be ≥ 2"),
                        (["--shard", "3/2"], "--shard 3/2"), (["--seeds", "0"], "--seeds must be ≥ 1"),
                        (["--grid", "nope.x=1,2"], "unknown config key nope")]:
        assert main(["sweep", "--preset", "bre-toy", "--out", str(tmp_path / "bad"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert match in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"        # an orphan's zombie waits for a reaper: it trains no more


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_killed_sweep_takes_its_workers_with_it(tmp_path):
    """SIGKILL skips the pool's clean-up; the workers notice their parent is gone and stop writing run folders."""
    out = tmp_path / "sw"
    sweep = subprocess.Popen([sys.executable, "-m", "toyviz", "sweep", "--preset", "bre-toy", *TINY_ARGS[:-2],
                              "--iters", "10000000", "--grid", "optim.lr_g=0.001,0.002", "--seeds", "1",
                              "--workers", "2", "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*/seed0/stats.jsonl"))) < 2:          # both workers are training
            assert sweep.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        workers += [pid for pid in descendants(sweep.pid) if pid != sweep.pid]
        assert len(workers) >= 2
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        deadline = time.monotonic() + 20
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(_running, workers))
    finally:
        sweep.kill()
        for pid in filter(_running, workers):       # a failed test leaves nothing training
            os.kill(pid, signal.SIGKILL)


# ---- seed batches (engine.seed_batch) -------------------------------------------------------------------------------
def test_jobs_batch_the_seeds_of_each_grid_point():
    specs = plan(tiny(), [0, 1, 2, 3], parse_grid(["optim.lr_d=1e-3,2e-3"]), "out")
    two = jobs(specs, workers=2)
    assert [[s.seed for s in job] for job in two] == [[0, 1], [2, 3], [0, 1], [2, 3]]
    assert all(len({s.label for s in job}) == 1 for job in two)
    assert [[s.seed for s in job] for job in jobs(specs, workers=1)] == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert [len(job) for job in jobs(specs[:3], workers=2)] == [3]           # a batch holds two seeds or more
    refused = plan(tiny().replace(**{"reg.historical_averaging": 0.01}), [0, 1], None, "out")
    assert [len(job) for job in jobs(refused, workers=2)] == [1, 1]


def test_a_batched_sweep_equals_train_runs_and_resumes(tmp_path):
    cfg = tiny().replace(**{"reg.bre.weight": 1.0, "reg.bre.layers": [1]})
    specs = plan(cfg, [0, 1], None, tmp_path / "s")
    res = run_sweep(specs)
    assert sorted(r.seed for r in res) == [0, 1] and all(r.error == "" and "eval/modes" in r.final for r in res)
    for spec in specs:
        assert run_state(spec) == "done" and not (spec.out / ERROR_FILE).exists()
        assert main(["train", "--config", str(spec.out / "config.json"), "--out", str(tmp_path / f"t{spec.seed}")]) == 0
        ours = [json.loads(line) for line in (spec.out / "stats.jsonl").read_text().splitlines()]
        theirs = [json.loads(line) for line in (tmp_path / f"t{spec.seed}/stats.jsonl").read_text().splitlines()]
        assert [list(r) for r in ours] == [list(r) for r in theirs]
        for a, b in zip(ours, theirs):
            for k, v in b.items():
                assert a[k] is None if v is None else a[k] == pytest.approx(v, rel=1e-3, abs=1e-6), k
    assert all(r.skipped for r in run_sweep(specs))


def test_a_diverging_seed_in_a_batch_is_recorded_and_the_others_finish(tmp_path, monkeypatch):
    real = SeedBatch.__init__

    def seed_1_explodes(self, *a, **kw):
        real(self, *a, **kw)
        loss_g = self.loss_g
        self.loss_g = lambda fake: loss_g(fake) * torch.tensor([1e9 if s == 1 else 1.0 for s in self.seeds])
    monkeypatch.setattr(SeedBatch, "__init__", seed_1_explodes)
    specs = plan(tiny(), [0, 1, 2], None, tmp_path / "s")
    res = {r.seed: r for r in run_sweep(specs)}
    assert res[1].error.startswith("TrainingDiverged: loss/g became") and "beyond" in res[1].error
    assert (specs[1].out / ERROR_FILE).read_text().strip() == res[1].error and run_state(specs[1]) == "partial"
    assert res[0].error == res[2].error == "" and run_state(specs[2]) == "done"


# ---- sweeps cut off mid-way (a killed sweep) resume from their checkpoints -------------------------------------------
def _cut(monkeypatch, cls, at: int, fn, *args, **kwargs):
    """Run `fn` with `cls.step` interrupted at iteration `at`: the run folders are left as a kill leaves them,
    at their last checkpoint with stats.jsonl perhaps ahead of it."""
    real = cls.step

    def step_until(self):
        if self.iteration == at:
            raise KeyboardInterrupt
        return real(self)
    with monkeypatch.context() as m:
        m.setattr(cls, "step", step_until)
        with pytest.raises(KeyboardInterrupt):
            fn(*args, **kwargs)


def _checkpoints_equal(a, b):
    ca, cb = (torch.load(p / "checkpoint.pt", weights_only=True) for p in (a, b))
    assert ca["iteration"] == cb["iteration"]
    for name in ca["nets"]:
        for k, v in ca["nets"][name].items():
            assert torch.equal(v, cb["nets"][name][k]), (name, k)
    assert len(ca["snapshots"]) == len(cb["snapshots"]) and ca["history"] == cb["history"]


def test_a_run_cut_off_mid_way_is_continued_not_retrained(tmp_path, monkeypatch):
    from toyviz.engine.trainer import Trainer
    from toyviz.experiments.runs import train_run
    cfg = tiny().replace(**{"optim.iters": 40, "reg.bre.weight": 1.0})
    straight = plan(cfg, [0], None, tmp_path / "a")
    run_sweep(straight)
    cut = plan(cfg, [0], None, tmp_path / "b")
    _cut(monkeypatch, Trainer, 27, train_run, cfg.replace(seed=0), cut[0].out, checkpoint_every=20, quiet=True)
    lines = (straight[0].out / "stats.jsonl").read_text().splitlines(keepends=True)
    with open(cut[0].out / "stats.jsonl", "a") as f:                  # what a kill during a write leaves:
        f.write("".join(lines[20:24]) + lines[24][:30])                # stats ahead of the checkpoint, a cut line,
    (cut[0].out / ".tmp-x.pt").write_bytes(b"half")                    # a temporary file
    assert run_state(cut[0]) == "cut"
    trained = []
    monkeypatch.setattr(Trainer, "step", lambda self, real=Trainer.step: trained.append(self.iteration) or real(self))
    res = run_sweep(cut)
    assert res[0].error == "" and trained[0] == 20 and len(trained) == 20     # steps 21..40 only
    assert (cut[0].out / "stats.jsonl").read_bytes() == (straight[0].out / "stats.jsonl").read_bytes()
    assert not list(cut[0].out.glob(".tmp-*")) and run_state(cut[0]) == "done"
    _checkpoints_equal(straight[0].out, cut[0].out)


def test_a_seed_batch_cut_off_at_different_steps_resumes_bit_for_bit(tmp_path, monkeypatch):
    from toyviz.experiments.runs import train_seed_batch
    cfg = tiny().replace(**{"optim.iters": 40, "reg.bre.weight": 1.0, "reg.bre.layers": [1]})
    seeds = [0, 1, 2, 3, 4]
    straight = plan(cfg, seeds, None, tmp_path / "a")
    run_sweep(straight)
    cut = plan(cfg, seeds, None, tmp_path / "b")
    folders = {s.seed: s.out for s in cut}
    # a kill while the batch wrote its seeds' folders: seeds 0, 1 at step 20, seeds 2, 3 at step 10, seed 4 at 30
    _cut(monkeypatch, SeedBatch, 27, train_seed_batch, cfg, folders, checkpoint_every=10, quiet=True)
    early = {s: tmp_path / "early" / str(s) for s in seeds}
    _cut(monkeypatch, SeedBatch, 15, train_seed_batch, cfg, early, checkpoint_every=10, quiet=True)
    late = {s: tmp_path / "late" / str(s) for s in seeds}
    _cut(monkeypatch, SeedBatch, 35, train_seed_batch, cfg, late, checkpoint_every=10, quiet=True)
    for s, source in ((2, early), (3, early), (4, late)):
        shutil.rmtree(folders[s])
        shutil.copytree(source[s], folders[s])
    assert [RunFolder(folders[s]).checkpoint_step() for s in seeds] == [20, 20, 10, 10, 30]
    assert all(run_state(s) == "cut" for s in cut)
    res = run_sweep(cut)
    assert all(r.error == "" and not r.skipped for r in res)
    # resumed in batches of two: the uninterrupted batch of five's bits, as these tiny products round alike for
    # any number of seeds (at ring8's sizes another split agrees within rounding only: sweep.jobs)
    for a, b in zip(straight[:4], cut[:4]):
        assert (a.out / "stats.jsonl").read_bytes() == (b.out / "stats.jsonl").read_bytes(), a.seed
        _checkpoints_equal(a.out, b.out)
    # seed 4, alone at its step, goes on as one run: the batch's numbers within float rounding (METHODS §9)
    ours, theirs = (RunFolder(s.out).stats() for s in (cut[4], straight[4]))
    assert [r["step"] for r in ours] == list(range(1, 41)) and ours[:30] == theirs[:30]
    for a, b in zip(ours[30:], theirs[30:]):
        for k, v in b.items():
            assert a[k] is None if v is None else a[k] == pytest.approx(v, rel=1e-3, abs=1e-6), k
