"""toyviz.image.nets: shapes at every image size, the features contract (pre-activation after the norm, before
the LeakyReLU), pointwise flags, virtual batch norm by hand, BRE's layer choice."""
import pytest
import torch
import torch.nn.functional as F

from toyviz.engine.regularizers import bre_layer_indices
from toyviz.image.config import ImageConfig
from toyviz.image.nets import Discriminator, Encoder, Generator, VirtualBatchNorm2d, resolution_steps


def _cfg(size=16, **kw):
    return ImageConfig().replace(**{"data.image_size": size, "nets.width": 4, "nets.latent_dim": 8, **kw})


@pytest.mark.parametrize("size, steps, base", [(16, 2, 4), (28, 2, 7), (32, 3, 4), (64, 4, 4)])
def test_shapes_at_every_size(size, steps, base):
    assert resolution_steps(size) == (steps, base)
    cfg = _cfg(size)
    G, D, E = Generator(cfg, 3), Discriminator(cfg, 3), Encoder(cfg, 3)
    x, gf = G.forward_features(torch.randn(5, 8))
    out, df = D.forward_features(x)
    assert x.shape == (5, 3, size, size) and out.shape == (5, 1) and E(x).shape == (5, 8)
    assert x.abs().max() <= 1
    assert D.depth == steps == len(df.preacts) == len(df.acts) == len(df.pointwise)
    assert [p.shape[1:] for p in df.preacts] == [(4 * 2 ** i, size // 2 ** (i + 1), size // 2 ** (i + 1))
                                                for i in range(steps)]
    assert gf.preacts[0].shape == (5, 4 * 2 ** (steps - 1), base, base)


def test_equal_width_and_extra_layers():
    cfg = _cfg(32, **{"nets.arch": "equal", "nets.extra_layers": 1})
    _, df = Discriminator(cfg, 1).forward_features(torch.randn(3, 1, 32, 32))
    assert [p.shape[1] for p in df.preacts] == [4] * 6
    assert [p.shape[-1] for p in df.preacts] == [16, 16, 8, 8, 4, 4]


def test_preacts_are_after_the_norm_and_acts_their_leaky_relu():
    D = Discriminator(_cfg(16), 1)
    x = torch.randn(6, 1, 16, 16)
    _, f = D.forward_features(x)
    assert torch.equal(f.preacts[0], D.convs[0](x))                   # first layer: no norm (DCGAN)
    h1 = D.norms[1](D.convs[1](f.acts[0]))
    torch.testing.assert_close(f.preacts[1], h1)
    torch.testing.assert_close(f.preacts[1].mean((0, 2, 3)), torch.zeros(8), atol=1e-5, rtol=0)   # batch norm, train
    for pre, act in zip(f.preacts, f.acts):
        torch.testing.assert_close(act, F.leaky_relu(pre, 0.2))


def test_pointwise_flags_follow_train_mode_batch_norm():
    D = Discriminator(_cfg(32), 1)
    _, f = D.forward_features(torch.randn(4, 1, 32, 32))
    assert f.pointwise == [True, False, False]                        # BN from the second layer on
    D.eval()
    assert D.forward_features(torch.randn(4, 1, 32, 32))[1].pointwise == [True, True, True]
    Dl = Discriminator(_cfg(32, **{"nets.d_norm": "layer"}), 1)
    x = torch.randn(4, 1, 32, 32)
    assert Dl.forward_features(x)[1].pointwise == [True, True, True]
    torch.testing.assert_close(Dl(x)[:2], Dl(x[:2]))                  # layer norm: per sample


def test_minibatch_discrimination_makes_the_output_batch_dependent():
    D = Discriminator(_cfg(16, **{"nets.minibatch_kernels": 5, "nets.d_norm": "none"}), 1)
    x = torch.randn(6, 1, 16, 16)
    assert D.out.in_features == D.feature_dim + 5
    assert not torch.allclose(D(x)[:2], D(x[:2]))


def test_virtual_batch_norm_by_hand_and_pointwise():
    vbn = VirtualBatchNorm2d(2)
    ref, h = torch.randn(4, 2, 3, 3), torch.randn(3, 2, 3, 3)
    out, ref_out = vbn(h, ref)
    n = 4
    mean = (n * ref.mean((0, 2, 3)) + h.mean((2, 3))) / (n + 1)                       # (3, 2)
    sq = (n * (ref ** 2).mean((0, 2, 3)) + (h ** 2).mean((2, 3))) / (n + 1)
    expect = (h - mean[..., None, None]) / (sq - mean ** 2 + 1e-5).sqrt()[..., None, None]
    torch.testing.assert_close(out, expect)
    torch.testing.assert_close(ref_out, F.batch_norm(ref, None, None, training=True, eps=1e-5))
    G = Generator(_cfg(16, **{"nets.g_norm": "vbn"}), 1)
    z = torch.randn(6, 8)
    torch.testing.assert_close(G(z)[:2], G(z[:2]))                    # each sample sees only the fixed reference
    assert G.forward_features(z)[1].pointwise == [True, True]


def test_spectral_norm_bounds_the_linear_layer():
    D = Discriminator(_cfg(16, **{"nets.d_spectral_norm": True}), 1)
    for _ in range(20):
        D(torch.randn(4, 1, 16, 16))
    assert float(torch.linalg.matrix_norm(D.out.weight.detach(), 2)) == pytest.approx(1.0, abs=0.05)


def test_bre_layer_choice_is_the_toys():
    assert bre_layer_indices("all_but_first", 3) == [1, 2]
    assert bre_layer_indices("all_but_first_last", 4) == [1, 2]      # the reference code's conv 1..n−2
    assert bre_layer_indices("all", 2) == [0, 1]
    assert bre_layer_indices([-1], 4) == [3]
    with pytest.raises(ValueError, match=r"indices must lie in -3..2"):
        bre_layer_indices([3], 3)
