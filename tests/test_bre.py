import pytest
import torch

from toyviz.engine.regularizers import bre, interpolate, soft_sign


def test_sanity_values_iid_gaussian():
    torch.manual_seed(0)
    k, d = 64, 256
    r = bre([torch.randn(k, d)])
    assert float(r.me) == pytest.approx(1 / k, rel=0.15)        # ME's floor is 1/K, not 0
    assert float(r.ac) == pytest.approx(0.0, abs=2e-4)
    assert r.frac_09 > 0.9


def test_identical_rows():
    d = 100
    h = torch.randn(1, d).repeat(64, 1)
    r = bre([h])
    assert float(r.me) == pytest.approx(float((soft_sign(h)[0] ** 2).mean()), rel=1e-5)
    assert float(r.me) == pytest.approx(1.0, abs=0.05)
    assert float(r.ac) == pytest.approx(float(r.me) - 3 / d ** 0.5, abs=0.05)


def test_hand_computed_two_samples():
    h = torch.tensor([[1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, 1.0]])
    eps = 1e-3                                              # mean |h| = 1
    a = h / (1 + eps)
    me = float((a.mean(0) ** 2).mean())
    c01 = float((a[0] * a[1]).sum() / 4)                    # = 0 for these patterns
    r = bre([h], margin_s=0.0)
    assert float(r.me) == pytest.approx(me, rel=1e-6)
    assert float(r.ac) == pytest.approx(abs(c01), abs=1e-7)
    h2 = torch.tensor([[1.0, -1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]])
    r2 = bre([h2], margin_s=1.0)                            # C01 = 0.5·(1/(1+ε))², margin 1/√4 = 0.5
    assert float(r2.ac) == pytest.approx(max(0.0, 0.5 / (1 + eps) ** 2 - 0.5), abs=1e-7)
    r3 = bre([h2], margin_s=0.5)
    assert float(r3.ac) == pytest.approx(0.5 / (1 + eps) ** 2 - 0.25, rel=1e-5)


def test_code_pairs_are_smaller_by_k_minus_1_over_k():
    torch.manual_seed(1)
    h = torch.randn(16, 8) + torch.randn(1, 8) * 3
    p, c = bre([h], pairs="paper"), bre([h], pairs="code")
    assert float(c.ac) == pytest.approx(float(p.ac) * 15 / 16, rel=1e-5)
    assert float(c.me) == pytest.approx(float(p.me))


def test_layers_average_hinged_matrices_then_pairs():
    torch.manual_seed(2)
    h1, h2 = torch.randn(8, 10) + 1, torch.randn(8, 30)
    both = bre([h1, h2])
    assert float(both.me) == pytest.approx((float(bre([h1]).me) + float(bre([h2]).me)) / 2, rel=1e-6)
    assert float(both.ac) == pytest.approx((float(bre([h1]).ac) + float(bre([h2]).ac)) / 2, rel=1e-5)


def test_scale_invariance_and_no_gradient_through_eps():
    torch.manual_seed(3)
    h = torch.randn(32, 20)
    torch.testing.assert_close(bre([h]).total, bre([h * 50]).total)
    x = h.clone().requires_grad_(True)
    soft_sign(x).sum().backward()
    eps = 1e-3 * h.abs().mean()
    torch.testing.assert_close(x.grad, eps / (h.abs() + eps) ** 2)   # d/dh h/(|h|+ε) with ε constant


@pytest.mark.parametrize("scale", [1e-20, 1e-10, 1.0, 1e10, 1e20])
def test_soft_sign_backward_at_extreme_scales(scale):
    # The fused backward ε/(|h|+ε)² once squared the denominator, which float32 cannot hold outside about
    # 1e-19..1e19: the gradient became 0 or inf where the plain autograd chain is finite.
    torch.manual_seed(5)
    h = torch.randn(16, 8) * scale
    x = h.clone().requires_grad_(True)
    soft_sign(x).sum().backward()
    y = h.clone().requires_grad_(True)
    eps = 1e-3 * h.abs().mean()
    (y / (y.abs() + eps)).sum().backward()                           # the plain chain, ε constant
    h64 = h.double()
    eps64 = 1e-3 * h64.abs().mean()
    exact = (eps64 / (h64.abs() + eps64) ** 2).float()
    assert torch.isfinite(x.grad).all() and (x.grad > 0).all()
    torch.testing.assert_close(x.grad, exact, rtol=1e-5, atol=0)
    finite = torch.isfinite(y.grad)
    assert finite.any()
    # the chain computes 1/den − |h|/den², a difference of near-equal terms: it keeps only ~4 digits
    torch.testing.assert_close(x.grad[finite], y.grad[finite], rtol=1e-3, atol=0)


