# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why does keeping the smallest-variance axes work? (beyond the paper)
#
# > Table 2 (mean AUC over 15 classes): NPCA 50 % 0.972, PCA 50 % 0.880, no reduction 0.889.
#
# The paper, following Rippel et al., keeps the axes along which the good training images vary *least*, and
# does not show why that helps. This page looks at where a test image's deviation lies along the principal
# axes, how much of NPCA's effect comes from the training {term}`null space`, what the null space alone
# achieves, how that changes as the training set grows past the dimension, and what {term}`Ledoit-Wolf`
# shrinkage does to the argument. The mechanisms offered below are hypotheses read off these measurements, not
# established causes.

# %% [markdown]
# ````{admonition} Key takeaways
# :class: tip
#
# ```{glue:md} takeaways
# :format: myst
# ```
# ````

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present, else ELPV
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
pooling = "avg"
ratio = 0.5                         # the halves: PCA / NPCA at this ratio
estimator = "mvg"
shrink_layers = [7]                 # layers of the shrinkage experiment (e.g. [7, "all"])
shrinkages = [0.01, 0.1, None, 0.9]  # fixed intensities; None is Ledoit-Wolf's estimate
subsample_layers = [6, 7]           # layers of the training-set-size experiment
subsample_sizes = [5, 10, 20, 50, 100]  # training-set sizes besides "all"
subsample_draws = 2                 # random subsets per size
device = "cpu"
cache_dir = None                    # None means the library's default feature cache ($TAD_CACHE)
results = None                      # None means results.jsonl in that cache
seed = 0

# %% tags=["hide-input"]
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tad.analysis import axis_groups, deviation_by_axes, shrinkage_aurocs, subsample_aurocs
from tad.evaluate import auroc
from tad.features import select_pair
from tad.page import format_value, glue_csv, glue_text, glue_value, open_page, save_csv, show_table
from tad.reduce import NullSpaceWarning, spectrum
from tad.sweep import score, split_features
from tad.words import listing

page = open_page("11_why_npca", data_root=data_root, classes=classes, backbone=backbone, input_size=input_size,
                 seed=seed, cache_dir=cache_dir, results=results)
bb = page.backbone
layers = [*range(1, bb.n_layers + 1), "all"]
features = {s.name: split_features(s, bb, input_size=input_size, cache_dir=page.cache_dir, device=device,
                                   progress=False) for s in page.splits}
labels = {s.name: s.test_labels.astype(bool) for s in page.splits}
warnings.simplefilter("ignore", NullSpaceWarning)  # the tables count null-space axes instead

# %% [markdown]
# ## The spectrum of the good training features
#
# Eigenvalues of the training covariance (`tad.reduce.spectrum`), divided by the largest, against the axis
# index as a share of the dimension $D$ (notation as on the {doc}`method page <00_method>`). A dot marks axis
# $n - 1$: the sample covariance of $n$ training images has rank at most $n - 1$, so when $D > n - 1$ every
# axis past the dot has variance zero
# up to rounding: the null space of the training set.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(page.splits), figsize=(3.6 * len(page.splits), 3.4), sharey=True, squeeze=False)
rows = []
for ax, s in zip(axes[0], page.splits):
    for lay in layers:
        X, _ = select_pair(features[s.name], lay, pooling, bb)
        values = spectrum(X)[1]
        d, n = len(values), len(X)
        rel = np.maximum(values / values[0], 1e-18)
        line, = ax.semilogy(np.arange(d) / d, rel, lw=1, label=str(lay))
        if n - 1 < d:
            ax.plot((n - 1) / d, rel[n - 1], "o", color=line.get_color(), ms=4)
        groups = axis_groups(values, ratio)
        rows.append({"dataset": s.name, "layer": str(lay), "d": d, "n_train": n,
                     "null axes": groups["null"].stop - groups["null"].start,
                     f"variance in largest {ratio:.0%}": values[groups["largest"]].sum() / values.sum(),
                     "npca axes all in null space": groups["smallest"].start >= groups["null"].start})
    ax.set(title=s.name, xlabel="axis index / d", ylim=(1e-18, 2))
