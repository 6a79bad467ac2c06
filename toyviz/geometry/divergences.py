"""The minibatch view of divergences (METHODS §4, Huszár's note on minibatch discrimination), exactly.

For P = Bernoulli(p)^N and Q = Bernoulli(q)^N, a sequence's probability depends only on its count of ones k, so
every divergence is a sum over k = 0..N with binomial weights C(N, k):
  KL[Pᴺ‖Qᴺ] = Σ_k C(N,k) pₖ log(pₖ/qₖ) = N·KL[P‖Q],      pₖ = p^k (1−p)^(N−k),  qₖ = q^k (1−q)^(N−k)
  JS[Pᴺ‖Qᴺ] = ½ Σ_k C(N,k) [pₖ log(pₖ/mₖ) + qₖ log(qₖ/mₖ)],  mₖ = (pₖ + qₖ)/2,   and  JS[Pᴺ‖Qᴺ] ≤ N·JS[P‖Q].
Natural logarithms (nats); 0·log 0 = 0. Everything is computed in log space so N in the hundreds is safe.
"""
from __future__ import annotations

import math

import numpy as np


def _log_seq_prob(p: np.ndarray, k: np.ndarray, n: int) -> np.ndarray:
    """log of p^k (1−p)^(n−k) for every p (M,) and count k (N+1,) -> (M, N+1), with 0·log 0 = 0."""
    p = p[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ones = np.where(k == 0, 0.0, k * np.log(p))
        zeros = np.where(k == n, 0.0, (n - k) * np.log1p(-p))
    return ones + zeros


def _prepare(p, q, n: int):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n (the minibatch size N) must be an integer ≥ 1 (got {n!r})")
    p_arr = np.atleast_1d(np.asarray(p, dtype=np.float64))
    q_arr = np.atleast_1d(np.asarray(q, dtype=np.float64))
    for name, a in (("p", p_arr), ("q", q_arr)):
        if not np.all(np.isfinite(a)) or np.any((a < 0) | (a > 1)):
            raise ValueError(f"{name} must be probabilities in [0, 1]")
    p_arr, q_arr = np.broadcast_arrays(p_arr, q_arr)
    k = np.arange(n + 1, dtype=np.float64)
    log_binom = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(n + 1)])
    shape = np.broadcast(np.asarray(p), np.asarray(q)).shape
    return _log_seq_prob(p_arr.ravel(), k, n), _log_seq_prob(q_arr.ravel(), k, n), log_binom, shape


def _weighted_kl_terms(log_a: np.ndarray, log_b: np.ndarray, log_binom: np.ndarray) -> np.ndarray:
    """Σ_k C(N,k) aₖ (log aₖ − log bₖ) row by row; terms with aₖ = 0 vanish, aₖ > 0 = bₖ gives +inf."""
    weight = np.exp(log_binom + log_a)                                    # (M, N+1): probability of count k
    with np.errstate(invalid="ignore"):
        terms = np.where(weight > 0, weight * (log_a - log_b), 0.0)
    return terms.sum(axis=1)


def kl_bernoulli_product(p, q, n: int = 1):
    """KL[Bernoulli(p)ᴺ ‖ Bernoulli(q)ᴺ] in nats, by the exact sum over counts (broadcasts over p and q)."""
    lp, lq, lb, shape = _prepare(p, q, n)
    out = _weighted_kl_terms(lp, lq, lb).reshape(shape)
    return float(out) if out.ndim == 0 else out


def js_bernoulli_product(p, q, n: int = 1):
    """JS[Bernoulli(p)ᴺ ‖ Bernoulli(q)ᴺ] in nats (at most log 2), by the exact sum over counts."""
    lp, lq, lb, shape = _prepare(p, q, n)
    lm = np.logaddexp(lp, lq) - math.log(2.0)
    out = (0.5 * (_weighted_kl_terms(lp, lm, lb) + _weighted_kl_terms(lq, lm, lb))).reshape(shape)
    out = np.clip(out, 0.0, math.log(2.0))                               # rounding can leave −1e−17 at p = q
    return float(out) if out.ndim == 0 else out


def minibatch_curves(p: float, n: int, qs) -> dict[str, np.ndarray]:
    """The teaching page's curves over q: per-sample KL and JS of the N-products (divided by N), and N = 1."""
    qs = np.asarray(qs, dtype=np.float64)
    return {
        "q": qs,
        "kl_1": kl_bernoulli_product(p, qs, 1),
        "js_1": js_bernoulli_product(p, qs, 1),
        "kl_n_over_n": kl_bernoulli_product(p, qs, n) / n,
        "js_n_over_n": js_bernoulli_product(p, qs, n) / n,
        "js_n": js_bernoulli_product(p, qs, n),
    }
