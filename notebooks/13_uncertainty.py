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
# # How much of a difference in AUROC is noise? (beyond the paper)
#
# Ono & Mori report single AUROCs to two decimals with no interval and rank configurations on small
# differences:
#
# > Table 4: MVG 0.975 against 1-NN 0.973 (average pooling); table 2: NPCA 50 % 0.972 against no reduction
# > 0.889; table 3: layer 7 and all layers both 0.97 on average.
#
# This page gives each AUROC an interval that means what it says, measures how much the result depends on
# which good images were available for training, and compares configurations with a stated error rate.

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
n_folds = 5                         # disjoint training folds, each fitted alone
alpha = 0.05                        # family-wise error rate of the book's family of comparisons (tad.stats.BOOK_FAMILY)
device = "cpu"
cache_dir = None                    # None means $TAD_CACHE (the shared feature cache), else ~/.cache/tad
n_boot = 1000
seed = 0

# %% tags=["hide-input"]
import warnings
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tad.evaluate import auroc, bootstrap_ci
from tad.features import select
from tad.book.page import open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import format_value, show_table
from tad.paper import paper_table
from tad.plots import roc_figure, score_histogram
from tad.reduce import NullSpaceWarning
from tad.stats import BOOK_FAMILY, auroc_ci, compare, gain_outcome, gain_statement, mean_sem
from tad.sweep import fold_scores, score, split_features

page = open_page("13_uncertainty", data_root=data_root, classes=classes, backbone=backbone,
                 input_size=input_size, seed=seed, cache_dir=cache_dir)
bb = page.backbone
last = bb.n_layers
MAIN = f"layer {last}, NPCA 50 %, MVG"   # the paper's configuration on this backbone
CONFIGS = {MAIN: (last, "npca", 0.5, "mvg"), "all layers, NPCA 50 %, MVG": ("all", "npca", 0.5, "mvg"),
           f"layer {last}, no reduction, MVG": (last, "none", None, "mvg"),
           f"layer {last}, NPCA 50 %, 1-NN": (last, "npca", 0.5, "knn1")}
