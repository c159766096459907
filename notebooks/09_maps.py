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
# This page first takes that step with the book's own ingredients, in PaDiM's manner (a Gaussian per
# position; PaDiM itself picks channels at random where this page uses NPCA): the
# activations of two mid-level layers kept per position, NPCA and a Gaussian ({term}`MVG`) fitted *at each
# position* of the feature grid on the good training images, and the {term}`Mahalanobis distance` of every
# test patch as its anomaly score, upsampled and smoothed into a map the size of the image. Then, on the very
# same features, the two patch-level methods a reader of the field would ask for, computed here: PaDiM (a
# Gaussian per position on every channel) and PatchCore (the nearest patch in a coreset of all training
# patches), each with image AUROC, pixel AUROC, PRO and its measured cost.

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
compare_none = False                # also run the per-position MVG with no reduction (PaDiM below is that model,
                                    # with the paper's epsilon * I in place of Ledoit-Wolf shrinkage)
resolution = 256                    # side of the evaluation grid, px
sigma = 4                           # Gaussian smoothing of the maps, px of the evaluation grid
pooled_layer = 7                    # the image-level baseline: this layer, avg pooling, same reduction, MVG
patch_methods = True                # also run PaDiM and PatchCore on the same maps
padim_epsilon = 0.01                # PaDiM: added to each position's covariance diagonal (the paper's value)
coreset_ratio = 0.01                # PatchCore: share of the training patches kept by the greedy coreset
projection_dim = 32                 # PatchCore: the coreset is chosen on a random projection to this many dims
neighbourhood = 3                   # PatchCore: side of the neighbourhood averaged into each patch
device = "cpu"
cache_dir = None                    # None means $TAD_CACHE (the library's default)
results = None                      # None means results.jsonl in the cache
seed = 0

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from matplotlib_inline.backend_inline import set_matplotlib_formats
from myst_nb import glue
from sklearn.pipeline import make_pipeline

from tad.cost import measure_cost
from tad.estimators import make_estimator
from tad.features import select
from tad.maps import PATCH_ESTIMATORS, evaluate_detector, evaluate_maps
from tad.book.page import keep_needed, open_page, save_csv
from tad.book.glue import glue_csv, glue_text
from tad.book.format import auroc_entry, ci_text, config_label, format_value, show_table
from tad.patch import PaDiM, PatchCore
from tad.plots import map_examples, roc_figure, score_histogram
from tad.reduce import Reducer
from tad.stats import Family, auroc_ci, compare
from tad.sweep import split_features

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
patchcore_name = f"PatchCore {format_value(coreset_ratio, 'percent')}"
estimator_name = config_label({"estimator": estimator}, parts=("estimator",))
map_name = f"maps, {names[main]}, {estimator_name}"
compared = [map_name] + (["PaDiM", patchcore_name] if patch_methods else [])
family = Family("each map-based image score against the pooled vector", len(compared))
glue_text("family", family.describe())
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
# differences between rows as noise. The last columns are the model's fit time and its scoring time per test
# image (`tad.cost.measure_cost`, on maps extracted beforehand); `seconds` is the whole run, metrics included.

# %% tags=["hide-input"]
runs, maps_results, rows = {}, {}, []
for split in mapped:
    for method, r in variants:
        res = evaluate_maps(split, page.backbone, layers=layers, input_size=input_size, estimator=estimator,
                            reduction=method, ratio=r, shared=shared, resolution=resolution, sigma=sigma,
                            cache_dir=page.cache_dir, device=device)
        peak = res["maps"].max(axis=(1, 2))
        low, high = auroc_ci(res["labels"], peak)
        rows.append({"dataset": split.name, "reduction": names[method, r], "pixel AUROC": res["pixel_auroc"],
                     "PRO (FPR 0.3)": res["pro"], "image AUROC (map max)": res["image_auroc_from_map"],
                     "ci_low": low, "ci_high": high, "seconds": res["seconds"], "fit s": res["fit_s"],
                     "score ms/image": res["score_ms_per_image"]})
        maps_results[split.name, (method, r)] = res
        if (method, r) == main:
            runs[split.name] = res
