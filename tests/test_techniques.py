"""Every technique on the toy trainer: off means absent (the engine commit's numbers, up to the CPU's kernels), each
trains alone and with BRE, the procedure-changing phases (K+1 D, unrolled D, mode regularizers + E, MDGAN) by hand,
VBN, refused combos."""
import copy
import math

import pytest
import torch

import toyviz
from toyviz.engine import losses
from toyviz.engine.nets import Generator, KPlusOneDiscriminator, VirtualBatchNorm
from toyviz.engine.trainer import Trainer

# ---- off means absent ----------------------------------------------------------------------------------------
# Recorded with the engine commit 8bf83b1's trainer (before any technique existed) on the tiny_cfg fixture. Equal up
# to the CPU's kernels: on an AVX2 machine the pack run's Σ G came out 3.5e-10 (relative) away from the value recorded
# on the original one, with equal losses; any change of a method moves these numbers by orders of magnitude more.
LOSS_REL, SUM_REL = 1e-6, 1e-8
REFERENCE_LOSSES = [(1.3845384120941162, 0.6477981209754944), (1.3846135139465332, 0.648456335067749),
                    (1.386008858680725, 0.6493480801582336), (1.3839879035949707, 0.6499534845352173),
                    (1.3852124214172363, 0.6507425904273987)]
REFERENCE_PARAM_SUMS = (-3.2747594456886873, -2.8498291384021286)      # Σ of G's, D's parameters after 5 steps
REFERENCE_ON = {   # existing options of 8bf83b1: last loss/d, loss/g, Σ G's parameters after 5 steps
    "gp": ({"loss": "wgan", "reg.gp_weight": 10.0}, -0.0007056072354316711, -0.10123599320650101, -3.2731444258242846),
    "pack": ({"nets.pack": 2}, 1.3921623229980469, 0.6564396023750305, -3.3141458383761346),
    "smooth": ({"reg.real_target": 0.9}, 1.3936958312988281, 0.6576583981513977, -3.2624656377593055),
    "sn": ({"nets.d_spectral_norm": True}, 1.3851118087768555, 0.662575364112854, -3.2943056238582358),
}


def _param_sum(net) -> float:
    return float(sum(p.detach().double().sum() for p in net.parameters()))


def test_all_techniques_off_matches_the_engine_commit(tiny_cfg):
    t = Trainer(tiny_cfg)
    hist = t.run(5)
    for s, ref in zip(hist, REFERENCE_LOSSES, strict=True):
        assert (s["loss/d"], s["loss/g"]) == pytest.approx(ref, rel=LOSS_REL)
    assert (_param_sum(t.G), _param_sum(t.D)) == pytest.approx(REFERENCE_PARAM_SUMS, rel=SUM_REL)
    assert set(t.nets) == set(t.optims) == {"G", "D"} and t.reg_state == {}


@pytest.mark.parametrize("name", REFERENCE_ON)
def test_existing_options_unchanged_by_the_refactor(tiny_cfg, name):
    overrides, loss_d, loss_g, g_sum = REFERENCE_ON[name]
    t = Trainer(tiny_cfg.replace(**overrides))
    last = t.run(5)[-1]
    assert (last["loss/d"], last["loss/g"]) == pytest.approx((loss_d, loss_g), rel=LOSS_REL)
    assert _param_sum(t.G) == pytest.approx(g_sum, rel=SUM_REL)


# ---- each technique trains, alone and with BRE -----------------------------------------------------------------
EXPECTED_KEYS = {
    "ring8-fm": {"reg/fm"}, "ring8-ha": {"reg/ha_d", "reg/ha_g"}, "ring8-wgan-gp": {"reg/gp"},
    "ring8-modereg": {"reg/mode/geometric", "reg/mode/mode"},
    "ring8-mdgan": {"loss/d2", "loss/g_manifold", "reg/mdgan/geometric"}, "ring8-semi": {"reg/fm", "eval/accuracy"},
}


