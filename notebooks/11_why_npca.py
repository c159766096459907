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
# axes, then tests the question as a factorial: seven estimators (four Gaussians that differ in how they treat
# the quiet axes, two nearest-neighbour scores, and the distance to the training mean) crossed with reductions (none, PCA, NPCA, the residual of
# the full-rank PCA, Hotelling's $T^2$ axes, DFM's residual). It compares like with like (with and without the
# training {term}`null space`, under one reading), asks what {term}`Ledoit-Wolf` shrinkage does to the
# argument, and how the picture changes as the training set grows past the dimension. The mechanisms offered
# below are hypotheses read off these measurements, not established causes.

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
estimator = "mvg"                   # the estimator of the training-size curves
factorial_layers = [6, 7, "all"]    # layers of the factorial study
factorial_estimators = ["Ledoit-Wolf MVG", "OAS MVG", "ridge Gaussian", "pseudo-inverse Gaussian",
                        "Euclidean 1-NN", "whitened 1-NN", "distance to mean"]  # tad.analysis.FACTORIAL_ESTIMATORS
ridge = 0.01                        # ridge of the ridge Gaussian and the whitened 1-NN, a share of the mean variance
dfm_variances = [0.95, 0.99]        # retained-variance shares of DFM's (and Hotelling's T-squared) axes
shrink_layers = [7]                 # layers of the shrinkage experiment (e.g. [7, "all"])
shrinkages = [0.01, 0.1, None, 0.9]  # fixed intensities; None is Ledoit-Wolf's estimate
subsample_layers = [6, 7]           # layers of the training-set-size experiment
subsample_sizes = [5, 10, 20, 50, 100]  # training-set sizes besides "all"
subsample_draws = 3                 # random subsets per size (more than 2, so a spread shows)
device = "cpu"
cache_dir = None                    # None means the library's default feature cache ($TAD_CACHE)
results = None                      # None means results.jsonl in that cache
seed = 0

# %% tags=["hide-input"]
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tad.book import teach
from tad.book.words import verdict_sentence
from tad.analysis import (axis_groups, below_chance, deviation_by_axes, factorial_contrasts, factorial_study,
                          shrinkage_aurocs, subsample_aurocs, subsample_summary)
from tad.evaluate import auroc
from tad.features import select_pair
from tad.book.page import open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import ci_text, format_value, show_table
from tad.reduce import NullSpaceWarning, spectrum
from tad.stats import Family, auroc_ci
from tad.sweep import split_features
from tad.book.words import listing

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
        low, high = auroc_ci(y, dev.largest)
        rows.append({"dataset": s.name, "layer": str(lay), "smallest share, good": share[~y].mean(),
                     "smallest share, anomalous": share[y].mean(),
                     "auroc largest": auroc(y, dev.largest), "largest ci_low": low, "largest ci_high": high,
                     "auroc smallest": auroc(y, dev.smallest),
                     "auroc null (residual)": auroc(y, dev.null) if has_null else np.nan,
                     "auroc total": auroc(y, dev.total), "loud half inverted": below_chance(y, dev.largest)})
shares = pd.DataFrame(rows).set_index(["dataset", "layer"])
shares["quiet half better"] = shares["auroc smallest"] > shares["auroc largest"]
show_table(shares.round(3).reset_index())

# %% [markdown]
# A layer whose loud half ranks the anomalous images *below* the good ones beyond its interval ("loud half
# inverted": the upper end of its 95 % interval under one half) is not evidence that the quiet half is better:
# something other than the defects, such as a change of lighting between the training and the test images,
# has turned the loud axes around. Those layers are counted apart below.
#
# ## The factorial: which estimators does NPCA help?
#
# The layers of the study are the deep ones, where the {doc}`layers page <02_layers>` finds the signal, chosen
# so that they cover the three cases of $n$ against $D$ on the MVTec AD classes: a layer with fewer dimensions
# than training images (no null space), one with about as many, and all layers concatenated (a null space of
# most dimensions). Every estimator scores the test images on every reduction; a reduction is a set of the
# training principal axes (`tad.analysis.factorial_axes`):
#
# - *none*, and *non-null axes* (none without the null block);
# - *PCA* and *NPCA* at the page's ratio under the `"rank"` reading: the largest and the smallest half of the
#   axes with training variance, the null space left out; *NPCA + null*: the same quiet half with the null
#   block added;
# - *null space (SPE)*: the null block alone, where the distance to the mean is the residual of the
#   full-rank PCA (the SPE or Q statistic, see {term}`DFM`);
# - *T² axes* and *DFM residual* at each retained-variance share: the leading axes that retain that share of
#   the training variance (the pseudo-inverse Gaussian there is Hotelling's $T^2$), and the axes after them
#   (the distance to the mean there is DFM's score).
#
# The estimators (`tad.analysis.FACTORIAL_ESTIMATORS`): the Gaussian with Ledoit-Wolf shrinkage (the study's
# {term}`MVG`), with OAS shrinkage, with a fixed ridge, and with the pseudo-inverse of the covariance (null
# axes get weight zero); the Euclidean 1-NN, the 1-NN after whitening by the ridge-regularised training
# covariance, and the distance to the training mean. On the null block alone only the last two are defined:
# the others need a training variance there (an empty cell). Each cell is the AUROC with its 95 % interval
# (`tad.stats.auroc_ci`).

