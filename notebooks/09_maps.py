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
# # Where is the defect? Anomaly maps from transferred features (beyond the paper)
#
# Ono & Mori score whole images and leave localisation to later work:
#
# > "As future work, we will address segmentation of anomalous regions by transfer learning, analysis of the
# > extracted features and how they work, and verification on data sets other than MVTec." (section 4, our
# > translation; the paper has no table for it.)
#
# This page takes that step with the book's own ingredients, as PaDiM (the paper's reference [1]) does: the
# activations of two mid-level layers kept per position, NPCA and a Gaussian ({term}`MVG`) fitted *at each
# position* of the feature grid on the good training images, and the {term}`Mahalanobis distance` of every
# test patch as its anomaly score, upsampled and smoothed into a map the size of the image.

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
layers = [3, 4]                     # layers kept per position (deeper maps resized to the finest grid)
reduction = "npca"                  # per-position reduction: "npca", "pca" or "none"
ratio = 0.5
estimator = "mvg"                   # tad.maps.PATCH_ESTIMATORS: "mvg" (a Gaussian per position) or patch "knn1" etc.
shared = False                      # True: one model for all positions (knn1: PatchCore without coreset, needs a GPU)
compare_none = True                 # also run with no reduction (same maps, no NPCA) for comparison
resolution = 256                    # side of the evaluation grid, px
sigma = 4                           # Gaussian smoothing of the maps, px of the evaluation grid
pooled_layer = 7                    # the image-level baseline: this layer, avg pooling, same reduction, MVG
device = "cpu"
cache_dir = None                    # None means $TAD_CACHE (the library's default)
results = None                      # None means results.jsonl in the cache
seed = 0

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from matplotlib_inline.backend_inline import set_matplotlib_formats
from myst_nb import glue

from tad.features import select
from tad.maps import PATCH_ESTIMATORS, evaluate_maps
from tad.page import (auroc_entry, ci_text, config_label, format_value, glue_text, keep_needed, open_page, save_csv,
                      show_table)
from tad.plots import map_examples, roc_figure, score_histogram
from tad.stats import auroc_ci, compare_pairs
from tad.sweep import score, split_features

set_matplotlib_formats("png")  # glue needs a PNG of tad.plots' figures before pyplot has drawn any
if estimator not in PATCH_ESTIMATORS:  # fail before extracting anything
    raise ValueError(f"estimator {estimator!r} not in {PATCH_ESTIMATORS}")
page = open_page("09_maps", data_root=data_root, classes=classes, backbone=backbone, input_size=input_size,
                 seed=seed, cache_dir=cache_dir, results=results)
mapped, missing = keep_needed(page.splits, ["masks"])
print(missing or f"Every data set here has ground-truth masks: {', '.join(s.name for s in mapped)}.")
main = (reduction, None if reduction == "none" else ratio)
variants = [main] + ([("none", None)] if compare_none and reduction != "none" else [])
names = {v: config_label({"reduction": v[0], "ratio": v[1]}, parts=("reduction",)) for v in variants}
glue_text("missing", missing or "Every data set of this run has ground-truth masks, so every one is mapped.")
_ = glue_text("setup", f"layers {', '.join(map(str, layers))} of {page.backbone.name}, {names[main]}, "
          f"{estimator}{' shared over positions' if shared else ' per position'}")

# %% [markdown]
# Anomaly maps need ground-truth masks to be scored. {glue:text}`missing`
#
# ## Maps, scored against the ground truth
#
# For every data set with masks, the anomaly map of each test image ({glue:text}`setup`), then
#
# - **pixel {term}`AUROC`**: ROC AUC over the pooled pixels of all test images (good images count as
#   all-normal masks), the usual MVTec localisation metric;
# - **{term}`PRO`** (per-region overlap): the mean share of each connected defect region flagged, against
#   the false-positive rate on normal pixels, integrated from 0 to 30 % false positives and normalised (1 is perfect). A large
#   defect cannot hide a missed small one, as it can in pixel AUROC;
# - **image AUROC from the map**: each image scored by the maximum of its map, with a 95 % interval
#   (`tad.stats.auroc_ci`, which stays open at AUROC 1 where a percentile bootstrap collapses to a point).
#
# Neighbouring pixels share features and smoothing, so the pixel metrics get no interval: read small
# differences between rows as noise.

# %% tags=["hide-input"]
runs, rows = {}, []
for split in mapped:
    for method, r in variants:
        res = evaluate_maps(split, page.backbone, layers=layers, input_size=input_size, estimator=estimator,
                            reduction=method, ratio=r, shared=shared, resolution=resolution, sigma=sigma,
                            cache_dir=page.cache_dir, device=device)
        peak = res["maps"].max(axis=(1, 2))
        low, high = auroc_ci(res["labels"], peak)
        rows.append({"dataset": split.name, "reduction": names[method, r], "pixel AUROC": res["pixel_auroc"],
                     "PRO (FPR 0.3)": res["pro"], "image AUROC (map max)": res["image_auroc_from_map"],
                     "ci_low": low, "ci_high": high, "seconds": res["seconds"]})
        if (method, r) == main:
            runs[split.name] = res
