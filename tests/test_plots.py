import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from tad.backbones import load_backbone
from tad.plots import pipeline_figure, pooling_figure, roc_figure, score_histogram, stage_shapes


@pytest.fixture
def scored():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.4, 0.7])
    return labels, scores


def test_roc_curve_points_are_sklearns_and_legend_gives_pairwise_auroc(scored):
    labels, scores = scored
    fig = roc_figure(labels, scores, name="toy")
    assert isinstance(fig, Figure)
    curve = fig.axes[0].lines[0]
    fpr, tpr, _ = roc_curve(labels, scores)
    np.testing.assert_array_equal(curve.get_xdata(), fpr)
    np.testing.assert_array_equal(curve.get_ydata(), tpr)
    # AUROC = P(defective above good), ties counted half: 4 + 2.5 + 3 = 9.5 of the 12 pairs by hand.
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == f"AUROC = {9.5 / 12:.3f}"
    assert fig.axes[0].get_title() == "toy"
    assert "chance" in legend[1]


def test_histogram_counts_each_group_on_shared_bins(scored):
    labels, scores = scored
    fig = score_histogram(labels, scores, bins=4)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["good (n=4)", "defective (n=3)"]
    heights = [sum(p.get_height() for p in c) for c in ax.containers]
    assert heights == [4, 3]
    edges = np.linspace(scores.min(), scores.max(), 5)
    good_first_bin = sum((scores[labels == 0] >= edges[0]) & (scores[labels == 0] < edges[1]))
    assert ax.containers[0][0].get_height() == good_first_bin
    assert ax.get_xlabel().startswith("anomaly score")


def test_heavy_tailed_positive_scores_are_binned_on_a_log_axis():
    labels = np.array([0] * 20 + [1] * 8)
    scores = np.r_[np.linspace(1, 3, 20), 10.0 ** np.arange(1, 9)]  # good near 1, defects up to 1e8
    ax = score_histogram(labels, scores, bins=8).axes[0]
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    # by hand: 8 bins of one decade each from 1 to 1e8; the 20 good images all fall in the first decade,
    # the defects 10, 100, ..., 1e8 one per decade from the second on (1e8 closes the last bin)
    good = [p.get_height() for p in ax.containers[0]]
    defective = [p.get_height() for p in ax.containers[1]]
    assert good == [20, 0, 0, 0, 0, 0, 0, 0]
    assert defective == [0, 1, 1, 1, 1, 1, 1, 2]


def test_heavy_tailed_scores_with_negatives_are_shown_by_rank_and_marks_follow():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([-1.0, 0.0, 1.0, 2.0, 1e9])
    fig = score_histogram(labels, scores, bins=5, marks={"ours": 2.0})
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("rank")
    assert [p.get_height() for p in ax.containers[0]] == [1, 1, 1, 0, 0]
    assert [p.get_height() for p in ax.containers[1]] == [0, 0, 0, 1, 1]
    assert ax.lines[0].get_xdata()[0] == 4  # 2.0 is the 4th lowest of the scores


def test_histogram_scale_can_be_forced_and_log_needs_positive_scores(scored):
    labels, scores = scored
    assert score_histogram(labels, scores, scale="rank").axes[0].get_xlabel().startswith("rank")
    with pytest.raises(ValueError, match="positive"):
        score_histogram(labels, scores - 0.5, scale="log")