axes[0, 0].set_ylabel("eigenvalue / largest")
axes[0, -1].legend(title="layer", fontsize=7, ncol=2)
plt.show()
spec = pd.DataFrame(rows).set_index(["dataset", "layer"])

# %% [markdown]
# Look for the cliff: where a curve drops by many orders of magnitude at its dot, the axes past it carry no
# training variance at all.
#
# ## Where does a test image's deviation lie?
#
# For a test feature vector $x$, the squared distance to the training mean $\bar x$ splits exactly over the
# principal axes $v_j$:
#
# $$
# \lVert x - \bar x \rVert^2 = \sum_{j=1}^{D} \big(v_j^\top (x - \bar x)\big)^2 .
# $$
#
# We sum it over the *largest* half (the axes PCA 50 % keeps), the *smallest* half (those NPCA 50 % keeps,
# $D/2$ of all $D$) and the *null* space
# (`tad.analysis.deviation_by_axes`), and score each image by each group's sum alone: the distance to the mean
# within that group. The null group's sum is the distance to the affine span of the training features, the
# SPE / Q statistic of a PCA on all non-zero axes (DFM, Ahuja et al. 2019, scores the same kind of residual
# with fewer axes, chosen by retained variance).
# Where a layer has no null space (no more dimensions than training images can span), there is no null group
# to score by, and its column is empty (NaN).

# %% tags=["hide-input"]
rows = []
for s in page.splits:
    y = labels[s.name]
    for lay in layers:
        dev = deviation_by_axes(*select_pair(features[s.name], lay, pooling, bb), ratio)
        share = dev[["smallest"]].div(dev["total"], axis=0).smallest
        has_null = spec.loc[(s.name, str(lay)), "null axes"] > 0
        rows.append({"dataset": s.name, "layer": str(lay), "smallest share, good": share[~y].mean(),
                     "smallest share, anomalous": share[y].mean(),
                     "auroc largest": auroc(y, dev.largest), "auroc smallest": auroc(y, dev.smallest),
                     "auroc null (residual)": auroc(y, dev.null) if has_null else np.nan,
                     "auroc total": auroc(y, dev.total)})
shares = pd.DataFrame(rows).set_index(["dataset", "layer"])
show_table(shares.round(3).reset_index())

# %% [markdown]
# ## How much of NPCA's effect comes from the null space?
#
# Per data set and layer, $n$ against $D$, and the AUROC of the Gaussian ({term}`MVG`, Ledoit-Wolf)
# with no reduction, with NPCA 50 % under the default `"block"` reading (the null space kept whole, beside the
# quietest non-null axes) and under the `"rank"` reading (half of the non-null axes, the null space left out).
# Where the two NPCA columns differ, the difference is what the null space adds; the residual column is the
# null space alone, empty (NaN) where the layer has no null space.

# %% tags=["hide-input"]
rows = []
for s in page.splits:
    y = labels[s.name]
    for lay in layers:
        X, Y = select_pair(features[s.name], lay, pooling, bb)
        row = {"dataset": s.name, "layer": str(lay), "n_train": len(X), "d": X.shape[1],
               "null axes": spec.loc[(s.name, str(lay)), "null axes"],
               "none": auroc(y, score(X, Y, "none", None, estimator, seed=seed))}
        for reading in ("block", "rank"):
            row[f"npca {reading}"] = auroc(y, score(X, Y, "npca", ratio, estimator, basis=reading, seed=seed))
        row["null residual"] = shares.loc[(s.name, str(lay)), "auroc null (residual)"]
        rows.append(row)
null_table = pd.DataFrame(rows)
null_table["null adds"] = null_table["npca block"] - null_table["npca rank"]
glue_text("csv_link", save_csv(null_table.merge(shares.reset_index(), on=["dataset", "layer"]), page))
show_table(null_table.round(3))