def test_gradient_reaches_d_only():
    import toyviz
    t = toyviz.Trainer(toyviz.presets.get("bre-toy-bre"))
    z = torch.randn(32, 2, requires_grad=True)
    fake = t.G(z)
    _, feats = t.D.forward_features(fake.detach())
    bre([feats.preacts[1]]).total.backward()
    assert all(p.grad is None for p in t.G.parameters()) and z.grad is None
    assert t.D.hidden[1].weight.grad is not None and t.D.hidden[1].weight.grad.abs().sum() > 0
    assert t.D.hidden[3].weight.grad is None                       # layers after the regularized one get nothing


def test_interpolation_modes():
    real, fake = torch.zeros(1000, 2), torch.ones(1000, 2)
    g = torch.Generator().manual_seed(0)
    x = interpolate(real, fake, "paper", g)
    assert float(x.min()) >= 0 and float(x.max()) <= 1               # between the two points
    y = interpolate(real, fake, "code", g)
    assert float(y.max()) <= 0 and float(y.min()) >= -1              # x + α(x − x̃): past the real point


def test_bad_input():
    with pytest.raises(ValueError, match="at least one layer"):
        bre([])
    with pytest.raises(ValueError, match="at least 2 samples"):
        bre([torch.randn(1, 4)])


def test_fused_hinged_correlation_matches_autograd_chain():
    from toyviz.engine.regularizers import _HingedCorrelation
    torch.manual_seed(4)
    a = torch.randn(9, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: _HingedCorrelation.apply(x[None], 0.4)[0], (a,))
    value, off_abs = _HingedCorrelation.apply(a[None], 0.4)
    value.backward()
    b = a.detach().clone().requires_grad_(True)
    c = b @ b.T / 6
    off = ~torch.eye(9, dtype=torch.bool)
    reference = torch.relu(c.abs() - 0.4)[off].sum()
    reference.backward()
    torch.testing.assert_close(value[0], reference)
    torch.testing.assert_close(a.grad, b.grad)
    torch.testing.assert_close(off_abs[0], c.abs()[off].sum().detach())


def test_sets_stacked_equal_sets_one_by_one():
    from toyviz.engine.regularizers import bre_sets
    torch.manual_seed(5)
    sets = [[(torch.randn(32, 10) + i).requires_grad_(), torch.randn(32, 20, requires_grad=True)] for i in range(3)]
    together = bre_sets(sets)
    sum(r.total for r in together).backward()
    grads = [h.grad.clone() for layers in sets for h in layers]
    for layers in sets:
        for h in layers:
            h.grad = None
    assert float(together[0].frac_09) == pytest.approx(float((soft_sign(sets[0][0]).abs() > 0.9).float().mean()) / 2
                                                + float((soft_sign(sets[0][1]).abs() > 0.9).float().mean()) / 2)
    alone = [bre(layers) for layers in sets]
    sum(r.total for r in alone).backward()
    for r, q in zip(together, alone):
        torch.testing.assert_close(r.total, q.total)
        assert (float(r.frac_09), float(r.mean_abs_corr)) == pytest.approx((float(q.frac_09), float(q.mean_abs_corr)))
    for g, h in zip(grads, [h for layers in sets for h in layers]):
        torch.testing.assert_close(g, h.grad)
    mixed = bre_sets([sets[0], [torch.randn(16, 10), torch.randn(16, 20)]])          # unequal shapes: one by one
    torch.testing.assert_close(mixed[0].total, together[0].total)


def test_features_upto_stop_after_the_layer():
    import toyviz
    t = toyviz.Trainer(toyviz.presets.get("bre-toy-bre"))
    x = torch.randn(16, 2)
    out, full = t.D.forward_features(x)
    none, part = t.D.forward_features(x, upto=1)
    assert none is None and len(part.preacts) == 2 and out.shape == (16, 1)
    for p, f in zip(part.preacts, full.preacts):
        torch.testing.assert_close(p, f)
