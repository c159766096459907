"""The paper preset: its count, its plan without weights or data, its one-line stops, and its whole path
run offline on a synthetic 15-class MVTec-layout set with random-weight ENB5 and ResNet-18 (never shown in
the book: random weights give no AUROC worth reporting)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import itertools

import numpy as np
import pytest
import timm
import torch
from threadpoolctl import threadpool_limits

from tad import cost, presets
from tad.backbones import BACKBONES, WeightsUnavailable
from conftest import make_synthetic_mvtec
from tad.data import MVTEC_CATEGORIES
from tad.paper import paper_table
from tad.presets import PAPER, PresetUnavailable, check, get_preset, grid_trials, paper_tables, plan, run_preset

ROOT = Path(__file__).resolve().parents[1]
SMALL = (6, 3, 3)  # train good, test good, test defective of each synthetic class


def _synthetic(root, classes=tuple(MVTEC_CATEGORIES), counts=SMALL):
    for i, c in enumerate(classes):
        make_synthetic_mvtec(root, c, n_train=counts[0], n_test_good=counts[1], n_test_defective=counts[2],
                             size=32, seed=i)
    return root


def test_paper_preset_runs_the_papers_11550_trials():
    # The paper's text: 11,550 trials over 15 classes; table 1: ResNet-18 layers 1-5 + all, ENB5 1-7 + all,
    # 11 reductions, MVG + k-NN 1/5/10 + flow. Enumerate the configurations one by one.
    configs = {(c, b, layer, red, est) for c in PAPER.classes for b, _ in PAPER.backbones
               for layer in presets.preset_layers(PAPER, b) for red in PAPER.reductions for est in PAPER.estimators}
    assert len(configs) == 15 * (6 + 8) * 11 * 5 == 11_550
    assert grid_trials(PAPER) == 11_550
    assert sorted(PAPER.classes) == sorted(MVTEC_CATEGORIES) and len(PAPER.classes) == 15
    assert sorted(PAPER.estimators) == ["flow", "knn1", "knn10", "knn5", "mvg"]
    assert PAPER.basis == "dims" and PAPER.pooling == "avg"


def test_paper_preset_reads_each_pinned_tag_at_its_native_size():
    for name, size in PAPER.backbones:
        assert timm.models.get_pretrained_cfg(BACKBONES[name].tag).input_size[-1] == size
    assert {BACKBONES[b].tag for b, _ in PAPER.backbones} == {"tf_efficientnet_b5.aa_in1k", "resnet18.tv_in1k"}


def test_dry_run_plan_needs_no_weights_and_no_data(monkeypatch):
    def no_weights(name, weights="pretrained"):
        if weights != "random":
            raise AssertionError("the plan must not load pretrained weights")
        return load(name, weights)

    load = presets.load_backbone
    monkeypatch.setattr(presets, "load_backbone", no_weights)
    p = plan(get_preset("paper"))
    assert p.trials == 11_550
    assert "11,550 trials" in str(p) and "estimate" in str(p)
    assert (p.images.counts == "official").all()
    official = sum(train + good + bad for train, good, bad in MVTEC_CATEGORIES.values())
    assert p.images[["train", "test"]].to_numpy().sum() == official
    assert p.estimate_s["total"] == pytest.approx(sum(v for k, v in p.estimate_s.items() if k != "total"))


def test_plan_counts_the_images_found_and_the_official_ones_for_the_rest(tmp_path):
    _synthetic(tmp_path, ["bottle", "screw"])
    p = plan(PAPER, tmp_path)
    assert p.images.loc["bottle"].tolist() == [6, 6, "found"]
    train, good, bad = MVTEC_CATEGORIES["wood"]
    assert p.images.loc["wood"].tolist() == [train, good + bad, "official"]


def test_estimate_without_flow_is_the_trials_at_the_grid_rate():
    no_flow = dataclasses.replace(PAPER, estimators=("mvg", "knn1"))
    p = plan(no_flow, device="cpu")
    n_trials = 15 * 14 * 11 * 2 + 15 * 6 * 2  # the grid and table 4's other poolings
    assert p.estimate_s["flow"] == 0
    assert p.estimate_s["scoring"] == pytest.approx(n_trials / cost.GRID_TRIALS_PER_S)


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"preset 'papr' not in \['paper'\]"):
        get_preset("papr")


def test_check_stops_in_one_line_on_missing_classes(tmp_path):
    _synthetic(tmp_path, ["bottle", "screw"])
    with pytest.raises(PresetUnavailable) as err:
        check(PAPER, tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "13 of 15 classes missing" in msg and "tad download" in msg and "zipper" in msg


def test_check_stops_on_counts_that_are_not_the_official_ones(tmp_path):
    _synthetic(tmp_path)
    with pytest.raises(PresetUnavailable, match=r"\(6, 3, 3\), expected \(209, 20, 63\)") as err:
        check(PAPER, tmp_path)
    assert "\n" not in str(err.value)


def test_check_stops_on_missing_weights_before_any_image_is_read(tmp_path, monkeypatch):
    _synthetic(tmp_path)

    def offline(name, weights="pretrained"):
        raise WeightsUnavailable(f"{name}: offline")

    monkeypatch.setattr(presets, "load_backbone", offline)
    with pytest.raises(PresetUnavailable, match="no weights for tf_efficientnet_b5") as err:
        check(PAPER, tmp_path, expected={c: SMALL for c in MVTEC_CATEGORIES})
    assert "\n" not in str(err.value) and "Hugging Face Hub" in str(err.value)


def test_check_stops_without_a_data_root():
    with pytest.raises(PresetUnavailable, match="not a folder"):
        check(PAPER, None)


@pytest.fixture
def one_thread():
    """One BLAS and torch thread: on a loaded machine oversubscribed threads make this test 10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


