"""Figures the book's pages share: scores, ROC curves, poolings and the backbone's stages.

Each function takes arrays (or a backbone) and returns a `matplotlib.figure.Figure` built without pyplot,
so nothing is shown until a page displays or glues it; captions are the page's, never drawn in the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib import colormaps as plt_colormaps
from matplotlib.colors import ListedColormap, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.metrics import roc_curve

from tad.backbones import Backbone
from tad.data import Split, example_samples, load_image, load_mask
from tad.evaluate import auroc

__all__ = ["HEAVY", "score_scale", "score_histogram", "roc_figure", "pooling_figure", "sample_grid",
           "map_examples", "chance_colormap", "grid_heatmap", "stage_shapes", "pipeline_figure"]

GOOD, DEFECTIVE = "tab:blue", "tab:red"
HEAVY = 100.0  # a spread of scores beyond which a histogram leaves the linear axis (see `score_scale`)


def score_scale(scores: ArrayLike) -> str:
    """The axis a histogram of ``scores`` reads best on: "linear", "log" or "rank".

    Heavy-tailed scores (a Mahalanobis distance along null axes reaches 1e6 or more while most images
    score near 1) put nearly every image in the first of equal-width bins. Positive scores whose largest
    is over `HEAVY` times their smallest go on a log axis; other scores whose range is over `HEAVY` times
    their interquartile range go on a rank axis; the rest stay linear.
    """
    scores = np.asarray(scores, dtype=np.float64)
    low, high = scores.min(), scores.max()
    if low > 0 and high / low > HEAVY:
        return "log"
    q1, q3 = np.percentile(scores, [25, 75])
    return "rank" if high - low > HEAVY * max(q3 - q1, np.finfo(float).tiny) else "linear"


def score_histogram(labels: ArrayLike, scores: ArrayLike, *, bins: int = 30, scale: str = "auto",
                    marks: Mapping[str, float] | None = None) -> Figure:
    """Histograms of the good and the defective test images' scores on shared bins.

    Parameters
    ----------
    labels : array-like of shape (n_test,)
        0 good, 1 defective; both must occur.
    scores : array-like of shape (n_test,)
        Anomaly scores, higher meaning more anomalous.
    bins : int
        Number of bins spanning all scores.
    scale : "auto", "linear", "log" or "rank"
        The score axis: "log" bins evenly on a log axis (positive scores only), "rank" replaces each score
        by its rank among all test images (1 = lowest, ties averaged; a mark takes the rank its score would
        have); "auto" chooses by `score_scale`.
    marks : mapping of label to score, optional
        Scores to mark with a dashed vertical line each (on the same axis as the histograms).

    Returns
    -------
    Figure
        One axes with two histograms labelled ``good (n=...)`` and ``defective (n=...)``, the x label saying
        the scale.
    """
    labels, scores = _check_scores(labels, scores)
    scale = score_scale(scores) if scale == "auto" else scale
    marks = dict(marks or {})
    if scale == "log":
        if scores.min() <= 0:
            raise ValueError("scale='log' needs positive scores; use 'rank' or 'linear'")
        edges = np.geomspace(scores.min(), scores.max(), bins + 1)
    elif scale == "rank":
        marks = {k: (scores < v).sum() + ((scores == v).sum() + 1) / 2 for k, v in marks.items()}
        scores = rankdata(scores)
        edges = np.histogram_bin_edges(scores, bins=bins)
    elif scale == "linear":
        edges = np.histogram_bin_edges(scores, bins=bins)
    else:
        raise ValueError(f"scale {scale!r} not in ('auto', 'linear', 'log', 'rank')")
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for value, name, colour in ((0, "good", GOOD), (1, "defective", DEFECTIVE)):
        part = scores[labels == value]
        ax.hist(part, bins=edges, alpha=0.6, color=colour, label=f"{name} (n={len(part)})")
    for name, value in marks.items():
        ax.axvline(value, color="black", linestyle="--", label=name)
    if scale == "log":
        ax.set_xscale("log")
    ax.set_xlabel({"linear": "anomaly score (higher = more anomalous)",
                   "log": "anomaly score, log scale (higher = more anomalous)",
                   "rank": "rank of the anomaly score among the test images (higher = more anomalous)"}[scale])
    ax.set_ylabel("test images")
    ax.legend()
    return fig


def roc_figure(labels: ArrayLike, scores: ArrayLike, *, name: str = "") -> Figure:
    """ROC curve of the scores, with the AUROC in the legend and the chance diagonal.

    Parameters
    ----------
    labels : array-like of shape (n_test,)
        0 good, 1 defective; both must occur.
    scores : array-like of shape (n_test,)
    name : str
        Title, e.g. the configuration.

    Returns
    -------
    Figure
        The curve's points are `sklearn.metrics.roc_curve`'s (false-positive rate, true-positive rate).
    """
    labels, scores = _check_scores(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    fig = Figure(figsize=(4, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color=DEFECTIVE, label=f"AUROC = {auroc(labels, scores):.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance (AUROC = 0.5)")
    ax.set_xlabel("false-positive rate (good images flagged)")
    ax.set_ylabel("true-positive rate (defects caught)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_title(name, fontsize=10)
    ax.legend(loc="lower right", fontsize=9)
    return fig


def pooling_figure(feature_map: ArrayLike) -> Figure:
    """One channel of an activation map and the three numbers pooling makes of it.

    Parameters
    ----------
    feature_map : array-like of shape (H, W)

    Returns
    -------
    Figure
        Left: the map, its maximum marked with a triangle up and its minimum with a triangle down.
        Right: every position's value as a dot, with vertical lines at avg, max and min, whose legend
        entries give the values.
    """
    m = np.asarray(feature_map, dtype=np.float64)
    if m.ndim != 2 or m.size == 0 or not np.isfinite(m).all():
        raise ValueError(f"feature_map must be a finite, non-empty (H, W) array, got shape {m.shape}")
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    image = left.imshow(m, cmap="viridis")
    fig.colorbar(image, ax=left, shrink=0.8)
    for where, marker, colour in ((np.argmax(m), "^", "white"), (np.argmin(m), "v", "black")):
        row, col = np.unravel_index(where, m.shape)
        left.plot(col, row, marker=marker, color=colour, markersize=10, markeredgecolor="red")
    left.set_title(f"one channel, {m.shape[0]} x {m.shape[1]} positions")
    left.set_xticks([])
    left.set_yticks([])
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, m.size)
    right.scatter(m.ravel(), jitter, s=8, color="grey", alpha=0.6)
    for name, value, colour in (("avg", m.mean(), "tab:green"), ("max", m.max(), "tab:red"),
                                ("min", m.min(), "tab:blue")):
        right.axvline(value, color=colour, linewidth=2, label=f"{name} = {value:.3g}")
    right.set_yticks([])
    right.set_ylim(-1, 1)
    right.set_xlabel("activation at each position")
    right.legend(loc="upper right")
    return fig


def sample_grid(splits: Sequence[Split], n_defects: int = 3) -> Figure:
    """One row per split: its first good test image and one image per defect type (`tad.data.example_samples`),
    the ground-truth mask outlined in red where the sample has one; each titled "class: defect"."""
    if not splits:
        raise ValueError("sample_grid needs at least one split")
    fig = Figure(figsize=(2 * (n_defects + 1), 2.1 * len(splits)), layout="constrained")
    axes = fig.subplots(len(splits), n_defects + 1, squeeze=False)
    for row, split in zip(axes, splits):
        for ax, sample in zip(row, example_samples(split, n_defects)):
            image = load_image(sample.path)
            ax.imshow(image)
            if sample.mask is not None:
                ax.contour(load_mask(sample.mask, image.size), levels=[0.5], colors="red", linewidths=0.8)
            ax.set_title(f"{split.name}: {sample.defect}", fontsize=9)
        for ax in row:
            ax.axis("off")
    return fig


def map_examples(result: Mapping) -> Figure:
    """Image, ground truth and map over the image for three test images of one data set's anomaly maps.

    The three: the good image whose map has the highest maximum (the nearest thing to a false alarm), and
    the defective images whose maps have the highest and the lowest maximum. The colour scale runs from
    the median pixel of the good images' maps to their highest pixel.

    Parameters
    ----------
    result : mapping
        `tad.maps.evaluate_maps`'s result: ``maps`` (n, H, W), ``masks`` (n, H, W), ``labels``, ``paths``,
        ``category``, ``pixel_auroc`` and ``pro``; both labels must occur.
    """
    maps, masks, labels = result["maps"], result["masks"], np.asarray(result["labels"]).astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("map_examples needs good and defective test images")
    peak = maps.max(axis=(1, 2))
    good, bad = np.flatnonzero(~labels), np.flatnonzero(labels)
    picks = {"good, highest max": good[peak[good].argmax()], "defective, highest max": bad[peak[bad].argmax()],
             "defective, lowest max": bad[peak[bad].argmin()]}
    vmin, vmax = np.median(maps[good]), maps[good].max()
    side = maps.shape[1:][::-1]
    fig = Figure(figsize=(7, 7.3), layout="constrained")
    axes = fig.subplots(3, 3)
    for row, (label, i) in zip(axes, picks.items()):
        image = load_image(result["paths"][i]).resize(side)
        row[0].imshow(image)
        row[1].imshow(masks[i], cmap="gray", vmin=0, vmax=1)
        row[2].imshow(image)
        row[2].imshow(maps[i], cmap="inferno", vmin=vmin, vmax=vmax, alpha=0.5)
        if masks[i].any():
            row[2].contour(masks[i], levels=[0.5], colors="cyan", linewidths=0.8)
        row[0].set_ylabel(label, fontsize=9)
    for ax, title in zip(axes[0], ["image", "ground truth", "map (cyan: truth)"]):
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    fig.suptitle(f"{result['category']}: pixel AUROC {result['pixel_auroc']:.3f}, PRO {result['pro']:.3f}",
                 fontsize=10)
    return fig


def chance_colormap() -> tuple[ListedColormap, TwoSlopeNorm]:
    """A colour scale for AUROCs from 0 to 1 that keeps chance visible: reds below 0.5 (darker further below),
    viridis from 0.5 to 1, so a below-chance cell never looks like a weak above-chance one."""
    below = plt_colormaps["Reds_r"](np.linspace(0.1, 0.75, 128))
    above = plt_colormaps["viridis"](np.linspace(0, 1, 128))
    return ListedColormap(np.vstack([below, above]), name="auroc_chance"), TwoSlopeNorm(0.5, 0.0, 1.0)


def grid_heatmap(means: pd.DataFrame, *, width: float = 7.0) -> Figure:
    """One heatmap of a grid's mean AUROCs, one row per (group, layer), one column per reduction.

    Parameters
    ----------
    means : DataFrame
        Index: a two-level MultiIndex (group, layer) in display order, a group being e.g. an estimator or
        "backbone / estimator"; columns: reductions in display order; values: mean AUROC, NaN where not run.
        Rows with no value are left out (a flow run on a few layers takes only those rows).
    width : float
        Figure width in inches (a book's text column holds about 7).

    Returns
    -------
    Figure
        Every row and column labelled; groups separated by white lines; colours by `chance_colormap`, with a
        colour bar.
    """
    if means.index.nlevels != 2:
        raise ValueError(f"means needs a (group, layer) index, got {means.index.nlevels} level(s)")
    means = means.dropna(how="all")
    if means.empty:
        raise ValueError("means holds no value to draw")
    cmap, norm = chance_colormap()
    fig = Figure(figsize=(width, 1.4 + 0.19 * len(means)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(means.to_numpy(float), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(means.shape[1]), [str(c) for c in means.columns], rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(len(means)), [f"{g}, {'all layers' if str(l) == 'all' else f'layer {l}'}"
                                      for g, l in means.index], fontsize=8)
    groups = means.index.get_level_values(0)
    for row in np.flatnonzero(groups[1:] != groups[:-1]):
        ax.axhline(row + 0.5, color="white", linewidth=3)
    ax.set_xlabel("reduction")
    bar = fig.colorbar(image, ax=ax, ticks=[0, 0.25, 0.5, 0.75, 1])
    bar.set_label("mean AUROC (red: below chance)")
    return fig


def stage_shapes(backbone: Backbone, input_size: int | None = None) -> pd.DataFrame:
    """Shape of every layer's activation map for one square image, from a forward pass of zeros.

    Returns
    -------
    DataFrame with one row per layer (1-based index ``layer``)
        ``channels``, ``height``, ``width``, ``stride`` (input side / map height) and ``values``
        (channels x height x width).
    """
    size = input_size or backbone.input_size
    with torch.no_grad():
        maps = backbone(torch.zeros(1, 3, size, size))
    rows = [{"layer": i, "channels": m.shape[1], "height": m.shape[2], "width": m.shape[3],
             "stride": size // m.shape[2], "values": m.shape[1] * m.shape[2] * m.shape[3]}
            for i, m in enumerate(maps, start=1)]
    return pd.DataFrame(rows).set_index("layer")


def pipeline_figure(shapes: pd.DataFrame, input_size: int, *, layer: int | None = None,
                    steps: Sequence[str] = ()) -> Figure:
    """The image, the backbone's stages drawn to scale, then the steps that follow one layer.

    Parameters
    ----------
    shapes : DataFrame
        `stage_shapes`'s table.
    input_size : int
        Side of the input image in pixels.
    layer : int, optional
        The layer the steps start from, drawn highlighted.
    steps : sequence of str
        Boxes drawn after the stages, in a second row read right to left (e.g. "avg pool\\n320 numbers").

    Returns
    -------
    Figure
        Each stage is a square whose side is proportional to the square root of its map's side (so 7 x 7
        stays visible next to 112 x 112), labelled ``C x H x W`` (broken over two lines); an orange arrow
        leads from ``layer`` down to the first step.
    """
    if layer is not None and layer not in shapes.index:
        raise ValueError(f"layer {layer!r} not in {list(shapes.index)}")
    if steps and layer is None:
        raise ValueError("steps start from a layer: pass layer=")
    fig = Figure(figsize=(10, 3.2 if not steps else 4.6), layout="constrained")
    ax = fig.add_subplot()
    boxes = [("input", f"3 x {input_size}\nx {input_size}", 1.0, "lightgrey")]
    for i, row in shapes.iterrows():
        boxes.append((f"layer {i}", f"{row.channels} x {row.height}\nx {row.width}",
                      np.sqrt(row.height / input_size), "orange" if i == layer else "lightsteelblue"))
    for x, (title, label, side, colour) in enumerate(boxes):
        ax.add_patch(Rectangle((x * 1.4 - side / 2, -side / 2), side, side, facecolor=colour, edgecolor="black"))
        ax.text(x * 1.4, 0.6, title, ha="center", va="bottom", fontsize=10, weight="bold")
        ax.text(x * 1.4, -0.6, label, ha="center", va="top", fontsize=9)
    for x in range(len(boxes) - 1):
        _arrow(ax, (x * 1.4 + boxes[x][2] / 2, 0), ((x + 1) * 1.4 - boxes[x + 1][2] / 2, 0))
    # The steps run in a second row, right to left from under the last stage (a snake), so the figure
    # stays wide enough to read on a page.
    right, gap = (len(boxes) - 1) * 1.4, (len(boxes) - 1) * 1.4 / max(len(steps) - 1, 1)
    for j, text in enumerate(steps):
        ax.text(right - j * gap, -2.2, text, ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "round", "facecolor": "honeydew", "edgecolor": "darkgreen"})
        if j:
            _arrow(ax, (right - (j - 1) * gap - 0.75, -2.2), (right - j * gap + 0.75, -2.2))
    if steps:  # the first step hangs off the chosen layer, which need not be the last
        x = list(shapes.index).index(layer) + 1
        _arrow(ax, (x * 1.4, -1.15), (right, -1.8), colour="darkorange")
    ax.set_xlim(-0.8, (len(boxes) - 1) * 1.4 + 0.8)
    ax.set_ylim(-2.7 if steps else -1.2, 0.9)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


# --- helpers -----------------------------------------------------------------------------------

def _arrow(ax, start: tuple[float, float], end: tuple[float, float], colour: str = "black",
           bend: float = 0.0) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=colour,
                                 connectionstyle=f"arc3,rad={bend}"))


def _check_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-D of the same length")
    if set(np.unique(labels)) != {0, 1}:
        raise ValueError(f"labels must hold both 0 (good) and 1 (defective), got {sorted(set(labels.tolist()))}")
    return labels, scores
