"""Tests for tad.evaluate against independent brute-force computations."""

import numpy as np
import pytest
from scipy import ndimage

from tad.evaluate import auroc, bootstrap_ci, pixel_auroc, pro_score, rates_at_threshold, tpr_at_fpr


def pairwise_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC as the fraction of (anomalous, good) pairs ordered correctly, ties 1/2."""
    anomalous, good = scores[labels == 1], scores[labels == 0]
    wins = sum((a > g) + 0.5 * (a == g) for a in anomalous for g in good)
    return wins / (len(anomalous) * len(good))


def shifted_scores(n_good: int, n_anom: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_good, int), np.ones(n_anom, int)]
    scores = np.r_[rng.normal(0, 1, n_good), rng.normal(1, 1, n_anom)]
    return labels, scores


def test_auroc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 60)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    assert auroc(labels, scores) == pytest.approx(pairwise_auroc(labels, scores))


def test_auroc_accepts_bool_labels():
    assert auroc(np.array([False, True, True]), [0.1, 0.2, 0.0]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("labels", "scores", "name"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "labels"),
        ([0, 0], [0.1, 0.2], "labels"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "labels"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "scores"),
        ([0, 1, 1], [0.1, np.inf, 0.3], "scores"),
        ([0, 1, 1], [0.1, 0.2], "scores"),
    ],
)
def test_invalid_inputs_raise_naming_parameter(labels, scores, name):
    for func in (auroc, bootstrap_ci):
        with pytest.raises(ValueError, match=name):
            func(labels, scores)


def test_bootstrap_ci_contains_point_estimate_and_is_reproducible():
    labels, scores = shifted_scores(80, 40, seed=2)
    low, high = bootstrap_ci(labels, scores, seed=3)
    assert low < auroc(labels, scores) < high
    assert bootstrap_ci(labels, scores, seed=3) == (low, high)
    assert bootstrap_ci(labels, scores, seed=4) != (low, high)


def test_bootstrap_ci_narrows_with_more_samples():
    small = bootstrap_ci(*shifted_scores(30, 20, seed=5))
    large = bootstrap_ci(*shifted_scores(600, 400, seed=5))
    assert large[1] - large[0] < 0.5 * (small[1] - small[0])


def test_bootstrap_ci_agrees_with_a_loop_of_pairwise_aurocs():
    labels, scores = shifted_scores(150, 100, seed=6)
    good, anomalous = scores[labels == 0], scores[labels == 1]
    rng = np.random.default_rng(7)
    aurocs = []
    for _ in range(1500):
        g = rng.choice(good, good.size)
        a = rng.choice(anomalous, anomalous.size)
        aurocs.append(((a[:, None] > g[None]) + 0.5 * (a[:, None] == g[None])).mean())  # pairwise, no sklearn
    expected = np.percentile(aurocs, [2.5, 97.5])
    got = bootstrap_ci(labels, scores, n_boot=1500, level=0.95, seed=8)
    np.testing.assert_allclose(got, expected, atol=0.02)


def test_bootstrap_ci_rejects_bad_level_and_n_boot():
    labels, scores = shifted_scores(10, 10, seed=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(labels, scores, level=1.0)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(labels, scores, n_boot=0)


def brute_force_tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Try every threshold (each score and +inf), flag score >= t, keep the best TPR with FPR <= fpr."""
    best = 0.0
    for t in list(scores) + [np.inf]:
        flagged = scores >= t
        f = sum(flagged[i] for i in range(len(scores)) if labels[i] == 0) / sum(labels == 0)
        r = sum(flagged[i] for i in range(len(scores)) if labels[i] == 1) / sum(labels == 1)
        if f <= fpr:
            best = max(best, r)
    return best


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.1, 0.5, 1.0])
def test_tpr_at_fpr_matches_a_brute_force_count(fpr):
    rng = np.random.default_rng(11)
    labels = np.r_[np.zeros(20, int), np.ones(63, int)]
    scores = np.round(rng.normal(size=83) + 1.5 * labels, 1)  # ties within and across classes
    assert tpr_at_fpr(labels, scores, fpr) == pytest.approx(brute_force_tpr_at_fpr(labels, scores, fpr))


def test_tpr_at_fpr_hand_case():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.5, 0.95, 0.05])
    assert tpr_at_fpr(labels, scores, 0.0) == pytest.approx(1 / 3)  # only 0.95 above every good image
    assert tpr_at_fpr(labels, scores, 0.25) == pytest.approx(2 / 3)  # threshold 0.5 flags 0.9 too
    with pytest.raises(ValueError, match="fpr"):
        tpr_at_fpr(labels, scores, 1.5)


def test_rates_at_threshold_counts_scores_strictly_above():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.3, 0.95, 0.05])
    assert rates_at_threshold(labels, scores, 0.3) == pytest.approx((1 / 4, 1 / 3))
    assert rates_at_threshold(labels, scores, 0.29) == pytest.approx((2 / 4, 2 / 3))


def test_pixel_auroc_matches_pairwise_on_tiny_case():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1:3, 1:3] = True
    masks[1, 0, 3] = True
    maps = np.arange(32, dtype=float).reshape(2, 4, 4) % 7  # includes ties
    maps[0, 1, 1] = 9.0
    expected = pairwise_auroc(masks.ravel().astype(int), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(expected)


def test_pixel_auroc_rejects_wrong_shape_and_nan():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 0, 0] = True
    with pytest.raises(ValueError, match="maps"):
        pixel_auroc(masks, np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="maps"):
        pixel_auroc(masks, np.full((2, 4, 4), np.nan))


