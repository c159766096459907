"""Tests for tad.stats: interval coverage by simulation, DeLong against loops, Holm and the wording rules."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm, rankdata
from sklearn.metrics import roc_auc_score

from tad.data import Sample
from tad.evaluate import bootstrap_ci
from tad.stats import (BOOK_FAMILY, DELONG, HEADLINE_COMPARISONS, PERMUTATION, Family, auroc_ci, compare,
                       defect_aurocs, delong_test, gain_outcome, gain_statement, mean_sem,
                       permutation_test, score_interval, verdict)

N_GOOD, N_DEFECTIVE = 20, 63  # bottle's test set


def binormal_aurocs(true_auroc: float, n_sims: int, rng: np.random.Generator) -> np.ndarray:
    """Sample AUROCs of n_sims binormal data sets: good ~ N(0, 1), defective ~ N(mu, 1), AUROC = Phi(mu / sqrt 2)."""
    mu = np.sqrt(2) * norm.ppf(true_auroc)
    good = rng.normal(size=(n_sims, 1, N_GOOD))
    defective = rng.normal(mu, size=(n_sims, N_DEFECTIVE, 1))
    return (defective > good).mean(axis=(1, 2))  # continuous scores: no ties


@pytest.mark.parametrize("true_auroc", [0.8, 0.9, 0.95, 0.99])
def test_auroc_ci_covers_the_true_auroc_about_95_percent_of_the_time(true_auroc):
    # 4,000 simulated bottle-sized test sets; the standard error of a coverage near 0.95 is 0.0035. Stated
    # tolerance: coverage within [0.93, 0.99] (never more than 2 points below nominal, and not an interval
    # so wide that it covers nearly always).
    aurocs = binormal_aurocs(true_auroc, 4000, np.random.default_rng(int(1000 * true_auroc)))
    low, high = score_interval(aurocs, N_GOOD, N_DEFECTIVE, 0.95)
    coverage = np.mean((low <= true_auroc) & (true_auroc <= high))
    assert 0.93 <= coverage <= 0.99


def test_auroc_ci_stays_open_below_one_under_perfect_separation():
    labels = np.r_[np.zeros(N_GOOD, bool), np.ones(N_DEFECTIVE, bool)]
    scores = np.r_[np.linspace(0, 1, N_GOOD), np.linspace(2, 3, N_DEFECTIVE)]
    assert bootstrap_ci(labels, scores) == (1.0, 1.0)  # why the bootstrap is not enough
    low, high = auroc_ci(labels, scores)
    # Closed form at A = 1: the low end solves (1 - t)^2 = z^2 V(t) with Hanley-McNeil's V, sizes -> their mean.
    m, n, n_star, z = N_GOOD, N_DEFECTIVE, (N_GOOD + N_DEFECTIVE) / 2, norm.ppf(0.975)

    def f(t):
        v = t * (1 - t) / (m * n) * (1 + (n_star - 1) * ((1 - t) / (2 - t) + t / (1 + t)))
        return (1 - t) ** 2 - z**2 * v

    assert high == 1.0
    assert low == pytest.approx(brentq(f, 0.5, 1 - 1e-9), abs=1e-9)
    assert 0.9 < low < 0.97


def test_auroc_ci_contains_the_estimate_and_narrows_with_level():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(30, bool), np.ones(40, bool)]
    scores = rng.normal(size=70) + labels
    a = ((scores[labels][:, None] > scores[~labels][None]).mean())
    low95, high95 = auroc_ci(labels, scores)
    low80, high80 = auroc_ci(labels, scores, level=0.8)
    assert low95 < low80 < a < high80 < high95


def test_auroc_ci_is_symmetric_in_which_class_is_positive():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(20, bool), np.ones(63, bool)]
    scores = rng.normal(size=83) + 1.5 * labels
    low, high = auroc_ci(labels, scores)
    flipped = auroc_ci(~labels, -scores)  # same AUROC, roles of the two classes swapped
    assert flipped == pytest.approx((low, high), abs=1e-12)


def delong_by_loops(labels, a, b):
    """AUROCs of a and b and DeLong's 2 x 2 covariance of them, from explicit loops over images."""
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)

    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    v10 = [[sum(psi(s[i], s[j]) for j in neg) / len(neg) for i in pos] for s in (a, b)]
    v01 = [[sum(psi(s[i], s[j]) for i in pos) / len(pos) for j in neg] for s in (a, b)]

    def cov(x, y):
        x, y = np.array(x), np.array(y)
        return ((x - x.mean()) * (y - y.mean())).sum() / (len(x) - 1)

    c = np.array([[cov(v10[i], v10[j]) / len(pos) + cov(v01[i], v01[j]) / len(neg) for j in (0, 1)]
                  for i in (0, 1)])
    return np.mean(v10[0]), np.mean(v10[1]), c


