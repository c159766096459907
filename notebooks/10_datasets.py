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
# # Does the MVTec recipe transfer to solar cells? (beyond the paper)
#
# Ono & Mori study MVTec AD only and name other data sets as future work:
#
# > "As future work, we will address ... verification on data sets other than MVTec." (section 4, our
# > translation.) Their recipe on MVTec: the deepest layer (table 3: mean AUROC 0.64 at layer 1, 0.97 at
# > layer 7), the smallest-variance axes (table 2: NPCA 50 % at 0.972, no reduction at 0.889, PCA 50 % lower
# > still), and either estimator.
#
# This page runs the same three comparisons on ELPV, electroluminescence images of solar cells
# (Buerhop-Lutz et al. 2018; defective = defect probability 1, good = 0, the uncertain cells left out; the
# split of good cells into train and test is this book's, see `tad.data.load_elpv`), beside the MVTec
# classes at hand, and asks per data set what the noise allows us to say.

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
classes = None                      # MVTec-layout classes; None means every class present under data_root
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
elpv_classes = ["elpv_mono"]        # ELPV cell types (tad.data.ELPV_CATEGORIES) to add; [] for none
layer = 7                           # layer of the reduction and estimator comparisons (table 2's reading)
device = "cpu"
cache_dir = None                    # None means $TAD_CACHE (the library's default)
results = None                      # None means results.jsonl in the cache
seed = 0

# %% tags=["hide-input"]
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib_inline.backend_inline import set_matplotlib_formats
from myst_nb import glue

from tad.data import ELPV_CATEGORIES, resolve_root
from tad.evaluate import auroc
from tad.features import select_pair
from tad.book.page import open_page, resolve_data, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import ci_text, config_label, format_value, show_table
from tad.paper import paper_table, side_by_side
from tad.plots import roc_figure, score_histogram
from tad.reduce import NullSpaceWarning
from tad.reduce import DEFAULT_BASIS
from tad.scorecard import claim, claim_row, outcome, save_claims
from tad.stats import BOOK_FAMILY, Family, compare, defect_aurocs, gain_statement
from tad.sweep import REDUCTIONS, run_grid, score, split_features
from tad.trial import layer_names
from tad.book.words import layer_name

warnings.simplefilter("ignore", NullSpaceWarning)  # said once in prose below; 11_why_npca treats it
set_matplotlib_formats("png")  # glue needs a PNG of tad.plots' figures before pyplot has drawn any
found, _ = resolve_data(resolve_root(data_root), classes)
wanted = [c for c in found if c not in ELPV_CATEGORIES] + list(elpv_classes)
page = open_page("10_datasets", data_root=data_root, classes=wanted or found, backbone=backbone,
                 input_size=input_size, seed=seed, cache_dir=cache_dir, results=results)
bb, labels = page.backbone, {s.name: s.test_labels for s in page.splits}
elpv = [n for n in page.names if n in ELPV_CATEGORIES]
mvtec = [n for n in page.names if n not in ELPV_CATEGORIES]
feats = {s.name: split_features(s, bb, input_size=input_size, cache_dir=page.cache_dir, device=device,
                                progress=False) for s in page.splits}
grid_kw = dict(basis=DEFAULT_BASIS, input_size=input_size, cache_dir=page.cache_dir, device=device, seed=seed,
               progress=False)


# %% [markdown]
# ## Which layer? (table 3's setup: average pooling, NPCA 50 %, 1-NN)
#
# Every layer and their concatenation ("all"), with 95 % intervals (`tad.stats.auroc_ci`, which stays open
# at AUROC 1 where a percentile bootstrap collapses to a point).

# %% tags=["hide-input"]
by_layer = run_grid(page.splits, bb, page.results, poolings=["avg"], reductions=[("npca", 0.5)],
                    estimators=["knn1"], **grid_kw)
by_layer["configuration"] = [config_label(r) for _, r in by_layer.iterrows()]
layers = layer_names(bb)
table3 = by_layer.pivot_table(index="dataset", columns="layer", values="auroc")[layers].loc[page.names]
paper3 = paper_table(3)
side_by_side(table3, paper3.loc[[c for c in mvtec if c in paper3.index]]).round(3)

# %% tags=["remove-cell"]
fig, ax = plt.subplots(figsize=(7.5, 3.8))
for i, name in enumerate(page.names):
    rows = by_layer[by_layer.dataset == name].set_index("layer").loc[layers]
    x = np.arange(len(layers)) + 0.06 * (i - len(page.names) / 2)
    ax.errorbar(x, rows.auroc, yerr=[rows.auroc - rows.ci_low, rows.ci_high - rows.auroc], marker="o", capsize=2,
                ls="--" if name in elpv else "-", label=name)
