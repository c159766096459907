"""tad.report.setup_run: the splits a page gets, with and without required masks."""

import pytest

from tad.data import DataError, make_synthetic_mvtec
from tad.report import setup_run


@pytest.fixture
def toy_root(tmp_path):
    make_synthetic_mvtec(tmp_path, "toy", n_train=4, n_test_good=2, n_test_defective=3, size=32)
    return tmp_path


def test_setup_run_with_require_masks_gives_every_anomalous_test_image_its_mask(toy_root):
    splits, _ = setup_run(toy_root, ["toy"], "tf_efficientnet_lite0", require_masks=True)
    (split,) = splits
    anomalous = [s for s in split.test if s.label == 1]
    assert len(anomalous) == 3
    assert all(s.mask is not None and s.mask.is_file() for s in anomalous)


def test_setup_run_with_require_masks_names_a_missing_mask(toy_root):
    missing = sorted((toy_root / "toy" / "ground_truth" / "blob").glob("*_mask.png"))[0]
    missing.unlink()
    with pytest.raises(DataError, match=missing.name):
        setup_run(toy_root, ["toy"], "tf_efficientnet_lite0", require_masks=True)
    splits, _ = setup_run(toy_root, ["toy"], "tf_efficientnet_lite0")  # default: the image stays, maskless
    assert sum(s.label == 1 and s.mask is None for s in splits[0].test) == 1
