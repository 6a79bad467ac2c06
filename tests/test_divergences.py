"""Exact KL/JS of Bernoulli products (METHODS §4): hand values, the N·KL identity, the JS bound and monotonicity."""
import itertools
import math

import numpy as np
import pytest

from toyviz.geometry.divergences import js_bernoulli_product, kl_bernoulli_product, minibatch_curves


def brute_force(p, q, n):
    """KL and JS by enumerating all 2^N sequences (independent of the count-sum formula)."""
    kl = js = 0.0
    for bits in itertools.product([0, 1], repeat=n):
        k = sum(bits)
        a = p ** k * (1 - p) ** (n - k)
        b = q ** k * (1 - q) ** (n - k)
        m = (a + b) / 2
        kl += a * math.log(a / b) if a > 0 else 0.0
        js += 0.5 * ((a * math.log(a / m) if a > 0 else 0.0) + (b * math.log(b / m) if b > 0 else 0.0))
    return kl, js


def test_n1_hand_values():
    # KL[B(0.2)‖B(0.5)] = 0.2 ln 0.4 + 0.8 ln 1.6
    assert kl_bernoulli_product(0.2, 0.5, 1) == pytest.approx(0.2 * math.log(0.4) + 0.8 * math.log(1.6), rel=1e-12)
    # JS: M = B(0.35); 0.5·[KL(P‖M) + KL(Q‖M)]
    kl_pm = 0.2 * math.log(0.2 / 0.35) + 0.8 * math.log(0.8 / 0.65)
    kl_qm = 0.5 * math.log(0.5 / 0.35) + 0.5 * math.log(0.5 / 0.65)
    assert js_bernoulli_product(0.2, 0.5, 1) == pytest.approx(0.5 * (kl_pm + kl_qm), rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("q", [0.05, 0.5, 0.9])
def test_matches_enumeration_over_all_sequences(n, q):
    kl, js = brute_force(0.2, q, n)
    assert kl_bernoulli_product(0.2, q, n) == pytest.approx(kl, rel=1e-10)
    assert js_bernoulli_product(0.2, q, n) == pytest.approx(js, rel=1e-10)


def test_kl_scales_with_n_and_js_does_not():
    qs = np.linspace(0.01, 0.99, 41)
    for n in (2, 3, 8):
        np.testing.assert_allclose(kl_bernoulli_product(0.2, qs, n), n * kl_bernoulli_product(0.2, qs, 1), rtol=1e-10)
    per_sample = [js_bernoulli_product(0.2, qs, n) / n for n in (1, 2, 3, 8)]
    for a, b in zip(per_sample, per_sample[1:]):                      # JS[Pᴺ‖Qᴺ]/N is non-increasing in N
        assert np.all(b <= a + 1e-12)
    far = qs >= 0.8                                                   # far from p, JS[P⁸‖Q⁸] nears log 2 ...
    assert np.all(per_sample[-1][far] < 0.5 * per_sample[0][far])     # ... so per sample it is much smaller ...
    assert js_bernoulli_product(0.2, 0.2, 8) == 0.0                    # ... and zero at q = p


def test_edges_zero_log_zero_and_infinity():
    assert js_bernoulli_product(0.0, 1.0, 5) == pytest.approx(math.log(2))      # disjoint supports
    assert js_bernoulli_product(0.2, 0.9, 400) <= math.log(2)
    assert kl_bernoulli_product(0.2, 0.0, 3) == math.inf                         # P puts mass where Q has none
    assert kl_bernoulli_product(0.0, 0.3, 2) == pytest.approx(2 * math.log(1 / 0.7))
    assert np.isfinite(js_bernoulli_product(0.2, np.array([0.0, 1.0]), 64)).all()


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n .*≥ 1"):
        kl_bernoulli_product(0.2, 0.5, 0)
    with pytest.raises(ValueError, match="q must be probabilities"):
        js_bernoulli_product(0.2, 1.5, 2)


def test_curves_shapes_and_keys():
    c = minibatch_curves(0.2, 3, np.linspace(0, 1, 11))
    assert set(c) == {"q", "kl_1", "js_1", "kl_n_over_n", "js_n_over_n", "js_n"}
    assert c["js_n"].shape == (11,)
    np.testing.assert_allclose(c["js_n_over_n"] * 3, c["js_n"])