# %% tags=["hide-input"]
parts, scores = [], {}
for s in page.splits:
    for lay in factorial_layers:
        X, Y = select_pair(features[s.name], lay, pooling, bb)
        table, scores[s.name, str(lay)] = factorial_study(X, Y, labels[s.name], ratio=ratio, variances=dfm_variances,
                                                          estimators=factorial_estimators, ridge=ridge)
        parts.append(table.assign(dataset=s.name, layer=str(lay), n_train=len(X), d=X.shape[1]))
fact = pd.concat(parts, ignore_index=True)
reductions = list(dict.fromkeys(fact.reduction))
cells = fact.assign(cell=[ci_text(r.auroc, r.ci_low, r.ci_high) for r in fact.itertuples()])
fact_wide = cells.pivot_table(index=["dataset", "layer", "estimator"], columns="reduction", values="cell",
                              aggfunc="first", sort=False)[reductions].fillna("")
show_table(fact_wide.reset_index())

# %% [markdown]
# ```{glue:md} csv_link
# :format: myst
# ```
#
# Each estimator's NPCA column against its *none* column is the question of this section. The paired
# comparison (`tad.stats.compare`: DeLong's test and a MOVER interval of the difference that stays open at
# AUROC 1) is made per data set, estimator and layer, all in one declared family per data set, named beside
# the verdicts.

# %% tags=["hide-input"]
npca_name, npca_null = f"NPCA {100 * ratio:g} %", f"NPCA {100 * ratio:g} % + null"
npca_family = Family(f"{npca_name} (rank reading) vs no reduction, one per estimator and layer",
                     len(factorial_estimators) * len(factorial_layers))
null_pairs = [(npca_null, npca_name), ("none", "non-null axes")]
n_null = {}  # per data set, the comparisons made (as factorial_contrasts makes them): none where a score is
for (name, lay), cell in scores.items():  # missing or the null block changes nothing (no null space at that layer)
    n_null[name] = n_null.get(name, 0) + sum((a, e) in cell and (b, e) in cell and not np.array_equal(cell[a, e],
                                                                                                    cell[b, e])
                                             for a, b in null_pairs for e in dict.fromkeys(e for _, e in cell))
null_family = Family("with vs without the null block under one reading (NPCA's rank reading, and no reduction), "
                     "one per estimator defined on both, reading and layer", max([*n_null.values(), 1]))
parts = []
for (name, lay), cell in scores.items():
    y = labels[name]
    parts.append(factorial_contrasts(y, cell, [(npca_name, "none")], npca_family).assign(
        dataset=name, layer=lay, question="NPCA vs none"))
    parts.append(factorial_contrasts(y, cell, null_pairs, null_family).assign(
        dataset=name, layer=lay, question="null block"))
contrasts = pd.concat(parts, ignore_index=True)
npca_vs_none = contrasts[contrasts.question == "NPCA vs none"]
glue_text("npca_family", npca_family.describe())
show_table(npca_vs_none[["dataset", "layer", "estimator", "diff", "ci_low", "ci_high", "p", "verdict"]].round(3)
           .rename(columns={"ci_low": "interval low", "ci_high": "interval high"}))  # at the family's level

# %% [markdown]
# Verdicts in the {glue:text}`npca_family`. Per data set, NPCA against no reduction is
#
# ```{glue:md} npca_lines
# :format: myst
# ```
#
# ## With and without the null block, under one reading
#
# What the null space adds can only be read off two reductions that differ by the null block and nothing
# else: NPCA's quiet half with and without it (both under the rank reading), and all axes with and without
# it. Where a layer has no null space the two are one model and no comparison is made.

