"""Batch norm in G's hidden layers (METHODS §8): batch statistics while training, running statistics (momentum 0.05)
for evaluation and every picture; the N(0, σ²) weight init."""
import numpy as np
import pytest
import torch

import toyviz
from toyviz.draw.frames import frame_data
from toyviz.engine.nets import BATCH_NORM_MOMENTUM
from toyviz.geometry.raster import rasterize_latent


@pytest.fixture(scope="module")
def trainer():
    cfg = toyviz.presets.get("ring8").replace(**{
        "nets.g.batch_norm": True, "nets.g.width": 16, "nets.d.width": 16, "optim.batch_size": 32,
        "viz.eval_samples": 300, "viz.metrics_every": 1000, "viz.snapshot_every": 10, "optim.iters": 30})
    t = toyviz.Trainer(cfg)
    t.run(30)
    return t


def test_hidden_layers_are_linear_without_bias_then_batch_norm(trainer):
    G = trainer.G.mlp
    assert len(G.bn) == G.depth and all(layer.bias is None for layer in G.hidden)
    assert G.out.bias is not None
    assert all(bn.momentum == BATCH_NORM_MOMENTUM == 0.05 for bn in G.bn)


def test_running_statistics_follow_the_batches_with_momentum_005():
    cfg = toyviz.presets.get("ring8").replace(**{"nets.g.batch_norm": True, "nets.g.width": 8})
    G = toyviz.Trainer(cfg).G
    z = torch.randn(64, 2)
    pre = G.mlp.hidden[0](z).detach()
    G(z)                                                          # one training-mode pass
    torch.testing.assert_close(G.mlp.bn[0].running_mean, 0.05 * pre.mean(0))
    torch.testing.assert_close(G.mlp.bn[0].running_var, 0.95 + 0.05 * pre.var(0))


def test_train_and_eval_outputs_differ_and_pictures_use_eval(trainer):
    G, z = trainer.G, trainer.z_eval
    assert G.training                                             # training mode between steps
    state = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        train_out = G(z)
    G.load_state_dict(state)                                      # that pass moved the running statistics back
    G.eval()
    with torch.no_grad():
        eval_out = G(z)
    G.train()
    assert (train_out - eval_out).abs().max() > 1e-3
    with torch.no_grad():
        single = G.eval()(z[:1])                                  # eval mode is pointwise: one point, same value
    G.train()
    torch.testing.assert_close(single, eval_out[:1])
    torch.testing.assert_close(trainer.eval_samples(), eval_out)
    assert G.training                                             # the evaluation put G back in training mode
    np.testing.assert_allclose(frame_data(trainer, -1, raster=False).fake, eval_out.numpy())
    r = rasterize_latent(G, resolution=32)
    grid = torch.tensor(np.stack(np.meshgrid(r.xs, r.ys), -1).reshape(-1, 2), dtype=torch.float32)
    with torch.no_grad():
        expected = G.eval()(grid)
    G.train()
    np.testing.assert_allclose(r.output.reshape(-1, 2), expected.numpy(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(G.mlp.bn[0].running_mean, state["mlp.bn.0.running_mean"])   # pictures move nothing


def test_checkpoint_keeps_the_running_statistics(trainer, tmp_path):
    trainer.save(tmp_path / "c.pt")
    back = toyviz.Trainer.load(tmp_path / "c.pt")
    torch.testing.assert_close(back.G.mlp.bn[1].running_var, trainer.G.mlp.bn[1].running_var)
    torch.testing.assert_close(back.eval_samples(), trainer.eval_samples())


def test_normal_init_draws_weights_from_n_0_002():
    cfg = toyviz.presets.get("ring8").replace(**{"nets.init": "normal", "nets.init_std": 0.02})
    t = toyviz.Trainer(cfg)
    for net in (t.G.mlp, t.D):
        w = torch.cat([layer.weight.detach().flatten() for layer in [*net.hidden, net.out]])
        assert float(w.std()) == pytest.approx(0.02, rel=0.05) and abs(float(w.mean())) < 1e-3
        assert all(float(layer.bias.detach().abs().max()) == 0 for layer in [*net.hidden, net.out])
    default = toyviz.Trainer(toyviz.presets.get("ring8"))
    assert float(default.D.hidden[0].weight.detach().std()) > 0.1                   # torch's default is not that


@pytest.mark.parametrize("overrides, message", [
    ({"nets.d.batch_norm": True}, "nets.d.batch_norm is implemented for G only"),
    ({"nets.g.batch_norm": True, "nets.g_vbn": True}, "choose one"),
    ({"nets.init": "normal", "nets.init_std": 0.0}, "nets.init_std must be > 0"),
    ({"nets.init": "uniform"}, "nets.init must be one of 'default', 'normal'"),
])
def test_config_refuses_with_the_reason(overrides, message):
    with pytest.raises(ValueError, match=message):
        toyviz.presets.get("ring8").replace(**overrides).validate()


def test_seed_batches_refuse_batch_norm():
    from toyviz.engine.seed_batch import refusal
    assert "batch norm in G" in refusal(toyviz.presets.get("ring8").replace(**{"nets.g.batch_norm": True}))
