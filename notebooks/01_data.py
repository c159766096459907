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
# # What data does this run have?
#
# > "MVTec AD is a data set of about 5,000 images of 15 kinds of industrial product. An image counts as
# > anomalous when it shows partial damage or a stain, a problem close to real visual inspection of
# > industrial products. [...] Performance is evaluated as the mean AUC over the 15 classes." (section 3.1,
# > our translation)
#
# This page first tries to get the data, then says which {term}`MVTec AD` classes and which ELPV solar
# cells this run found, and shows them. It ends with one class whose test images differ from its training
# images in a way that has nothing to do with defects: screw.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present, else ELPV
backbone = "tf_efficientnet_lite0"  # for the screw section only
input_size = None                   # None means the weights' native size
estimator = "mvg"                   # screw section: estimator after NPCA
ratio = 0.5                         # screw section: NPCA ratio
device = "cpu"
cache_dir = None                    # None means the library's default feature cache
seed = 0
download = True                     # try the official MVTec AD download when classes are missing

# %% [markdown]
# ## Getting MVTec AD
#
# Before anything reads an image, `ensure_mvtec` looks for the 15 official classes under the data root and,
# if some are missing, tries the official download (about 5 GB, checked and resumable) once. Offline, or where
# the root cannot be written, it says so in one line and the book goes on with what is there.

# %%
import warnings

from tad.data import MVTEC_CATEGORIES, default_root
from tad.download import ensure_mvtec
from tad.page import download_notice

root = data_root or default_root()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    present, missing = ensure_mvtec(root, list(MVTEC_CATEGORIES), download=download)
print(download_notice(root, present, missing, " ".join(str(w.message) for w in caught)))

# %% tags=["remove-cell"]
from matplotlib_inline.backend_inline import set_matplotlib_formats

set_matplotlib_formats("png")  # tad.plots' figures are built without pyplot: show them as PNG from the start

# %% [markdown]
# The setup: what this page runs on, as found.

# %% tags=["hide-input"]
from collections import Counter

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown

from tad.analysis import grey_level_table, normalised_copies
from tad.data import ELPV_CATEGORIES, count_report, image_format, load_elpv, load_image
from tad.evaluate import auroc
from tad.features import extract, select
from tad.page import (ci_text, config_label, format_value, glue_csv, glue_text, glue_value, open_page, save_csv,
                      show_table)
from tad.paper import paper_table
from tad.plots import sample_grid
from tad.stats import auroc_ci, compare_pairs
from tad.sweep import score
from tad.words import data_sentence, versus_chance

page = open_page("01_data", data_root=data_root, classes=classes, backbone=backbone, input_size=input_size,
                 seed=seed, cache_dir=cache_dir)
mvtec = [s for s in page.splits if s.name in MVTEC_CATEGORIES]
own = [s for s in page.splits if s.name not in MVTEC_CATEGORIES and s.name not in ELPV_CATEGORIES]
layout = mvtec + own  # every class in MVTec AD's folder layout: the official ones, then a user's own
_ = glue_value("mvtec_n", len(mvtec), "count")

# %% [markdown]
# ## Which classes in MVTec AD layout are here
#
# {glue:md}`mvtec_found:myst`

# %% tags=["hide-input"]
counts = count_report(root).loc[[s.name for s in layout]] if layout else None
matching = int(counts.loc[[s.name for s in mvtec], "matches"].sum()) if mvtec else 0
glue_text("mvtec_found", data_sentence([s.name for s in mvtec], [s.name for s in own], len(mvtec), matching,
                                       len(MVTEC_CATEGORIES)))
if layout:
    counts["masks"] = [sum(t.mask is not None for t in s.test if t.label == 1) for s in layout]
    display(counts.rename_axis("class").rename(columns={
        "train_good": "train (good)", "test_good": "test good", "test_defective": "test defective",
        "official_train_good": "official train", "official_test_good": "official test good",
        "official_test_defective": "official test defective", "matches": "official counts",
        "masks": "defects with a mask"}))