def _tiny(cfg):
    return cfg.replace(**{"nets.g.width": 16, "nets.d.width": 16, "nets.e.width": 16, "optim.batch_size": 32,
                          "viz.eval_samples": 200, "viz.metrics_every": 3, "optim.iters": 20})


@pytest.mark.parametrize("bre", [0.0, 1.0])
@pytest.mark.parametrize("name", [*toyviz.presets.TECHNIQUES, "modereg-toy-reg"])
def test_each_technique_trains_alone_and_with_bre(name, bre):
    t = Trainer(_tiny(toyviz.presets.get(name)).replace(**{"reg.bre.weight": bre}))
    before = {n: _param_sum(net) for n, net in t.nets.items()}
    hist = t.run(3)
    assert all(math.isfinite(v) for s in hist for k, v in s.items() if k.startswith("loss/"))
    assert EXPECTED_KEYS.get(name, set()) <= set(hist[-1])
    assert all(_param_sum(net) != before[n] for n, net in t.nets.items()), "every net is trained"
    if bre:
        assert "reg/bre" in hist[-1]
        if name == "ring8-mdgan":
            assert "reg/D2/bre" in hist[-1]          # the 'd' regularizers join both discriminators


def test_resume_is_bit_exact_with_encoder_and_running_means(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(**{"reg.mode_lambda1": 0.2, "reg.mode_lambda2": 0.4, "reg.historical_averaging": 0.1,
                              "nets.g_vbn": True})
    full = Trainer(cfg)
    full.run(6)
    half = Trainer(cfg)
    half.run(3)
    half.save(tmp_path / "ck.pt")
    resumed = Trainer.load(tmp_path / "ck.pt")
    assert any(k.startswith("ha/G/") for k in resumed.reg_state)
    resumed.run(3)
    assert resumed.history == full.history
    for name in ("G", "D", "E"):
        for v, w in zip(full.nets[name].state_dict().values(), resumed.nets[name].state_dict().values()):
            assert torch.equal(v, w)


# ---- feature matching --------------------------------------------------------------------------------------
def test_feature_matching_replace_drops_the_adversarial_loss(tiny_cfg):
    # ns and minimax differ only in G's adversarial loss: with feature matching as G's whole loss they coincide.
    fm = {"reg.feature_matching": 1.0, "reg.feature_matching_replace": True}
    a = Trainer(tiny_cfg.replace(**fm))
    b = Trainer(tiny_cfg.replace(**fm, loss="minimax"))
    a.run(3), b.run(3)
    assert _param_sum(a.G) == _param_sum(b.G)
    c = Trainer(tiny_cfg.replace(**{"reg.feature_matching": 1.0}, loss="minimax"))
    c.run(3)
    assert _param_sum(c.G) != _param_sum(a.G)


# ---- virtual batch norm ---------------------------------------------------------------------------------------
def test_virtual_batch_norm_by_hand():
    vbn = VirtualBatchNorm(1, eps=0.0)
    ref = torch.tensor([[0.0], [2.0]])                  # mean 1, mean square 2
    out, ref_out = vbn(torch.tensor([[4.0], [1.0]]), ref)
    # x = 4: c = 1/3, μ = 4/3 + 2/3 = 2, s = 16/3 + 4/3, var = 20/3 − 4 = 8/3  -> (4 − 2)/√(8/3)
    # x = 1: μ = 1, s = 1/3 + 4/3, var = 2/3 -> 0
    torch.testing.assert_close(out, torch.tensor([[2 / math.sqrt(8 / 3)], [0.0]]))
    torch.testing.assert_close(ref_out, torch.tensor([[-1.0], [1.0]]))


def test_vbn_generator_is_pointwise_with_a_fixed_reference(tiny_cfg):
    cfg = tiny_cfg.replace(**{"nets.g_vbn": True, "nets.g_vbn_ref": 8})
    G = Generator(cfg)
    assert G.vbn_ref_z.shape == (8, cfg.nets.latent_dim) and "vbn_ref_z" in G.state_dict()
    z = torch.randn(10, cfg.nets.latent_dim)
    torch.testing.assert_close(G(z)[:3], G(z[:3]))      # one sample's output does not depend on its batch
    _, feats = G.forward_features(z)
    assert feats.pointwise == [True] * cfg.nets.g.depth
    torch.testing.assert_close(Generator(cfg).vbn_ref_z, G.vbn_ref_z)    # the reference is seeded


# ---- semi-supervised K+1 --------------------------------------------------------------------------------------
def test_k_plus_one_losses_by_hand():
    l = torch.tensor([[0.0, 0.0]])                      # Z = 2: D = 2/3, real logit ln 2
    torch.testing.assert_close(losses.k_plus_one_real_logit(l), torch.tensor([[math.log(2)]]))
    # real: softplus(ln 2) − ln 2 = ln 3 − ln 2;  fake: softplus(ln 2) = ln 3;  supervised: −0 + ln 2
    assert losses.k_plus_one_unsupervised_loss(l, l).item() == pytest.approx(math.log(4.5))
    assert losses.k_plus_one_d_loss(l, l, torch.tensor([1])).item() == pytest.approx(math.log(9))
    assert losses.k_plus_one_d_loss(l, l, torch.tensor([1]), halve=True).item() == pytest.approx(math.log(3))
    unlabelled = losses.k_plus_one_d_loss(l, l, torch.tensor([1]), torch.tensor([False]))
    assert unlabelled.item() == pytest.approx(math.log(4.5))


def test_supervised_loss_reads_only_labelled_points():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    labels, mask = torch.tensor([0, 1]), torch.tensor([True, False])
    expect = -2.0 + math.log(math.exp(2) + 1)
    assert losses.k_plus_one_supervised_loss(logits, labels, mask).item() == pytest.approx(expect)


def test_k_plus_one_discriminator_exposes_one_real_logit(tiny_cfg):
    D = KPlusOneDiscriminator(tiny_cfg, 8)
    x = torch.randn(5, 2)
    logits, _ = D.classify(x)
    assert logits.shape == (5, 8)
    torch.testing.assert_close(D(x), torch.logsumexp(logits, 1, keepdim=True))


def test_semi_supervised_classifier_learns_the_modes(tiny_cfg):
    cfg = tiny_cfg.replace(**{"reg.semi_supervised_fraction": 0.25, "reg.feature_matching": 1.0,
                              "reg.feature_matching_replace": True, "optim.lr_d": 1e-2, "viz.metrics_every": 60})
    t = Trainer(cfg)
    assert int(t.labelled.sum()) == 8 and isinstance(t.D, KPlusOneDiscriminator)
    first = t.evaluate()["eval/accuracy"]
    last = t.run(60)[-1]["eval/accuracy"]
    assert first < 0.5 < last


# ---- unrolled D ---------------------------------------------------------------------------------------------
def test_one_unrolled_step_equals_a_real_adam_step_and_leaves_d_alone(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**{"reg.unrolled_steps": 1}))
    t.run(2)                                            # Adam has moments to start from
    real, fake = torch.randn(32, 2), torch.randn(32, 2, requires_grad=True)
    d_before = copy.deepcopy(t.D.state_dict())
    unrolled = t.unrolled_d_logits(real, fake)
    for k, v in t.D.state_dict().items():
        assert torch.equal(v, d_before[k])
    D = copy.deepcopy(t.D)
    opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt.load_state_dict(t.optims["D"].state_dict())
    loss = t.loss.d(D(real), D(fake.detach()), 1.0)
    opt.zero_grad()
    loss.backward()
    opt.step()
    torch.testing.assert_close(unrolled, D(fake), rtol=1e-5, atol=1e-6)
    # G's gradient sees the update: it differs from the gradient through the current D
    (g_unrolled,) = torch.autograd.grad(t.loss.g(unrolled), fake)
    (g_plain,) = torch.autograd.grad(t.loss.g(t.D(fake)), fake)
    assert not torch.allclose(g_unrolled, g_plain)


