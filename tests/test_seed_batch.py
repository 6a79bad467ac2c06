"""Seeds as one batch (engine.seed_batch, runs.train_seed_batch, `train --seeds`): each seed's numbers, weights,
optimizer state, random streams, snapshots and run folder are those of its own run within float rounding; a seed
that diverges stops alone, rolled back as its Trainer would be; what cannot be batched is refused by name.

Tolerances: the batched products sum in another order than one run's, so numbers agree to float rounding, which
training then amplifies; BRE amplifies it most: its soft sign's derivative ε/(|h|+ε)² peaks sharply at h = 0, so
its gradients, and Adam's moments that average them, move by up to tens of percent within 20 steps when the
rounding moves a pre-activation near 0 (a one-ulp change of D's initial weights moves a single run's as much).
Moments are therefore compared after 20 steps without BRE, and after one step with it; weights and stats always."""
import json
import math
import re
from typing import Optional

import pytest
import torch

from toyviz.commands.cli import main
from toyviz.commands.seed_batches import parse_seeds
from toyviz.engine import presets
from toyviz.engine.losses import LOSSES
from toyviz.engine.run_folder import RunFolder
from toyviz.engine.seed_batch import SeedBatch, refusal
from toyviz.engine.stacked import SEED_LOSSES
from toyviz.engine.trainer import Trainer
from toyviz.experiments.runs import ERROR_FILE, seed_folders, train_seed_batch
from toyviz.geometry.metrics import RegionMetrics

TINY = {"nets.g.width": 8, "nets.d.width": 8, "optim.batch_size": 16, "optim.iters": 20,
        "viz.eval_samples": 64, "viz.metrics_every": 5, "viz.snapshot_every": 3}
TINY_ARGS = [a for k, v in TINY.items() if k != "optim.iters" for a in ("--set", f"{k}={v}")] + ["--iters", "20"]
REL = {"ring8": 1e-5, "ring8-bre": 1e-3, "bre-toy-bre": 1e-3}      # stats and weights, relative


def tiny(name: str, **extra):
    return presets.get(name).replace(**TINY, **extra)


def assert_same_run(a: Trainer, b: Trainer, rel: float, moments: Optional[float] = None) -> None:
    """b (from a batch) is run a within `rel`: stats (keys in order), weights, Adam's steps (and its moments within
    `moments` of each tensor's norm, when given), random streams, snapshots."""
    assert a.iteration == b.iteration and len(a.history) == len(b.history)
    for ra, rb in zip(a.history, b.history):
        assert list(ra) == list(rb)
        for k, v in ra.items():
            if math.isfinite(v):
                assert rb[k] == pytest.approx(v, rel=rel, abs=1e-6), (ra["step"], k)
            else:
                assert rb[k] == v
    for name in a.nets:
        for p, q in zip(a.nets[name].parameters(), b.nets[name].parameters()):
            torch.testing.assert_close(q, p, rtol=rel, atol=100 * rel * 1e-3)
        sa, sb = a.optims[name].state_dict(), b.optims[name].state_dict()
        assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
        for k, st in sa["state"].items():
            assert st["step"] == sb["state"][k]["step"]
            for m in ("exp_avg", "exp_avg_sq") if moments is not None else ():
                assert (sb["state"][k][m] - st[m]).norm() <= moments * st[m].norm() + 1e-12, (name, k, m)
    for k, v in a.rngs.state_dict().items():
        assert torch.equal(v, b.rngs.state_dict()[k])
    assert [s["iteration"] for s in a.snapshots] == [s["iteration"] for s in b.snapshots]


@pytest.mark.parametrize("name", ["ring8", "ring8-bre", "bre-toy-bre"])
def test_each_seed_is_its_own_run(name):
    cfg = tiny(name)
    batch = SeedBatch(cfg, [0, 1])
    batch.run(20)
    for seed in (0, 1):
        run = Trainer(cfg.replace(seed=seed))
        run.run(20)
        assert_same_run(run, batch.trainer(seed), REL[name], moments=1e-4 if name == "ring8" else None)


@pytest.mark.parametrize("name", ["ring8-bre", "bre-toy-bre"])
def test_one_bre_step_moves_adam_as_its_run_does(name):
    cfg = tiny(name)
    batch = SeedBatch(cfg, [0, 1])
    batch.step()
    for seed in (0, 1):
        run = Trainer(cfg.replace(seed=seed))
        run.step()
        assert_same_run(run, batch.trainer(seed), 1e-5, moments=1e-4)


@pytest.mark.parametrize("overrides", [{"nets.pack": 4}, {"reg.real_target": 0.9, "loss": "minimax"},
                                       {"loss": "lsgan", "optim.d_steps": 2},
                                       {"reg.bre.weight": 1.0, "reg.bre.samples": ["fake", "real"], "loss": "hinge"},
                                       {"loss": "wgan", "reg.gp_weight": 10.0, "optim.d_steps": 2},
                                       {"reg.bre.weight": 1.0, "reg.bre.samples": ["interp"], "reg.gp_weight": 1.0},
                                       {"nets.minibatch_kernels": 4, "nets.minibatch_dims": 3},
                                       {"reg.unrolled_steps": 3, "nets.pack": 2}])
def test_batched_techniques_match_their_runs(overrides):
    cfg = tiny("ring8", **overrides)
    batch = SeedBatch(cfg, [2, 5])
    batch.run(8)
    run = Trainer(cfg.replace(seed=5))
    run.run(8)
    assert_same_run(run, batch.trainer(5), 1e-3)