# %% [markdown]
# Defect types of the test sets (number of test images per type; `good` are the normal test images), and
# one good test image beside one image of each of up to three defect types per class, the ground-truth
# mask outlined in red where the class has one:

# %% tags=["hide-input"]
if layout:
    defects = pd.DataFrame([(s.name, t.defect) for s in layout for t in s.test], columns=["class", "defect"])
    display(pd.crosstab(defects["defect"], defects["class"], margins=True, margins_name="total"))
    display(sample_grid(layout))
else:
    display(Markdown("This run has no class in MVTec AD's layout, so there are no defect types or sample images "
                     "to show here."))

# %% [markdown]
# ## ELPV: solar cells
#
# ELPV (the PyPI package `elpv-dataset`, installed with the requirements, so every installation has it)
# holds grayscale electroluminescence images of solar cells, each labelled with a defect probability of 0,
# 1/3, 2/3 or 1. `tad.data.load_elpv` turns one cell type (mono- or polycrystalline) into an
# anomaly-detection split: good = probability 0, anomalous = probability 1, the uncertain 1/3 and 2/3 cells
# left out; a quarter of the good cells, drawn with the page's seed, go to the test set.

# %% tags=["hide-input"]
elpv, picks = [], {}
for kind in ("mono", "poly"):
    split = load_elpv(kind, seed=seed)
    labels = Counter(t.defect for t in load_elpv(kind, seed=seed, intermediate="anomalous").test)
    elpv.append({"split": split.name, "train (good)": len(split.train),
                 "test good": int((split.test_labels == 0).sum()), "test anomalous": int(split.test_labels.sum()),
                 "left out (p = 1/3)": labels["possibly_defective"],
                 "left out (p = 2/3)": labels["likely_defective"], "size, mode": image_format(split.train[0].path)})
    glue_text(f"elpv_{kind}_counts", f"{len(split.train)} / {len(split.test)}")
    picks[kind] = [t for t in split.test if t.label == 0][:2] + [t for t in split.test if t.label == 1][:2]
pd.DataFrame(elpv).set_index("split")

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 4, figsize=(8, 4.4))
for row, kind in zip(axes, ("mono", "poly")):
    for ax, sample in zip(row, picks[kind]):
        ax.imshow(load_image(sample.path))
        ax.set_title(f"{kind}: {sample.defect}", fontsize=9)
        ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# Two good cells and two defective ones of each type: the defects are cracks and dark, inactive regions;
# the good cells vary too (grid lines, crystal texture of the polycrystalline cells).
#
# ## Screw: a shift in acquisition, not in defects
#
# {glue:md}`screw_intro:myst`

# %% tags=["hide-input"]
screw = next((s for s in page.splits if s.name == "screw"), None)
if screw is None:
    glue_text("screw_intro", "This run has no screw class, so there is nothing to measure here; place MVTec AD's "
              "screw under the data root to see it.")
    glue_text("screw_grey", "")
else:
    grey = grey_level_table({"train (good)": screw.train_paths,
                             "test good": [t.path for t in screw.test if t.label == 0],
                             "test defective": [t.path for t in screw.test if t.label == 1]})
    glue_text("screw_intro", "Each image's mean grey level (0-255), summarised by group: the median over the "
              "group's images and the range of its middle 90 % (5th to 95th percentile).")
    display(grey.round(1))
    for key, name in (("grey_train", "train (good)"), ("grey_good", "test good"), ("grey_defective", "test defective")):
        glue_text(key, f"{grey.loc[name, 'median']:.1f}")
    ranges = {k: f"{r['median']:.1f} ({r['q05']:.1f}-{r['q95']:.1f})" for k, r in grey.iterrows()}
    darker = grey.loc["test good", "q95"] < min(grey.loc["train (good)", "q05"], grey.loc["test defective", "q05"])
    glue_text("screw_grey", f"Median (5-95 % range): training images {ranges['train (good)']}, good test images "
              f"{ranges['test good']}, defective test images {ranges['test defective']}. " + (
                  "Nearly every good test image is darker than nearly every training and defective image: "
                  "lighting or exposure changed between the sessions that took them." if darker else
                  "The good test images' range overlaps the others': no clear shift in this run's data."))

