"""Divergence (phases.py, the command lines): a loss that is NaN, infinite or beyond ±MAX_LOSS raises
TrainingDiverged with the trainer rolled back to the start of the iteration (D's update of that iteration undone,
so "the weights are those of step N" holds for both players); `toyviz train` and `toyviz.image train` then print
one line, leave the last finite step in the run folder and exit 3."""
import dataclasses
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from toyviz.commands import image as image_cli
from toyviz.commands.cli import main
from toyviz.engine import phases
from toyviz.engine.run_folder import RunFolder
from toyviz.engine.trainer import Trainer, TrainingDiverged
from toyviz.image.config import ImageConfig
from toyviz.image.run import ImageRunFolder
from toyviz.image.trainer import ImageTrainer

HUGE_LR = ["--set", "optim.lr_d=1e6", "--set", "optim.lr_g=1e6"]
IMAGE_TINY = {"data.image_size": 16, "nets.width": 4, "nets.latent_dim": 8, "optim.batch_size": 8,
              "eval.metrics_every": 1000, "eval.samples": 40, "eval.missing_mass_steps": 0}


def _state(t) -> dict:
    """Everything a step changes: every net's weights and buffers, the optimizers, the random streams."""
    return {"nets": {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in t.nets.items()},
            "optims": {n: {p: {k: v.clone() for k, v in st.items()} for p, st in o.state_dict()["state"].items()}
                       for n, o in t.optims.items()},
            "rngs": t.rngs.state_dict(), "reg_state": {k: v.clone() for k, v in t.reg_state.items()}}


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return torch.equal(a, b)


def _nan_after(fn, calls_before_nan: int):
    """`fn` whose result (or its result's first item, the loss) is NaN from its (calls_before_nan + 1)-th call."""
    calls = []

    def wrapped(*a, **kw):
        calls.append(1)
        out = fn(*a, **kw)
        if len(calls) <= calls_before_nan:
            return out
        return (out[0] * float("nan"), *out[1:]) if isinstance(out, tuple) else out * float("nan")
    return wrapped


def test_a_nan_g_loss_undoes_the_d_update_of_its_iteration(tiny_cfg, monkeypatch):
    t = Trainer(tiny_cfg.replace(**{"reg.historical_averaging": 0.1}))      # reg_state moves too
    t.run(3)
    before = _state(t)
    seen = {}

    def g_objective(real, fake, fake_out):                                 # called after this iteration's D update
        seen["D moved"] = not _same(before["nets"]["D"], _state(t)["nets"]["D"])
        return fake_out.mean() * float("nan")
    monkeypatch.setattr(t, "g_objective", g_objective)
    with pytest.raises(TrainingDiverged, match=r"^loss/g became nan at step 4; the weights are those of step 3$") \
            as e:
        t.step()
    assert seen["D moved"] and e.value.trainer is t
    assert t.iteration == 3 and len(t.history) == 3 and t.d_phases == 0 and t.pending_real is None
    assert _same(before, _state(t))
    monkeypatch.undo()                                                     # and training goes on as if nothing
    again = Trainer(tiny_cfg.replace(**{"reg.historical_averaging": 0.1}))
    again.run(4)
    assert t.step() == again.history[3]


def test_a_nan_in_the_second_d_phase_undoes_the_first(tiny_cfg, monkeypatch):
    t = Trainer(tiny_cfg.replace(**{"optim.d_steps": 2}))
    t.run(2)
    before = _state(t)
    monkeypatch.setattr(t, "d_objective", _nan_after(t.d_objective, 1))
    with pytest.raises(TrainingDiverged, match="loss/d became nan at step 3"):
        t.step()
    assert _same(before, _state(t))


def test_mdgan_rolls_back_every_net(tiny_cfg, monkeypatch):
    t = Trainer(tiny_cfg.replace(**{"reg.mdgan": True}))
    t.run(2)
    before = _state(t)
    assert set(before["nets"]) == {"G", "D", "E", "D2"}
    # the manifold step's G loss stays finite, the diffusion step's is NaN: D, D2, G and E have all moved by then
    monkeypatch.setattr(t, "loss", dataclasses.replace(t.loss, g=_nan_after(t.loss.g, 1)))
    with pytest.raises(TrainingDiverged, match="loss/g became nan at step 3"):
        t.step()
    assert _same(before, _state(t))