# ---- mode regularizers and MDGAN ----------------------------------------------------------------------------
def test_mode_regularizers_train_the_encoder_with_g_only(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**{"reg.mode_lambda1": 0.2, "reg.mode_lambda2": 0.4}))
    assert set(t.nets) == set(t.optims) == {"G", "D", "E"}
    real = t.real_batch(32)
    stats = {}
    value = t.mode_regularizers(real, stats)
    recon = t.G(t.nets["E"](real))
    geo = ((real - recon) ** 2).sum(1).mean()
    mode = torch.nn.functional.softplus(-t.D(recon)).mean()
    torch.testing.assert_close(value, 0.2 * geo + 0.4 * mode)
    e0, d0 = _param_sum(t.nets["E"]), copy.deepcopy(t.D.state_dict())
    t.g_phase({}, real)
    assert _param_sum(t.nets["E"]) != e0
    assert all(torch.equal(v, d0[k]) for k, v in t.D.state_dict().items())    # G's phase never moves D


def test_mdgan_nets_are_all_snapshotted_and_d2_exposes_features(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**{"reg.mdgan": True}))
    t.run(2)
    assert set(t.nets) == {"G", "D", "E", "D2"}
    assert set(t.snapshots[-1]["nets"]) == {"G", "D", "E", "D2"}
    out, feats = t.nets["D2"].forward_features(torch.randn(4, 2))
    assert out.shape == (4, 1) and len(feats.preacts) == tiny_cfg.nets.d.depth