# %% tags=["hide-input"]
null_rows = contrasts[contrasts.question == "null block"]
glue_text("null_family", null_family.describe())
show_table(null_rows[["dataset", "layer", "a", "b", "estimator", "diff", "ci_low", "ci_high", "p", "verdict"]].round(3)
           .rename(columns={"ci_low": "interval low", "ci_high": "interval high"}))  # at the family's level

# %% [markdown]
# Verdicts in the {glue:text}`null_family`. Adding the null block
#
# ```{glue:md} null_lines
# :format: myst
# ```
#
# %% [markdown]
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
# The training set of every class, subsampled (seeded, without replacement) to several sizes, at layers whose
# dimension the full set does or does not exceed; the page's Gaussian with no reduction and with NPCA under the
# default `"block"` reading (the null block kept whole). Each size has several random subsets: the line is their
# mean AUROC, the band the spread from the lowest to the highest subset; the CSV adds each subset's 95 %
# interval (`tad.stats.auroc_ci`). The horizontal axis is $n / D$: left of 1 a null space exists.

# %% tags=["hide-input"]
parts = []
for s in page.splits:
    for lay in subsample_layers:
        X, Y = select_pair(features[s.name], lay, pooling, bb)
        sizes = [n for n in subsample_sizes if n < len(X)] + [len(X)]
        for method, r in (("none", None), ("npca", ratio)):
            part = subsample_aurocs(X, Y, labels[s.name], sizes, reduction=method, ratio=r, estimator=estimator,
                                    n_draws=subsample_draws, seed=seed)
            parts.append(part.assign(dataset=s.name, layer=str(lay),
                                     reduction="none" if method == "none" else f"npca {100 * r:g} %"))
sub = subsample_summary(pd.concat(parts, ignore_index=True))
fig, axes = plt.subplots(1, len(subsample_layers), figsize=(5 * len(subsample_layers), 3.8), sharey=True,
                         squeeze=False)
colours = dict(zip([s.name for s in page.splits], plt.cm.tab10.colors))
for ax, lay in zip(axes[0], subsample_layers):
    for (name, red), g in sub[sub.layer == str(lay)].groupby(["dataset", "reduction"], sort=False):
        style = "--" if red == "none" else "-"
        ax.plot(g.n_over_d, g.auroc_mean, style, marker="o", ms=3, color=colours[name], label=f"{name}, {red}")
        ax.fill_between(g.n_over_d, g.auroc_min, g.auroc_max, color=colours[name], alpha=0.15)
    ax.axvline(1, color="black", ls=":")
    ax.set(xscale="log", xlabel="training images / dimension (n / D)", title=f"layer {lay}")
axes[0, 0].set_ylabel(f"AUROC ({estimator.upper()})")
axes[0, -1].legend(fontsize=7)
plt.show()

# %% [markdown]
# Dashed lines: no reduction; solid: NPCA; one colour per class; the dotted line is $n = D$. Look at whether
# NPCA's gap to no reduction, if any, closes as the training set passes $D$ and the null space disappears.

# %% tags=["remove-cell"]
csv = pd.concat([shares.reset_index().assign(table="halves"), fact.assign(table="factorial"),
                 contrasts.rename(columns={"ci_low": "diff_low", "ci_high": "diff_high"}).assign(table="contrast"),
                 sub.assign(table="training size")], ignore_index=True)
csv = csv[["table", *[c for c in csv.columns if c != "table"]]]
glue_text("csv_link", save_csv(csv, page))
csv = pd.read_csv(page.download_dir / f"{page.name}.csv")  # what the reader downloads, and check_glue rereads

glue_csv(page, "n_pairs", "layer", "count", "count", table="halves")
glue_csv(page, "n_inverted", "layer", "count", "count", table="halves", **{"loud half inverted": True})
glue_csv(page, "n_counted", "layer", "count", "count", table="halves", **{"loud half inverted": False})
glue_csv(page, "n_small_wins", "layer", "count", "count", table="halves",
         **{"loud half inverted": False, "quiet half better": True})
inverted = shares[shares["loud half inverted"]]
glue_text("inverted_where", listing((f"{d} layer {lay}" for d, lay in inverted.index), empty="none"))
counted = shares[~shares["loud half inverted"]]
if counted.empty:
    glue_text("mean_small", "not defined (no pair left)")
    glue_text("mean_large", "not defined")