maps_table = pd.DataFrame(rows, columns=["dataset", "reduction", "pixel AUROC", "PRO (FPR 0.3)",
                                         "image AUROC (map max)", "ci_low", "ci_high", "seconds", "fit s",
                                         "score ms/image"])
maps_table.set_index(["dataset", "reduction"]).round(3) if runs else print("No maps: " + missing)

# %% [markdown]
# ## The map's maximum against the pooled vector, at image level
#
# Does localising help detection? The same test images scored by the book's image-level pipeline: layer
# set by the page's parameter `pooled_layer` (the last by default) average-pooled to one vector, the same
# reduction, MVG. The two scorings of each data set are
# compared by a {term}`paired comparison` (`tad.stats.compare`: DeLong's test, with an interval of the
# difference that stays open at AUROC 1) in the page's declared family, {glue:text}`family`: a "higher" or
# "lower" anywhere in it is false with probability at most the family's error rate. Without masks there are no
# maps, and this table shows the pooled image-level result alone.

# %% tags=["hide-input"]
rows, scores, pooled_cost = [], {}, {}
for split in page.splits:
    train, test = split_features(split, page.backbone, input_size=input_size, cache_dir=page.cache_dir,
                                 device=device, progress=False)
    X, Y = (select(f, pooled_layer, "avg", page.backbone) for f in (train, test))
    model = make_pipeline(Reducer(*main), make_estimator("mvg", seed=seed))
    scored = {}
    pooled_cost[split.name] = measure_cost(lambda: model.fit(X), lambda: scored.update(s=model.score_samples(Y)),
                                           len(Y))
    pooled = scored["s"]
    labels = split.test_labels
    row = {"dataset": split.name, "pooled": auroc_entry(labels, pooled)["interval"]}
    scores[split.name] = {"pooled": pooled}
    if split.name in runs:
        peak = runs[split.name]["maps"].max(axis=(1, 2))
        scores[split.name][map_name] = peak
        c = compare(labels, peak, pooled, family=family)
        row |= {"map max": auroc_entry(labels, peak)["interval"],
                "map max - pooled": ci_text(c.diff, c.ci_low, c.ci_high), "p": c.p, "verdict": c.verdict}
    rows.append(row)
image_table = pd.DataFrame(rows).set_index("dataset")
print(family.describe() if runs else "No maps, so nothing to compare with the pooled vector.")
show_table(image_table)

# %% [markdown]
# ## PaDiM and PatchCore on the same features
#
# Two patch-level methods of the field, run here on the same maps ({glue:text}`setup_patch`), evaluated
# as above:
#
# - **PaDiM** (Defard et al. 2021): a Gaussian per position on every channel, its covariance regularised by
#   adding {glue:text}`padim_epsilon` to the diagonal, and the Mahalanobis distance of each test patch;
# - **PatchCore** (Roth et al. 2022): each patch averaged with its {glue:text}`neighbourhood` neighbourhood
#   ("locally aware"), all training patches pooled into one memory bank, thinned to
#   {glue:text}`coreset_percent` of them by greedy k-center (chosen on a random projection to
#   {glue:text}`projection_dim` dimensions), and the distance of each test patch to its nearest bank patch.
#   The greedy search is sequential and costs one pass over all patches per kept patch, so this page keeps
#   the share its time budget allows, less than most of the PatchCore paper's settings (set `coreset_ratio`
#   to 1 for every patch: SPADE's patch-level nearest neighbour).
#
# An image's score is its largest patch score, as both papers do. The fit time includes PatchCore's coreset
# search; both times leave out the feature extraction, shared by every row and cached. The pooled row's
# times are the reduction and Gaussian on one vector per image. Each method's image AUROC is compared with
# the pooled vector's in the family declared above.