def two_region_mask() -> np.ndarray:
    """One 10x10 image: a 2x2 region and a separate 3x3 region."""
    masks = np.zeros((1, 10, 10), bool)
    masks[0, 1:3, 1:3] = True
    masks[0, 5:8, 5:8] = True
    return masks


def test_pro_perfect_map_scores_one():
    masks = two_region_mask()
    assert pro_score(masks, masks.astype(float)) == pytest.approx(1.0)


@pytest.mark.parametrize("max_fpr", [0.05, 0.3, 1.0])
def test_pro_uniform_map_scores_half_max_fpr(max_fpr):
    # Every threshold flags all pixels: the curve is the diagonal from (0, 0) to (1, 1).
    masks = two_region_mask()
    assert pro_score(masks, np.full(masks.shape, 0.7), max_fpr=max_fpr) == pytest.approx(
        max_fpr / 2
    )


def test_pro_one_region_covered_at_low_fpr_matches_hand_integral():
    masks = two_region_mask()
    maps = np.zeros(masks.shape)
    maps[0, 1:3, 1:3] = 1.0  # covers the small region fully
    maps[0, 9, 0:2] = 1.0  # two false positives
    # Curve: (0, 0), (f, 1/2) for every threshold in (0, 1], then (1, 1) at threshold 0.
    f, max_fpr = 2 / 87, 0.3
    y_max = 0.5 + 0.5 * (max_fpr - f) / (1 - f)
    area = 0.5 * f * 0.5 + (max_fpr - f) * (0.5 + y_max) / 2
    assert pro_score(masks, maps, max_fpr=max_fpr) == pytest.approx(area / max_fpr)


def test_pro_regions_use_8_connectivity():
    masks = np.zeros((1, 8, 8), bool)
    masks[0, 0, 0] = masks[0, 1, 1] = True  # one region under 8-connectivity, two under 4
    masks[0, 5, 5] = True
    maps = np.zeros(masks.shape)
    maps[0, 5, 5] = 1.0
    # PRO = 1/2 for thresholds in (0, 1]; area to 0.3 is 0.3 * (0.5 + 0.65) / 2.
    assert pro_score(masks, maps, max_fpr=0.3) == pytest.approx(0.575)


def brute_force_pro(masks: np.ndarray, maps: np.ndarray, max_fpr: float, thresholds: np.ndarray) -> float:
    """Per-threshold loop over components, explicit trapezoid with interpolation."""
    points = [(0.0, 0.0)]
    for t in np.sort(thresholds)[::-1]:
        overlaps = []
        for mask, amap in zip(masks, maps):
            regions, count = ndimage.label(mask, structure=np.ones((3, 3)))
            overlaps += [np.mean(amap[regions == k] >= t) for k in range(1, count + 1)]
        points.append((np.mean(maps[~masks] >= t), np.mean(overlaps)))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x1 <= max_fpr:
            area += (x1 - x0) * (y0 + y1) / 2
        else:
            y_cut = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            area += (max_fpr - x0) * (y0 + y_cut) / 2
            break
    return area / max_fpr


@pytest.mark.parametrize("max_fpr", [0.01, 0.3])
def test_pro_matches_brute_force_on_random_maps(max_fpr):
    rng = np.random.default_rng(9)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 2:6, 3:9] = True
    masks[0, 10:12, 10:15] = True
    masks[1, 7, 7:9] = True
    masks[1, 8, 9] = True  # diagonal neighbour joins the region above
    smooth = ndimage.gaussian_filter(masks.astype(float), sigma=(0, 1.5, 1.5))
    maps = smooth + 0.3 * rng.random(masks.shape)
    exact = brute_force_pro(masks, maps, max_fpr, np.unique(maps))
    assert pro_score(masks, maps, max_fpr=max_fpr) == pytest.approx(exact)
    grid = brute_force_pro(masks, maps, max_fpr, np.quantile(maps, np.linspace(0, 1, 50)))
    assert pro_score(masks, maps, max_fpr=max_fpr, n_thresholds=50) == pytest.approx(grid)


def test_pro_is_unchanged_by_a_monotone_transform_of_heavy_tailed_maps():
    rng = np.random.default_rng(3)
    masks = np.zeros((2, 16, 16), bool)
    masks[0, 4:8, 4:8] = True
    maps = rng.random(masks.shape) + 2 * masks
    heavy = np.exp(12 * maps)  # a few huge values, as Mahalanobis maps have
    assert pro_score(masks, heavy) == pytest.approx(pro_score(masks, maps))
    assert pro_score(masks, heavy, n_thresholds=200) == pytest.approx(pro_score(masks, maps, n_thresholds=200))


@pytest.mark.parametrize("max_fpr", [0.0, -0.1, 1.5])
def test_pro_rejects_invalid_max_fpr(max_fpr):
    masks = two_region_mask()
    with pytest.raises(ValueError, match="max_fpr"):
        pro_score(masks, masks.astype(float), max_fpr=max_fpr)


def test_pro_rejects_masks_without_anomalous_pixels():
    masks = np.zeros((1, 4, 4), bool)
    with pytest.raises(ValueError, match="masks"):
        pro_score(masks, np.zeros((1, 4, 4)))
