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
# # How much do the pretrained features add over simple baselines?
#
# Ono & Mori compare their configurations with one another, not with baselines: every score in their
# tables comes from ImageNet features of EfficientNet-B5.
#
# > "the features of ENB5's layer 7 [perform best]" (section 3.2, table 3, our translation)
#
# A reader who knows the field asks what part of that is the pretrained network's. This page scores the
# same test images with the book's main configuration and with baselines that remove one ingredient at a
# time: the training (a randomly initialised network, same layers), the network (raw downsampled pixels),
# the anomaly model (the classifier's own pre-logit features and its confidence), and two published
# alternatives to the reduction and to the concatenation of layers (DFM's reconstruction error, Rippel et
# al.'s multi-level fusion), with the full-rank PCA residual (SPE) that NPCA's null space scores.

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
layer = 7                           # the main configuration: layer, pooling, reduction, estimator
pooling = "avg"
reduction, ratio = "npca", 0.5
estimator = "mvg"
pixel_size = 16                     # raw-pixel baseline: images downsampled to this side
device = "cpu"
cache_dir = None                    # None: the library's feature cache
results = None
alpha = 0.05                        # family-wise error rate of the comparisons, per data set
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd

from tad.backbones import load_backbone
from tad.baselines import baseline_scores
from tad.book.page import open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import auroc_entry, format_value, show_table
from tad.plots import roc_figure, score_histogram
from tad.stats import PERMUTATION, VERDICTS, Family, compare
from tad.book.words import verdict_list

page = open_page("07b_baselines", data_root=data_root, classes=classes, backbone=backbone, input_size=input_size,
                 seed=seed, cache_dir=cache_dir, results=results)
random_bb = load_backbone(backbone, weights="random")
print(f"Random baseline: {random_bb.name} with {random_bb.weights['source']} weights, same layers.")

# %% tags=["remove-cell"]
from matplotlib_inline.backend_inline import set_matplotlib_formats

set_matplotlib_formats("png")  # tad.plots' figures are built without pyplot: show them as PNG from the start

# %% [markdown]
# ## The baselines
#
# Each scores every test image of each data set, fitted on the good training images only (higher = more
# anomalous):
#
# - **main**: the page's configuration (layer, pooling, reduction and estimator of the parameters).
# - **random network**: the same configuration on a randomly initialised network of the same layers
#   (what the architecture alone gives, without ImageNet).
# - **pixels**: the same reduction and estimator on the raw image downsampled to a few pixels a side.
# - **pre-logits**: the same reduction and estimator on the classifier's pooled vector before its last
#   linear layer.
# - **max-softmax**: one minus the ImageNet classifier's top class probability (Hendrycks & Gimpel, 2017),
#   no fitting at all.
# - **DFM** (rows `DFM 95 %` and `DFM 99 %`): the feature-reconstruction error of DFM (Ahuja et al.,
#   2019): a PCA of the layer's good training features keeps the fewest leading axes k whose eigenvalues
#   sum to at least a share of the training variance (`variance=0.95` and `variance=0.99` of
#   `tad.baselines.Reconstruction`, the range DFM uses), and a test image scores the squared distance of
#   its feature to that k-dimensional subspace. The k of each data set is in the table's "k" column.
# - **SPE (full-rank residual)**: the same residual with every axis of non-zero training variance kept (k
#   the rank), i.e. the squared distance to the affine span of the training features, known in process
#   monitoring as the SPE or Q statistic. DFM never keeps that many axes; NPCA keeping more axes than the
#   null space scores mostly this (see the page on why NPCA works).
# - **fusion (Rippel)**: one {term}`MVG` per layer, without reduction, their squared {term}`Mahalanobis
#   distance`s summed (Rippel et al., 2020), beside **concatenation**: all layers in one vector, one MVG.

# %% tags=["hide-input"]
runs = {s.name: baseline_scores(s, page.backbone, random_bb, layer=layer, pooling=pooling, reduction=reduction,
                                ratio=ratio, estimator=estimator, pixel_size=pixel_size, input_size=input_size,
                                cache_dir=page.cache_dir, device=device, seed=seed) for s in page.splits}