ax.axhline(0.5, color="grey", lw=0.8)
ax.set_xticks(range(len(layers)), layers)
ax.set(xlabel="layer", ylabel="image AUROC", title=f"{bb.name}, avg, NPCA 50 %, 1-NN (ELPV dashed)")
ax.legend(fontsize=8, ncol=2)
glue("fig_layers", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_layers
# :name: fig-datasets-layers
#
# Image AUROC per layer with 95 % intervals, one line per data set. **Look at** the shape of each curve,
# not just its end points: whether it climbs steadily, flattens early, or dips below chance (grey line) at
# the shallow layers.
# ```

# %% [markdown]
# ## Which reduction and which estimator? (one deep layer, average pooling)
#
# The paper's table 2 is a mean over its 15 classes; it is set beside each data set here. MVG and 1-NN are
# both run, for the estimator comparison. Where a layer has more dimensions than there are training
# images, NPCA at the small ratios keeps axes along which the good training images do not vary at all (the
# {term}`null space`), an arbitrary subset of them; the page 11_why_npca shows what that does to the scores.

# %% tags=["hide-input"]
at_layer = run_grid(page.splits, bb, page.results, layers=[layer], poolings=["avg"], reductions=REDUCTIONS,
                    estimators=["mvg", "knn1"], **grid_kw)
at_layer = at_layer.assign(configuration=[config_label(r) for _, r in at_layer.iterrows()],
                           reduction_label=[config_label(r, parts=("reduction",)) for _, r in at_layer.iterrows()])
configs = [config_label({"reduction": m, "ratio": r}, parts=("reduction",)) for m, r in REDUCTIONS]
table2 = at_layer[at_layer.estimator == "mvg"].pivot_table(index="dataset", columns="reduction_label",
                                                           values="auroc")[configs].loc[page.names]
paper2 = paper_table(2).auc
table2.loc["paper (mean of 15 classes)"] = [paper2.loc[(m, r)] if m != "none" else paper2.loc["none"].iloc[0]
                                            for m, r in REDUCTIONS]
table2.round(3)

# %% [markdown]
# ## What the noise allows: paired comparisons per data set
#
# Per data set, the paper's claims as {term}`paired comparison`s on the data set's own test images: the last
# layer against layer 1 and against all layers (1-NN, NPCA 50 %); NPCA 50 % against no reduction and against
# PCA 50 %, PCA 50 % against no reduction, and MVG against 1-NN (layer {glue:text}`layer`). Each is one of the
# book's headline comparisons (`tad.stats.compare`, {glue:text}`family`): DeLong's test and an interval of the
# difference at the family's Bonferroni level, so the verdict is the same on every page that makes the
# comparison; "higher" or "lower" only when both say so, else "within noise". Where the best layer of the
# first table is neither the last nor the first, it is also compared with both, in this page's own family
# ({glue:text}`page_family`). On the solar-cell data sets each claim's row is read against the paper's
# effect as the introduction's scorecard reads it (`tad.scorecard.outcome`): *replicated* when the interval
# lies wholly on the paper's side of 0, *contradicted* when it excludes the paper's effect without
# establishing its direction (for "alike", when it lies wholly outside the margin), *unresolved* otherwise.

# %% tags=["hide-input"]
npca, none_, pca = (config_label({"reduction": m, "ratio": r}, parts=("reduction",))
                    for m, r in [("npca", 0.5), ("none", None), ("pca", 0.5)])
best = table3.idxmax(axis=1)
last_layer = str(bb.n_layers)
page_family = Family("the best layer against the last layer and layer 1, where it is neither", 2)
claims = {  # the paper's claims this page tests: (a, b) -> claim name
    (layer_name(last_layer), layer_name("1")): "last layer vs layer 1",
    (layer_name(last_layer), layer_name("all")): "last layer vs all layers",
    (f"MVG, {npca}", f"MVG, {none_}"): "NPCA 50 % vs no reduction",
    (f"MVG, {pca}", f"MVG, {none_}"): "PCA 50 % vs no reduction",
    (f"MVG, {npca}", f"MVG, {pca}"): "NPCA 50 % vs PCA 50 %",
    (f"MVG, {npca}", f"1-NN, {npca}"): "MVG vs 1-NN"}
families, claim_rows = [], []
for name in page.names:
    cand = {layer_name(lay): score(*select_pair(feats[name], lay, "avg", bb), "npca", 0.5, "knn1", seed=seed)
            for lay in dict.fromkeys([best[name], "1", last_layer, "all", str(layer)])}
    X, Y = select_pair(feats[name], layer, "avg", bb)
    cand |= {f"MVG, {npca}": score(X, Y, "npca", 0.5, "mvg", seed=seed),
             f"MVG, {none_}": score(X, Y, "none", None, "mvg", seed=seed),
             f"MVG, {pca}": score(X, Y, "pca", 0.5, "mvg", seed=seed), f"1-NN, {npca}": cand[layer_name(layer)]}
    extra = [(layer_name(best[name]), layer_name(lay)) for lay in ("1", last_layer)  # unless a claim's pair
             if best[name] not in ("1", last_layer) and (best[name], lay) != ("all", last_layer)]
    for a, b in [*claims, *extra]:
        c = compare(labels[name], cand[a], cand[b], family=BOOK_FAMILY if (a, b) in claims else page_family)
        row = {"dataset": name, "a": a, "b": b, "claim": claims.get((a, b), ""), "diff": c.diff, "ci_low": c.ci_low,
               "ci_high": c.ci_high, "p": c.p, "verdict": c.verdict, "level": c.level,
               "family": "book" if (a, b) in claims else "page",
               "outcome": outcome(claim(claims[a, b]), c.ci_low, c.ci_high) if (a, b) in claims else ""}
        if name in elpv and mvtec and (a, b) in claims:  # without MVTec, the claims' own pages run on ELPV
            setting = "avg pooling, NPCA 50 %, 1-NN" if b.startswith("layer") or b == "all layers" else \
                f"layer {layer}, avg pooling"
            claim_rows.append(claim_row(claims[a, b], name, c, auroc_a=auroc(labels[name], cand[a]),
                                        auroc_b=auroc(labels[name], cand[b]), config=f"{a} vs {b}; {setting}",
                                        page=page.name))
        families.append(row)
comparisons = pd.DataFrame(families)
save_claims(claim_rows, page.download_dir, page.name)
glue_text("family", BOOK_FAMILY.describe())
glue_text("page_family", page_family.describe())
comparisons["difference"] = [ci_text(d, lo, hi) for d, lo, hi in
                             zip(comparisons["diff"], comparisons.ci_low, comparisons.ci_high)]
show_table(comparisons[["dataset", "a", "b", "difference", "p", "verdict", "family", "outcome"]])

# %% [markdown]
# ## Per defect type (the reduction table's layer, average pooling, NPCA 50 %, MVG)
#
# The good test images against each defect type alone, with 95 % intervals (`tad.stats.defect_aurocs`).
# ELPV has one defect label; the MVTec classes have several, and a class's AUROC is a mix of easy and
# hard types.

# %% tags=["hide-input"]
main_scores = {n: score(*select_pair(feats[n], layer, "avg", bb), "npca", 0.5, "mvg", seed=seed) for n in page.names}
defects = pd.concat({s.name: defect_aurocs(s.test, main_scores[s.name]) for s in page.splits},
                    names=["dataset", "defect"]).reset_index()
defects["interval"] = [ci_text(a, lo, hi) for a, lo, hi in zip(defects.auroc, defects.ci_low, defects.ci_high)]
show_table(defects[["dataset", "defect", "interval", "n_good", "n_defective"]])

# %% tags=["remove-cell"]
trials = pd.concat([by_layer, at_layer.drop(columns="reduction_label")])
columns = ["dataset", "layer", "reduction", "ratio", "basis", "estimator", "configuration", "auroc", "ci_low",
           "ci_high", "n_train", "n_test", "d"]
glue_text("csv_link", save_csv(comparisons.drop(columns="difference"), page,
                               text="Download the paired comparisons (CSV)") + "; "
          + save_csv(trials[columns], "10_datasets_trials", page.download_dir, text="every trial of this page (CSV)")
          + "; " + save_csv(defects.drop(columns="interval"), "10_datasets_defects", page.download_dir,
                            text="the per-defect AUROCs (CSV)"))
first = (elpv or page.names)[0]
what = f"{first}, {config_label({'layer': layer, 'pooling': 'avg', 'reduction': 'npca', 'ratio': 0.5, 'estimator': 'mvg'})}"
glue_text("main_what", what)
glue("fig_hist", score_histogram(labels[first], main_scores[first]), display=False)
glue("fig_roc", roc_figure(labels[first], main_scores[first], name=what), display=False)

# %% [markdown]
# ```{glue:md} csv_link
# :format: myst
# ```
#
# ```{glue:figure} fig_hist
# :name: fig-datasets-hist
#
# Scores of the good (blue) and defective (red) test images of {glue:text}`main_what`. **Look at** the
# overlap, the only region that costs AUROC.
# ```
#
# ```{glue:figure} fig_roc
# :name: fig-datasets-roc
#
# The ROC curve of the same scores. **Look at** the low false-positive end: how many defects are caught
# before the first good image is flagged.
# ```

# %% tags=["remove-cell"]
by_pair = comparisons.set_index(["dataset", "a", "b"])
paper_gain = paper2.loc[("npca", 0.5)] - paper2.loc["none"].iloc[0]
depth, npca_lines, est_lines = [], [], []
for name in page.names:
    top = layer_name(best[name])
    parts = [f"against {r.b}: {r.verdict} ({ci_text(r['diff'], r.ci_low, r.ci_high)})"
             for _, r in comparisons[(comparisons.dataset == name) & (comparisons.a == top)].iterrows()]
    depth.append(f"- **{name}**: the highest AUROC is at {top} "
                 f"({format_value(table3.loc[name, best[name]], 'auroc')})"
                 + ("; " + ", ".join(parts) if parts else "") + ".")
    r = by_pair.loc[name, f"MVG, {npca}", f"MVG, {none_}"]
    q = by_pair.loc[name, f"MVG, {npca}", f"MVG, {pca}"]
    npca_lines.append(f"- **{name}**: NPCA 50 % against no reduction is {r.verdict}, and "
                      f"{gain_statement((r.ci_low, r.ci_high), paper_gain, level=r.level)}; against PCA 50 % it is "
                      f"{q.verdict} ({BOOK_FAMILY.describe()}).")
    e = by_pair.loc[name, f"MVG, {npca}", f"1-NN, {npca}"]
    est_lines.append(f"{name} {e.verdict} ({ci_text(e['diff'], e.ci_low, e.ci_high)})")
glue_text("depth_lines", "\n".join(depth))
glue_text("npca_lines", "\n".join(npca_lines))
glue_text("est_line", "; ".join(est_lines))
glue_value("paper_gain", paper_gain, "diff")
glue_text("layer", str(layer))
spread = defects.groupby("dataset").auroc.agg(["min", "max"])
mixed = spread.index[spread["min"] < spread["max"]]  # several types that score differently
hard = defects.loc[defects[defects.dataset.isin(mixed)].groupby("dataset").auroc.idxmin()]
glue_text("hardest", "; ".join(f"{r.dataset}: {r.defect} ({r.interval})" for r in hard.itertuples())
          or "no data set here has defect types that score differently")

# %% [markdown]
# ## What this shows
#
# **Depth.** Per data set, the best layer of the first table and its comparisons with other layers:
#
# ```{glue:md} depth_lines
# :format: myst
# ```
#
# A verdict "higher" against layer 1 says that the best layer beats the shallowest one on that data set,
# not that AUROC rises with every layer: the figure shows where each curve climbs, where it is flat within
# its intervals, and where the shallow layers fall below chance.
#
# **NPCA.** The paper's table 2 gain of NPCA 50 % over no reduction is {glue:text}`paper_gain` (mean over its
# 15 classes). Per data set here, at layer {glue:text}`layer` with MVG:
#
# ```{glue:md} npca_lines
# :format: myst
# ```
#
# **The estimator.** MVG against 1-NN at NPCA 50 %: {glue:text}`est_line`.
#
# **Defect types.** The lowest per-type AUROC of each data set whose defect types score differently:
# {glue:text}`hardest`. Types with few images have wide intervals; read them as ranges, not ranks.
#
# ## Your own images
#
# Everything on this page runs on any folder in the MVTec AD layout:
#
# ```
# DIR/NAME/train/good/*.png            good images only (any size, colour or grey)
# DIR/NAME/test/good/*.png             good test images
# DIR/NAME/test/<defect type>/*.png    anomalous test images, one folder per defect type
# DIR/NAME/ground_truth/<defect type>/*_mask.png   optional, for the anomaly maps of 09_maps
# ```
#
# `python scripts/build_book.py --only 10_datasets -p data_root DIR -p classes "[NAME]" -p elpv_classes "[]"`
# runs this page on it; `tad layers --data DIR --category NAME` prints the first table for one class.
#
# ## Try it
#
# 1. Both ELPV cell types (polycrystalline cells take a few minutes to extract once):
#    `.venv/bin/python scripts/build_book.py --only 10_datasets -p elpv_classes '[elpv_mono, elpv_poly]'`.
#    Look at whether the two cell types agree on the best layer and on the NPCA verdict.
# 2. Another layer for the reduction comparison: `... --only 10_datasets -p layer 5`. Look at whether the
#    NPCA verdicts change where the features are less object-like.

# %% tags=["remove-cell"]
from tad.book import teach

target = (elpv or page.names)[0]
row = by_layer[(by_layer.dataset == target) & (by_layer.layer.astype(str) == best[target])].iloc[0]
recipe = ["last layer vs layer 1", "NPCA 50 % vs no reduction", "MVG vs 1-NN"]  # the recipe's three parts
answers = []
for d in elpv:  # the page's answer, each number read from the page's CSV
    parts = [f"{name}: {glue_csv(page, f'head_verdict_{d}_{i}', 'verdict', kind='text', dataset=d, claim=name)}, "
             f"{glue_csv(page, f'head_diff_{d}_{i}', 'diff', kind='diff', dataset=d, claim=name)} "
             f"[{glue_csv(page, f'head_low_{d}_{i}', 'ci_low', kind='diff', dataset=d, claim=name)}, "
             f"{glue_csv(page, f'head_high_{d}_{i}', 'ci_high', kind='diff', dataset=d, claim=name)}] "
             f"({glue_csv(page, f'head_outcome_{d}_{i}', 'outcome', kind='text', dataset=d, claim=name)})"
             for i, name in enumerate(recipe)]
    n = glue_csv(page, f"n_replicated_{d}", "outcome", "count", "count", dataset=d, outcome="replicated")
    answers.append(f"On {d}, {n} of the paper's "
                   f"{glue_csv(page, f'n_claims_{d}', 'claim', 'count', 'count', dataset=d, family='book')} claims "
                   f"tested here replicate{'s' * (n == '1')}; {'; '.join(parts)}")
head = (". ".join(answers)
        + f" (differences with their {format_value(BOOK_FAMILY.level, 'percent')} intervals, in the book's headline "
        "family)" if answers else
        "No solar-cell data set ran here (parameter `elpv_classes`), so whether the recipe transfers is not tested")
glue_text("takeaways", teach.takeaways([
    head,
    teach.auroc_sentence(f"On {target}, its best layer ({layer_name(best[target])}, 1-NN, NPCA 50 %)", row.auroc,
                         row.ci_low, row.ci_high),
    teach.tally_sentence(list(comparisons.verdict), what="depth, reduction and estimator, per data set",
                         higher="with the first-named higher", lower="lower"),
    teach.extremes_sentence({f"{r.dataset}: {r.defect}": r.auroc for r in defects.itertuples()},
                            what="the per-defect-type AUROC")]))
r = by_pair.loc[target, f"MVG, {npca}", f"MVG, {none_}"]
glue_text("ex_npca", f"On {target}: " + teach.comparison_sentence("NPCA 50 %", "no reduction", r["diff"], r.ci_low,
                                                                  r.ci_high, r.verdict))
worst = defects.loc[defects.auroc.idxmin()]
glue_text("ex_defect", teach.auroc_sentence(f"The hardest defect type, {worst.defect} of {worst.dataset} "
                                            f"({worst.n_defective} images),", worst.auroc, worst.ci_low,
                                            worst.ci_high))

# %% [markdown]
# ## Exercises
#
# **1. Does NPCA transfer?** On the first solar-cell data set (or the first data set when there is no ELPV),
# is NPCA 50 % better than no reduction with MVG?
#
# ```{dropdown} Solution
# Read that data set's row "MVG, NPCA 50 %" against "MVG, no reduction" in the comparisons table.
# {glue:md}`ex_npca:myst` If it is within noise, the data neither confirm nor refute the paper's gain on this
# data set; the interval says how large a gain remains possible.
# ```
#
# **2. The hardest defect type.** Which defect type scores lowest, and how much can one trust that figure?
#
# ```{dropdown} Solution
# Sort the per-defect table by AUROC. {glue:md}`ex_defect:myst` With few images of a type its interval is
# wide: a low figure there is a hint for where to look, not a ranking.
# ```
#
# **3. The other cell type.** Rerun with `-p elpv_classes '[elpv_mono, elpv_poly]'`. Predict whether the two
# cell types agree on the best layer.
#
# ```{dropdown} Solution
# Polycrystalline cells have a grain texture that varies from cell to cell, so a good cell already looks
# "unusual" to shallow, texture-sensitive layers; expect the deep layers to matter more for poly than for mono
# cells, and wider intervals where the texture hides small cracks.
# ```