maps_table = pd.DataFrame(rows, columns=["dataset", "reduction", "pixel AUROC", "PRO (FPR 0.3)",
                                         "image AUROC (map max)", "ci_low", "ci_high", "seconds"])
maps_table.set_index(["dataset", "reduction"]).round(3) if runs else print("No maps: " + missing)

# %% [markdown]
# ## The map's maximum against the pooled vector, at image level
#
# Does localising help detection? The same test images scored by the book's image-level pipeline: layer
# `pooled_layer` average-pooled to one vector, the same reduction, MVG. The two scorings of each data set are
# compared by a {term}`paired comparison` (DeLong's test, with an interval of the difference that stays open
# at AUROC 1), one test per data set. Without masks there are no maps, and this table shows the pooled
# image-level result alone.

# %% tags=["hide-input"]
rows, scores = [], {}
for split in page.splits:
    train, test = split_features(split, page.backbone, input_size=input_size, cache_dir=page.cache_dir,
                                 device=device, progress=False)
    pooled = score(select(train, pooled_layer, "avg", page.backbone),
                   select(test, pooled_layer, "avg", page.backbone), *main, "mvg", seed=seed)
    labels = split.test_labels
    row = {"dataset": split.name, "pooled": auroc_entry(labels, pooled)["interval"]}
    scores[split.name] = {"pooled": pooled}
    if split.name in runs:
        peak = runs[split.name]["maps"].max(axis=(1, 2))
        scores[split.name]["map max"] = peak
        test_ = compare_pairs(labels, scores[split.name], [("map max", "pooled")]).iloc[0]
        row |= {"map max": auroc_entry(labels, peak)["interval"],
                "map max - pooled": ci_text(test_["diff"], test_.ci_low, test_.ci_high), "p": test_.p,
                "verdict": test_.verdict}
    rows.append(row)
image_table = pd.DataFrame(rows).set_index("dataset")
csv = maps_table.merge(image_table.reset_index(), on="dataset", how="outer")
glue_text("csv_link", save_csv(csv, page))
show_table(image_table)

# %% [markdown]
# ```{glue:md} csv_link
# :format: myst
# ```

# %% tags=["remove-cell"]
first = page.splits[0]
main_scores = scores[first.name]["map max" if first.name in runs else "pooled"]
what = (f"{first.name}, image score = maximum of its anomaly map" if first.name in runs
        else f"{first.name}, layer {pooled_layer} pooled, {names[main]}, MVG")
glue_text("main_what", what)
glue("fig_hist", score_histogram(first.test_labels, main_scores), display=False)
glue("fig_roc", roc_figure(first.test_labels, main_scores, name=what), display=False)

# %% [markdown]
# ```{glue:figure} fig_hist
# :name: fig-maps-hist
#
# Scores of the good (blue) and defective (red) test images of {glue:text}`main_what`. **Look at** the
# overlap: only defective images that score below good ones cost AUROC.
# ```
#
# ```{glue:figure} fig_roc
# :name: fig-maps-roc
#
# The ROC curve of the same scores. **Look at** how far the curve bends towards the top-left corner away
# from the diagonal, a random ranking.
# ```

# %% [markdown]
# ## What the maps look like
#
# For each mapped data set, three test images: the good image whose map has the highest maximum (the
# nearest thing to a false alarm), and the defective images whose maps have the highest and the lowest
# maximum (the clearest and the hardest detection).

# %% tags=["hide-input"]
for name, res in runs.items():
    glue(f"fig_maps_{name}", map_examples(res), display=False)
figures = "\n\n".join(
    f"```{{glue:figure}} fig_maps_{name}\n:name: fig-maps-{name}\n\n{name}: **look at** whether the bright spots "
    f"of the last column fall inside the cyan outline of the defect. The colour scale runs from the median pixel "
    f"of the good test images (black) to their highest pixel (yellow), so yellow scores above everything seen on "
    f"a good image.\n```" for name in runs)
_ = glue_text("map_figures", figures or "No data set of this run has masks, so there are no maps to show.")

# %% [markdown]
# ```{glue:md} map_figures
# :format: myst
# ```

# %% tags=["remove-cell"]
if runs:
    ours = maps_table[maps_table.reduction == names[main]].set_index("dataset")
    verdicts = image_table["verdict"].dropna()
    if len(variants) > 1:
        wide = maps_table.pivot(index="dataset", columns="reduction",
                                values=["pixel AUROC", "PRO (FPR 0.3)", "image AUROC (map max)"])
        gaps = {m: (wide[m][names[main]] - wide[m]["no reduction"]).abs().max() for m in wide.columns.levels[0]}
        glue_text("none_sentence", f"Without the reduction, the largest per-class gap to {names[main]} is "
                  f"{format_value(gaps['pixel AUROC'], 'auroc')} in pixel AUROC and "
                  f"{format_value(gaps['PRO (FPR 0.3)'], 'auroc')} in PRO (first table; pixel metrics carry no "
                  f"interval here, so no verdict is drawn from these gaps).")
    else:
        glue_text("none_sentence", "")
    summary = (f"On the {format_value(len(ours), 'count')} data set(s) with masks the maps reach pixel AUROC "
               f"{format_value(ours['pixel AUROC'].min(), 'auroc')} to {format_value(ours['pixel AUROC'].max(), 'auroc')} "
               f"and PRO {format_value(ours['PRO (FPR 0.3)'].min(), 'auroc')} to "
               f"{format_value(ours['PRO (FPR 0.3)'].max(), 'auroc')}; PRO is the lower of the two on "
               f"{format_value(int((ours['PRO (FPR 0.3)'] < ours['pixel AUROC']).sum()), 'count')} of them, as "
               f"expected when small defect regions, a few cells of the feature grid blurred by upsampling, count "
               f"as much as large ones. At image level the map's maximum against the pooled layer "
               f"{pooled_layer} vector reads, per data set (DeLong, 5 % each): "
               f"{'; '.join(f'{d} {v}' for d, v in verdicts.items())}.")
