"""`toyviz train --resume DIR`: a run stopped after a checkpoint (interrupted, or killed with SIGKILL) and resumed
equals the uninterrupted run, stats.jsonl line for line and weights bit for bit; stats that ran ahead of the
checkpoint and temporary files are tidied; the run folder's own config is kept."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from toyviz.commands.cli import main
from toyviz.engine.run_folder import RunFolder
from toyviz.engine.trainer import Trainer

# the BRE paper's toy (linear learning-rate schedule), evaluated and snapshotted inside each segment
TINY = ["--preset", "bre-toy", "--set", "viz.metrics_every=15", "--set", "viz.snapshot_every=5",
        "--set", "viz.eval_samples=200", "--set", "reg.bre.weight=1.0"]


def _same(a, b) -> bool:
    """Nested dicts / lists / tensors / numbers equal exactly (NaN equal to NaN)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.shape == b.shape and torch.equal(a.nan_to_num(), b.nan_to_num())
    return a == b or (a != a and b != b)


def _assert_same_run(a, b):
    assert (a / "stats.jsonl").read_bytes() == (b / "stats.jsonl").read_bytes()
    assert (a / "config.json").read_bytes() == (b / "config.json").read_bytes()
    ca, cb = (torch.load(p / "checkpoint.pt", weights_only=True) for p in (a, b))
    for key in ("iteration", "nets", "optims", "rngs", "history", "snapshots", "snapshot_every", "half_step"):
        assert _same(ca[key], cb[key]), key


@pytest.fixture
def straight(tmp_path):
    """The uninterrupted 40-step run, written every 20 steps."""
    out = tmp_path / "straight"
    assert main(["train", *TINY, "--iters", "40", "--checkpoint-every", "20", "--out", str(out)]) == 0
    return out


def _interrupted_at(tmp_path, monkeypatch, step: int):
    """The same run stopped by Ctrl-C during step `step` + 1 (after its checkpoint at step 20)."""
    out = tmp_path / "interrupted"
    real_step = Trainer.step

    def step_until(self):
        if self.iteration == step:
            raise KeyboardInterrupt
        return real_step(self)
    monkeypatch.setattr(Trainer, "step", step_until)
    assert main(["train", *TINY, "--iters", "40", "--checkpoint-every", "20", "--out", str(out)]) == 130
    monkeypatch.setattr(Trainer, "step", real_step)
    assert RunFolder(out).trainer().iteration == 20
    return out


def test_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, straight, capsys):
    out = _interrupted_at(tmp_path, monkeypatch, 27)
    assert len(RunFolder(out).stats()) == 20
    assert main(["train", "--resume", str(out)]) == 0
    assert "step 40" in capsys.readouterr().out
    _assert_same_run(straight, out)
    resumed = RunFolder(out).stats()
    assert "regions/l1" in resumed[29] and "div/grad_dirs" in resumed[29]     # RegionMetrics kept on resume
    assert [s["lr/g"] for s in resumed] == [s["lr/g"] for s in RunFolder(straight).stats()]


def test_resume_cuts_stats_back_to_the_checkpoint_and_removes_temporary_files(tmp_path, monkeypatch, straight):
    out = _interrupted_at(tmp_path, monkeypatch, 27)
    lines = (straight / "stats.jsonl").read_text().splitlines(keepends=True)
    (out / "stats.jsonl").write_text("".join(lines[:24]))       # stats written, then killed before the checkpoint
    (out / ".tmp-k3j2.pt").write_bytes(b"half a checkpoint")
    (out / ".tmp-x9.jsonl").write_text('{"step": 2')

    def interrupt(self, n, progress_fn=None, abort_fn=None):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:                                     # tidied before the first step
        m.setattr(Trainer, "run", interrupt)
        assert main(["train", "--resume", str(out)]) == 130
    assert (out / "stats.jsonl").read_text() == "".join(lines[:20]) and not list(out.glob(".tmp-*"))
    (out / ".tmp-k3j2.pt").write_bytes(b"half a checkpoint")
    assert main(["train", "--resume", str(out), "--checkpoint-every", "7"]) == 0
    assert not list(out.glob(".tmp-*"))
    _assert_same_run(straight, out)


def test_resume_with_iters_makes_a_run_of_that_length(tmp_path, straight):
    out = tmp_path / "short"
    assert main(["train", *TINY, "--iters", "20", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--iters", "30"]) == 0
    folder = RunFolder(out)
    assert folder.config().optim.iters == 30 and len(folder.stats()) == 30 and folder.trainer().iteration == 30
    assert main(["train", "--resume", str(out)]) == 0                  # complete: nothing to train
    assert len(folder.stats()) == 30


@pytest.mark.parametrize("extra,match", [
    (["--preset", "ring8"], "--resume continues the run folder's own config: --preset may not be given"),
    (["--set", "optim.lr_d=1"], "--set may not be given"),
    (["--config", "c.json"], "--config may not be given"),
    (["--seed", "3"], "--seed may not be given"),
    (["--iters", "10"], "--iters 10 is before the checkpoint's step 20"),
    (["--out", "elsewhere"], "leave out --out"),
])
def test_resume_refuses_what_would_change_the_run(tmp_path, capsys, extra, match, monkeypatch):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--iters", "20", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["train", "--resume", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_of_a_folder_without_a_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "holds no run to continue (checkpoint.pt is missing)" in capsys.readouterr().err


def test_a_run_killed_midway_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL once the first checkpoint exists (the kill may land in any write), then resume."""
    args = [*TINY, "--iters", "300", "--checkpoint-every", "10"]
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    proc = subprocess.Popen([sys.executable, "-m", "toyviz", "train", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (killed / "checkpoint.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert RunFolder(killed).trainer().iteration < 300                    # killed midway
    assert main(["train", "--resume", str(killed)]) == 0
    assert main(["train", *args, "--out", str(straight)]) == 0
    _assert_same_run(straight, killed)