scores = {name: s for name, (s, _) in runs.items()}
kept = {name: k for name, (_, k) in runs.items()}  # principal axes k of DFM and SPE, per data set

# %% [markdown]
# The baselines fall in two groups, and only the first can show what the pretrained features add:
#
# - **independent of the pretrained features**: the random network and the raw pixels. A gain of the main
#   configuration over them is what ImageNet features bring.
# - **other readings of the same pretrained features**: the pre-logits, the max-softmax, DFM, the SPE, the
#   fusion and the concatenation all read the same pretrained network. A comparison with them pits the
#   features against themselves (another layer, another anomaly model); a "higher" there says which reading
#   of the features is better, not that the features help, and it is never counted as a win for them.
#
# Each baseline's image {term}`AUROC` per data set, with its 95 % interval from `tad.stats.auroc_ci` (a
# score interval: a percentile bootstrap collapses to a point at AUROC 1, this one stays open), and its
# comparison with the main configuration on the same test images (`tad.stats.compare`: main minus baseline,
# a paired test and a simultaneous interval of the difference, "higher" or "lower" only when both agree).
# The comparisons of a data set form one declared family (one per baseline), each tested at the family's
# Bonferroni level. Where a scoring separates the images perfectly, DeLong's variance vanishes and its test
# says nothing, so `compare` decides by a paired permutation test instead, keeping the interval (which is
# then conservative, wider than the test); the column "method" says which.

# %% tags=["hide-input"]
INDEPENDENT = ("random network", "pixels")  # the baselines that do not read the pretrained network
baselines = [m for m in scores[page.names[0]] if m != "main"]
family = Family("each baseline against the main configuration (this page)", len(baselines), alpha)
rows = []
for split in page.splits:
    s, labels = scores[split.name], split.test_labels
    for m, v in s.items():
        row = {"dataset": split.name, "baseline": m,
               "group": "main" if m == "main" else "independent" if m in INDEPENDENT else "same features",
               "k": kept[split.name].get(m), **auroc_entry(labels, v)}
        if m != "main":
            c = compare(labels, s["main"], v, family=family)
            row |= {"main minus baseline": c.diff, "diff low": c.ci_low, "diff high": c.ci_high, "p": c.p,
                    "main vs baseline": c.verdict, "method": c.method}
        rows.append(row)
table = pd.DataFrame(rows).astype({"k": "Int64"})  # k only for DFM and SPE
glue_text("csv_link", save_csv(table, page))
glue_text("family", family.describe())
shown = table.assign(interval=[i if pd.isna(k) else f"{i}, k = {k}" for i, k in zip(table.interval, table.k)])
wide = shown.pivot(index="baseline", columns="dataset", values="interval").reindex(list(scores[page.names[0]]))
wide

# %% [markdown]
# The AUROC of each baseline with its 95 % interval; for DFM and the SPE, k is the number of principal axes
# kept on that data set ({glue:text}`family`).
#
# Every comparison, with the difference (main minus baseline), its simultaneous interval, the p-value, the
# verdict and the method; sort or filter it, or download all results: {glue:md}`csv_link:myst`

# %% tags=["hide-input"]
show_table(table[["dataset", "baseline", "group", "k", "auroc", "main minus baseline", "diff low", "diff high",
                  "p", "main vs baseline", "method"]].round(4))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 0.6 + 0.35 * len(table)))
order = table.iloc[::-1].reset_index(drop=True)
ax.errorbar(order.auroc, order.index, xerr=[order.auroc - order.ci_low, order.ci_high - order.auroc], fmt="o",
            capsize=2, color="tab:blue")
ax.set_yticks(order.index, [f"{d}: {b}" + ("" if pd.isna(k) else f" (k = {k})")
                            for d, b, k in zip(order.dataset, order.baseline, order.k)], fontsize=8)
ax.axvline(0.5, color="grey", ls=":", lw=1)
ax.set(xlabel="image AUROC (95 % interval)", xlim=(0, 1.02))
plt.show()