t2, t3, t4 = paper_table(2)["auc"], paper_table(3), paper_table(4)["avg"]
PAIRS = {  # (a, b, the paper's AUROC(a) - AUROC(b), or NaN where it reports none)
    "layer vs all layers": (MAIN, "all layers, NPCA 50 %, MVG", t3.loc["mean", "7"] - t3.loc["mean", "all"]),
    "NPCA 50 % vs none": (MAIN, f"layer {last}, no reduction, MVG",
                          t2.loc[("npca", 0.5)] - t2[t2.index.get_level_values(0) == "none"].iloc[0]),
    "MVG vs 1-NN": (MAIN, f"layer {last}, NPCA 50 %, 1-NN", t4["mvg"] - t4["knn1"]),
}
scores, labels, folds = {}, {}, {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", NullSpaceWarning)  # the spread this causes is the grid page's subject
    for s in page.splits:
        train, test = split_features(s, bb, input_size=input_size, cache_dir=page.cache_dir, device=device,
                                     progress=False)
        labels[s.name] = s.test_labels.astype(bool)
        for name, (lay, red, ratio, est) in CONFIGS.items():
            X, Y = select(train, lay, pooling, bb), select(test, lay, pooling, bb)
            scores[s.name, name] = score(X, Y, red, ratio, est, seed=seed)
        lay, red, ratio, est = CONFIGS[MAIN]
        folds[s.name] = fold_scores(select(train, lay, pooling, bb), select(test, lay, pooling, bb), red, ratio,
                                    est, n_folds=n_folds, seed=seed)

# %% tags=["remove-cell"]
from matplotlib_inline.backend_inline import set_matplotlib_formats

set_matplotlib_formats("png")  # tad.plots' figures are built without pyplot: show them as PNG from the start

# %% [markdown]
# ## An interval at perfect separation
#
# A percentile {term}`bootstrap` resamples the test images and reads the spread of the resampled
# {term}`AUROC`s. When the good and the defective test images are perfectly separated, every resample is
# separated too: the interval is [1, 1], width 0, as if the test set proved a perfect detector. It does not:
# with a few dozen images, a detector whose true AUROC is a little below 1 separates them perfectly fairly
# often. `tad.stats.auroc_ci` (Newcombe's score interval) keeps every true AUROC the observed one does not
# reject, with the variance evaluated at the candidate value, so it stays open below 1.

# %% tags=["hide-input"]
rows = []
for s in page.splits:
    y, sc = labels[s.name], scores[s.name, MAIN]
    b_lo, b_hi = bootstrap_ci(y, sc, n_boot=n_boot, seed=seed)
    a_lo, a_hi = auroc_ci(y, sc)
    rows.append({"dataset": s.name, "n_good": int((~y).sum()), "n_defective": int(y.sum()), "auroc": auroc(y, sc),
                 "bootstrap low": b_lo, "bootstrap high": b_hi, "auroc_ci low": a_lo, "auroc_ci high": a_hi})
intervals = pd.DataFrame(rows).set_index("dataset")
perfect = intervals[intervals.auroc == 1]
intervals.round(3)

# %% [markdown]
# {glue:md}`perfect:myst`
#
# The scores of the paper's configuration on the first data set, good against defective, and its ROC curve:

# %% tags=["hide-input"]
first = page.splits[0].name
fig = score_histogram(labels[first], scores[first, MAIN])
fig.suptitle(f"{first}: {MAIN}")
display(fig)
display(roc_figure(labels[first], scores[first, MAIN], name=MAIN))

# %% [markdown]
# Where the two histograms do not overlap, the ROC curve runs through the top-left corner: that is the case
# in which only an interval like `auroc_ci` says how much a test set of this size can show.
#
# ## Which good images were available: disjoint folds
#
# The training images are split into `n_folds` disjoint folds and the model is fitted on each fold alone
# (`tad.sweep.fold_scores`), so no two fits share an image and their AUROCs are independent given the test
# set; their mean ± standard error of the mean (`tad.stats.mean_sem`) is what Rippel et al. report. Each fit
# sees only a fraction of the training images, so the fold mean also shows what a smaller training set costs.

# %% tags=["hide-input"]
rows = []
for s in page.splits:
    per_fold = np.array([auroc(labels[s.name], f) for f in folds[s.name]])
    m, sem = mean_sem(per_fold)
    rows.append({"dataset": s.name, "n_train": len(s.train), "per fold": len(s.train) // n_folds,
                 "full training set": intervals.loc[s.name, "auroc"], "fold mean": m, "fold SEM": sem,
                 "fold min": per_fold.min(), "fold max": per_fold.max()})
fold_table = pd.DataFrame(rows).set_index("dataset")
fold_table["cost of a fold"] = fold_table["full training set"] - fold_table["fold mean"]
glue_value("n_folds", n_folds, "count")
fold_table.round(3)

# %% [markdown]
# Over {glue:text}`n_folds` folds the standard error of the mean reaches {glue:text}`max_sem` (on
# {glue:text}`sem_class`); the full training set's AUROC exceeds the fold mean by up to {glue:text}`max_drop`,
# what fitting on a fifth of the images instead of all of them costs with the default five folds.
#
# ## Comparisons with a stated error rate
#
# Two configurations scored on the same test images are compared by DeLong's test ({term}`paired comparison`:
# the images' shared difficulty cancels), with an interval of the difference that stays open at AUROC 1
# (MOVER from `auroc_ci`). Where a configuration separates the images perfectly, DeLong's variance is 0 and
# its test says nothing; there `tad.stats.compare` decides by a paired permutation test (the two scorings
# swapped within images) and keeps the MOVER interval, then conservative (a bootstrap of the difference
# would keep AUROC 1 in every resample and be too narrow), and the column "method" says which. Each is one of the book's declared family of comparisons, tested at that family's
# Bonferroni level (`tad.stats.compare`, `tad.stats.BOOK_FAMILY`): the chance of any false "higher"/"lower" in
# the family is at most `alpha`, the intervals hold simultaneously, and a comparison gets the same verdict on
# every page that makes it ({glue:text}`family`). Beside each: is a gain as large as the paper's established,
# excluded or neither?

# %% tags=["hide-input"]
family = replace(BOOK_FAMILY, alpha=alpha)
rows = []
for s in page.splits:
    for comparison, (a, b, gain) in PAIRS.items():
        c = compare(labels[s.name], scores[s.name, a], scores[s.name, b], family=family)
        tested = abs(gain) > 1e-9
        rows.append({"dataset": s.name, "comparison": comparison, "a": a, "b": b, "diff": c.diff,
                     "ci_low": c.ci_low, "ci_high": c.ci_high, "p": c.p, "verdict": c.verdict,
                     "resolved": c.verdict != "within noise", "method": c.method, "paper gain": gain,
                     "paper gain tested": tested,
                     "paper gain outcome": gain_outcome((c.ci_low, c.ci_high), gain) if tested else "",
                     "the paper's gain": gain_statement((c.ci_low, c.ci_high), gain, level=c.level)
                     if tested else "the paper reports no difference"})
glue_text("family", family.describe())
comparisons = pd.DataFrame(rows)
# One download for the page's three tables, told apart by the column "table".
glue_text("csv_link", save_csv(pd.concat([comparisons.assign(table="comparison"),
                                          intervals.reset_index().assign(table="interval"),
                                          fold_table.reset_index().assign(table="folds")],
                                         ignore_index=True), page))  # unrounded: the glued values are read back
n_cmp = glue_csv(page, "n_comparisons", "comparison", "count", "count", table="comparison")
n_clear = glue_csv(page, "n_clear", "comparison", "count", "count", table="comparison", resolved=True)
n_word = {w: glue_csv(page, f"n_{w}", "comparison", "count", "count", table="comparison", verdict=w)
          for w in ("higher", "lower")}
glue_text("alpha", format_value(alpha, "percent"))
n_excluded = glue_csv(page, "n_excluded", "comparison", "count", "count", table="comparison",
                      **{"paper gain outcome": "excluded"})
n_gain_tested = glue_csv(page, "n_gain_tested", "comparison", "count", "count", table="comparison",
                         **{"paper gain tested": True})
max_sem = glue_csv(page, "max_sem", "fold SEM", "max", table="folds")
sem_class = glue_csv(page, "sem_class", "fold SEM", "argmax", "text", by="dataset", table="folds")
glue_csv(page, "max_drop", "cost of a fold", "max", "diff", table="folds")
if len(perfect):
    d = perfect.index[0]
    b_lo, b_hi, s_lo = (glue_csv(page, f"perfect_{key}", column, table="interval", dataset=d)
                        for key, column in (("boot_low", "bootstrap low"), ("boot_high", "bootstrap high"),
                                            ("score_low", "auroc_ci low")))
    glue_text("perfect", f"On {d} the paper's configuration separates the test images perfectly: the bootstrap "
              f"interval is [{b_lo}, {b_hi}], while auroc_ci reaches down to {s_lo} with "
              f"{int(perfect.iloc[0].n_good)} good and {int(perfect.iloc[0].n_defective)} defective images: the "
              f"lowest true AUROC its normal approximation still accepts, a conservative bound rather than an "
              f"exact limit of what a perfect separation allows.")
else:
    glue_text("perfect", "No data set of this run is separated perfectly, so the two intervals differ only in "
              "detail here; the bootstrap's collapse shows where a class reaches AUROC 1.")
show_table(comparisons[["dataset", "comparison", "diff", "ci_low", "ci_high", "p", "verdict", "method",
                        "the paper's gain"]].round(3)
           .rename(columns={"ci_low": "interval low", "ci_high": "interval high"}))  # at the family's level

# %% [markdown]
# ```{glue:md} csv_link
# :format: myst
# ```

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 0.8 + 0.4 * len(comparisons)))
pos = np.arange(len(comparisons))
ax.errorbar(comparisons["diff"], pos, xerr=[comparisons["diff"] - comparisons.ci_low,
                                            comparisons.ci_high - comparisons["diff"]], fmt="o", capsize=3,
            label="difference, simultaneous interval")