else:
    glue_csv(page, "mean_small", "auroc smallest", "mean", table="halves", **{"loud half inverted": False})
    glue_csv(page, "mean_large", "auroc largest", "mean", table="halves", **{"loud half inverted": False})
glue_value("n_share_up", int((counted["smallest share, anomalous"] > counted["smallest share, good"]).sum()), "count")

npca_csv = csv[(csv.table == "contrast") & (csv.question == "NPCA vs none")]
glue_text("npca_lines", "\n".join(
    f"- **{name}**: {verdict_sentence(g, by='estimator', detail='layer')} (mean change "
    f"{format_value(g['diff'].mean(), 'diff')})" for name, g in npca_csv.groupby("dataset", sort=False)))
null_csv = csv[(csv.table == "contrast") & (csv.question == "null block")]
glue_text("null_lines", "- no layer of this run has a null space, so there is no null block to add" if null_csv.empty
          else "\n".join(f"- **{name}**, to {'the quiet half (NPCA)' if a == npca_null else 'all other axes (none)'}: "
                         f"{verdict_sentence(g, by='estimator', detail='layer')} (mean change "
                         f"{format_value(g['diff'].mean(), 'diff')})"
                         for (name, a), g in null_csv.groupby(["dataset", "a"], sort=False)))

quiet = null_csv[null_csv.a == npca_null]
null_summary = ("No layer of this run has a null space, so none of NPCA's effect here comes from it" if quiet.empty
                else f"Compared like with like (one reading), adding the null block to NPCA's quiet half changes the "
                     f"AUROC by {format_value(quiet['diff'].mean(), 'diff')} on average: higher beyond noise in "
                     f"{int((quiet.verdict == 'higher').sum())}, lower in {int((quiet.verdict == 'lower').sum())} of "
                     f"{len(quiet)} (estimator, data set, layer) comparisons")
glue_text("null_summary", null_summary)

isotropic = [e for e in ("Euclidean 1-NN", "distance to mean") if e in factorial_estimators]
whitening = [e for e in factorial_estimators if e not in isotropic]
tallies, group_means = {}, {}
for key, group in (("iso", isotropic), ("whiten", whitening)):
    rows = npca_csv[npca_csv.estimator.isin(group)]
    group_means[key] = rows["diff"].mean() if len(rows) else np.nan
    tallies[key] = (f"{format_value(group_means[key], 'diff')} (higher beyond noise in "
                    f"{int((rows.verdict == 'higher').sum())}, lower in {int((rows.verdict == 'lower').sum())} of "
                    f"{len(rows)} comparisons)" if len(rows) else "nothing (not measured)")
    glue_text(f"{key}_names", listing(group))
    glue_text(f"{key}_tally", tallies[key])
for key, name in (("knn", "Euclidean 1-NN"), ("lw", "Ledoit-Wolf MVG")):
    if (npca_csv.estimator == name).any():
        glue_csv(page, f"{key}_gain", "diff", "mean", "diff", table="contrast", question="NPCA vs none", estimator=name)
    else:
        glue_text(f"{key}_gain", "not measured")

small_delta, large_delta = (f"{f(v for v in shrinkages if v is not None):g}" for f in (min, max))
by_cell = shrink.pivot_table(index=["dataset", "layer", "shrinkage"], columns="reduction", values="auroc",
                             aggfunc="first")
shrink_gap = by_cell[f"npca {ratio:.0%}"] - by_cell["none"]
gap_small, gap_large = shrink_gap.xs(small_delta, level="shrinkage"), shrink_gap.xs(large_delta, level="shrinkage")
lw = shrink[shrink.shrinkage == "Ledoit-Wolf"]
glue_text("lw_range", f"{lw.delta.min():.3g} to {lw.delta.max():.3g}")
glue_text("gap_small", listing(f"{format_value(v, 'diff')} ({d}, layer {lay})" for (d, lay), v in gap_small.items()))
glue_text("gap_large", listing(f"{format_value(v, 'diff')} ({d}, layer {lay})" for (d, lay), v in gap_large.items()))
glue_text("delta_small", small_delta)
glue_text("delta_large", large_delta)

sub_wide = sub.pivot_table(index=["dataset", "layer", "n_train", "n_over_d", "draws"], columns="reduction",
                           values="auroc_mean", aggfunc="first").reset_index()