# %% [markdown]
# Each baseline's AUROC with its interval, data set by data set; the dotted line is chance. Look at the
# main configuration against the random network and the pixels: the distance between them, or its absence,
# is what ImageNet training and the network contribute on these data.

# %% tags=["hide-input"]
first = page.splits[0]
fig = score_histogram(first.test_labels, scores[first.name]["main"])
fig.axes[0].set_title(f"{first.name}: main configuration", fontsize=10)
display(fig)
display(roc_figure(first.test_labels, scores[first.name]["main"], name=f"{first.name}: main configuration"))

# %% [markdown]
# The main configuration's scores of good and defective test images of the first data set, and its ROC
# curve: where the two histograms overlap, no threshold separates them, and the curve leaves the top-left
# corner.

# %% tags=["remove-cell"]
main_rows = table[table.baseline == "main"].set_index("dataset")
glue_value("n_sets", len(page.splits), "count")
glue_text("main_range", ", ".join(f"{d} {format_value(a, 'auroc')}" for d, a in main_rows.auroc.items()))
n = {}
for group, key in (("independent", "ind"), ("same features", "same")):
    n[key] = glue_csv(page, f"n_{key}", "baseline", "count", "count", group=group)
    for word in VERDICTS:
        n[key, word] = glue_csv(page, f"n_{key}_{word.replace(' ', '_')}", "baseline", "count", "count",
                                group=group, **{"main vs baseline": word})
fallback = table[table.method == PERMUTATION].groupby("dataset", sort=False).size()
glue_text("fallback", ("Where a scoring separates the test images perfectly DeLong's variance is 0, so the verdict "
                       "rests on the paired permutation test (the interval stays the conservative MOVER one): "
                       + "; ".join(f"{d}, {k} of the {len(baselines)} comparisons" for d, k in fallback.items())
                       + ".") if len(fallback) else
          "No scoring separates the test images perfectly in this run: every verdict rests on DeLong's test.")
below = table[table.ci_high < 0.5]
glue_text("below_chance", ("Some scorings rank good images above defective ones beyond noise (their interval lies "
                           "below chance): "
                           + "; ".join(f"{r.baseline} on {r.dataset} ({format_value(r.auroc, 'auroc')})"
                                       for r in below.itertuples())
                           + ". A score below chance is a signal in the wrong direction: something other than the "
                           "defect separates the good test images from the training images, such as an "
                           "acquisition shift (the data page tests every class for one; screw's good test images "
                           "are darker than its training images).")
          if len(below) else "No scoring's interval lies entirely below chance.")

by_test = {PERMUTATION: " by the permutation test"}  # a verdict decided where DeLong degenerates says so
verdicts = {name: verdict_list((r.dataset, r["main vs baseline"] + by_test.get(r.method, ""), r["main minus baseline"])
                               for _, r in table[table.baseline == name].iterrows())
            for name in baselines}
for name, key in (("random network", "v_random"), ("pixels", "v_pixels"), ("pre-logits", "v_pre_logits"),
                  ("max-softmax", "v_max_softmax"), ("DFM 95 %", "v_dfm95"), ("DFM 99 %", "v_dfm99"),
                  ("SPE (full-rank residual)", "v_spe"), ("fusion (Rippel)", "v_fusion"),
                  ("concatenation", "v_concatenation")):
    glue_text(key, verdicts[name])

# Where raw pixels match or beat the main configuration: the main configuration is not higher beyond noise.
pixels = f"raw {pixel_size}×{pixel_size} pixels"
matched = []
for i, d in enumerate(page.names):
    word = table.set_index(["dataset", "baseline"]).loc[(d, "pixels"), "main vs baseline"]
    if word != "higher":
        matched.append(f"{d} ({glue_csv(page, f'pixels_auroc_{i}', 'auroc', dataset=d, baseline='pixels')} against "
                       f"{glue_csv(page, f'main_auroc_{i}', 'auroc', dataset=d, baseline='main')}, "
                       + ("within noise" if word == "within noise" else "pixels higher beyond noise") + ")")