ax.scatter(comparisons["paper gain"], pos, marker="x", color="C3", label="the paper's difference")
ax.axvline(0, color="grey", lw=0.8)
ax.set(yticks=pos, yticklabels=[f"{r.dataset}: {r.comparison}" for r in comparisons.itertuples()],
       xlabel="AUROC(a) - AUROC(b)")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# Each row: our difference with its simultaneous interval (dot and bar) and the paper's difference (cross).
# Where a cross lies inside the bar, this test set cannot tell the paper's gain from ours.
#
# ## What this shows
#
# Of the {glue:text}`n_comparisons` comparisons, {glue:text}`n_clear` reach a verdict of "higher" or "lower" at
# a family-wise error rate of {glue:text}`alpha`; the rest are within noise and should not be read as a
# ranking, whatever their sign. A gain as large as the paper's is excluded in {glue:text}`n_excluded` of the
# {glue:text}`n_gain_tested` comparisons where the paper reports one. Intervals at perfect separation come from
# `auroc_ci`, never from a percentile bootstrap, and fold-to-fold spreads are reported as mean ± SEM over
# disjoint folds.
#
# ## Try it
#
# - One class with fewer test images: `.venv/bin/python scripts/build_book.py --only 13_uncertainty -p classes '[bottle]'`.
#   How wide is `auroc_ci` at AUROC 1 there, and how many comparisons are within noise?
# - A stricter family-wise error rate: `-p alpha 0.01`. Which verdicts turn into "within noise"?