def test_delong_p_value_and_mover_interval_match_loops():
    rng = np.random.default_rng(2)
    labels = np.r_[np.zeros(15, bool), np.ones(12, bool)]
    a = np.round(rng.normal(size=27) + labels, 1)  # rounded: ties
    b = np.round(a + rng.normal(scale=0.7, size=27), 1)
    auc_a, auc_b, c = delong_by_loops(labels, a, b)
    diff, var, r = auc_a - auc_b, c[0, 0] + c[1, 1] - 2 * c[0, 1], c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])
    got_diff, low, high, p = delong_test(labels, a, b)
    assert got_diff == pytest.approx(diff)
    assert p == pytest.approx(2 * norm.sf(abs(diff) / np.sqrt(var)))
    (l_a, u_a), (l_b, u_b) = auroc_ci(labels, a), auroc_ci(labels, b)
    x, y = auc_a - l_a, u_b - auc_b  # MOVER, Zou & Donner (2008)
    assert low == pytest.approx(diff - np.sqrt(x**2 + y**2 - 2 * r * x * y))
    x, y = u_a - auc_a, auc_b - l_b
    assert high == pytest.approx(diff + np.sqrt(x**2 + y**2 - 2 * r * x * y))


@pytest.mark.parametrize("true_auroc", [0.9, 0.99])
def test_delong_interval_covers_a_zero_difference_near_one(true_auroc):
    # Two correlated scorings with the same true AUROC (shared signal, independent noise), bottle-sized;
    # 300 simulations, standard error of a 95 % coverage 0.013: tolerance >= 0.92 (measured with 2,000:
    # 0.976 at 0.9, 1.000 at 0.99; conservative near 1).
    rng = np.random.default_rng(int(100 * true_auroc))
    labels = np.r_[np.zeros(N_GOOD, bool), np.ones(N_DEFECTIVE, bool)]
    mu = np.sqrt(2) * norm.ppf(true_auroc)  # each scoring is N(0, 1) vs N(mu, 1): half shared, half own noise
    covered = []
    for _ in range(300):
        base = rng.normal(size=labels.size) * np.sqrt(0.5) + mu * labels
        a, b = (base + rng.normal(size=labels.size) * np.sqrt(0.5) for _ in range(2))
        _, low, high, _ = delong_test(labels, a, b)
        covered.append(low <= 0 <= high)
    assert np.mean(covered) >= 0.92


def test_delong_rejects_about_5_percent_of_equal_auroc_pairs():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(N_GOOD, bool), np.ones(N_DEFECTIVE, bool)]
    rejections = []
    for _ in range(400):
        base = rng.normal(size=labels.size) + 1.2 * labels  # shared signal: correlated scorings
        a, b = base + rng.normal(size=labels.size), base + rng.normal(size=labels.size)
        rejections.append(delong_test(labels, a, b)[3] < 0.05)
    assert 0.02 <= np.mean(rejections) <= 0.085  # standard error 0.011


def test_delong_interval_stays_open_when_both_scorings_separate_perfectly():
    labels = np.r_[np.zeros(N_GOOD, bool), np.ones(N_DEFECTIVE, bool)]
    rng = np.random.default_rng(6)
    a = rng.normal(size=labels.size) + 10 * labels
    b = rng.normal(size=labels.size) + 10 * labels
    diff, low, high, p = delong_test(labels, a, b)
    assert diff == 0.0 and p == 1.0
    one_low, _ = auroc_ci(labels, a)
    assert low == pytest.approx(-(1 - one_low)) and high == pytest.approx(1 - one_low)  # r = 0 at AUROC 1


def test_delong_of_identical_scorings_is_exactly_zero():
    labels = np.r_[np.zeros(20, bool), np.ones(20, bool)]
    a = np.random.default_rng(7).normal(size=40) + labels
    assert delong_test(labels, a, a.copy()) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(("diff", "kw", "expected"), [
    (0.02, {"interval": (0.001, 0.04)}, "higher"),
    (-0.02, {"interval": (-0.04, -0.001)}, "lower"),
    (0.02, {"interval": (-0.001, 0.04)}, "within noise"),
    (0.0, {"interval": (0.0, 0.0)}, "within noise"),
    (0.02, {"p": 0.049}, "higher"),
    (-0.02, {"p": 0.01}, "lower"),
    (0.02, {"p": 0.05}, "within noise"),
    (0.02, {"p": 0.02, "alpha": 0.01}, "within noise"),
])
def test_verdict_wording(diff, kw, expected):
    assert verdict(diff, **kw) == expected


def test_verdict_needs_exactly_one_of_p_and_interval():
    with pytest.raises(ValueError, match="exactly one"):
        verdict(0.1)
    with pytest.raises(ValueError, match="exactly one"):
        verdict(0.1, p=0.01, interval=(0.0, 0.2))


