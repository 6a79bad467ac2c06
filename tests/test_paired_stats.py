import math

import pytest

from toyviz.experiments.paired_stats import SIGNIFICANCE, mean_se, p_text, paired_differences, sign_test


def test_sign_test_by_hand():
    # two-sided: p = 2 · Σ_{i ≤ min(k, n−k)} C(n, i) / 2ⁿ, capped at 1
    assert sign_test(7, 2) == pytest.approx(2 * (1 + 9 + 36) / 512)          # 0.1797: "7 of 10" with a tie
    assert sign_test(7, 3) == pytest.approx(2 * (1 + 10 + 45 + 120) / 1024)  # 0.34375
    assert sign_test(10, 0) == pytest.approx(2 / 1024)                       # 0.00195
    assert sign_test(0, 10) == sign_test(10, 0)
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024) and sign_test(9, 1) < SIGNIFICANCE
    assert sign_test(8, 2) == pytest.approx(2 * 56 / 1024) and sign_test(8, 2) >= SIGNIFICANCE
    with pytest.raises(ValueError, match="counts ≥ 0"):
        sign_test(-1, 3)


def test_sign_test_matches_scipy():
    # a cross-check only: the code needs no scipy (scikit-learn, in the dev extra, brings it to the tests)
    from scipy import stats
    for more in range(13):
        for fewer in range(13 - more):
            if more + fewer:
                want = stats.binomtest(more, more + fewer, 0.5).pvalue
                assert sign_test(more, fewer) == pytest.approx(want, rel=1e-9), (more, fewer)


def test_paired_differences_leave_ties_out_of_the_sign_test():
    pd = paired_differences([2.0, 1.0, 0.0, -1.0, math.nan])         # NaN: a seed that did not log it
    assert (pd.more, pd.same, pd.fewer) == (2, 1, 1)
    assert pd.mean == pytest.approx(0.5) and pd.se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert pd.p == pytest.approx(sign_test(2, 1)) == 1.0 and not pd.significant
    assert mean_se([1.0, 3.0]) == (2.0, 1.0)


def test_p_text_names_what_is_not_significant():
    assert p_text(0.1797) == "sign test p = 0.18 (not significant)"
    assert p_text(0.05) == "sign test p = 0.05 (not significant)"
    assert p_text(0.0195) == "sign test p = 0.019" and p_text(0.0004) == "sign test p < 0.001"
