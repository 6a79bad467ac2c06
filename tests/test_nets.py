import torch

import toyviz
from toyviz.engine.config import MLPConfig
from toyviz.engine.nets import MLP, Discriminator, Encoder, Generator


def test_forward_features_records_every_hidden_layer():
    torch.manual_seed(0)
    net = MLP(2, 1, MLPConfig(8, 3, "leaky_relu", 0.2))
    x = torch.randn(5, 2)
    out, f = net.forward_features(x)
    assert out.shape == (5, 1) and len(f.preacts) == len(f.acts) == 3 and f.pointwise == [True] * 3
    torch.testing.assert_close(f.preacts[0], net.hidden[0](x))
    torch.testing.assert_close(f.acts[0], torch.nn.functional.leaky_relu(f.preacts[0], 0.2))
    torch.testing.assert_close(net(x), out)


def test_activations_are_not_in_place():
    net = MLP(2, 1, MLPConfig(8, 2, "relu"))
    _, f = net.forward_features(torch.randn(64, 2))
    assert (f.preacts[0] < 0).any()                 # a ReLU applied in place would have zeroed them


def test_generator_tanh_output_and_shapes():
    cfg = toyviz.presets.get("bre-toy")
    G, D, E = Generator(cfg), Discriminator(cfg), Encoder(cfg)
    x = G(torch.randn(100, cfg.nets.latent_dim) * 10)
    assert x.shape == (100, 2) and float(x.detach().abs().max()) <= cfg.nets.g_output_scale
    assert D(x).shape == (100, 1) and D.depth == 4
    assert E(x).shape == (100, cfg.nets.latent_dim)


def test_minibatch_discrimination_depends_on_the_batch():
    cfg = toyviz.presets.get("ring8").replace(**{"nets.minibatch_kernels": 4, "nets.d.width": 8})
    D = Discriminator(cfg)
    assert not D.pointwise
    x = torch.randn(6, 2)
    full = D(x)
    assert not torch.allclose(full[:3], D(x[:3]))
    ref = torch.randn(10, 2)
    torch.testing.assert_close(D(x[:3], reference=ref), D(x, reference=ref)[:3])


def test_spectral_norm_bounds_the_weights():
    cfg = toyviz.presets.get("ring8").replace(**{"nets.d_spectral_norm": True})
    D = Discriminator(cfg)
    for _ in range(30):                               # power iteration converges in train mode
        D(torch.randn(4, 2))
    s = torch.linalg.matrix_norm(D.hidden[1].weight.detach(), ord=2)
    assert float(s) == __import__("pytest").approx(1.0, rel=0.05)