def test_gain_statement_has_three_outcomes_on_constructed_intervals():
    assert gain_statement((-0.011, 0.014), 0.02) == (
        "a gain as large as 0.020 is excluded (95 % interval of the difference: [-0.011, 0.014])")
    assert gain_statement((-0.011, 0.025), 0.02).startswith("a gain as large as 0.020 is neither established nor "
                                                           "excluded")
    assert gain_statement((0.021, 0.05), 0.02).startswith("a gain at least as large as 0.020 is established")
    assert gain_statement((-0.025, 0.011), -0.02).startswith("a loss as large as 0.020 is neither")
    assert gain_statement((-0.019, 0.025), -0.02).startswith("a loss as large as 0.020 is excluded")
    # Issue 23's case: held-out interval [-0.079, -0.051] against a loss of 0.009: the loss is established.
    assert gain_statement((-0.079, -0.051), -0.009).startswith("a loss at least as large as 0.009 is established")
    assert [gain_outcome((lo, hi), 0.02) for lo, hi in [(-1, 0.019), (0.02, 1), (0.0, 0.03)]] == [
        "excluded", "established", "neither established nor excluded"]


def test_compare_tests_each_comparison_at_its_familys_bonferroni_level():
    rng = np.random.default_rng(13)
    y = np.r_[np.zeros(40, bool), np.ones(40, bool)]
    base = rng.normal(size=80)
    a = y * 1.0 + base
    b = y * 0.6 + base + 0.5 * rng.normal(size=80)
    diff, low, high, p = delong_test(y, a, b, level=0.95)
    assert 0.05 / 8 < p < 0.05 and low > 0  # clear at 95 %, not at 1 - 0.05 / 8
    one = compare(y, a, b, family=Family("one", 1))
    eight = compare(y, a, b, family=Family("eight", 8))
    assert one.verdict == "higher" and eight.verdict == "within noise"
    assert eight.level == pytest.approx(1 - 0.05 / 8)
    # Bonferroni by hand: a z-interval of DeLong's difference at 1 - 0.05/8 contains 0 exactly when p > 0.05/8.
    assert eight.ci_low < 0 < eight.ci_high and eight.diff == pytest.approx(diff)
    assert "eight" in eight.text() and "99.4 %" in eight.text()
    assert BOOK_FAMILY.size == len(HEADLINE_COMPARISONS) and compare(y, a, b).level == BOOK_FAMILY.level


def bottle_labels() -> np.ndarray:
    return np.r_[np.zeros(N_GOOD, bool), np.ones(N_DEFECTIVE, bool)]


