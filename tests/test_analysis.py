"""Tests for tad.analysis against brute-force projections (np.cov eigenvectors, scipy's null space)."""

import numpy as np
import pytest
from scipy.linalg import null_space

from PIL import Image

from tad.analysis import (axis_groups, deviation_by_axes, grey_level_table, grey_levels, normalise_grey,
                          normalised_copies)


def anisotropic(n: int, d: int, seed: int) -> np.ndarray:
    """Rows with clearly separated variances along random orthogonal axes."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * np.geomspace(10, 0.1, d)) @ axes.T + rng.normal(size=d)


def squared_projection(Y: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """||P (y - mean)||^2 per row of Y for the projector onto the orthonormal columns of ``basis``."""
    P = basis @ basis.T
    return (((Y - mean) @ P) ** 2).sum(axis=1)


def test_halves_match_projections_on_np_cov_eigenvectors_when_n_exceeds_d():
    X, Y = anisotropic(200, 6, seed=0), anisotropic(15, 6, seed=1) * 1.5
    _, vectors = np.linalg.eigh(np.cov(X, rowvar=False))  # ascending variance
    out = deviation_by_axes(X, Y)
    mean = X.mean(axis=0)
    np.testing.assert_allclose(out["largest"], squared_projection(Y, mean, vectors[:, 3:]), rtol=1e-9)
    np.testing.assert_allclose(out["smallest"], squared_projection(Y, mean, vectors[:, :3]), rtol=1e-9)
    np.testing.assert_allclose(out["null"], 0)
    np.testing.assert_allclose(out["total"], ((Y - mean) ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(out["largest"] + out["smallest"], out["total"], rtol=1e-9)


def test_null_group_is_the_orthogonal_complement_of_the_centred_training_rows():
    n, d = 6, 15
    X, Y = anisotropic(n, d, seed=2), anisotropic(9, d, seed=3)
    mean = X.mean(axis=0)
    out = deviation_by_axes(X, Y)
    np.testing.assert_allclose(out["null"], squared_projection(Y, mean, null_space(X - mean)), rtol=1e-8)
    assert (out["smallest"] <= out["null"] + 1e-9).all()  # NPCA's 8 of 15 axes lie inside the 10 null axes


def test_training_rows_have_no_deviation_in_the_null_space():
    X = anisotropic(5, 12, seed=4)
    out = deviation_by_axes(X, X)
    assert (out["null"] <= 1e-10 * out["total"]).all()


def test_axis_groups_sizes_follow_ratio_and_rank():
    values = np.array([5.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    groups = axis_groups(values, 0.3)
    assert groups == {"largest": slice(0, 3), "smallest": slice(7, 10), "null": slice(4, 10)}


@pytest.mark.parametrize(("train", "test"), [(np.zeros((1, 3)), np.zeros((2, 3))), (np.zeros((4, 3)), np.zeros((2, 2)))])
def test_bad_shapes_are_rejected(train, test):
    with pytest.raises(ValueError, match="train"):
        deviation_by_axes(train, test)


def flat_png(folder, name: str, value: int, mode: str = "L"):
    """A 4x6 image of one grey value, saved as PNG."""
    path = folder / f"{name}.png"
    Image.new(mode, (6, 4), value if mode == "L" else (value,) * 3).save(path)
    return path


def test_grey_level_table_gives_median_and_quantiles_of_hand_made_levels(tmp_path):
    darker = [flat_png(tmp_path, f"d{v}", v) for v in (10, 20, 30, 40, 50)]
    half = flat_png(tmp_path, "half", 0)  # half black, half 200: mean 100
    Image.fromarray(np.hstack([np.zeros((4, 3), np.uint8), np.full((4, 3), 200, np.uint8)])).save(half)
    table = grey_level_table({"dark": darker, "other": [half, flat_png(tmp_path, "rgb", 120, "RGB")]})
    assert list(table.index) == ["dark", "other"]
    assert table.loc["dark", "images"] == 5 and table.loc["dark", "median"] == 30
    assert table.loc["dark", "q05"] == pytest.approx(10 + 0.05 * 4 * 10)  # linear interpolation over 10..50
    assert table.loc["dark", "q95"] == pytest.approx(10 + 0.95 * 4 * 10)
    np.testing.assert_allclose(grey_levels([half, tmp_path / "rgb.png"]), [100, 120])
    assert table.loc["other", "median"] == pytest.approx(110)


def test_grey_level_table_refuses_an_empty_group(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        grey_level_table({"empty": [], "one": [flat_png(tmp_path, "a", 5)]})


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_normalise_grey_scales_to_the_target_mean_and_keeps_the_mode(mode):
    rng = np.random.default_rng(0)
    shape = (32, 40) if mode == "L" else (32, 40, 3)
    image = Image.fromarray(rng.integers(20, 100, size=shape, dtype=np.uint8), mode=mode)
    out = normalise_grey(image, 150.0)
    assert out.mode == mode and out.size == image.size
    assert np.asarray(out.convert("L"), dtype=float).mean() == pytest.approx(150, abs=0.6)
    ratio = 150 / np.asarray(image.convert("L"), dtype=float).mean()
    np.testing.assert_array_equal(np.asarray(out), np.rint(np.asarray(image, dtype=float) * ratio))


def test_normalise_grey_clips_and_refuses_black_or_bad_targets():
    out = normalise_grey(Image.fromarray(np.array([[100, 250]], np.uint8)), 250)
    np.testing.assert_array_equal(np.asarray(out), [[143, 255]])  # 250 * 250/175 clipped
    with pytest.raises(ValueError, match="all black"):
        normalise_grey(Image.new("L", (3, 3), 0), 100)
    with pytest.raises(ValueError, match="target"):
        normalise_grey(Image.new("L", (3, 3), 9), 300)


def test_normalised_copies_are_lossless_and_rewritten_for_a_new_target(tmp_path):
    src = [flat_png(tmp_path, "a", 50), flat_png(tmp_path, "b", 100)]
    copies = normalised_copies(src, tmp_path / "out", 80)
    assert [p.name for p in copies] == ["00000_a.png", "00001_b.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(copies[1])), np.full((4, 6), 80))
    normalised_copies(src, tmp_path / "out", 60)
    np.testing.assert_array_equal(np.asarray(Image.open(copies[0])), np.full((4, 6), 60))