sub_wide["gap"] = sub_wide[f"npca {100 * ratio:g} %"] - sub_wide["none"]
glue_text("sub_lines", "\n".join(
    f"- {name}, layer {lay}: NPCA minus none {format_value(g.gap.iloc[0], 'diff')} at n / D = "
    f"{g.n_over_d.iloc[0]:.2g} (mean of {int(g.draws.iloc[0])} subsets), {format_value(g.gap.iloc[-1], 'diff')} "
    f"with all {int(g.n_train.iloc[-1])} images (n / D = {g.n_over_d.iloc[-1]:.2g})"
    for (name, lay), g in sub_wide.sort_values("n_train").groupby(["dataset", "layer"], sort=False)))

# %% [markdown]
# ## What this shows
#
# **The quiet half.** The loud half is inverted beyond its interval on {glue:text}`n_inverted` of the
# {glue:text}`n_pairs` (data set, layer) pairs ({glue:text}`inverted_where`); those are left out. On the
# other {glue:text}`n_counted`, the distance within the smallest half separates better than the distance within
# the largest half on {glue:text}`n_small_wins` (means {glue:text}`mean_small` against
# {glue:text}`mean_large`), and anomalous images put a larger share of their deviation there than good ones on
# {glue:text}`n_share_up`. These are counts, not a test: the pairs share data sets, test images and
# overlapping features ("all" contains layer 7), so they are far from independent trials.
#
# **Which estimators NPCA helps.** NPCA's quiet half against all axes changes the AUROC on average by
# {glue:text}`iso_tally` for the distances that weigh every axis alike ({glue:text}`iso_names`), and by
# {glue:text}`whiten_tally` for the estimators that divide each axis by its training variance
# ({glue:text}`whiten_names`); for the Euclidean 1-NN alone by {glue:text}`knn_gain`, for the Ledoit-Wolf
# Gaussian by {glue:text}`lw_gain`. A plausible reading, a hypothesis rather than a shown cause: a Euclidean distance is
# dominated by the loud axes, which hold the good images' nuisance variation (position, lighting), so
# dropping them lets the quiet axes, where an anomaly adds what the good images never showed, decide; a
# Gaussian already divides each axis by its training variance, so it has less to gain from dropping the loud
# axes and loses what they carry. At a large shrinkage intensity the Gaussian's distance approaches the
# Euclidean one, so a heavily shrunk Gaussian (many more dimensions than training images, as with the paper's
# larger backbone) would behave like the Euclidean 1-NN here: one plausible account of the paper's weak
# no-reduction figure, which the shrinkage rows test (NPCA minus none at $\delta$ = {glue:text}`delta_large`
# below).
#
# **The null block.** {glue:text}`null_summary`. Under a shrunk Gaussian a null axis gets the finite weight
# $1 / (\delta \bar\lambda)$, the largest of all, so the null block can decide a Gaussian's score; the
# pseudo-inverse Gaussian gives it weight zero.
#
# **Ledoit-Wolf.** The estimated intensities range from {glue:text}`lw_range`. NPCA 50 % minus no reduction at
# $\delta$ = {glue:text}`delta_small`: {glue:text}`gap_small`; at $\delta$ = {glue:text}`delta_large`:
# {glue:text}`gap_large`. If the tempting argument were right, the gap would stay near zero at every intensity;
# how it moves with $\delta$ shows how much the Gaussian's weighting, not the choice of axes, decides the result.
#
# **Training-set size** (the page's Gaussian; the smallest subsets against the whole training set):
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
#   more training images than dimensions at layer 7, there is no null block: does NPCA still help the
#   Euclidean 1-NN?

# %% tags=["remove-cell"]
points = []
if npca_csv.empty:
    points.append("No NPCA comparison could be made in this run")
else:
    best = npca_csv.loc[npca_csv["diff"].idxmax()]
    helped = list(dict.fromkeys(npca_csv[npca_csv.verdict == "higher"].estimator))
    headline = (f"Only for {listing(helped)} is {npca_name} (rank reading) higher than no reduction beyond noise "
                f"({int((npca_csv.verdict == 'higher').sum())} of {len(npca_csv)} comparisons; largest "
                f"{format_value(best['diff'], 'diff')}, {best.estimator} on {best.dataset} layer {best.layer}, "
                f"{100 * npca_family.level:.3g} % interval [{best.diff_low:.3f}, {best.diff_high:.3f}])" if helped
                else f"{npca_name} (rank reading) is higher than no reduction beyond noise in none of the "
                     f"{len(npca_csv)} comparisons")
    means = npca_csv.groupby("estimator")["diff"].mean()
    named = [e for e in ("Euclidean 1-NN", "Ledoit-Wolf MVG") if e in means.index]
    if named:
        headline += "; mean change " + listing(f"{format_value(means[e], 'diff')} for the {e}" for e in named)
    if helped and set(helped) <= set(isotropic):
        headline += (f": the quiet axes rescue the {listing(helped)}, which weighs every axis alike and is "
                     "dominated by the loud ones, not the scores that divide each axis by its training variance")
    points.append(headline)