def test_the_image_trainer_rolls_back_d_and_gs_batch_norm_statistics(monkeypatch):
    t = ImageTrainer(ImageConfig().replace(**IMAGE_TINY))
    t.step()
    before = _state(t)
    assert any("running_mean" in k for k in before["nets"]["G"])       # G's forward in the D half moves these
    monkeypatch.setattr(t, "g_objective", lambda real, fake, fake_out: fake_out.mean() * float("inf"))
    with pytest.raises(TrainingDiverged, match="loss/g became inf at step 2; the weights are those of step 1"):
        t.step()
    assert _same(before, _state(t))


def test_a_finite_explosion_is_divergence_too(tiny_cfg, monkeypatch):
    t = Trainer(tiny_cfg.replace(**{"optim.lr_d": 1e6, "optim.lr_g": 1e6}))
    with pytest.raises(TrainingDiverged, match=r"became \S+e\+\d+ \(beyond ±1e\+06\) at step (\d+)"):
        t.run(20)
    monkeypatch.setattr(phases, "MAX_LOSS", 0.5)                         # the bound is the module's constant
    with pytest.raises(TrainingDiverged, match=r"^loss/d became 1\.\d+ \(beyond ±0\.5\) at step 1; the weights "
                                               r"are those of step 0$"):
        Trainer(tiny_cfg).step()


def test_a_g_half_resumed_between_the_halves_says_what_d_holds(tiny_cfg, tmp_path, monkeypatch):
    t = Trainer(tiny_cfg)
    t.run(2)
    t.step_d()
    t.save(tmp_path / "half.pt")
    back = Trainer.load(tmp_path / "half.pt")
    monkeypatch.setattr(back, "g_objective", lambda real, fake, fake_out: fake_out.mean() * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"those of step 2 \(D's: after the D half of step 3, taken before"):
        back.step_g()


def test_train_exits_3_with_one_line_and_keeps_the_last_finite_step(tmp_path, capsys, tiny_cfg):
    out = tmp_path / "run"
    assert main(["train", "--preset", "ring8", "--iters", "20", *HUGE_LR, "--out", str(out)]) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"toyviz: diverged: loss/d became 5.6e+27 (beyond ±1e+06) at step 2; the weights are those of "
                   f"step 1; {out} holds step 1")
    folder = RunFolder(out)
    assert [s["step"] for s in folder.stats()] == [1] and folder.config().optim.lr_d == 1e6
    kept = folder.trainer()
    one = Trainer(kept.cfg)
    one.step()
    assert _same(_state(one)["nets"], _state(kept)["nets"]) and _same(_state(one)["optims"], _state(kept)["optims"])
    assert main(["train", "--resume", str(out)]) == 3                  # the same divergence, at the same step
    assert capsys.readouterr().err.strip().splitlines()[-1] == err


def test_train_help_documents_the_exit_codes():
    r = subprocess.run([sys.executable, "-m", "toyviz", "train", "--help"], capture_output=True, text=True)
    assert "3  training diverged" in r.stdout and "2  bad input" in r.stdout


def test_train_subprocess_diverging_exits_3_without_a_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "toyviz", "train", "--preset", "bre-toy", "--iters", "5", *HUGE_LR,
                        "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("toyviz: diverged: loss/g became") and last.endswith(f"{tmp_path / 'run'} holds step 0")
    assert RunFolder(tmp_path / "run").trainer().iteration == 0


def test_image_train_exits_3_and_keeps_the_last_finite_step(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        iio.imwrite(folder / f"{i}.png", rng.integers(0, 256, (16, 16, 3)).astype(np.uint8))
    out = tmp_path / "run"
    args = ["train", "--dataset", "folder", "--set", f"data.path={folder}", "--size", "16", "--set", "nets.width=4",
            "--set", "nets.latent_dim=8", "--set", "optim.batch_size=8", "--set", "eval.samples=40",
            "--set", "eval.missing_mass_steps=0", "--iters", "20", "--quiet", *HUGE_LR, "--out", str(out)]
    assert image_cli.main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("toyviz.image: diverged: loss/")
    step = ImageRunFolder(out).trainer().iteration
    assert err[0].endswith(f"the weights are those of step {step}; {out} holds step {step}")
    assert len(ImageRunFolder(out).stats()) == step
    r = subprocess.run([sys.executable, "-m", "toyviz.image", "train", "--help"], capture_output=True, text=True)
    assert "3  training diverged" in r.stdout
