"""Split-conformal thresholds and binomial intervals, against simulation, closed forms and brute force."""

import math

import numpy as np
import pytest

from tad.calibrate import (calibration_percentile, calibration_split, clopper_pearson, conformal_rank,
                           conformal_threshold, expected_fpr, fpr_upper_bound, min_calibration_size)


def test_threshold_is_the_hand_computed_order_statistic():
    # n = 19, fpr 0.1: k = ceil(20 * 0.9) = 18, so the 18th smallest of 1..19 (shuffled)
    scores = np.random.default_rng(0).permutation(np.arange(1.0, 20.0))
    assert conformal_threshold(scores, 0.1) == 18.0
    assert expected_fpr(19, 0.1) == pytest.approx(2 / 20)


def test_rank_at_exact_float_boundary_is_not_rounded_up():
    # (99 + 1) * 0.99 is 98.99999999999999 in floats; the rank is 99, the largest of 99 scores
    assert conformal_rank(99, 0.01) == 99
    assert expected_fpr(99, 0.01) == pytest.approx(0.01)


def test_too_few_calibration_images_for_the_target_is_refused_with_the_number_needed():
    with pytest.raises(ValueError, match="needs at least 99"):
        conformal_rank(98, 0.01)
    with pytest.raises(ValueError, match="needs at least 9"):
        conformal_threshold(np.arange(8.0), 0.1)


def test_realised_fpr_on_new_good_images_is_within_its_binomial_interval_of_the_promise():
    # One fresh calibration set and one fresh good image per trial: the flag is exactly Bernoulli(expected_fpr),
    # independent across trials, so the count is binomial and the Clopper-Pearson interval applies.
    rng = np.random.default_rng(1)
    n, fpr, trials = 50, 0.1, 20000
    draws = rng.standard_normal((trials, n + 1))
    cal = np.sort(draws[:, :n], axis=1)
    flagged = draws[:, n] > cal[:, conformal_rank(n, fpr) - 1]
    low, high = clopper_pearson(int(flagged.sum()), trials, level=0.999)
    promise = expected_fpr(n, fpr)
    assert promise <= fpr
    assert low <= promise <= high, (low, promise, high)
    # the rank without the finite-sample +1 (ceil(n (1 - fpr)) = 45) would flag 6/51 = 0.118 > fpr: excluded
    assert high < (n + 1 - math.ceil(n * (1 - fpr))) / (n + 1)


def test_mean_fpr_of_uniform_scores_equals_the_closed_form_and_stays_under_target():
    # Uniform(0, 1) good scores: the FPR of threshold t is exactly 1 - t; E[1 - U_(k)] = (n + 1 - k) / (n + 1).
    rng = np.random.default_rng(2)
    n, fpr = 120, 0.05
    t = np.array([conformal_threshold(rng.uniform(size=n), fpr) for _ in range(4000)])
    realised = 1 - t
    assert realised.mean() == pytest.approx(expected_fpr(n, fpr), abs=4 * realised.std() / np.sqrt(t.size))
    assert realised.mean() <= fpr + 4 * realised.std() / np.sqrt(t.size)
    # the calibration-conditional bound: 95 % of thresholds realise at most fpr_upper_bound
    assert np.mean(realised <= fpr_upper_bound(n, fpr, 0.95)) == pytest.approx(0.95, abs=0.015)


def _binom_tail_ge(k, n, p):
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def _bisect(f, lo=0.0, hi=1.0):
    for _ in range(100):  # f increasing in p; root of f(p) = 0
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (7, 20), (20, 20), (1, 37)])
def test_clopper_pearson_matches_brute_force_binomial_tails(k, n):
    a = 0.025
    want_low = 0.0 if k == 0 else _bisect(lambda p: _binom_tail_ge(k, n, p) - a)
    want_high = 1.0 if k == n else _bisect(lambda p: a - (1 - _binom_tail_ge(k + 1, n, p)))  # P(X <= k) = a
    low, high = clopper_pearson(k, n, 0.95)
    assert low == pytest.approx(want_low, abs=1e-9)
    assert high == pytest.approx(want_high, abs=1e-9)


def test_clopper_pearson_zero_successes_has_the_closed_form_upper_bound():
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)))


def test_percentile_counts_calibration_scores_at_or_below():
    cal = [1.0, 2.0, 3.0, 4.0]
    assert calibration_percentile(cal, [0.5, 2.0, 2.5, 9.0]).tolist() == [0.0, 50.0, 50.0, 100.0]


def test_calibration_split_is_a_seeded_partition_with_round_fraction_n_calibrating():
    fit, cal = calibration_split(25, 0.3, seed=3)
    order = np.random.default_rng(3).permutation(25)
    np.testing.assert_array_equal(cal, np.sort(order[:8]))  # round(0.3 * 25) = 8
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, cal])), np.arange(25))
    with pytest.raises(ValueError, match="must lie in"):
        calibration_split(25, 1.0)
    with pytest.raises(ValueError, match="need at least 2 and 1"):
        calibration_split(2, 0.5)


@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.1, 0.3])
def test_min_calibration_size_is_the_smallest_n_that_conformal_rank_accepts(fpr):
    brute = next(n for n in range(1, 1000) if math.ceil((n + 1) * (1 - fpr) - 1e-9) <= n)
    assert min_calibration_size(fpr) == brute
    conformal_rank(brute, fpr)
    with pytest.raises(ValueError, match=f"needs at least {brute}"):
        conformal_rank(brute - 1, fpr)
