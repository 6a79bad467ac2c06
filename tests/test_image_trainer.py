"""toyviz.image.trainer: every technique trains a few finite steps on 16×16 digits; determinism, exact resume,
linear lr decay, d-steps per g-step, the K+1 classifier's accuracy."""
import math

import pytest
import torch

from toyviz.image.config import ImageConfig
from toyviz.image.trainer import ImageTrainer

TINY = {"data.image_size": 16, "nets.width": 4, "nets.latent_dim": 8, "optim.batch_size": 8, "optim.iters": 100,
        "eval.metrics_every": 1000, "eval.samples": 40}

TECHNIQUES = {
    "dcgan": {},
    "bre": {"reg.bre.weight": 1.0},
    "bre-code-variants": {"reg.bre.weight": 1.0, "reg.bre.interp": "code", "reg.bre.pairs": "code",
                          "reg.bre.samples": ["real", "fake"], "reg.bre.layers": "all"},
    "feature-matching": {"reg.feature_matching": 1.0},
    "minibatch-discrimination": {"nets.minibatch_kernels": 6},
    "historical-averaging": {"reg.historical_averaging": 0.1},
    "label-smoothing": {"reg.real_target": 0.9},
    "vbn": {"nets.g_norm": "vbn"},
    "wgan-gp": {"loss": "wgan", "reg.gp_weight": 10.0, "nets.d_norm": "layer"},
    "mode-regularizers": {"reg.mode_lambda1": 0.2, "reg.mode_lambda2": 0.4},
    "mdgan": {"reg.mdgan": True},
    "semi-supervised": {"reg.semi_supervised": True, "reg.feature_matching": 1.0,
                        "reg.feature_matching_replace": True},
    "spectral-norm-hinge": {"nets.d_spectral_norm": True, "loss": "hinge", "nets.d_norm": "none"},
}

EXPECTED_KEYS = {"bre": "reg/bre/interp/ac", "feature-matching": "reg/fm", "historical-averaging": "reg/ha_g",
                 "wgan-gp": "reg/gp/grad_norm", "mode-regularizers": "reg/mode/geometric", "mdgan": "loss/d2",
                 "semi-supervised": "loss/d_supervised"}


def _trainer(**kw):
    return ImageTrainer(ImageConfig().replace(**{**TINY, **kw}))


@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_each_technique_trains_finite(name):
    t = _trainer(**TECHNIQUES[name])
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    stats = t.run(3)
    assert all(math.isfinite(v) for s in stats for v in s.values())
    assert EXPECTED_KEYS.get(name, "loss/g") in stats[-1]
    assert any(not torch.equal(before[k], v) for k, v in t.G.state_dict().items())
    assert all(torch.isfinite(p).all() for net in t.nets.values() for p in net.parameters())


def test_technique_nets():
    assert set(_trainer(**TECHNIQUES["mdgan"]).nets) == {"G", "D", "E", "D2"}
    assert set(_trainer(**TECHNIQUES["mode-regularizers"]).nets) == {"G", "D", "E"}
    semi = _trainer(**TECHNIQUES["semi-supervised"])
    assert semi.D.out.out_features == 10 and len(semi.labelled[0]) == 100      # 10 labelled images per class
    assert 0.0 <= semi.test_accuracy() <= 1.0


def test_bre_changes_only_d_s_update():
    a, b = _trainer(), _trainer(**{"reg.bre.weight": 1.0})
    a.d_phase({}), b.d_phase({})
    assert not torch.equal(a.D.convs[1].weight, b.D.convs[1].weight)
    c = _trainer(**{"reg.bre.weight": 0.0, "reg.bre.samples": ["real"]})
    c.d_phase({})
    assert torch.equal(a.D.convs[1].weight, c.D.convs[1].weight)              # weight 0 means off


def test_same_seed_same_run_and_other_seed_differs():
    a, b, c = _trainer(), _trainer(), _trainer(seed=1)
    for t in (a, b, c):
        t.run(2)
    for k, v in a.G.state_dict().items():
        assert torch.equal(v, b.G.state_dict()[k])
    assert not torch.equal(a.G.fc.weight, c.G.fc.weight)


@pytest.mark.parametrize("extra", [{}, {"reg.historical_averaging": 0.1, "reg.bre.weight": 1.0}])
def test_exact_resume(tmp_path, extra):
    straight = _trainer(**extra)
    straight.run(4)
    first = _trainer(**extra)
    first.run(2)
    first.save(tmp_path / "ck.pt")
    resumed = ImageTrainer.load(tmp_path / "ck.pt")
    resumed.run(2)
    assert resumed.iteration == 4 and resumed.history == straight.history
    for name in straight.nets:
        for k, v in straight.nets[name].state_dict().items():
            assert torch.equal(v, resumed.nets[name].state_dict()[k]), (name, k)


def test_linear_lr_decay_and_d_steps():
    t = _trainer(**{"optim.iters": 10, "optim.d_steps": 3, "optim.lr_floor": 0.0})
    t.run(4)
    assert t.history[-1]["lr/g"] == pytest.approx(2e-4 * (1 - 3 / 10))          # set before step 4 (t = 3)
    def adam_steps(name):
        return int(next(iter(t.optims[name].state.values()))["step"])
    assert (adam_steps("D"), adam_steps("G")) == (12, 4)


def test_bad_configs_raise_before_training():
    with pytest.raises(ValueError, match="must be a multiple of the"):
        from toyviz.image.distributed import DistContext
        ImageTrainer(ImageConfig().replace(**{**TINY, "optim.batch_size": 9}), DistContext(0, 2))
    with pytest.raises(ValueError, match=r"reg.bre.layers \[5\]: D has 2 hidden layers, so indices must lie in 0..1"):
        _trainer(**{"reg.bre.weight": 1.0, "reg.bre.layers": [5]})