# %% tags=["hide-input"]
patch_runs = {}
for split in (mapped if patch_methods else []):
    for name, detector in (("PaDiM", PaDiM(epsilon=padim_epsilon)),
                           (patchcore_name, PatchCore(coreset_ratio, neighbourhood, projection_dim,
                                                      random_state=seed))):
        res = evaluate_detector(split, page.backbone, detector, layers=layers, input_size=input_size,
                                resolution=resolution, sigma=sigma, cache_dir=page.cache_dir, device=device)
        patch_runs[split.name, name] = res
        scores[split.name][name] = res["image_scores"]
rows = []
for split in page.splits:
    labels, name = split.test_labels, split.name
    entries = [(f"pooled, layer {pooled_layer}, {names[main]}, MVG", {"fit_s": pooled_cost[name]["fit_s"],
                "score_ms_per_image": pooled_cost[name]["score_ms_per_image"]}, scores[name]["pooled"])]
    entries += [(f"maps, {names[v]}, {estimator_name}", r, r["maps"].max(axis=(1, 2)))
                for v in variants for r in [maps_results.get((name, v))] if r is not None]
    entries += [(m, patch_runs[name, m], patch_runs[name, m]["image_scores"]) for m in compared[1:]
                if (name, m) in patch_runs]
    for method, res, s in entries:
        entry = auroc_entry(labels, s)
        row = {"dataset": name, "method": method, "image AUROC": entry["auroc"], "ci_low": entry["ci_low"],
               "ci_high": entry["ci_high"], "image AUROC [95 %]": entry["interval"],
               "pixel AUROC": res.get("pixel_auroc", np.nan), "PRO (FPR 0.3)": res.get("pro", np.nan),
               "fit s": res["fit_s"], "score ms/image": res["score_ms_per_image"]}
        if method in compared:
            c = compare(labels, s, scores[name]["pooled"], family=family)
            row |= {"- pooled": c.diff, "diff_low": c.ci_low, "diff_high": c.ci_high, "p": c.p,
                    "verdict": c.verdict}
        rows.append(row)
methods_table = pd.DataFrame(rows, columns=["dataset", "method", "image AUROC", "ci_low", "ci_high",
                                            "image AUROC [95 %]", "pixel AUROC", "PRO (FPR 0.3)", "fit s",
                                            "score ms/image", "- pooled", "diff_low", "diff_high", "p", "verdict"])
glue_text("csv_link", save_csv(methods_table, page))
glue_text("setup_patch", f"layers {', '.join(map(str, layers))} of {page.backbone.name}")
glue_text("padim_epsilon", f"{padim_epsilon:g}")
glue_text("neighbourhood", f"{neighbourhood} x {neighbourhood}")
glue_text("coreset_percent", format_value(coreset_ratio, "percent"))
glue_text("projection_dim", "no projection" if projection_dim is None else f"{projection_dim}")
shown = methods_table.assign(**{"- pooled": [ci_text(d, lo, hi) if d == d else "" for d, lo, hi in
                                             methods_table[["- pooled", "diff_low", "diff_high"]].values]})
print(family.describe() if runs else "No maps, so only the pooled row.")
show_table(shown.drop(columns=["image AUROC", "ci_low", "ci_high", "diff_low", "diff_high"])
           .set_index(["dataset", "method"]).round(3))

# %% [markdown]
# ```{glue:md} csv_link
# :format: myst
# ```

# %% tags=["hide-input"]
shown_run = min((r for (d, m), r in patch_runs.items() if m == patchcore_name), key=lambda r: r["pro"],
                default=None)
if shown_run is not None:
    glue("fig_patchcore", map_examples(shown_run), display=False)
    glue_text("patch_figure", f"```{{glue:figure}} fig_patchcore\n:name: fig-maps-patchcore\n\n"
              f"{shown_run['category']}, {patchcore_name}, the class where its PRO is lowest: the same three kinds "
              f"of test image as the per-position figures below, chosen by PatchCore's own maps. **Look at** "
              f"whether the bright spots of the last column sit on the cyan outline, and how sharp they are next "
              f"to the per-position model's.\n```")