# %% tags=["remove-cell"]
from tad.book import teach

n_noise = glue_csv(page, "n_within_noise", "comparison", "count", "count", table="comparison", resolved=False)
points = [f"Of the {n_cmp} comparisons of the paper's choices ({int(n_cmp) // len(page.splits)} per data set; family-wise error "
          f"{format_value(alpha, 'percent')}), {n_clear} are resolved beyond noise ({n_word['higher']} with the "
          f"paper's choice higher, {n_word['lower']} lower) and {n_noise} are within noise; a gain as large as the "
          f"paper's is excluded in {n_excluded} of the {n_gain_tested} where the paper reports one, the others "
          f"leave it open"]
if len(perfect):
    points.append(f"On {perfect.index[0]}, separated perfectly, the bootstrap interval collapses to [{b_lo}, {b_hi}] "
                  f"while the score interval stays open down to {s_lo}, a conservative asymptotic bound")
points.append(f"Over {n_folds} disjoint training folds the standard error of the mean AUROC reaches {max_sem} "
              f"({sem_class})")
glue_text("takeaways", teach.takeaways(points))
widths = (intervals["auroc_ci high"] - intervals["auroc_ci low"]) - (intervals["bootstrap high"]
                                                                      - intervals["bootstrap low"])
w = intervals.loc[widths.idxmax()]
glue_text("ex_width", f"The score interval is widest relative to the bootstrap on {widths.idxmax()} (AUROC "
          f"{format_value(w.auroc, 'auroc')}, {int(w.n_good)} good and {int(w.n_defective)} defective images): "
          f"[{w['auroc_ci low']:.3f}, {w['auroc_ci high']:.3f}] against the bootstrap's "
          f"[{w['bootstrap low']:.3f}, {w['bootstrap high']:.3f}].")
close = comparisons.loc[comparisons.p.idxmin()]
glue_text("ex_close", f"The comparison nearest to being resolved is {close.comparison} on {close.dataset} (p "
          f"{close.p:.2g}, against the family's Bonferroni threshold {family.alpha / family.size:.2g}): " + teach.comparison_sentence(close.a, close.b, close["diff"], close.ci_low,
                                                               close.ci_high, close.verdict))

# %% [markdown]
# ## Exercises
#
# **1. Bootstrap against score interval.** On which data set does the score interval differ most from the
# bootstrap's, and why there?
#
# ```{dropdown} Solution
# Subtract the bootstrap interval's width from the score interval's, per row of the first table.
# {glue:md}`ex_width:myst` The bootstrap only reshuffles the images at hand, so near AUROC 1 it has little
# room to vary; the {term}`score interval` asks which true AUROCs could have produced what was seen, which
# stays honest there.
# ```
#
# **2. The nearest call.** Which comparison comes closest to being resolved?
#
# ```{dropdown} Solution
# Sort the comparisons by their p-value. {glue:md}`ex_close:myst` "Higher" or "lower" needs the p-value
# below the family's Bonferroni threshold (`alpha` divided by the family's size) and the difference's
# interval at the family's level excluding 0, from DeLong and MOVER; where an AUROC is 0 or 1 DeLong says
# nothing and the permutation test's p-value decides alone (the column "method" says which).
# ```
#
# **3. A looser error rate.** Rerun with `-p alpha 0.2`. What changes, and what does it cost?
#
# ```{dropdown} Solution
# A larger `alpha` narrows the simultaneous intervals and lowers the bar for "higher" or "lower", so some
# comparisons within noise may become resolved; the price is a family-wise chance of a false claim of up to
# one in five instead of one in twenty.
# ```
