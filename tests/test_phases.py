"""toyviz.engine.phases: the trainer contract both trainers share — D and G halves callable alone with a defined
counter, schedule and snapshot rule, that state in checkpoints, statistics read after the step, one regularizer
registry for the toy and the image trainer, and run folders written before the contract existed still loading."""
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from toyviz.engine import regularizers
from toyviz.engine.config import ConfigRenamed
from toyviz.engine.run_folder import RunFolder
from toyviz.engine.trainer import Trainer
from toyviz.image.config import ImageConfig
from toyviz.image.run import ImageRunFolder
from toyviz.image.trainer import ImageTrainer

DATA = Path(__file__).parent / "data"
IMAGE_TINY = {"data.image_size": 16, "nets.width": 4, "nets.latent_dim": 8, "optim.batch_size": 8,
              "eval.metrics_every": 1000, "eval.samples": 40, "eval.missing_mass_steps": 0}


def _weights(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_d_half_then_g_half_is_a_step(tiny_cfg):
    cfg = tiny_cfg.replace(**{"reg.bre.weight": 1.0})
    whole, halves = Trainer(cfg), Trainer(cfg)
    for _ in range(6):
        expected = whole.step()
        halves.step_d()
        assert halves.step_g() == expected
    assert _same(_weights(whole.D), _weights(halves.D)) and _same(_weights(whole.G), _weights(halves.G))
    assert [s["iteration"] for s in whole.snapshots] == [s["iteration"] for s in halves.snapshots]


def test_a_d_half_moves_d_only_and_a_g_half_moves_g_only(tiny_cfg):
    t = Trainer(tiny_cfg)
    t.step()
    g0, d0, lr0 = _weights(t.G), _weights(t.D), t.optims["D"].param_groups[0]["lr"]
    assert t.half_step("d") is None
    assert t.iteration == 1 and _same(g0, _weights(t.G)) and not _same(d0, _weights(t.D))
    assert t.optims["D"].param_groups[0]["lr"] == lr0                      # the schedule reads the counter
    d1 = _weights(t.D)
    stats = t.half_step("g")
    assert stats["step"] == 2 and t.iteration == 2
    assert _same(d1, _weights(t.D)) and not _same(g0, _weights(t.G))
    t.step_g()                                                             # a G half with no D half before it
    assert t.iteration == 3 and _same(d1, _weights(t.D))


def test_checkpoint_between_the_halves_resumes_exactly(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(**{"reg.mode_lambda1": 0.2, "reg.mode_lambda2": 0.4})
    full = Trainer(cfg)
    full.run(3)
    expected = full.step()
    cut = Trainer(cfg)
    cut.run(3)
    cut.step_d()
    cut.save(tmp_path / "ck.pt")
    resumed = Trainer.load(tmp_path / "ck.pt")
    assert resumed.d_phases == 1 and resumed.pending_real is not None
    assert resumed.step_g() == expected
    for name in ("G", "D", "E"):
        assert _same(_weights(full.nets[name]), _weights(resumed.nets[name]))


def test_mdgan_halves_are_refused_with_the_reason(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**{"reg.mdgan": True}))
    with pytest.raises(ValueError, match="MDGAN's two halves each update D and G"):
        t.half_step("d")
    with pytest.raises(ValueError, match="player must be 'd' or 'g'"):
        Trainer(tiny_cfg).half_step("x")


def test_statistics_are_read_after_the_step(tiny_cfg, monkeypatch):
    """Inside the phases the stats are tensors; the step returns floats, the same values."""
    seen = {}
    t = Trainer(tiny_cfg.replace(**{"reg.bre.weight": 1.0}))
    original = t._read

    def spy(stats):
        seen.update(stats)
        return original(stats)
    monkeypatch.setattr(t, "_read", spy)
    out = t.step()
    assert isinstance(seen["loss/d"], torch.Tensor) and isinstance(seen["reg/bre/me"], torch.Tensor)
    assert all(isinstance(v, float) for k, v in out.items() if k != "step") and out["step"] == 1
    assert out["loss/d"] == float(seen["loss/d"])


class _Probe(regularizers.Regularizer):
    """A regularizer added the way the README says (a class in the registry), with a constant weight."""
    name, player = "probe", "d"

    def weight(self, cfg, iteration):
        return 0.5

    def __call__(self, ctx):
        out = ctx.D(ctx.fake)
        return out.pow(2).mean(), {"fake_mean": out.mean().detach()}


def test_one_registry_serves_both_trainers(tiny_cfg, monkeypatch):
    monkeypatch.setattr(regularizers, "REGISTRY", [*regularizers.REGISTRY, _Probe()])
    monkeypatch.setattr("toyviz.engine.phases.REGISTRY", regularizers.REGISTRY)
    toy = Trainer(tiny_cfg).step()
    image = ImageTrainer(ImageConfig().replace(**IMAGE_TINY)).step()
    for stats in (toy, image):
        assert stats["reg/probe/weighted"] == pytest.approx(0.5 * stats["reg/probe"])
        assert "reg/probe/fake_mean" in stats


def test_image_mdgan_runs_the_toys_manifold_and_diffusion_phases():
    t = ImageTrainer(ImageConfig().replace(**{**IMAGE_TINY, "reg.mdgan": True}))
    stats = t.step()
    assert {"loss/d", "loss/g_manifold", "reg/mdgan/geometric", "loss/d2", "loss/g"} <= set(stats)


def test_a_toy_run_folder_from_before_the_contract_loads_and_trains_on(tmp_path):
    run = shutil.copytree(DATA / "legacy-toy-run", tmp_path / "run")
    t = RunFolder(run).trainer()
    assert t.iteration == 20 and t.d_phases == 0 and len(t.history) == 20
    t.run(2)
    assert t.iteration == 22


def test_an_image_run_folder_with_old_names_loads_with_a_note(tmp_path):
    run = shutil.copytree(DATA / "legacy-image-run", tmp_path / "run")
    with pytest.warns(ConfigRenamed, match="eval.every is now called eval.metrics_every"):
        cfg = ImageRunFolder(run).config()
    assert cfg.eval.metrics_every == 5 and cfg.reg.bre.layers == "all_but_first"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigRenamed)
        t = ImageRunFolder(run).trainer()
    assert t.iteration == 5
    stats = t.step()
    assert stats["step"] == 6 and "reg/bre" in stats


def test_an_old_name_on_the_command_line_is_read_with_a_one_line_note(tmp_path, capsys):
    from toyviz.commands.image import main
    run = shutil.copytree(DATA / "legacy-image-run", tmp_path / "run")
    assert main(["train", "--resume", "--out", str(run), "--iters", "6", "--quiet"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes and all(line.startswith("toyviz.image: note: the config field eval.every") for line in notes)
    assert ImageRunFolder(run).config().eval.metrics_every == 5        # rewritten under the new name