else:
    glue_text("patch_figure", "This run has no data set with masks (or `patch_methods` is off), so there is no "
              "PatchCore map to show.")

# %% [markdown]
# ```{glue:md} patch_figure
# :format: myst
# ```

# %% tags=["remove-cell"]
first = page.splits[0]
main_scores = scores[first.name][map_name if first.name in runs else "pooled"]
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
               f"{pooled_layer} vector reads, per data set: {'; '.join(f'{d} {v}' for d, v in verdicts.items())} "
               f"({family.describe()}).")
    located = methods_table.dropna(subset=["PRO (FPR 0.3)"])
    by_method = located.groupby("method", sort=False)[["PRO (FPR 0.3)", "pixel AUROC"]].mean()
    spread = located.groupby("dataset")["PRO (FPR 0.3)"].agg(lambda v: v.max() - v.min())
    summary += (f" Over the {format_value(len(by_method), 'count')} map-based methods of the third table, the "
                f"highest mean PRO is {by_method['PRO (FPR 0.3)'].idxmax()}'s and the highest mean pixel AUROC "
                f"{by_method['pixel AUROC'].idxmax()}'s; the methods' PRO differ by at most "
                f"{format_value(spread.max(), 'auroc')} on one class ({spread.idxmax()}), with no interval to tell "
                f"such a gap from noise.")
else:
    summary = (f"This run has no data set with ground-truth masks, so it shows the pooled image-level scores "
               f"only: layer {pooled_layer}, {names[main]}, MVG reaches "
               + "; ".join(f"{d} {r['pooled']}" for d, r in image_table.iterrows()) + ". Put an MVTec AD class "
               "under the data root to see the maps.")
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
# PaDiM and PatchCore differ in what a patch is compared with. PaDiM compares it with the good patches *at
# the same position*; PatchCore with the good patches *anywhere*. A plausible consequence, not tested here:
# PatchCore can miss a defect that looks like something normal found elsewhere (a missing part shows the
# background, a misplaced one a normal part in the wrong place). Where its row of the third table falls
# behind the per-position models, look for such defects in the figure of its maps; its small coreset and the
# random projection that chose it are other candidate causes.
#
# ## Try it
#
# 1. The nearest training patch from any position, without PatchCore's coreset or neighbourhood averaging
#    (`shared`), on a GPU:
#    `.venv/bin/python scripts/build_book.py --only 09_maps -p estimator knn1 -p shared true -p device cuda`.
#    Look at whether PRO moves more than pixel AUROC, and at the good image with the highest maximum.
# 2. Deeper, coarser features: `.venv/bin/python scripts/build_book.py --only 09_maps -p layers '[4, 5]'`.
#    Look at the smallest defects in the figures: a coarser grid blurs them, and PRO should fall first.

# %% tags=["remove-cell"]
from tad.book import teach

