"""Tests of tad.data: real MVTec AD copy, ELPV splits, synthetic generator, image decoding and input errors."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import make_synthetic_mvtec
from tad.data import (
    DataError,
    DataWarning,
    available_categories,
    count_report,
    load_elpv,
    load_image,
    load_mask,
    load_mvtec,
    load_split,
)

REAL_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvtec_ad"
# From /work/shared/data/README.md: (train good, test good, test defective) and defect types.
README_COUNTS = {
    "bottle": (209, 20, 63, {"broken_large", "broken_small", "contamination"}),
    "screw": (320, 41, 119, {"manipulated_front", "scratch_head", "scratch_neck", "thread_side", "thread_top"}),
    "transistor": (213, 60, 40, {"bent_lead", "cut_lead", "damaged_case", "misplaced"}),
}
# Counts of labels.csv in elpv-dataset 1.0.0.post1 (probability 0 / 1 per cell type).
ELPV_GOOD_BAD = {"mono": (588, 313), "poly": (920, 402)}


@pytest.fixture
def real_root():
    if not REAL_ROOT.is_dir():
        pytest.skip(f"real MVTec AD copy not found at {REAL_ROOT}")
    return REAL_ROOT


@pytest.fixture
def synthetic(tmp_path):
    return make_synthetic_mvtec(tmp_path, "toy", n_train=5, n_test_good=3, n_test_defective=4, size=32)


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.parametrize("category", sorted(README_COUNTS))
def test_real_category_has_readme_counts_and_no_warning(real_root, category):
    n_train, n_good, n_bad, defects = README_COUNTS[category]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = load_mvtec(real_root, category, require_masks=True)
    assert len(split.train) == n_train
    assert (split.test_labels == 0).sum() == n_good
    assert (split.test_labels == 1).sum() == n_bad
    assert {s.defect for s in split.test if s.label == 1} == defects


@pytest.mark.parametrize("category", sorted(README_COUNTS))
def test_real_defective_images_all_have_masks_of_their_size(real_root, category):
    split = load_mvtec(real_root, category, require_masks=True)
    defective = [s for s in split.test if s.label == 1]
    assert all(s.mask is not None and s.mask.is_file() for s in defective)
    assert all(s.mask is None for s in split.test if s.label == 0)
    sample = defective[0]
    image = load_image(sample.path)
    mask = load_mask(sample.mask, image.size)
    assert mask.shape == (image.size[1], image.size[0]) and mask.any()


def test_real_screw_grayscale_loads_as_rgb(real_root):
    path = sorted((real_root / "screw" / "train" / "good").glob("*.png"))[0]
    with Image.open(path) as raw:
        assert raw.mode == "L"
        gray = np.asarray(raw)
    rgb = np.asarray(load_image(path))
    assert rgb.dtype == np.uint8 and rgb.shape == gray.shape + (3,)
    assert all(np.array_equal(rgb[..., c], gray) for c in range(3))


def test_count_report_on_real_data_matches_readme(real_root):
    report = count_report(real_root)
    assert list(report.index) == sorted(README_COUNTS)
    for name, (n_train, n_good, n_bad, _) in README_COUNTS.items():
        row = report.loc[name]
        assert (row.train_good, row.test_good, row.test_defective) == (n_train, n_good, n_bad)
        assert bool(row.matches)


def test_load_split_dispatches_mvtec(real_root):
    assert len(load_split("bottle", real_root).train) == 209


# ------------------------------------------------------------------------------------------ synthetic


def test_synthetic_roundtrip(synthetic):
    assert available_categories(synthetic.parent) == ["toy"]
    split = load_mvtec(synthetic.parent, "toy", require_masks=True)
    assert split.name == "toy"
    assert len(split.train) == 5
    assert list(split.test_labels) == [1] * 4 + [0] * 3  # "blob" sorts before "good"
    for sample in split.test:
        image = np.asarray(load_image(sample.path), dtype=float)
        assert image.shape == (32, 32, 3)
        if sample.label:
            mask = load_mask(sample.mask, (32, 32))
            assert mask.any() and not mask.all()
            assert image[mask].mean() > image[~mask].mean() + 50  # bright blob where the mask says


def test_synthetic_is_seeded(tmp_path):
    a = make_synthetic_mvtec(tmp_path / "a", n_train=2, n_test_good=1, n_test_defective=1, seed=3)
    b = make_synthetic_mvtec(tmp_path / "b", n_train=2, n_test_good=1, n_test_defective=1, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_non_official_category_needs_no_count_check(synthetic):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mvtec(synthetic.parent, "toy")


def test_hidden_and_non_image_files_are_ignored(synthetic):
    (synthetic / "train" / "good" / ".hidden.png").write_bytes(b"junk")
    (synthetic / "train" / "good" / "notes.txt").write_text("junk")
    shutil.copy(synthetic / "train" / "good" / "000.png", synthetic / "train" / "good" / "005.PNG")
    paths = load_mvtec(synthetic.parent, "toy").train_paths
    assert [p.name for p in paths] == ["000.png", "001.png", "002.png", "003.png", "004.png", "005.PNG"]


# ------------------------------------------------------------------------------------------ errors


def test_count_deviation_warns_with_expected_and_found(tmp_path):
    make_synthetic_mvtec(tmp_path, "bottle", n_train=3, n_test_good=2, n_test_defective=2, size=16)
    with pytest.warns(DataWarning, match=r"\(209, 20, 63\).*\(3, 2, 2\)"):
        load_mvtec(tmp_path, "bottle")
    matches = count_report(tmp_path).loc["bottle", "matches"]
    assert matches is not pd.NA and not matches  # an official name whose counts differ


def test_unknown_category_lists_valid_ones(synthetic):
    with pytest.raises(DataError, match="nothere") as info:
        load_mvtec(synthetic.parent, "nothere")
    assert "toy" in str(info.value) and "bottle" in str(info.value)


def test_empty_train_good_names_folder(synthetic):
    for p in (synthetic / "train" / "good").iterdir():
        p.unlink()
    with pytest.raises(DataError, match=str(synthetic / "train" / "good")):
        load_mvtec(synthetic.parent, "toy")


def test_test_set_without_defects_is_refused(synthetic):
    shutil.rmtree(synthetic / "test" / "blob")
    with pytest.raises(DataError, match="defective"):
        load_mvtec(synthetic.parent, "toy")


def test_missing_mask_with_require_masks(synthetic):
    (synthetic / "ground_truth" / "blob" / "002_mask.png").unlink()
    split = load_mvtec(synthetic.parent, "toy")
    assert split.test[2].mask is None and split.test[3].mask is not None
    with pytest.raises(DataError, match="002_mask.png") as info:
        load_mvtec(synthetic.parent, "toy", require_masks=True)
    assert str(synthetic / "test" / "blob") in str(info.value)


def test_mask_size_mismatch_names_both(tmp_path):
    mask = tmp_path / "m.png"
    Image.fromarray(np.zeros((10, 20), np.uint8)).save(mask)
    with pytest.raises(DataError, match=r"m\.png.*\(20, 10\).*img\.png.*\(32, 32\)"):
        load_mask(mask, (32, 32), image=tmp_path / "img.png")


def test_mask_values_are_thresholded(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(np.array([[0, 255, 127], [128, 0, 255]], np.uint8)).save(path)
    assert load_mask(path, (3, 2)).tolist() == [[False, True, False], [True, False, True]]


def test_truncated_png_names_file(tmp_path):
    full = tmp_path / "full.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full)
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.png"):
        load_image(cut)


def test_text_file_named_png_names_file(tmp_path):
    path = tmp_path / "fake.png"
    path.write_text("not an image")
    with pytest.raises(DataError, match="fake.png"):
        load_image(path)


def test_missing_root_is_named_with_where_it_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("TAD_DATA", str(tmp_path / "absent"))
    with pytest.raises(DataError, match=r"absent \(from TAD_DATA\) is not a folder"):
        load_mvtec(None, "bottle")
    with pytest.raises(DataError, match=r"nowhere \(given\) is not a folder"):
        count_report(tmp_path / "nowhere")


def test_tad_data_env_is_default_root(synthetic, monkeypatch):
    monkeypatch.setenv("TAD_DATA", str(synthetic.parent))
    assert load_split("toy").name == "toy"


# ------------------------------------------------------------------------------------------ decoding


def test_grayscale_png_loads_as_rgb(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(np.array([[0, 100], [200, 255]], np.uint8)).save(path)
    out = np.asarray(load_image(path))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == out[..., 2].tolist() == [[0, 100], [200, 255]]


def test_rgba_png_drops_alpha(tmp_path):
    path = tmp_path / "a.png"
    rgba = np.array([[[10, 20, 30, 0], [200, 150, 100, 255]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(path)
    out = np.asarray(load_image(path))
    assert out.dtype == np.uint8 and out.tolist() == [[[10, 20, 30], [200, 150, 100]]]


def test_la_png_drops_alpha(tmp_path):
    path = tmp_path / "la.png"
    Image.fromarray(np.array([[[40, 0], [90, 255]]], np.uint8), "LA").save(path)
    assert np.asarray(load_image(path)).tolist() == [[[40] * 3, [90] * 3]]


def test_16bit_png_scaled_by_dtype_range(tmp_path):
    path = tmp_path / "d.png"
    Image.fromarray(np.array([[0, 257 * 100], [32768, 65535]], np.uint16)).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # really stored as 16-bit
    out = np.asarray(load_image(path))
    assert out.dtype == np.uint8 and out[..., 1].tolist() == [[0, 100], [128, 255]]


def test_16bit_png_small_range_not_stretched(tmp_path):
    path = tmp_path / "d.png"
    Image.fromarray(np.array([[0, 257]], np.uint16)).save(path)
    assert np.asarray(load_image(path))[..., 0].tolist() == [[0, 1]]


def test_palette_png_loads_as_rgb(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)).convert("P").save(path)
    assert np.asarray(load_image(path)).tolist() == [[[255, 0, 0], [0, 0, 255]]]


# ------------------------------------------------------------------------------------------ ELPV


def _probabilities():
    import elpv_dataset

    data = Path(elpv_dataset.__file__).parent / "data"
    rows = [line.split() for line in (data / "labels.csv").read_text().splitlines() if line.strip()]
    return {data / path: float(p) for path, p, _ in rows}


@pytest.mark.parametrize("kind", ["mono", "poly"])
def test_elpv_split_is_disjoint_good_only_train_and_excludes_intermediate(kind):
    split = load_elpv(kind)
    prob = _probabilities()
    n_good, n_bad = ELPV_GOOD_BAD[kind]
    assert split.name == f"elpv_{kind}"
    assert not set(split.train_paths) & set(split.test_paths)
    assert all(p.is_file() for p in split.train_paths + split.test_paths)
    assert {prob[p] for p in split.train_paths} == {0.0}
    assert {prob[p] for p in split.test_paths} == {0.0, 1.0}
    assert len(split.train) == n_good - round(0.25 * n_good)
    assert (split.test_labels == 0).sum() == round(0.25 * n_good)
    assert (split.test_labels == 1).sum() == n_bad
    assert all(prob[s.path] == s.label for s in split.test)


def test_elpv_intermediate_as_anomalous():
    split = load_elpv("mono", intermediate="anomalous")
    prob = _probabilities()
    assert {round(prob[s.path], 2) for s in split.test if s.label} == {0.33, 0.67, 1.0}
    assert (split.test_labels == 1).sum() == 313 + 117 + 56


def test_elpv_reproducible_with_seed_and_different_with_another():
    assert load_elpv("mono", seed=0).train_paths == load_elpv("mono", seed=0).train_paths
    assert load_elpv("mono", seed=0).train_paths != load_elpv("mono", seed=1).train_paths
    assert load_split("elpv_poly", seed=2).test_paths == load_elpv("poly", seed=2).test_paths


def test_elpv_bad_arguments():
    with pytest.raises(DataError, match="kind"):
        load_elpv("thin")
    with pytest.raises(DataError, match="intermediate"):
        load_elpv("mono", intermediate="drop")


# ------------------------------------------------------------------------------------------ input limits


@pytest.mark.parametrize("name", ["../other", "toy/../toy", "a/b", "..", ".", "", "a\\b"])
def test_category_that_is_not_a_name_is_refused(synthetic, name):
    with pytest.raises(DataError, match="not a folder name"):
        load_mvtec(synthetic.parent, name)


def test_category_outside_root_is_not_read(tmp_path):
    make_synthetic_mvtec(tmp_path / "other", "x", n_train=2, n_test_good=1, n_test_defective=1, size=16)
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="not a folder name"):
        load_mvtec(tmp_path / "data", "../other/x")


def test_test_folder_linked_to_good_is_refused(synthetic):
    (synthetic / "test" / "dup").symlink_to("good")
    with pytest.raises(DataError, match=r"test/dup is a link to .*test/good"):
        load_mvtec(synthetic.parent, "toy")


def test_test_folder_linked_to_the_training_folder_is_refused_naming_both(synthetic):
    (synthetic / "test" / "dup").symlink_to("../train/good")
    with pytest.raises(DataError, match=r"test folder .*test/dup is a link to the training folder .*train/good"):
        load_mvtec(synthetic.parent, "toy")


def test_test_image_with_a_training_images_bytes_is_refused_naming_both(synthetic):
    train = sorted((synthetic / "train" / "good").iterdir())
    shutil.copy(train[1], synthetic / "test" / "good" / "copy.png")
    shutil.copy(train[2], synthetic / "test" / "good" / "zz_copy.png")
    with pytest.raises(DataError, match=rf"test image .*test/good/copy\.png has the same bytes as training image "
                                        rf".*{train[1].name} \(and 1 more"):
        load_mvtec(synthetic.parent, "toy")


def test_a_test_image_that_only_looks_like_a_training_image_is_kept(synthetic):
    train = sorted((synthetic / "train" / "good").iterdir())
    copy = synthetic / "test" / "good" / "copy.png"
    copy.write_bytes(train[0].read_bytes() + b"\0")  # other bytes: not the same file, not refused
    assert copy in load_mvtec(synthetic.parent, "toy").test_paths


def test_default_root_order(tmp_path, monkeypatch):
    from tad.data import default_cache, default_root

    monkeypatch.setenv("TAD_DATA", str(tmp_path / "d"))
    assert default_root() == tmp_path / "d"
    monkeypatch.setenv("TAD_CACHE", str(tmp_path / "c"))
    assert default_cache() == tmp_path / "c"
    monkeypatch.delenv("TAD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert default_cache() == tmp_path / "xdg" / "tad"  # per user, not below the current folder
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache() == Path.home() / ".cache" / "tad"


def test_image_over_pixel_limit_names_file_and_limit(tmp_path, monkeypatch):
    import tad.data

    path = tmp_path / "big.png"
    Image.new("RGB", (40, 30)).save(path)
    monkeypatch.setattr(tad.data, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"big.png has 40x30 = 1,200 pixels; .*at most MAX_IMAGE_PIXELS = 1,000"):
        load_image(path)


def _png_header(width, height):
    """A PNG whose header claims ``width`` x ``height`` (no pixel data): enough for PIL to refuse or open it."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("shape", [(14000, 13000), (9000, 8000)])  # 182 MP: PIL's own bomb error; 72 MP: ours