# %% [markdown]
# ```{glue:md} csv_link
# :format: myst
# ```
#
# ## Does Mahalanobis divide every axis by its variance?
#
# A tempting argument says that the Gaussian "already divides every axis by its training variance", so that
# it gets the quiet axes' signal with or without NPCA. With Ledoit-Wolf shrinkage it does not: the shrunk
# covariance $(1 - \delta) S + \delta \bar\lambda I$ divides axis $j$ by $(1 - \delta) \lambda_j + \delta \bar\lambda$
# ($\bar\lambda$ the mean training variance), so a null axis ($\lambda_j = 0$) gets the finite weight
# $1 / (\delta \bar\lambda)$. The argument can be tested by varying $\delta$ (`tad.analysis.shrinkage_aurocs`): at
# small $\delta$ the null space dominates the distance; at $\delta$ near 1 the distance is nearly Euclidean and
# the largest axes dominate.
# The Ledoit-Wolf rows give the intensity the estimate chose for each configuration.

# %% tags=["hide-input"]
parts = []
for s in page.splits:
    for lay in shrink_layers:
        X, Y = select_pair(features[s.name], lay, pooling, bb)
        part = shrinkage_aurocs(X, Y, labels[s.name], [("none", None), ("npca", ratio)], shrinkages)
        parts.append(part.assign(dataset=s.name, layer=str(lay)))
shrink = pd.concat(parts, ignore_index=True)
shrink["shrinkage"] = ["Ledoit-Wolf" if pd.isna(v) else f"{v:g}" for v in shrink.shrinkage]
shrink["reduction"] = [m if m == "none" else f"{m} {r:.0%}" for m, r in zip(shrink.reduction, shrink.ratio)]
shrink_wide = shrink.pivot_table(index=["dataset", "layer", "reduction"], columns="shrinkage", values="auroc",
                                 aggfunc="first")[[f"{v:g}" if v is not None else "Ledoit-Wolf" for v in shrinkages]]
shrink_wide["LW delta"] = shrink[shrink.shrinkage == "Ledoit-Wolf"].set_index(
    ["dataset", "layer", "reduction"]).delta
shrink_wide.round(3)

# %% [markdown]
# ## What happens as the number of training images grows past the dimension?
#
# The training set of the class with the most training images, subsampled (seeded, without replacement) to several sizes, at layers whose
# dimension the full set does or does not exceed; each AUROC with its 95 % interval (`tad.stats.auroc_ci`, which
# stays open at AUROC 1 where a percentile bootstrap collapses) and the null-space dimension of the subset.

# %% tags=["hide-input"]
sub_name = max(page.splits, key=lambda s: len(s.train)).name  # the most training images
parts = []
for lay in subsample_layers:
    X, Y = select_pair(features[sub_name], lay, pooling, bb)
    sizes = [n for n in subsample_sizes if n < len(X)] + [len(X)]
    for method, r in (("none", None), ("npca", ratio)):
        part = subsample_aurocs(X, Y, labels[sub_name], sizes, reduction=method, ratio=r, estimator=estimator,
                                n_draws=subsample_draws, seed=seed)
        parts.append(part.assign(layer=str(lay), reduction="none" if method == "none" else f"npca {r:.0%}"))
sub = pd.concat(parts, ignore_index=True)
fig, axes = plt.subplots(1, len(subsample_layers), figsize=(5 * len(subsample_layers), 3.6), sharey=True,
                         squeeze=False)
for ax, lay in zip(axes[0], subsample_layers):
    part = sub[sub.layer == str(lay)]
    for (red, group), colour in zip(part.groupby("reduction"), ("tab:grey", "tab:orange")):
        ax.errorbar(group.n_train * (1.04 if red != "none" else 1), group.auroc,
                    yerr=[group.auroc - group.ci_low, group.ci_high - group.auroc], fmt="o", ms=3, color=colour,
                    alpha=0.7, label=red)
    ax.axvline(part.d.iloc[0], color="black", ls=":", label="d")
    ax.set(xscale="log", xlabel="training images", title=f"{sub_name}, layer {lay} (d = {part.d.iloc[0]})")
axes[0, 0].set_ylabel(f"AUROC ({estimator.upper()})")
axes[0, -1].legend(fontsize=8)
plt.show()

# %% [markdown]
# AUROC against the number of training images (log scale), one dot per random subset with its interval; the
# dotted line is the dimension $D$. Left of it a null space exists; look at whether NPCA's advantage over no
# reduction, if any, shrinks as the training set passes $D$ and the null space disappears.

