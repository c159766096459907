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
from tad.page import auroc_entry, format_value, glue_csv, glue_text, glue_value, open_page, save_csv, show_table
from tad.plots import roc_figure, score_histogram
from tad.stats import compare_pairs
from tad.words import verdict_list

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
# Each baseline's image {term}`AUROC` per data set, with its 95 % interval from `tad.stats.auroc_ci` (a
# score interval: a percentile bootstrap collapses to a point at AUROC 1, this one stays open), and the
# comparison with the main configuration: DeLong's test of the paired difference on the same test images,
# Holm-corrected over the baselines of a data set, worded "higher" or "lower" only when the test and the
# simultaneous interval of the difference agree (`tad.stats.compare_pairs`).

# %% tags=["hide-input"]
rows, comparisons = [], []
for split in page.splits:
    s, labels = scores[split.name], split.test_labels
    others = [m for m in s if m != "main"]
    cmp = compare_pairs(labels, s, [(m, "main") for m in others], alpha=alpha).set_index("a")
    for m, v in s.items():
        rows.append({"dataset": split.name, "baseline": m, "k": kept[split.name].get(m),
                     **auroc_entry(labels, v),
                     "minus main": cmp.loc[m, "diff"] if m != "main" else 0.0,
                     "vs main": cmp.loc[m, "verdict"] if m != "main" else "",
                     "p (Holm)": cmp.loc[m, "p_holm"] if m != "main" else float("nan")})
    comparisons.append(cmp.assign(dataset=split.name))
table = pd.DataFrame(rows).astype({"k": "Int64"})  # k only for DFM and SPE
glue_text("csv_link", save_csv(table, page))
wide = table.pivot(index="baseline", columns="dataset", values="interval").reindex(list(scores[page.names[0]]))
wide

# %% [markdown]
# Every comparison, with the difference, its simultaneous interval and the Holm-adjusted p-value; sort or
# filter it, or download all results: {glue:md}`csv_link:myst` The column k gives the principal axes that
# DFM and SPE keep on each data set.

# %% tags=["hide-input"]
show_table(table[["dataset", "baseline", "k", "auroc", "minus main", "p (Holm)", "vs main"]].round(3))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 0.6 + 0.35 * len(table)))
order = table.iloc[::-1].reset_index(drop=True)
ax.errorbar(order.auroc, order.index, xerr=[order.auroc - order.ci_low, order.ci_high - order.auroc], fmt="o",
            capsize=2, color="tab:blue")
ax.set_yticks(order.index, [f"{d}: {b}" for d, b in zip(order.dataset, order.baseline)], fontsize=8)
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
cmp_all = pd.concat(comparisons).reset_index()
glue_value("n_cmp", len(cmp_all), "count")
for word in ("higher", "lower", "within noise"):
    glue_csv(page, f"n_{word.replace(' ', '_')}", "baseline", "count", "count", **{"vs main": word})
below = table[table.ci_high < 0.5]
glue_text("below_chance", ("Some scorings rank good images above defective ones beyond noise (their interval lies "
                           "below chance): "
                           + "; ".join(f"{r.baseline} on {r.dataset} ({format_value(r.auroc, 'auroc')})"
                                       for r in below.itertuples())
                           + ". A score below chance is a signal in the wrong direction: something other than the "
                           "defect separates the good test images from the training images, such as the "
                           "acquisition shift of screw's good test images (darker than the training images) that "
                           "the data page measures.")
          if len(below) else "No scoring's interval lies entirely below chance.")

verdicts = {name: verdict_list((r.dataset, r["vs main"], r["minus main"])
                               for _, r in table[table.baseline == name].iterrows())
            for name in table.baseline.unique() if name != "main"}
for name, key in (("random network", "v_random"), ("pixels", "v_pixels"), ("pre-logits", "v_pre_logits"),
                  ("max-softmax", "v_max_softmax"), ("DFM 95 %", "v_dfm95"), ("DFM 99 %", "v_dfm99"),
                  ("SPE (full-rank residual)", "v_spe"), ("fusion (Rippel)", "v_fusion"),
                  ("concatenation", "v_concatenation")):
    glue_text(key, verdicts[name])
for name, key in (("DFM 95 %", "k_dfm95"), ("DFM 99 %", "k_dfm99"), ("SPE (full-rank residual)", "k_spe")):
    glue_text(key, ", ".join(f"{d} {k[name]}" for d, k in kept.items()))

# %% [markdown]
# ## What this shows
#
# Over the {glue:text}`n_sets` data set(s) of this run the main configuration reaches {glue:text}`main_range`.
# Of the {glue:text}`n_cmp` comparisons with it, {glue:text}`n_higher` baseline(s) score higher,
# {glue:text}`n_lower` lower and {glue:text}`n_within_noise` are within noise (Holm, family-wise error
# rate per data set as set by `alpha`). Against the main configuration, per data set:
#
# - random network: {glue:text}`v_random`
# - raw pixels: {glue:text}`v_pixels`
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
from tad import teach

rand = table[table.baseline == "random network"].set_index("dataset")
glue_text("takeaways", teach.takeaways([
    teach.tally_sentence(list(cmp_all.verdict), what="each baseline against the main configuration, per data set",
                         higher="with the baseline higher", lower="with the main configuration higher"),
    teach.extremes_sentence(main_rows.auroc.to_dict(), what="the main configuration's AUROC"),
    f"Scorings whose whole interval lies below chance: {len(below)}"
    + (f" ({', '.join(f'{r.baseline} on {r.dataset}' for r in below.itertuples())})" if len(below) else "")]))
gaps = (main_rows.auroc - rand.auroc).reindex(main_rows.index)
glue_text("ex_random", teach.extremes_sentence(gaps.to_dict(), what="what pretraining adds over the random "
                                               "network (main minus random network)", kind="diff")
          + " " + f"The random network's own verdicts: {verdicts['random network']}.")
best_base = table[table.baseline != "main"].groupby("baseline").auroc.mean()
glue_text("ex_best", f"The best baseline on average is {best_base.idxmax()} "
          f"({format_value(best_base.max(), 'auroc')}), against the main configuration's "
          f"{format_value(main_rows.auroc.mean(), 'auroc')}: per data set, {verdicts[best_base.idxmax()]}.")

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