def test_paper_preset_path_runs_offline_to_the_three_tables(tmp_path, one_thread):
    """Every step from the data check to tables 2-4, on synthetic data with random-weight ENB5 and ResNet-18."""
    root = _synthetic(tmp_path / "data")
    small = dataclasses.replace(  # the grid reduced by parameters; "all" (d 1,248 and 1,024) left out for time
        PAPER, backbones=(("tf_efficientnet_b5", 32), ("resnet18", 32)),
        layers={"tf_efficientnet_b5": ("1", "3", "7"), "resnet18": ("1", "5")},
        reductions=(("none", None), ("pca", 0.5), ("npca", 0.5)), estimators=("mvg", "knn1", "flow"),
        flow_params={"epochs": 1, "hidden": 4, "transforms": 1})
    rows = run_preset(small, root, tmp_path / "grid.jsonl", weights="random",
                      expected={c: SMALL for c in MVTEC_CATEGORIES}, cache_dir=tmp_path / "cache", progress=False)
    grid = 15 * (3 + 2) * 3 * 3
    assert len(rows) == grid + 15 * 6 * 2
    keys = ["dataset", "backbone", "layer", "pooling", "reduction", "ratio", "estimator"]
    assert not rows[keys].astype(str).duplicated().any()
    assert rows.weights.str.contains("random").all() and (rows.input_size == 32).all()
    assert rows.auroc.between(0, 1).all()

    tables = paper_tables(rows, small)
    # Table 2: ENB5, layer 7, MVG, mean over the 15 classes per reduction, recomputed by hand.
    mask = (rows.backbone == "tf_efficientnet_b5") & (rows.layer == "7") & (rows.estimator == "mvg") \
        & (rows.pooling == "avg") & (rows.reduction == "npca")
    assert tables[2].loc["npca 50%", "auroc"] == pytest.approx(rows[mask].auroc.mean())
    assert tables[2].loc["npca 50%", "paper"] == pytest.approx(0.972)
    assert tables[2].loc["pca 10%", "auroc"] != tables[2].loc["pca 10%", "auroc"]  # not run: NaN, kept visible
    # Table 3: ENB5, 1-NN, NPCA 50 %, per class and layer, with the difference to the paper's.
    t3 = tables[3]
    one = rows[(rows.backbone == "tf_efficientnet_b5") & (rows.dataset == "screw") & (rows.layer == "3")
               & (rows.estimator == "knn1") & (rows.reduction == "npca") & (rows.pooling == "avg")].auroc
    assert t3.loc[("screw", "ours"), "3"] == pytest.approx(one.item())
    assert t3.loc[("screw", "diff"), "3"] == pytest.approx(one.item() - paper_table(3).loc["screw", "3"])
    ours3 = t3.xs("ours", level=1)
    assert ours3.shape == (16, 8) and not ours3[["1", "3", "7"]].isna().any().any()
    assert ours3[["2", "4", "5", "6", "all"]].isna().all().all()  # layers not run: NaN, not dropped
    # Table 4: every pooling for MVG and 1-NN at ENB5 layer 7, NPCA 50 %.
    ours4 = tables[4].xs("ours", level=1)
    assert list(ours4.index) == ["mvg", "knn1"] and not ours4.isna().any().any()
    assert np.isfinite(tables[4].xs("paper", level=1).to_numpy()).all()

    again = run_preset(small, root, tmp_path / "grid.jsonl", weights="random",
                       expected={c: SMALL for c in MVTEC_CATEGORIES}, cache_dir=tmp_path / "cache", progress=False)
    assert len(again) == len(rows)  # resumed: every trial read back, none added


def test_every_combination_of_the_table_configurations_is_in_the_grid():
    # Tables 2 and 3 read only trials of the grid itself; table 4 adds only the other poolings.
    grid = set(itertools.product(presets.preset_layers(PAPER, PAPER.table_backbone), PAPER.reductions,
                                 PAPER.estimators))
    assert (PAPER.table_layer, ("npca", 0.5), "mvg") in grid
    assert all((layer, ("npca", 0.5), "knn1") in grid for layer in presets.preset_layers(PAPER, "tf_efficientnet_b5"))


def test_book_parameters_name_only_parameters_the_pages_have():
    import ast

    import jupytext

    for page, params in presets.book_parameters(PAPER).items():
        nb = jupytext.read(ROOT / "notebooks" / f"{page}.py")
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        names = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                 for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        assert set(params) <= names, (page, set(params) - names)
        assert params["classes"] == list(MVTEC_CATEGORIES) and params["backbone"] == "tf_efficientnet_b5"
    assert presets.book_parameters(PAPER)["08_grid"]["backbones"] == ["tf_efficientnet_b5", "resnet18"]