def test_huge_png_is_refused_naming_file_before_decoding(tmp_path, shape):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header(*shape))
    with pytest.raises(DataError, match=r"huge.png .*MAX_IMAGE_PIXELS = 67,108,864"):
        load_image(path)


def test_float_tiff_is_scaled_from_unit_range(tmp_path):
    values = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    path = tmp_path / "f.tif"
    Image.fromarray(values, mode="F").save(path)
    rgb = np.asarray(load_image(path))
    assert rgb[..., 0].tolist() == [[0, 64], [128, 255]]  # round(255 * v)
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_float_tiff_outside_unit_range_is_refused(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.array([[0.0, 300.0]], dtype=np.float32), mode="F").save(path)
    with pytest.raises(DataError, match=r"f.tif has values in \[0, 300\]: expected intensities in \[0, 1\]"):
        load_image(path)


def test_count_report_leaves_own_category_unjudged(synthetic):
    row = count_report(synthetic.parent).loc["toy"]
    assert row.matches is pd.NA and row.official_train_good is pd.NA
    assert (row.train_good, row.test_good, row.test_defective) == (5, 3, 4)


def test_example_samples_are_the_first_good_then_one_per_defect_type(tmp_path):
    from conftest import make_synthetic_mvtec

    from tad.data import example_samples, image_format, load_split

    make_synthetic_mvtec(tmp_path, "toy", n_train=3, n_test_good=2, n_test_defective=3, size=32)
    split = load_split("toy", tmp_path)
    picked = example_samples(split)
    first_good = next(t for t in split.test if t.label == 0)
    first_blob = next(t for t in split.test if t.defect == "blob")
    assert picked == [first_good, first_blob]  # one defect type, so one defective sample
    assert example_samples(split, n_defects=0) == [first_good]
    assert image_format(split.train[0].path) == "32x32 px, RGB"