points.append(null_summary)
if not counted.empty:
    points.append(f"Leaving out the {len(inverted)} (data set, layer) pairs whose loud half is inverted beyond its "
                  f"interval, the quiet half separates better than the loud half on "
                  f"{int(counted['quiet half better'].sum())} of {len(counted)}, mean AUROC "
                  f"{format_value(counted['auroc smallest'].mean(), 'auroc')} against "
                  f"{format_value(counted['auroc largest'].mean(), 'auroc')}")
points.append(f"NPCA minus no reduction averages {format_value(gap_small.mean(), 'diff')} at shrinkage {small_delta} "
              f"and {format_value(gap_large.mean(), 'diff')} at {large_delta}: how much NPCA helps a Gaussian "
              f"depends on its weighting")
glue_text("takeaways", teach.takeaways(points))
glue_text("ex_share", f"Anomalous images put a larger share of their deviation on the quiet half than good images "
          f"do on {int((shares['smallest share, anomalous'] > shares['smallest share, good']).sum())} of "
          f"{len(shares)} pairs.")
spe = fact[(fact.reduction == "null space (SPE)") & (fact.estimator == "distance to mean")]
reference = fact[(fact.reduction == "none") & (fact.estimator == "Ledoit-Wolf MVG")].set_index(["dataset", "layer"])
glue_text("ex_residual", "No pair of this run has a null space, so there is no residual to score." if spe.empty else
          "The SPE alone reaches " + listing(
              f"{format_value(r.auroc, 'auroc')} [{r.ci_low:.3f}, {r.ci_high:.3f}] on {r.dataset}, layer {r.layer}"
              + (f" (Ledoit-Wolf MVG with no reduction {format_value(reference.auroc[r.dataset, r.layer], 'auroc')})"
                 if (r.dataset, r.layer) in reference.index else "") for r in spe.itertuples()) + ".")
if npca_csv.empty:
    glue_text("ex_best", "No NPCA comparison was made in this run.")
else:
    means = npca_csv.groupby("estimator", sort=False)["diff"].mean()
    glue_text("ex_best", f"By the mean change over data sets and layers, NPCA helps {means.idxmax()} most "
              f"({format_value(means.max(), 'diff')}) and {means.idxmin()} least "
              f"({format_value(means.min(), 'diff')}).")

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
# **2. The null space alone.** Where it exists, how well does the distance to the span of the training
# features (the full-rank residual, SPE; see {term}`DFM`) do by itself?
#
# ```{dropdown} Solution
# Read the "null space (SPE)" column of the factorial table, row "distance to mean" (the Euclidean 1-NN
# there scores the same distance, since every training image projects to one point of the null space).
# {glue:md}`ex_residual:myst` A residual close to the best AUROC says that much of the signal lies in
# directions no good image varied in.
# ```
#
# **3. Which estimator gains most?** From the comparison table of NPCA against no reduction, which estimator
# does NPCA help most, and which least? Why might a whitening estimator gain less?
#
# ```{dropdown} Solution
# Average the "diff" column per estimator. {glue:md}`ex_best:myst` A Gaussian or a whitened 1-NN already
# divides each axis by its training variance, so the loud axes do not dominate its distance and there is
# less to gain by dropping them; a Euclidean distance is dominated by them.
# ```
#
# **4. More training images.** Rerun on transistor:
# `.venv/bin/python scripts/build_book.py --only 11_why_npca -p classes '[transistor]'`. What should happen to
# the null space, and to NPCA's advantage, as the training set passes the dimension?
#
# ```{dropdown} Solution
# With $n - 1 \ge D$ the training covariance has full rank and the null space vanishes, so NPCA with and without
# the null block agree and any remaining NPCA advantage comes from the quiet non-null axes alone. Watch the
# training-size figure: a gap that closes at the dotted line came from the null space.
# ```