# %% [markdown]
# {glue:md}`screw_grey:myst`
#
# A detector that learned "good looks like the training images" then finds the darker good test images
# anomalous and the brighter defective ones normal wherever a feature follows brightness. Scaling every
# image, training and test, to the training images' median grey level removes that one difference:
# `normalised_copies` writes the scaled images as lossless PNG, so the features see the scaling and nothing
# else. The same pipeline (one layer's average-pooled features, NPCA, then the estimator) runs layer by layer
# on both versions.

# %%
if screw is not None:
    target = grey.loc["train (good)", "median"]
    folder = page.cache_dir / "grey_normalised" / "screw"
    versions = {"as stored": (screw.train_paths, screw.test_paths),
                "normalised": (normalised_copies(screw.train_paths, folder / "train", target),
                               normalised_copies(screw.test_paths, folder / "test", target))}
    scores = {}
    for version, (train_paths, test_paths) in versions.items():
        train, test = (extract(page.backbone, p, input_size=page.input_size, cache_dir=page.cache_dir,
                               device=device, progress=False) for p in (train_paths, test_paths))
        for layer in range(1, page.backbone.n_layers + 1):
            X, Y = (select(f, layer, "avg", page.backbone) for f in (train, test))
            scores[f"{version}, layer {layer}"] = score(X, Y, "npca", ratio, estimator)

# %% [markdown]
# {glue:md}`screw_table_intro:myst`

# %% tags=["hide-input"]
if screw is None:
    glue_text("screw_table_intro", "")
else:
    labels = screw.test_labels
    layers = range(1, page.backbone.n_layers + 1)
    pairs = [(f"normalised, layer {k}", f"as stored, layer {k}") for k in layers]
    compared = compare_pairs(labels, scores, pairs)
    rows = []
    for k, cmp in zip(layers, compared.itertuples()):
        row = {"layer": k}
        for version in versions:
            a = auroc(labels, scores[f"{version}, layer {k}"])
            lo, hi = auroc_ci(labels, scores[f"{version}, layer {k}"])
            row |= {version: a, f"{version} low": lo, f"{version} high": hi,
                    f"{version} vs chance": versus_chance(lo, hi)}
        row |= {"difference": cmp.diff, "diff low": cmp.ci_low, "diff high": cmp.ci_high, "p (Holm)": cmp.p_holm,
                "normalised is": cmp.verdict, "paper (table 3, k-NN)": paper_table(3).loc["screw", str(k)]}
        rows.append(row)
    shift = pd.DataFrame(rows).set_index("layer")
    glue_text("screw_csv", save_csv(shift.reset_index(), page))  # layer as a column of the download
    glue_text("screw_table_intro", f"Image {{term}}`AUROC` of screw by layer ({page.backbone.name}, avg pooling, "
              f"NPCA {format_value(ratio, 'percent')}, {config_label({'estimator': estimator}, parts=('estimator',))}), as stored and normalised, each with its 95 % "
              "interval (`tad.stats.auroc_ci`); the difference with its simultaneous interval and Holm-adjusted "
              "DeLong p-value over the layers (`tad.stats.compare_pairs`), and the paper's table 3 for screw "
              "(ENB5, k-NN). {glue:md}`screw_csv:myst`")
    show_table(shift[["as stored", "as stored vs chance", "normalised", "normalised vs chance", "difference",
                   "p (Holm)", "normalised is", "paper (table 3, k-NN)"]].round(3))