@pytest.mark.parametrize("name", list(LOSSES))
def test_per_seed_losses_are_the_losses_of_each_seed(name):
    real, fake = torch.randn(3, 16, 1), torch.randn(3, 16, 1)
    d, g = SEED_LOSSES[name]
    for s in range(3):
        torch.testing.assert_close(d(real, fake, 0.9)[s], LOSSES[name].d(real[s], fake[s], 0.9))
        torch.testing.assert_close(g(fake)[s], LOSSES[name].g(fake[s]))


def test_what_cannot_be_batched_is_refused_by_name():
    for name in ("ring8", "ring8-bre", "bre-toy", "bre-toy-bre", "ring8-pac4", "ring8-smooth", "grid25-bre",
                 "ring8-mbd", "ring8-wgan-gp", "ring8-unrolled"):
        assert refusal(presets.get(name)) is None, name
    named = {"ring8-sn": "spectral normalization", "ring8-vbn": "virtual batch norm", "ring8-semi": "K+1",
             "ring8-modereg": "mode regularizers", "ring8-mdgan": "MDGAN", "ring8-fm": "feature matching",
             "ring8-ha": "historical averaging"}
    for preset, technique in named.items():
        reason = refusal(presets.get(preset))
        assert reason is not None and technique in reason and "\n" not in reason, preset
        with pytest.raises(ValueError, match=re.escape(technique)):
            SeedBatch(presets.get(preset), [0, 1])


def _nan_at(fn, call: int, index: int):
    """fn (a per-seed loss (S,)) whose `call`-th call returns NaN for the seed at batch index `index`."""
    calls = []

    def wrapped(*a):
        calls.append(1)
        out = fn(*a)
        if len(calls) == call:
            out = out.clone()
            out[index] = float("nan")
        return out
    return wrapped


@pytest.mark.parametrize("phase", ["d", "g"])
def test_a_diverging_seed_stops_alone_rolled_back_like_its_run(phase, tmp_path, monkeypatch):
    cfg = tiny("ring8-bre")
    run = Trainer(cfg.replace(seed=1), callbacks=[RegionMetrics()])
    run.run(3)                                          # where the diverged seed's run stops: step 3
    real = SeedBatch.__init__

    def with_nan(self, *a, **kw):
        real(self, *a, **kw)
        if phase == "d":
            self.loss_d = _nan_at(self.loss_d, 4, 1)
        else:
            self.loss_g = _nan_at(self.loss_g, 4, 1)
    monkeypatch.setattr(SeedBatch, "__init__", with_nan)
    folders = seed_folders(tmp_path, [0, 1])
    batch = train_seed_batch(cfg, folders, quiet=True)
    assert batch.seeds == [0] and list(batch.failed) == [1]
    assert batch.failed[1] == f"TrainingDiverged: loss/{phase} became nan at step 4; the weights are those of step 3"
    assert (folders[1] / ERROR_FILE).read_text() == batch.failed[1] + "\n"
    assert_same_run(run, RunFolder(folders[1]).trainer(), 1e-3)                # its folder: the last finite step
    assert not (folders[0] / ERROR_FILE).exists()
    alone = Trainer(cfg.replace(seed=0), callbacks=[RegionMetrics()])       # as train_seed_batch's seeds
    alone.run(20)
    assert_same_run(alone, RunFolder(folders[0]).trainer(), 1e-3)             # the other seed went on


def test_train_seeds_writes_a_normal_run_folder_per_seed(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["train", "--preset", "ring8-bre", *TINY_ARGS, "--seeds", "0-1", "--out", str(out)]) == 0
    assert main(["train", "--preset", "ring8-bre", *TINY_ARGS, "--seed", "1", "--out", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert "ring8-bre seed 0: step 20: modes" in printed and f"-> {out / 'seed-1'}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["seed-0", "seed-1"]
    single, batched = RunFolder(tmp_path / "s"), RunFolder(out / "seed-1")
    assert batched.config().to_dict() == single.config().to_dict()
    assert RunFolder(out / "seed-0").config().seed == 0
    rows, ref = batched.stats(), single.stats()
    assert [list(r) for r in rows] == [list(r) for r in ref]
    assert any(k.startswith("regions/l") for k in rows[-1]) and any(k.startswith("div/") for k in rows[4])
    for r, s in zip(rows, ref):
        for k, v in s.items():
            assert r[k] == pytest.approx(v, rel=1e-3, abs=1e-6) if v is not None else r[k] is None, k
    t = batched.trainer()
    assert t.iteration == 20 and [s["iteration"] for s in t.snapshots] == [0, 3, 6, 9, 12, 15, 18]
    assert main(["export", str(out / "seed-0"), "--out", str(tmp_path / "x.mp4"), "--size", "96x96"]) == 0
    assert (tmp_path / "x.mp4").stat().st_size > 0


def test_train_seeds_bad_input_and_fallback(tmp_path, capsys):
    out = tmp_path / "m"
    for bad, message in ((["--seeds", "0-1", "--seed", "3"], "--seed may not be given"),
                         (["--seeds", "1-0"], "range"), (["--seeds", "0,0"], "named twice")):
        assert main(["train", "--preset", "ring8", *TINY_ARGS, *bad, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()
    assert main(["train", "--preset", "ring8-ha", *TINY_ARGS, "--iters", "4", "--seeds", "0,1", "--out",
                 str(out)]) == 0
    err = capsys.readouterr().err
    assert "historical averaging" in err and "one after another" in err
    assert json.loads((out / "seed-1" / "config.json").read_text())["seed"] == 1
    assert main(["train", "--preset", "ring8", *TINY_ARGS, "--seeds", "1", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("7") == [7]
    assert parse_seeds("0,2,5-7") == [0, 2, 5, 6, 7]
    for bad in ("", "a", "3-1", "-1", "1,1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
