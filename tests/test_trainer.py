import math

import numpy as np
import pytest
import torch

import toyviz
from toyviz.engine.trainer import Trainer, TrainingDiverged


def test_step_returns_slash_keyed_floats(tiny_cfg):
    s = Trainer(tiny_cfg).step()
    assert {"loss/d", "loss/g", "step"} <= set(s) and all(isinstance(v, (int, float)) for v in s.values())
    b = Trainer(tiny_cfg.replace(**{"reg.bre.weight": 1.0})).step()
    assert {"reg/bre", "reg/bre/me", "reg/bre/ac", "reg/bre/weighted", "reg/bre/fake/frac09"} <= set(b)


def test_same_seed_identical_other_seed_differs(tiny_cfg):
    a, b = Trainer(tiny_cfg).run(6), Trainer(tiny_cfg).run(6)
    assert a == b
    c = Trainer(tiny_cfg.replace(seed=1)).run(6)
    assert c[-1]["loss/d"] != a[-1]["loss/d"]


def test_resume_is_bit_exact(tiny_cfg, whole_and_resumed):
    full, resumed = whole_and_resumed(tiny_cfg.replace(**{"reg.bre.weight": 1.0, "optim.lr_schedule": "linear"}), 10)
    resumed.run(5)
    assert resumed.history == full.history
    for name in full.nets:
        for (k, v), w in zip(full.nets[name].state_dict().items(), resumed.nets[name].state_dict().values()):
            assert torch.equal(v, w), (name, k)


def test_linear_lr_schedule(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**{"optim.lr_schedule": "linear", "optim.iters": 10, "optim.lr_floor": 1e-6}))
    lrs = [s["lr/g"] for s in t.run(10)]
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[5] == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)
    assert lrs == sorted(lrs, reverse=True)


def test_snapshots_are_bounded_and_thinned(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**{"viz.snapshot_every": 1, "viz.max_snapshots": 8}))
    t.run(40)
    its = [s["iteration"] for s in t.snapshots]
    assert len(its) <= 8 and its[0] == 0 and its == sorted(its)
    gaps = np.diff(its)
    assert gaps.max() <= 2 * gaps.min() * 2


def test_load_snapshot_restores_weights(tiny_cfg):
    t = Trainer(tiny_cfg)
    w0 = t.D.hidden[0].weight.detach().clone()
    t.run(4)
    assert not torch.equal(w0, t.D.hidden[0].weight)
    t.load_snapshot(0)
    assert torch.equal(w0, t.D.hidden[0].weight)


def test_nan_stops_with_the_step_and_keeps_snapshots(tiny_cfg):
    t = Trainer(tiny_cfg)
    t.run(2)
    before = {k: v.clone() for k, v in t.D.state_dict().items()}
    n_snap = len(t.snapshots)
    with torch.no_grad():
        t.G.mlp.out.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="became nan at step 3"):
        t.step()
    assert t.iteration == 2 and len(t.snapshots) == n_snap
    for k, v in t.D.state_dict().items():
        assert torch.equal(v, before[k])


def test_metrics_logged_and_sample(tiny_cfg):
    t = Trainer(tiny_cfg)
    hist = t.run(5)
    assert "eval/modes" in hist[4] and "eval/modes" not in hist[3]
    x = t.sample(100)
    assert x.shape == (100, 2) and isinstance(x, np.ndarray)
    np.testing.assert_array_equal(x, t.sample(100))


def test_load_refuses_garbage_and_other_architectures(tiny_cfg, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a toyviz checkpoint"):
        Trainer.load(tmp_path / "junk.pt")
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a toyviz checkpoint"):
        Trainer.load(tmp_path / "other.pt")
    t = Trainer(tiny_cfg)
    t.save(tmp_path / "ck.pt")
    with pytest.raises(ValueError, match="networks differ"):
        Trainer.load(tmp_path / "ck.pt", expect=tiny_cfg.replace(**{"nets.d.width": 32}))


def test_run_progress_and_abort(tiny_cfg):
    t = Trainer(tiny_cfg)
    seen = []
    t.run(10, progress_fn=lambda i, n, s: seen.append((i, n)), abort_fn=lambda: len(seen) >= 3)
    assert seen == [(1, 10), (2, 10), (3, 10)] and t.iteration == 3


def test_bre_trains_on_the_paper_toy():
    cfg = toyviz.presets.get("bre-toy-bre").replace(**{"optim.iters": 30})
    hist = Trainer(cfg).run(30)
    assert all(math.isfinite(s["loss/d"]) for s in hist)
    assert hist[-1]["reg/bre/weighted"] < hist[0]["reg/bre/weighted"]   # λ decays linearly to 0


def test_bre_monitors_are_logged_on_the_first_and_the_evaluation_steps(tiny_cfg):
    cfg = tiny_cfg.replace(**{"reg.bre.weight": 1.0, "viz.metrics_every": 3, "optim.iters": 5})
    hist = Trainer(cfg).run(5)
    with_monitors = [s["step"] for s in hist if "reg/bre/fake/frac09" in s]
    evaluated = [s["step"] for s in hist if "eval/modes" in s]
    assert with_monitors == [1, 3, 5] and evaluated == [3, 5]
    assert all("reg/bre/me" in s for s in hist)


def test_trainers_built_in_eight_threads_at_once_match_a_lone_build(tiny_cfg):
    import threading
    cfg = tiny_cfg.replace(**{"nets.d.width": 64, "nets.g.width": 64})
    lone = Trainer(cfg).state_of_nets()
    built, start = [None] * 8, threading.Barrier(8)

    def build(i):
        start.wait()
        built[i] = Trainer(cfg).state_of_nets()

    threads = [threading.Thread(target=build, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for nets in built:
        for name, sd in lone.items():
            for key, w in sd.items():
                assert torch.equal(nets[name][key], w), (name, key)