pixels_match = (f"{pixels[:1].upper()}{pixels[1:]} match or beat the main configuration on {' and '.join(matched)}: "
                "there the pretrained features add nothing these test images can resolve over downsampled pixels"
                if matched else f"The main configuration scores higher than {pixels} beyond noise on every data set "
                "of this run")
glue_text("pixels_match", pixels_match + ".")
for name, key in (("DFM 95 %", "k_dfm95"), ("DFM 99 %", "k_dfm99"), ("SPE (full-rank residual)", "k_spe")):
    glue_text(key, ", ".join(f"{d} {k[name]}" for d, k in kept.items()))

# %% [markdown]
# ## What this shows
#
# Over the {glue:text}`n_sets` data set(s) of this run the main configuration reaches {glue:text}`main_range`.
# Each verdict below is the main configuration against a baseline ("higher": the main configuration scores
# higher beyond noise), one comparison of the page's family ({glue:text}`family`).
# {glue:md}`fallback:myst`
#
# **What the pretrained features add**, against the baselines independent of them: of {glue:text}`n_ind`
# comparisons, the main configuration is higher in {glue:text}`n_ind_higher`, lower in
# {glue:text}`n_ind_lower` and within noise in {glue:text}`n_ind_within_noise`.
#
# - random network: {glue:text}`v_random`
# - raw pixels: {glue:text}`v_pixels`
#
# {glue:md}`pixels_match:myst`
#
# **Other readings of the same pretrained features**, which compare the features with themselves and say
# nothing of what they add: of {glue:text}`n_same` comparisons, the main configuration is higher in
# {glue:text}`n_same_higher`, lower in {glue:text}`n_same_lower` and within noise in
# {glue:text}`n_same_within_noise`.
#
# - pre-logit features: {glue:text}`v_pre_logits`
# - max-softmax: {glue:text}`v_max_softmax`
# - DFM, `variance=0.95` (k per data set: {glue:text}`k_dfm95`): {glue:text}`v_dfm95`
# - DFM, `variance=0.99` (k: {glue:text}`k_dfm99`): {glue:text}`v_dfm99`
# - SPE, the full-rank residual (k, the rank: {glue:text}`k_spe`): {glue:text}`v_spe`
# - fusion (Rippel): {glue:text}`v_fusion`
# - concatenation of all layers: {glue:text}`v_concatenation`
#
# {glue:md}`below_chance:myst`
#
# "Within noise" says the test images cannot tell the two apart at this error rate; it does not say the two
# are equal. The fusion and the concatenation use every layer, so they compare with the main configuration's
# single layer, not with each other; the table above gives both side by side.
#
# ## The headroom: published methods
#
# Methods of the time after the paper read patches rather than pooled images, with larger backbones
# (Wide-ResNet-50) at higher resolution:
#
# > "On the challenging, widely used MVTec AD benchmark PatchCore achieves an image-level anomaly detection
# > AUROC score of up to 99.6%" (Roth et al., 2022, "Towards Total Recall in Industrial Anomaly Detection",
# > abstract; mean over the 15 classes)
#
# Per-class image AUROCs are in the PatchCore paper's supplementary tables and in PaDiM's (Defard et al.,
# 2021, "PaDiM: a Patch Distribution Modeling Framework for Anomaly Detection and Localization") results
# section; they are not copied here, so read them there for the classes of this run. The gap between them and
# the main row above is the headroom that patch-level features leave to the pooled vector of this study.
#
# ## Try it
#
# - The baselines at another layer, where the random network may come closer:
#   `.venv/bin/python scripts/build_book.py --only 07b_baselines -p layer 3`. Look at the "random network"
#   row: does the gap to the main configuration shrink at a shallow layer?
# - Coarser or finer pixels: `-p pixel_size 32`, and on screw alone `-p classes '[screw]'`: is raw
#   brightness enough to separate screw's good test images from the others?

# %% tags=["remove-cell"]
from tad.book import teach