# %% tags=["remove-cell"]
glue_csv(page, "n_pairs", "layer", "count", "count")
glue_value("n_small_wins", int((shares["auroc smallest"] > shares["auroc largest"]).sum()), "count")
glue_value("n_share_up", int((shares["smallest share, anomalous"] > shares["smallest share, good"]).sum()), "count")
glue_csv(page, "mean_small", "auroc smallest", "mean")
glue_csv(page, "mean_large", "auroc largest", "mean")
with_null = null_table[null_table["null axes"] > 0]
glue_value("n_with_null", len(with_null), "count")
glue_text("null_where", listing(f"{r.dataset} layer {r.layer}" for r in with_null.itertuples()))
glue_text("null_adds", "no pair has a null space here, so nothing is added by it" if with_null.empty else
          "the null space changes NPCA's AUROC by " + listing(
              f"{format_value(r['null adds'], 'diff')} ({r.dataset}, layer {r.layer})"
              for _, r in with_null.iterrows()))
glue_text("residual", "there is no null space to take a residual in" if with_null.empty else
          "the residual alone reaches " + listing(
              f"{format_value(r['null residual'], 'auroc')} ({r.dataset}, layer {r.layer})"
              for _, r in with_null.iterrows()))
lw = shrink[shrink.shrinkage == "Ledoit-Wolf"]
glue_text("lw_range", f"{lw.delta.min():.3g} to {lw.delta.max():.3g}")
small, large = shrink[shrink.shrinkage == f"{min(v for v in shrinkages if v is not None):g}"], \
    shrink[shrink.shrinkage == f"{max(v for v in shrinkages if v is not None):g}"]
gap = lambda t: (t[t.reduction != "none"].set_index(["dataset", "layer"]).auroc
                 - t[t.reduction == "none"].set_index(["dataset", "layer"]).auroc)
glue_text("gap_small", listing(f"{format_value(v, 'diff')} ({d}, layer {l})" for (d, l), v in gap(small).items()))
glue_text("gap_large", listing(f"{format_value(v, 'diff')} ({d}, layer {l})" for (d, l), v in gap(large).items()))
glue_text("delta_small", f"{min(v for v in shrinkages if v is not None):g}")
glue_text("delta_large", f"{max(v for v in shrinkages if v is not None):g}")
full = sub[sub.n_train == sub.n_train.max()]
glue_text("sub_name", sub_name)
glue_text("sub_lines", "\n".join(
    f"- layer {lay}, {red}: " + ", ".join(
        f"{n} images {g.auroc.mean():.3f}" + (f" (mean of {len(g)})" if len(g) > 1 else "")
        + f" [{g.ci_low.min():.2f}, {g.ci_high.max():.2f}]" for n, g in part.groupby("n_train"))
    for (lay, red), part in sub.groupby(["layer", "reduction"])))

# %% [markdown]
# ## What this shows
#
# **The quiet half.** On {glue:text}`n_small_wins` of the {glue:text}`n_pairs` (data set, layer) pairs the
# distance within the smallest half separates better than the distance within the largest half (means
# {glue:text}`mean_small` against {glue:text}`mean_large`), and on {glue:text}`n_share_up` anomalous images
# put a larger share of their deviation there than good ones. These are counts, not a test: the pairs share
# data sets, test images and overlapping features ("all" contains layer 7), so they are far from independent
# trials. A plausible reading, a hypothesis rather than a shown cause: the high-variance axes hold the good
# images' nuisance variation (position, lighting), and an anomaly adds a component the good images never
# showed, which lands relatively more on the quiet axes.
#
# **The null space.** It exists on {glue:text}`n_with_null` pairs ({glue:text}`null_where`). There
# {glue:text}`null_adds` (NPCA 50 % with the null block against without it), and {glue:text}`residual`.
#
# **Ledoit-Wolf.** The estimated intensities range from {glue:text}`lw_range`. NPCA 50 % minus no reduction at
# $\delta$ = {glue:text}`delta_small`: {glue:text}`gap_small`; at $\delta$ = {glue:text}`delta_large`:
# {glue:text}`gap_large`. If the tempting argument were right, the gap would stay near zero at every intensity;
# how it moves with $\delta$ shows how much the Gaussian's weighting, not the choice of axes, decides the result.
#
# **Training-set size** on {glue:text}`sub_name` (AUROC, with the widest interval over the subsets):
#
# ```{glue:md} sub_lines
# :format: myst
# ```
#
# ## Try it
#
# - Another class: `.venv/bin/python scripts/build_book.py --only 11_why_npca -p classes '[transistor]'`. Look
#   at the training-set-size figure: does NPCA's gap to no reduction close once the training set passes the dimension $D$?
# - The solar cells: `.venv/bin/python scripts/build_book.py --only 11_why_npca -p classes '[elpv_mono]'`. With
#   more training images than dimensions at layer 7, look at whether the quiet half still separates better.