else:
    summary = (f"This run has no data set with ground-truth masks, so it shows the pooled image-level scores "
               f"only: layer {pooled_layer}, {names[main]}, MVG reaches "
               + "; ".join(f"{d} {r['pooled']}" for d, r in image_table.iterrows()) + ". Put an MVTec AD class "
               f"under the data root to see the maps.")
    glue_text("none_sentence", "")
glue_text("summary", summary)

# %% [markdown]
# ## What this shows
#
# {glue:md}`summary:myst` {glue:md}`none_sentence:myst`
#
# Two things the figures show that the metrics hide. A high image score is not always a found defect: the
# hottest spot of a defective image can lie away from the marked region. And squared Mahalanobis distances
# span orders of magnitude where the good training images barely vary (a near-singular covariance at that
# position); AUROC and PRO depend only on the ranking of scores, so such extremes leave them untouched, but
# they would matter for a fixed threshold.
#
# ## Try it
#
# 1. The PatchCore-style alternative, the nearest training patch from any position (`shared`), on a GPU:
#    `.venv/bin/python scripts/build_book.py --only 09_maps -p estimator knn1 -p shared true -p device cuda`.
#    Look at whether PRO moves more than pixel AUROC, and at the good image with the highest maximum.
# 2. Deeper, coarser features: `.venv/bin/python scripts/build_book.py --only 09_maps -p layers '[4, 5]'`.
#    Look at the smallest defects in the figures: a coarser grid blurs them, and PRO should fall first.

# %% tags=["remove-cell"]
from tad import teach

if runs:
    points = [teach.extremes_sentence(ours["pixel AUROC"].to_dict(), what="the maps' pixel AUROC"),
              teach.extremes_sentence(ours["PRO (FPR 0.3)"].to_dict(), what="their PRO (up to a false-positive "
                                      "rate of 0.3)"),
              teach.tally_sentence(list(verdicts), what="the map's maximum against the pooled vector, per data set",
                                   higher="with the map higher", lower="with the pooled vector higher")]
    row = ours.loc[ours["PRO (FPR 0.3)"].idxmin()]
    glue_text("ex_pro", f"The lowest PRO is {row.name}'s, {format_value(row['PRO (FPR 0.3)'], 'auroc')}, "
              f"against its pixel AUROC {format_value(row['pixel AUROC'], 'auroc')}.")
    peak_rows = ours[["image AUROC (map max)", "ci_low", "ci_high"]]
    glue_text("ex_image", " ".join(teach.auroc_sentence(f"On {d}, the map's maximum", r["image AUROC (map max)"],
                                                        r.ci_low, r.ci_high) for d, r in peak_rows.iterrows()))
else:
    points = ["No data set of this run has ground-truth masks, so no map is scored: the page shows the pooled "
              "image-level result alone"]
    glue_text("ex_pro", "This run has no masks, so there is no PRO to read.")
    glue_text("ex_image", "This run has no masks, so no map was made.")
glue_text("takeaways", teach.takeaways(points))

# %% [markdown]
# ## Exercises
#
# **1. PRO against pixel AUROC.** Which data set has the lowest PRO, and why is PRO usually the lower of the
# two?
#
# ```{dropdown} Solution
# {glue:md}`ex_pro:myst` Pixel AUROC counts pixels, so large defects dominate it; {term}`PRO` averages over
# defect regions, so a small defect that the coarse feature grid blurs away costs as much as a large one
# found. A map that finds the big defects and misses the small ones has a high pixel AUROC and a lower PRO.
# ```
#
# **2. Does the map detect, too?** Is the maximum of each map above chance as an image score?
#
# ```{dropdown} Solution
# Read the image AUROC of the map's maximum with its interval. {glue:md}`ex_image:myst` A map can localise
# well and still detect worse than the pooled vector: its maximum reacts to a single odd position of a good
# image.
# ```
#
# **3. Coarser features.** Rerun with `-p layers '[4, 5]'`. Which metric should fall first?
#
# ```{dropdown} Solution
# Deeper layers have fewer positions, so each cell of the map covers more of the image. Small defects
# shrink to a fraction of a cell and are blurred by the upsampling: PRO, which weighs every defect region
# equally, should fall before the pixel AUROC does.
# ```