added = []  # the honest headline: main minus each baseline independent of the pretrained features
for b, what in (("random network", "a random network of the same layers"), ("pixels", pixels)):
    per = []
    for i, d in enumerate(page.names):
        where, key = {"dataset": d, "baseline": b}, f"add_{b.split()[0]}_{i}"
        per.append(f"{d} {glue_csv(page, key, 'main minus baseline', kind='diff', **where)} "
                   f"[{glue_csv(page, key + '_low', 'diff low', kind='diff', **where)}, "
                   f"{glue_csv(page, key + '_high', 'diff high', kind='diff', **where)}] "
                   f"({glue_csv(page, key + '_verdict', 'main vs baseline', kind='text', **where)}"
                   + (", by the permutation test: the interval is conservative there)"
                      if table.set_index(["dataset", "baseline"]).loc[(d, b), "method"] == PERMUTATION else ")"))
    added.append(f"over {what} " + ", ".join(per))
same_higher = table[(table.group == "same features") & (table["main vs baseline"] == "higher")]
glue_text("takeaways", teach.takeaways([
    f"What the pretrained features add over the baselines independent of them (main minus baseline, "
    f"{format_value(family.level, 'percent')} simultaneous intervals): " + "; ".join(added)
    + f"; the main configuration is higher beyond noise in {n['ind', 'higher']} of these {n['ind']} comparisons "
    f"and lower in {n['ind', 'lower']}",
    pixels_match,
    f"The other readings of the same pretrained features (pre-logits, max-softmax, DFM, SPE, fusion, "
    f"concatenation) compare the features with themselves and count for neither side: of {n['same']} such "
    f"comparisons the main configuration is higher beyond noise in {n['same', 'higher']}"
    + (f" ({', '.join(f'{r.baseline} on {r.dataset}' for r in same_higher.itertuples())})" if len(same_higher) else "")
    + f", lower in {n['same', 'lower']} and within noise in {n['same', 'within noise']}",
    f"Scorings whose whole interval lies below chance: {len(below)}"
    + (f" ({', '.join(f'{r.baseline} on {r.dataset}' for r in below.itertuples())})" if len(below) else "")]))
rand = table[table.baseline == "random network"].set_index("dataset")
glue_text("ex_random", teach.extremes_sentence(rand["main minus baseline"].to_dict(), what="what pretraining adds "
                                               "over the random network (main minus random network)", kind="diff")
          + " " + f"The verdicts, main against the random network: {verdicts['random network']}.")
best_base = table[table.baseline != "main"].groupby("baseline").auroc.mean()
glue_text("ex_best", f"The best baseline on average is {best_base.idxmax()} "
          f"({format_value(best_base.max(), 'auroc')}, "
          f"{'independent of' if best_base.idxmax() in INDEPENDENT else 'another reading of'} the pretrained "
          f"features), against the main configuration's {format_value(main_rows.auroc.mean(), 'auroc')}: main "
          f"against it, per data set, {verdicts[best_base.idxmax()]}.")

# %% [markdown]
# ## Exercises
#
# **1. What does pretraining buy?** The random network has the same architecture as the main one but
# untrained weights. How much does pretraining add, per data set?
#
# ```{dropdown} Solution
# Subtract the random network's AUROC from the main configuration's, data set by data set.
# {glue:md}`ex_random:myst` Whatever a random network already reaches comes from the architecture (pooling
# of local filters) and the estimator, not from ImageNet.
# ```
#
# **2. The strongest rival.** Which baseline comes closest to the main configuration on average, and does it
# beat it anywhere beyond noise?
#
# ```{dropdown} Solution
# Average each baseline's AUROC over the data sets, then read its verdicts. {glue:md}`ex_best:myst` A mean
# hides the data sets: the verdicts per data set say where a difference is resolved.
# ```
#
# **3. A shallow layer.** Rerun with `-p layer 3`. Predict whether the random network comes closer.
#
# ```{dropdown} Solution
# Early layers hold edges and textures, which random filters also respond to, so the gap between random and
# pretrained weights usually shrinks at a shallow layer; the semantic content that pretraining adds sits in
# the deep layers. Compare the new "random network" verdicts with this run's in exercise 1.
# ```