def test_scores_without_both_labels_are_rejected():
    with pytest.raises(ValueError, match="both 0"):
        roc_figure([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="same length"):
        score_histogram([0, 1], [0.1])


def test_pooling_figure_marks_avg_max_min_of_the_map():
    m = np.arange(12.0).reshape(3, 4)
    m[1, 2] = 40.0
    fig = pooling_figure(m)
    left, right = fig.axes[:2]
    lines = {line.get_label().split(" = ")[0]: line.get_xdata()[0] for line in right.lines}
    assert lines == {"avg": pytest.approx(m.mean()), "max": 40.0, "min": 0.0}
    # the triangles sit at (column, row) of the maximum and the minimum
    marks = [(line.get_xdata()[0], line.get_ydata()[0]) for line in left.lines]
    assert marks == [(2, 1), (0, 0)]
    with pytest.raises(ValueError, match="shape"):
        pooling_figure(np.zeros(5))


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("tf_efficientnet_lite0", weights="random")


def test_stage_shapes_of_lite0_at_224_px_halve_to_7_by_7(lite0):
    shapes = stage_shapes(lite0, 224)
    # EfficientNet's stages stride 2, 4, 8, 16, 16, 32, 32 (Tan & Le, table 1)
    assert list(shapes["stride"]) == [2, 4, 8, 16, 16, 32, 32]
    assert list(shapes["height"]) == [224 // s for s in (2, 4, 8, 16, 16, 32, 32)]
    assert list(shapes["channels"]) == list(lite0.channels)
    assert (shapes["values"] == shapes["channels"] * shapes["height"] * shapes["width"]).all()


def test_pipeline_figure_labels_every_stage_and_step(lite0):
    shapes = stage_shapes(lite0, 64)
    fig = pipeline_figure(shapes, 64, layer=5, steps=["pool", "score"])
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "3 x 64\nx 64" in texts and {"pool", "score"} <= texts
    for i, row in shapes.iterrows():
        assert f"layer {i}" in texts and f"{row.channels} x {row.height}\nx {row.width}" in texts
    with pytest.raises(ValueError, match="layer 9"):
        pipeline_figure(shapes, 64, layer=9)


def test_map_examples_shows_the_loudest_good_and_the_loudest_and_quietest_defective(tmp_path):
    from PIL import Image

    from tad.plots import map_examples

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(paths[-1])
    maps = np.zeros((4, 8, 8))
    for i, peak in enumerate([1.0, 3.0, 9.0, 5.0]):  # good: 0, 1; defective: 2 (loudest), 3 (quietest)
        maps[i, i, i] = peak
    masks = np.zeros((4, 8, 8), bool)
    masks[2, :2], masks[3, -2:] = True, True
    result = {"maps": maps, "masks": masks, "labels": np.array([0, 0, 1, 1]), "paths": paths,
              "category": "toy", "pixel_auroc": 0.5, "pro": 0.25}
    fig = map_examples(result)
    rows = np.array(fig.axes).reshape(3, 3)
    assert [ax.get_ylabel() for ax in rows[:, 0]] == ["good, highest max", "defective, highest max",
                                                       "defective, lowest max"]
    for row, picked in zip(rows, [1, 2, 3]):
        np.testing.assert_array_equal(row[1].images[0].get_array(), masks[picked])
    assert fig._suptitle.get_text() == "toy: pixel AUROC 0.500, PRO 0.250"


def test_grid_heatmap_labels_every_row_and_column_and_shows_below_chance_in_red():
    import pandas as pd

    from tad.plots import chance_colormap, grid_heatmap

    index = pd.MultiIndex.from_tuples([("MVG", "1"), ("MVG", "all"), ("flow", "1"), ("flow", "all")])
    means = pd.DataFrame([[0.3, 0.9, 0.95], [0.6, 0.8, 1.0], [np.nan] * 3, [0.7, np.nan, 0.9]], index=index,
                         columns=["none", "NPCA 10 %", "NPCA 50 %"])
    ax = grid_heatmap(means).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "NPCA 10 %", "NPCA 50 %"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["MVG, layer 1", "MVG, all layers", "flow, all layers"]
    cmap, norm = chance_colormap()
    red, green, blue, _ = cmap(norm(0.3))
    assert red > green and red > blue  # below chance reads red
    assert cmap(norm(0.49))[0] > cmap(norm(0.49))[2] and cmap(norm(0.51))[2] > cmap(norm(0.51))[0]
    assert np.allclose(cmap(norm(1.0)), cmap(1.0)) and norm(0.5) == pytest.approx(0.5)