# ---- refused combinations -------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    ({"loss": "wgan", "reg.gp_weight": 10.0, "reg.real_target": 0.9}, r"no meaning for the wgan loss"),
    ({"reg.feature_matching_replace": True}, r"needs reg\.feature_matching > 0"),
    ({"reg.feature_matching": 1.0, "reg.feature_matching_layer": 3}, r"feature_matching_layer 3: D has 3"),
    ({"loss": "hinge", "reg.mode_lambda2": 0.4}, r"mode_lambda2 .* ns or minimax"),
    ({"reg.mdgan": True, "reg.mode_lambda1": 0.2}, r"mdgan has its own geometric weight"),
    ({"reg.mdgan": True, "optim.d_steps": 2}, r"d_steps must be 1"),
    ({"reg.unrolled_steps": 3, "nets.d_spectral_norm": True}, r"spectral norm's power iteration"),
    ({"reg.unrolled_steps": 3, "reg.feature_matching": 1.0, "reg.feature_matching_replace": True},
     r"use one or the other"),
    ({"reg.semi_supervised_fraction": 0.1, "loss": "lsgan"}, r"K\+1 classifier.* ns or minimax"),
    ({"reg.semi_supervised_fraction": 0.1, "nets.pack": 2}, r"nets\.pack must be 1"),
    ({"reg.semi_supervised_fraction": 0.1, "reg.real_target": 0.9}, r"leave it at 1"),
    ({"nets.g_vbn": True, "nets.g_vbn_ref": 1}, r"g_vbn_ref .* ≥ 2"),
])
def test_incompatible_combinations_are_refused_with_the_reason(tiny_cfg, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_cfg.replace(**overrides).validate()


def test_every_technique_preset_is_valid_and_documented():
    for name in [*toyviz.presets.TECHNIQUES, "modereg-toy", "modereg-toy-reg"]:
        cfg = toyviz.presets.get(name)
        assert cfg.preset == name and toyviz.presets._PRESETS[name].__doc__
    toy = toyviz.presets.get("modereg-toy-reg")
    assert (toy.data.n_modes, toy.reg.mode_lambda1, toy.reg.mode_lambda2) == (6, 0.005, 0.005)
