import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from tad.shift import acquisition_confounds, shift_audit, two_sample_test
from tad.stats import Family


def loop_mmd2(x, y, h):
    """Unbiased squared MMD by explicit double loops (Gretton et al. 2012, eq. 3)."""
    k = lambda a, b: math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b)) / (2 * h * h))  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def loop_median_distance(rows):
    return float(np.median([math.dist(a, b) for a, b in itertools.combinations(rows, 2)]))


def test_statistic_and_bandwidth_match_a_loop_over_the_kernel():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(0.5, 1, size=(4, 3))
    h = loop_median_distance(np.vstack([x, y]))
    result = two_sample_test(x, y, n_permutations=9, standardise=False)
    assert result.bandwidth == pytest.approx(h)
    assert result.statistic == pytest.approx(loop_mmd2(x, y, h), rel=1e-10)


def test_permutation_p_matches_the_exact_p_of_every_split():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 2)), rng.normal(0.8, 1, size=(4, 2))
    pooled = np.vstack([x, y])
    h = loop_median_distance(pooled)
    observed = loop_mmd2(x, y, h)
    stats = [loop_mmd2(pooled[list(s)], pooled[[i for i in range(9) if i not in s]], h)
             for s in itertools.combinations(range(9), 5)]
    exact = np.mean(np.array(stats) >= observed - 1e-12)
    b = 20000
    p = two_sample_test(x, y, n_permutations=b, seed=3, standardise=False).p
    se = math.sqrt(exact * (1 - exact) / b)
    assert abs(p - (1 + b * exact) / (1 + b)) < 5 * se


def test_p_is_about_uniform_when_both_samples_share_a_distribution():
    rng = np.random.default_rng(4)
    ps = np.array([two_sample_test(rng.normal(size=(20, 5)), rng.normal(size=(12, 5)), n_permutations=99,
                                   seed=s).p for s in range(300)])
    for a in (0.05, 0.2, 0.5):  # P(p <= a) = a, two-sided binomial test at 1 %
        assert binomtest(int((ps <= a).sum()), len(ps), a).pvalue > 0.01


def test_a_mean_shift_gets_the_smallest_reachable_p():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 50)), rng.normal(0.7, 1, size=(20, 50))
    result = two_sample_test(x, y, n_permutations=199)
    assert result.p == pytest.approx(1 / 200)
    assert result.statistic > 0


def test_the_same_seed_gives_the_same_p():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(15, 4)), rng.normal(0.3, 1, size=(10, 4))
    assert two_sample_test(x, y, seed=7).p == two_sample_test(x, y, seed=7).p


@pytest.mark.parametrize("kwargs, name", [
    ({"first": np.ones(5)}, "first"),
    ({"second": np.ones((1, 3))}, "second"),
    ({"second": np.ones((4, 2))}, "second"),
    ({"first": np.full((4, 3), np.nan)}, "first"),
    ({"n_permutations": 0}, "n_permutations"),
    ({"n_permutations": 9.5}, "n_permutations"),
])
def test_bad_input_raises_one_line_naming_the_parameter(kwargs, name):
    args = {"first": np.zeros((4, 3)), "second": np.ones((4, 3))} | kwargs
    with pytest.raises(ValueError, match=name) as err:
        two_sample_test(**args)
    assert "\n" not in str(err.value)


def test_audit_rejects_only_below_the_family_level():
    rng = np.random.default_rng(8)
    pairs = {("same", 1): (rng.normal(size=(40, 6)), rng.normal(size=(15, 6))),
             ("moved", 1): (rng.normal(size=(40, 6)), rng.normal(1.5, 1, size=(15, 6)))}
    family = Family("test", 10)
    table = shift_audit(pairs, family, n_permutations=399)
    assert table["shift"].tolist() == (table["p"] < 0.05 / 10).tolist()
    assert table.set_index("dataset").loc["moved", "shift"]
    assert "10 tests per data set" in table["family"].iloc[0] and "p < 0.005" in table["family"].iloc[0]


def test_audit_refuses_a_family_it_could_never_reject_in_or_smaller_than_a_data_sets_tests():
    pairs = {("a", 1): (np.eye(3), np.eye(3)), ("a", 2): (np.eye(3), np.eye(3)), ("b", 1): (np.eye(3), np.eye(3))}
    with pytest.raises(ValueError, match="n_permutations"):
        shift_audit(pairs, Family("f", 100), n_permutations=999)
    with pytest.raises(ValueError, match="family size"):
        shift_audit(pairs, Family("f", 1), n_permutations=999)
    assert len(shift_audit(pairs, Family("f", 2), n_permutations=999)) == 3  # the family is per data set


def test_a_confound_needs_a_shift_and_a_normalisation_effect_at_the_same_layer():
    table = pd.DataFrame({"dataset": ["a", "a", "b", "b", "c"], "shift": [True, False, True, False, False],
                          "normalised is": ["within noise", "higher", "lower", "within noise", "higher"]})
    assert acquisition_confounds(table) == ["b"]


def test_audit_by_default_permutes_enough_to_reach_the_family_level():
    rng = np.random.default_rng(9)
    pairs = {("moved", 1): (rng.normal(size=(30, 4)), rng.normal(2, 1, size=(10, 4)))}
    table = shift_audit(pairs, Family("f", 50))  # per-test level 0.001: 999 permutations could not reach it
    assert table["p"].iloc[0] < 0.001 and table["shift"].iloc[0]