if runs:
    best = glue_csv(page, "best_method", "PRO (FPR 0.3)", "argmax", "text", by="method")
    images = "; ".join(f"{d} " + glue_csv(page, f"best_image_{d}", "image AUROC [95 %]", kind="text", method=best,
                                          dataset=d) for d in runs)
    mean_pro = by_method["PRO (FPR 0.3)"].sort_values(ascending=False)
    lead = (f" ({format_value(mean_pro.iloc[0] - mean_pro.iloc[1], 'auroc')} ahead of {mean_pro.index[1]})"
            if len(mean_pro) > 1 else "")
    headline = (f"The maps of {best} locate the defect best of the methods here by mean PRO{lead}: "
                f"PRO {glue_csv(page, 'best_pro_min', 'PRO (FPR 0.3)', 'min', method=best)} to "
                f"{glue_csv(page, 'best_pro_max', 'PRO (FPR 0.3)', 'max', method=best)} and pixel AUROC "
                f"{glue_csv(page, 'best_pixel_min', 'pixel AUROC', 'min', method=best)} to "
                f"{glue_csv(page, 'best_pixel_max', 'pixel AUROC', 'max', method=best)} over the classes with masks "
                f"(pixel metrics carry no interval); as an image score its maximum reaches {images}.")
    worst = located.loc[located["PRO (FPR 0.3)"].idxmin()]
    verdict_list = list(methods_table["verdict"].dropna())
    points = [headline,
              teach.tally_sentence(verdict_list, what=family.describe(), higher="with the map-based score higher",
                                   lower="with the pooled vector higher"),
              f"The lowest PRO of any method is {worst.method}'s on {worst.dataset}, "
              f"{format_value(worst['PRO (FPR 0.3)'], 'auroc')} (pixel AUROC "
              f"{format_value(worst['pixel AUROC'], 'auroc')}): read its row of the third table against the "
              f"per-position models of the same class."]
    if patch_methods:
        points.append(f"{patchcore_name}'s fit, its greedy coreset included, takes "
                      f"{glue_csv(page, 'fit_patchcore', 'fit s', 'mean', 'seconds', method=patchcore_name)} per "
                      f"class on average, PaDiM's "
                      f"{glue_csv(page, 'fit_padim', 'fit s', 'mean', 'seconds', method='PaDiM')} (the third "
                      f"table; wall times on a shared machine, read them as orders of magnitude).")
    row = ours.loc[ours["PRO (FPR 0.3)"].idxmin()]
    glue_text("ex_pro", f"The lowest PRO is {row.name}'s, {format_value(row['PRO (FPR 0.3)'], 'auroc')}, "
              f"against its pixel AUROC {format_value(row['pixel AUROC'], 'auroc')}.")
    peak_rows = ours[["image AUROC (map max)", "ci_low", "ci_high"]]
    if patch_methods:
        patchcore_rows = methods_table[methods_table.method == patchcore_name].set_index("dataset")
        padim_rows = methods_table[methods_table.method == "PaDiM"].set_index("dataset")
        low = patchcore_rows["PRO (FPR 0.3)"].idxmin()
        glue_text("ex_patchcore", f"PatchCore's lowest PRO is on {low}: "
                  f"{format_value(patchcore_rows.loc[low, 'PRO (FPR 0.3)'], 'auroc')}, against PaDiM's "
                  f"{format_value(padim_rows.loc[low, 'PRO (FPR 0.3)'], 'auroc')} on the same class.")
    else:
        glue_text("ex_patchcore", "This run did not fit PatchCore (`patch_methods` is off).")
    glue_text("ex_image", " ".join(teach.auroc_sentence(f"On {d}, the map's maximum", r["image AUROC (map max)"],
                                                        r.ci_low, r.ci_high) for d, r in peak_rows.iterrows()))
else:
    pooled_name = f"pooled, layer {pooled_layer}, {names[main]}, MVG"
    images = "; ".join(f"{s.name} " + glue_csv(page, f"pooled_image_{s.name}", "image AUROC [95 %]", kind="text",
                                               method=pooled_name, dataset=s.name) for s in page.splits)
    points = [f"This run cannot say where the defect is: no data set of it has ground-truth masks, so no map is "
              f"scored, and the page shows the pooled image-level result alone: {images}."]
    glue_text("ex_pro", "This run has no masks, so there is no PRO to read.")
    glue_text("ex_image", "This run has no masks, so no map was made.")
    glue_text("ex_patchcore", "This run has no masks, so PatchCore was not fitted.")
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
#
# **4. A memory bank without positions.** On which class is PatchCore's PRO lowest, and which kinds of
# defect there can a bank of patches from every position miss?
#
# ```{dropdown} Solution
# {glue:md}`ex_patchcore:myst` PatchCore scores a patch by its distance to the nearest good patch from *any*
# position, so a defect whose patches look normal somewhere else (a missing or misplaced part, showing
# background or a normal part out of place) scores low; PaDiM's Gaussian at that position has never seen
# background there. Look at the figure of PatchCore's maps and at the test folders' defect names.
# ```
