"""Every technique on the toy trainer: off means absent (the trainer is a hand-written GAN loop over the same
seeds), each trains alone and with BRE, the procedure-changing phases (K+1 D, unrolled D, mode regularizers + E,
MDGAN) by hand, VBN, refused combos."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

import toyviz
from toyviz.engine import losses
from toyviz.engine.data import make_data
from toyviz.engine.nets import Discriminator, Generator, KPlusOneDiscriminator, VirtualBatchNorm
from toyviz.engine.trainer import Trainer


# ---- off means absent: the trainer against a plain GAN loop written by hand over the same seeds ----------------
def _hand_written_run(cfg, steps: int):
    """The trainer's procedure with every technique off, written out: nets built under torch.manual_seed(seed);
    real batches from the stream seeded seed·1000, latent batches from seed·1000 + 1, interpolation weights from
    seed·1000 + 2; each step one D update, then one G update, Adam on each. Only the options of the tests below:
    the ns and wgan losses, one-sided label smoothing, gradient penalty, packing (spectral norm lives in the nets).
    Returns [(loss_d, loss_g)] per step, and G, D."""
    data = make_data(cfg.data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        G, D = Generator(cfg), Discriminator(cfg)
    o, r, B = cfg.optim, cfg.reg, cfg.optim.batch_size
    opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2))
    g_data, g_noise, g_reg = (torch.Generator().manual_seed(cfg.seed * 1000 + i) for i in range(3))

    def pack(x):
        return x.reshape(-1, 2 * cfg.nets.pack)

    losses = []
    for _ in range(steps):
        real = data.sample(B, g_data)
        with torch.no_grad():
            fake = G(torch.randn(B, cfg.nets.latent_dim, generator=g_noise))
        rl, fl = D(pack(real)), D(pack(fake))
        if cfg.loss == "wgan":
            loss_d = fl.mean() - rl.mean()
        else:
            t = r.real_target
            loss_d = (t * F.softplus(-rl) + (1 - t) * F.softplus(rl)).mean() + F.softplus(fl).mean()
        logged = loss_d.item()                      # "loss/d" is the adversarial term alone
        if r.gp_weight > 0:
            x, y = pack(real), pack(fake)
            alpha = torch.rand(x.shape[0], 1, generator=g_reg)
            mix = (alpha * x + (1 - alpha) * y).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(mix).sum(), mix, create_graph=True)
            loss_d = loss_d + r.gp_weight * ((grad.norm(dim=1) - 1) ** 2).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        fl = D(pack(G(torch.randn(B, cfg.nets.latent_dim, generator=g_noise))))
        loss_g = -fl.mean() if cfg.loss == "wgan" else F.softplus(-fl).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        losses.append((logged, loss_g.item()))
    return losses, G, D


# The two runs compute the same formulas through different operations (BCE with logits vs softplus), so they agree
# to float rounding; a change of method moves these numbers by orders of magnitude more.
LOSS_REL, SUM_REL = 1e-5, 1e-6
EXISTING_OPTIONS = {"gp": {"loss": "wgan", "reg.gp_weight": 10.0}, "pack": {"nets.pack": 2},
                    "smooth": {"reg.real_target": 0.9}, "sn": {"nets.d_spectral_norm": True}}


def _param_sum(net) -> float:
    return float(sum(p.detach().double().sum() for p in net.parameters()))


@pytest.mark.parametrize("name", ["off", *EXISTING_OPTIONS])
def test_the_trainer_is_the_hand_written_loop(tiny_cfg, name):
    cfg = tiny_cfg.replace(**EXISTING_OPTIONS.get(name, {}))
    t = Trainer(cfg)
    hist = t.run(5)
    ref, G, D = _hand_written_run(cfg, 5)
    for s, (loss_d, loss_g) in zip(hist, ref, strict=True):
        assert (s["loss/d"], s["loss/g"]) == pytest.approx((loss_d, loss_g), rel=LOSS_REL, abs=1e-7)
    assert (_param_sum(t.G), _param_sum(t.D)) == pytest.approx((_param_sum(G), _param_sum(D)), rel=SUM_REL)
    if name == "off":
        assert set(t.nets) == set(t.optims) == {"G", "D"} and t.reg_state == {}


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


def test_resume_is_bit_exact_with_encoder_and_running_means(tiny_cfg, whole_and_resumed):
    full, resumed = whole_and_resumed(tiny_cfg.replace(**{
        "reg.mode_lambda1": 0.2, "reg.mode_lambda2": 0.4, "reg.historical_averaging": 0.1, "nets.g_vbn": True}), 6)
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