# %% tags=["hide-input"]
if screw is not None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for version, colour in (("as stored", "tab:grey"), ("normalised", "tab:green")):
        ax.errorbar(shift.index, shift[version], yerr=[shift[version] - shift[f"{version} low"],
                                                      shift[f"{version} high"] - shift[version]],
                    marker="o", capsize=3, color=colour, label=f"ours, {version}")
    ax.plot(shift.index, shift["paper (table 3, k-NN)"], "k--", marker="x", label="paper (ENB5, k-NN)")
    ax.axhline(0.5, color="red", lw=0.8, ls=":", label="chance")
    ax.set(xlabel="layer", ylabel="screw image AUROC", ylim=(0, 1), xticks=list(shift.index))
    ax.legend(loc="lower right", fontsize=8)
    plt.show()
else:
    display(Markdown("Screw is not in this run, so its AUROC by layer, as stored and normalised, is not drawn."))

# %% [markdown]
# {glue:md}`screw_reading:myst`

# %% tags=["remove-cell"]
if screw is None:
    glue_text("screw_reading", "")
else:
    first, last = shift.iloc[0], shift.iloc[-1]
    helped = [str(k) for k, v in shift["normalised is"].items() if v == "higher"]
    hurt = [str(k) for k, v in shift["normalised is"].items() if v == "lower"]
    glue_csv(page, "screw_layer1", "as stored", layer=shift.index[0])
    glue_csv(page, "screw_layer1_normalised", "normalised", layer=shift.index[0])
    glue_text("screw_layer1_vs_chance", first["as stored vs chance"])
    glue_text("screw_reading", "**What this shows.** As stored, layer 1 scores "
              f"{ci_text(first['as stored'], first['as stored low'], first['as stored high'])}, {first['as stored vs chance']} (the paper's "
              f"table 3 has {first['paper (table 3, k-NN)']:g} there)"
              + (": its features rank the defective images as the more normal ones" if first["as stored vs chance"]
                 == "below chance" else "") + ". Normalised, layer 1 scores "
              f"{format_value(first['normalised'], 'auroc')}, {first['normalised vs chance']}. "
              "Normalisation raises the AUROC beyond noise at "
              + (f"layer(s) {', '.join(helped)}" if helped else "no layer")
              + (f", lowers it at layer(s) {', '.join(hurt)}" if hurt else "")
              + f"; at layer {shift.index[-1]} it goes from {format_value(last['as stored'], 'auroc')} to "
              f"{format_value(last['normalised'], 'auroc')} ({last['normalised is']}). Where normalisation "
              "helps, the acquisition shift, not the defects, held the layer back; a layer it leaves where it "
              "was needs another explanation.")

# %% [markdown]
# ## Licences and provenance
#
# - **MVTec AD** is © 2019 MVTec Software GmbH, licensed CC BY-NC-SA 4.0 (non-commercial use only; adaptations
#   under the same licence). Credit: Paul Bergmann, Michael Fauser, David Sattlegger, Carsten Steger, "MVTec
#   AD — A Comprehensive Real-World Dataset for Unsupervised Anomaly Detection", CVPR 2019.
# - **The copies in the shared data folder are an adaptation**: every image was resized so that its longest
#   side is 512 px (Lanczos), masks with nearest neighbour, saved as PNG in the original mode (screw is
#   grayscale); split counts and folder layout are the official ones. Details and checksums are in that
#   folder's `README.md` and `mvtec_ad.sha256`. The official download holds the full-size originals.
# - **ELPV** is licensed CC BY-NC-SA 4.0. Credit: C. Buerhop-Lutz, S. Deitsch et al., "A Benchmark for Visual
#   Identification of Defective Solar Cells in Electroluminescence Imagery", EU PVSEC 2018; S. Deitsch et al.,
#   "Automatic classification of defective photovoltaic module cells in electroluminescence images", Solar
#   Energy 185, 2019.
#
# ## Try it
#
# - Run this page on screw alone with the k-NN the paper's table 3 uses, and see whether the dip at layer 1
#   and its repair by normalisation depend on the estimator:
#   `.venv/bin/python scripts/build_book.py --only 01_data -p classes '[screw]' -p estimator knn1`
# - Run it with no MVTec AD data at all (`TAD_DATA=$(mktemp -d)`) and read the one-line download notice and
#   what the page still shows.
