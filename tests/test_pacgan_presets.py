"""The PacGAN 2D protocol presets (METHODS §8), checked field by field against the protocol, and a few steps of each
network shape."""
import math

import pytest

import toyviz
from toyviz.engine.config import Config, DataConfig

NAMES = {("ring8", 1): "pacgan-ring8", ("ring8", 2): "pacgan-ring8-pac2", ("ring8", 3): "pacgan-ring8-pac3",
         ("ring8", 4): "pacgan-ring8-pac4", ("grid25", 1): "pacgan-grid25", ("grid25", 2): "pacgan-grid25-pac2",
         ("grid25", 3): "pacgan-grid25-pac3", ("grid25", 4): "pacgan-grid25-pac4"}
# METHODS §8: ring of 8 at radius 1, σ = 0.01; grid of 25 at {−4,−2,0,2,4}², σ = 0.05; uniform weights
DATA = {"ring8": DataConfig(kind="ring", n_modes=8, radius=1.0, std=0.01),
        "grid25": DataConfig(kind="grid", grid_size=5, grid_spacing=2.0, std=0.05)}


@pytest.mark.parametrize("data, pack", sorted(NAMES))
def test_preset_is_the_protocol_field_by_field(data, pack):
    cfg = toyviz.presets.get(NAMES[data, pack])
    expected = Config().to_dict()                          # every field not named by the protocol keeps its default
    expected["data"] = DATA[data].__dict__ | {}
    n = expected["nets"]
    n.update(latent_dim=2, pack=pack, init="normal", init_std=0.02, g_output="linear", g_vbn=False,
             d_spectral_norm=False, minibatch_kernels=0)
    n["g"].update(width=400, depth=4, activation="relu", batch_norm=True, pieces=None)
    n["d"].update(width=200, depth=3, activation="maxout", pieces=5, batch_norm=False)
    expected["loss"] = "ns"
    expected["optim"].update(batch_size=100 * pack, lr_g=1e-4, lr_d=1e-4, beta1=0.8, beta2=0.999, d_steps=1,
                             iters=400_000, lr_schedule="constant")
    expected["viz"].update(extent=[-1.5, 1.5, -1.5, 1.5] if data == "ring8" else [-5.5, 5.5, -5.5, 5.5],
                           metrics_every=1000)
    expected["preset"] = NAMES[data, pack]
    got = cfg.to_dict()
    for section in expected:
        assert got[section] == expected[section], section
    assert cfg.reg == Config().reg                          # no regularizer, no technique
    assert "fjxmlzn/PacGAN" in toyviz.presets.describe(NAMES[data, pack])


def test_the_nets_are_built_as_the_protocol_says():
    t = toyviz.Trainer(toyviz.presets.get("pacgan-ring8-pac4"))
    G, D = t.G.mlp, t.D
    assert [tuple(l.weight.shape) for l in G.hidden] == [(400, 2), (400, 400), (400, 400), (400, 400)]
    assert all(l.bias is None for l in G.hidden) and len(G.bn) == 4 and tuple(G.out.weight.shape) == (2, 400)
    assert [tuple(l.weight.shape) for l in D.hidden] == [(1000, 8), (1000, 200), (1000, 200)]   # 200 units × 5
    assert tuple(D.out.weight.shape) == (1, 200) and D.pieces == 5
    for layer in [*D.hidden, D.out, *G.hidden, G.out]:
        assert float(layer.weight.detach().std()) == pytest.approx(0.02, rel=0.1)
        assert layer.bias is None or float(layer.bias.detach().abs().max()) == 0
    assert t.optims["D"].defaults["betas"] == (0.8, 0.999) and t.optims["G"].defaults["lr"] == 1e-4
    z = t.latent_batch()
    assert tuple(z.shape) == (400, 2) and abs(float(z.std()) - 1) < 0.1         # 2D standard normal


@pytest.mark.parametrize("name", ["pacgan-ring8", "pacgan-grid25-pac2"])
def test_a_few_steps_train(name):
    cfg = toyviz.presets.get(name).replace(**{"optim.iters": 3, "viz.eval_samples": 500, "viz.metrics_every": 3})
    t = toyviz.Trainer(cfg, callbacks=[toyviz.RegionMetrics()])
    t.run(3)
    last = t.history[-1]
    assert all(math.isfinite(last[k]) for k in ("loss/d", "loss/g", "eval/hq"))
    assert last["regions/l3"] >= last["regions/l1"] > 1      # the maxout D's regions are counted