# %% tags=["remove-cell"]
from tad import teach

n_wins = int((shares["auroc smallest"] > shares["auroc largest"]).sum())
points = [f"The distance within the quietest half of the axes separates better than within the loudest half on "
          f"{n_wins} of {len(shares)} (data set, layer) pairs, mean AUROC "
          f"{format_value(shares['auroc smallest'].mean(), 'auroc')} against "
          f"{format_value(shares['auroc largest'].mean(), 'auroc')}"]
if with_null.empty:
    points.append("No (data set, layer) pair of this run has a null space, so none of NPCA's effect here comes "
                  "from it")
else:
    points.append(teach.extremes_sentence({f"{r.dataset}, layer {r.layer}": r["null adds"]
                                           for _, r in with_null.iterrows()},
                                          what="what the null space adds to NPCA's AUROC", kind="diff"))
g_small, g_large = gap(small), gap(large)
points.append(f"NPCA minus no reduction averages {format_value(g_small.mean(), 'diff')} at shrinkage "
              f"{min(v for v in shrinkages if v is not None):g} and {format_value(g_large.mean(), 'diff')} at "
              f"{max(v for v in shrinkages if v is not None):g}: how much NPCA helps depends on the Gaussian's "
              f"weighting")
glue_text("takeaways", teach.takeaways(points))
glue_text("ex_share", f"Anomalous images put a larger share of their deviation on the quiet half than good images "
          f"do on {int((shares['smallest share, anomalous'] > shares['smallest share, good']).sum())} of "
          f"{len(shares)} pairs.")
if with_null.empty:
    glue_text("ex_residual", "No pair of this run has a null space, so there is no residual to score.")
else:
    top = with_null.loc[with_null["null residual"].idxmax()]
    glue_text("ex_residual", f"The residual alone does best on {top.dataset}, layer {top.layer}: AUROC "
              f"{format_value(top['null residual'], 'auroc')}, against {format_value(top['npca block'], 'auroc')} "
              f"for NPCA with the null block and {format_value(top['none'], 'auroc')} with no reduction.")

# %% [markdown]
# ## Exercises
#
# **1. Where does a defect go?** On how many (data set, layer) pairs do anomalous images put a larger share of
# their deviation from the training mean on the quiet half of the axes than good images do?
#
# ```{dropdown} Solution
# Compare the columns "smallest share, anomalous" and "smallest share, good" of the deviation table.
# {glue:md}`ex_share:myst` A larger share for anomalous images is what NPCA relies on: the loud axes carry the
# nuisance variation every good image has, the quiet ones what is new.
# ```
#
# **2. The null space alone.** Where it exists, how well does the residual (the distance to the span of the
# training features, the full-rank residual or SPE; see {term}`DFM`) do by itself?
#
# ```{dropdown} Solution
# Read the "null residual" column where "null axes" is positive. {glue:md}`ex_residual:myst` A residual close
# to NPCA's AUROC says that most of NPCA's effect comes from directions no good image varied in.
# ```
#
# **3. More training images.** Rerun on transistor:
# `.venv/bin/python scripts/build_book.py --only 11_why_npca -p classes '[transistor]'`. What should happen to
# the null space, and to NPCA's advantage, as the training set passes the dimension?
#
# ```{dropdown} Solution
# With $n - 1 \ge D$ the training covariance has full rank and the null space vanishes, so the "block" and
# "rank" readings agree and any remaining NPCA advantage comes from the quiet non-null axes alone. Watch the
# training-size figure: a gap that closes at the dotted line came from the null space.
# ```