def pairs_won(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC by brute force: the share of (defective, good) pairs ranked right, ties counted half."""
    bad, good = s[y][:, None], s[~y][None, :]
    return float(np.mean((bad > good) + 0.5 * (bad == good)))


def test_permutation_p_matches_exact_enumeration_of_the_within_image_swaps():
    # 9 images: all 2**9 swaps of the two scorings' normalised ranks, each AUROC by brute force.
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(4, bool), np.ones(5, bool)]
    a, b = y + rng.normal(size=9), 0.3 * y + 2 * rng.normal(size=9)
    ra, rb = rankdata(a) / 9, rankdata(b) / 9
    observed = pairs_won(y, ra) - pairs_won(y, rb)
    swapped = [np.array(s, bool) for s in itertools.product([False, True], repeat=9)]
    null = np.array([pairs_won(y, np.where(s, rb, ra)) - pairs_won(y, np.where(s, ra, rb)) for s in swapped])
    exact = np.mean(np.abs(null) >= abs(observed) - 1e-12)
    diff, p = permutation_test(y, a, b, n_resamples=20_000)
    assert diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert p == pytest.approx(exact, abs=0.01)  # Monte Carlo standard error about 0.002


def test_compare_resolves_a_perfect_scoring_against_a_clearly_worse_one():
    # Issue 23: one scoring at AUROC 1 made DeLong's variance 0 and the verdict "within noise".
    rng = np.random.default_rng(4)
    y = bottle_labels()
    perfect = np.where(y, 3.0, 0.0) + rng.uniform(size=y.size)
    worse = 1.2 * y + rng.normal(size=y.size)
    assert roc_auc_score(y, perfect) == 1 and roc_auc_score(y, worse) < 0.9
    lower = compare(y, worse, perfect)
    assert lower.verdict == "lower" and lower.method == PERMUTATION
    # the interval stays MOVER's (a bootstrap would keep AUROC 1 in every resample and be too narrow)
    assert (lower.ci_low, lower.ci_high) == delong_test(y, worse, perfect, level=BOOK_FAMILY.level)[1:3]
    assert lower.p < BOOK_FAMILY.alpha / BOOK_FAMILY.size
    assert lower.diff == pytest.approx(roc_auc_score(y, worse) - 1, abs=1e-12)
    assert PERMUTATION in lower.text()
    higher = compare(y, perfect, worse)
    assert higher.verdict == "higher" and higher.method == PERMUTATION


def test_compare_of_identical_or_both_perfect_scorings_is_within_noise():
    rng = np.random.default_rng(6)
    y = bottle_labels()
    noisy = y + rng.normal(size=y.size)
    perfect = np.where(y, 3.0, 0.0) + rng.uniform(size=y.size)
    for s in (noisy, perfect):
        c = compare(y, s, s.copy())
        assert c.verdict == "within noise" and c.diff == 0 and c.p == 1 and c.method == PERMUTATION
    both = compare(y, perfect, 2 * perfect + rng.uniform(size=y.size) * np.where(y, 1, -1))
    assert both.diff == 0 and both.verdict == "within noise"
    assert both.ci_low < 0 < both.ci_high  # the interval stays open where both separate perfectly


@pytest.mark.parametrize("signal", [1.5, 4.0])
def test_permutation_test_rejects_about_alpha_of_exchangeable_pairs(signal):
    # Two scorings of one latent score plus independent noise of the same size: exchangeable within each
    # image, so equal true AUROCs. 400 simulated bottle-sized test sets; at signal 4 most have an AUROC of 1.
    # The rejection rate at alpha 0.05 must stay near or below it (binomial sd 0.011).
    rng = np.random.default_rng(int(10 * signal))
    y = bottle_labels()
    rejected = []
    for i in range(400):
        latent = signal * y + rng.normal(size=y.size)
        a, b = latent + 0.6 * rng.normal(size=y.size), latent + 0.6 * rng.normal(size=y.size)
        p = permutation_test(y, a, b, n_resamples=500, seed=i)[1]
        rejected.append(p < 0.05)
    assert np.mean(rejected) <= 0.08


def test_permutation_test_rejects_bad_input_by_name():
    y = bottle_labels()
    with pytest.raises(ValueError, match="n_resamples"):
        permutation_test(y, y + 0.0, y + 1.0, n_resamples=0)
    with pytest.raises(ValueError, match="2 images of each class"):
        permutation_test(np.r_[0, 1, 1, 1], np.arange(4.0), np.arange(4.0))


def test_compare_keeps_delong_and_mover_where_they_do_not_degenerate():
    rng = np.random.default_rng(8)
    for size in (1, 3, 9):
        y = rng.random(80) < 0.5
        a, b = y + rng.normal(size=80), 0.8 * y + rng.normal(size=80)
        family = Family("f", size)
        c = compare(y, a, b, family=family)
        expected = delong_test(y, a, b, level=1 - 0.05 / size)
        assert c.method == DELONG and DELONG in c.text()
        assert np.allclose((c.diff, c.ci_low, c.ci_high, c.p), expected, rtol=0, atol=1e-12)
        by_p = verdict(expected[0], p=expected[3], alpha=0.05 / size)
        assert c.verdict == (by_p if by_p == verdict(expected[0], interval=expected[1:3]) else "within noise")


def test_family_rejects_bad_size_and_alpha():
    with pytest.raises(ValueError, match="size"):
        Family("x", 0)
    with pytest.raises(ValueError, match="alpha"):
        Family("x", 2, alpha=1.5)


def test_mean_sem_matches_hand_values():
    mean, sem = mean_sem([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert sem == pytest.approx(np.sqrt(5 / 3) / 2)
    with pytest.raises(ValueError, match="at least 2"):
        mean_sem([0.9])


def test_defect_aurocs_compares_good_images_with_each_type_alone():
    kinds = ["good"] * 4 + ["crack"] * 3 + ["scratch"] * 2
    samples = [Sample(Path(f"{i}.png"), int(k != "good"), k) for i, k in enumerate(kinds)]
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.35, 0.8, 0.05, 0.15])
    table = defect_aurocs(samples, scores)
    assert list(table.index) == ["crack", "scratch"]
    # crack vs 4 good: 0.9 and 0.8 beat all 4, 0.35 beats 3 -> 11/12; scratch: 0.05 beats none, 0.15 one -> 1/8
    assert table.loc["crack", "auroc"] == pytest.approx(11 / 12)
    assert table.loc["scratch", "auroc"] == pytest.approx(1 / 8)
    assert table.loc["crack", ["n_good", "n_defective"]].tolist() == [4, 3]
    assert (table["ci_low"] <= table["auroc"]).all() and (table["auroc"] <= table["ci_high"]).all()
    with pytest.raises(ValueError, match="one per sample"):
        defect_aurocs(samples, scores[:-1])
