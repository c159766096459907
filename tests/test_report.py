"""tad.report: the splits and backbones a page gets."""

import pytest

import tad.backbones
from conftest import make_synthetic_mvtec
from tad.data import DataError
from tad.report import load_backbones, setup_run


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


def test_load_backbones_skips_unobtainable_weights_and_names_why(monkeypatch, capsys):
    monkeypatch.setattr(tad.backbones, "_hub_cached", lambda tag: False)
    monkeypatch.setattr(tad.backbones, "_hub_reachable", lambda timeout=3.0: False)
    loaded = load_backbones(["tf_efficientnet_lite0", "resnet18"])
    assert list(loaded) == ["tf_efficientnet_lite0"]
    out = capsys.readouterr().out
    assert "SKIPPED resnet18" in out and "tf_efficientnet_lite0.in1k" in out


def test_load_backbones_rejects_unknown_names():
    with pytest.raises(ValueError, match="nope"):
        load_backbones(["nope"])
