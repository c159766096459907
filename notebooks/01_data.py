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
# cells this run found, and shows them. Then one class whose test images differ from its training images in
# a way that has nothing to do with defects, screw, and an audit of every class for such a difference.
#
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
backbone = "tf_efficientnet_lite0"  # for the shift audit and the normalisation ablation
input_size = None                   # None means the weights' native size
estimator = "mvg"                   # normalisation ablation: estimator after NPCA
ratio = 0.5                         # normalisation ablation: NPCA ratio
shift_layers = None                 # layers of the shift audit and the ablation; None means every layer
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
from tad.book.page import download_notice

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
from tad.backbones import parse_layers
from tad.features import extract, select, split_features
from tad.book.page import open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import ci_text, config_label, format_value, show_table
from tad.paper import paper_table
from tad.plots import sample_grid
from tad.book import teach
from tad.shift import acquisition_confounds, shift_audit
from tad.stats import Family, auroc_ci, compare
from tad.sweep import score
from tad.book.words import data_sentence, listing, versus_chance

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
found = glue_text("mvtec_found", data_sentence([s.name for s in mvtec], [s.name for s in own], len(mvtec), matching,
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
# anomalous and the brighter defective ones normal wherever a feature follows brightness. Is screw the only
# class like this? Two questions, asked of every class of this run and every layer.
#
# ## A shift audit for every class
#
# First: do the good test images look like the good training images to the features? For each class and
# layer, `tad.shift.two_sample_test` compares the average-pooled features of the training images with those
# of the good test images: the maximum mean discrepancy (MMD) with a Gaussian kernel at the median distance,
# and a permutation p-value (the pooled images split at random into groups of the two sizes, many times).
# A class's tests, one per layer, form one declared family, and a test flags a shift only when its p is below
# the family's error rate divided by the number of tests in it (Bonferroni). A shift need not come from acquisition:
# the test set may hold good parts of a slightly different kind. The second question tells the two apart.

# %%
layers = list(range(1, page.backbone.n_layers + 1)) if shift_layers is None else [
    k for layer in shift_layers for k in parse_layers(page.backbone, layer)]
stored = {s.name: split_features(s, page.backbone, input_size=page.input_size, cache_dir=page.cache_dir,
                                 device=device, progress=False) for s in page.splits}
audit_family = Family("shift audit, training vs good test features, one test per layer", len(layers))
pairs = {(s.name, k): (select(stored[s.name][0], k, "avg", page.backbone),
                       select(stored[s.name][1], k, "avg", page.backbone)[s.test_labels == 0])
         for s in page.splits for k in layers}
audit = shift_audit(pairs, audit_family, seed=seed)

# %% [markdown]
# ## Does normalising the brightness change the AUROC?
#
# Second: scale every image, training and test, to its class's median training grey level. That removes a
# difference in brightness and nothing else: `normalised_copies` writes the scaled images as lossless PNG,
# so the features see the scaling only. The same pipeline (one layer's average-pooled features, NPCA, then
# the estimator) runs layer by layer on both versions, and `tad.stats.compare` tests normalised against as
# stored on the same test images, a class's comparisons (one per layer) forming a second declared family. A
# class has an **acquisition confound** at a layer when both hold there: a shift between its good training
# and good test images, and an AUROC that normalisation moves beyond noise.

# %%
ablation_family = Family("photometric normalisation, normalised vs as stored, one comparison per layer", len(layers))
table_3 = paper_table(3)
rows = []
for s in page.splits:
    target = grey_level_table({"train (good)": s.train_paths}).loc["train (good)", "median"]
    folder = page.cache_dir / "grey_normalised" / s.name
    normalised = [extract(page.backbone, normalised_copies(paths, folder / part, target), input_size=page.input_size,
                          cache_dir=page.cache_dir, device=device, progress=False)
                  for part, paths in (("train", s.train_paths), ("test", s.test_paths))]
    for k in layers:
        scores = {version: score(*(select(f, k, "avg", page.backbone) for f in features), "npca", ratio, estimator)
                  for version, features in (("as stored", stored[s.name]), ("normalised", normalised))}
        row = {"dataset": s.name, "layer": k}
        for version, values in scores.items():
            low, high = auroc_ci(s.test_labels, values)
            row |= {version: auroc(s.test_labels, values), f"{version} low": low, f"{version} high": high,
                    f"{version} vs chance": versus_chance(low, high)}
        cmp = compare(s.test_labels, scores["normalised"], scores["as stored"], family=ablation_family)
        row |= {"difference": cmp.diff, "diff low": cmp.ci_low, "diff high": cmp.ci_high, "p (DeLong)": cmp.p,
                "normalised is": cmp.verdict,
                "paper (table 3, k-NN)": table_3.loc[s.name, str(k)] if s.name in table_3.index else float("nan")}
        rows.append(row)
shift = audit.drop(columns="family").merge(pd.DataFrame(rows), on=["dataset", "layer"])
confounds = acquisition_confounds(shift)
unexplained = [name for name in dict.fromkeys(shift.loc[shift["shift"], "dataset"]) if name not in confounds]

# %% [markdown]
# {glue:md}`shift_table_intro:myst`

# %% tags=["hide-input"]
glue_text("shift_csv", save_csv(shift, page))
glue_text("shift_table_intro", f"Every class and layer of this run ({page.backbone.name}, avg pooling): the shift "
          "audit (squared MMD, its permutation p, and whether it flags a shift), then the image {term}`AUROC` as "
          "stored and normalised (NPCA "
          f"{format_value(ratio, 'percent')}, {config_label({'estimator': estimator}, parts=('estimator',))}), "
          "each with where its 95 % interval lies against chance, the difference normalised minus as stored "
          "with DeLong's p and the verdict, and the paper's table 3 (ENB5, k-NN) where it has the class. "
          f"Shift audit: {audit['family'].iloc[0]}. Normalisation verdicts: {ablation_family.describe()}. "
          "{glue:md}`shift_csv:myst`")
show_table(shift.assign(shift=shift["shift"].map({True: "shifted", False: "no shift detected"}))
           .rename(columns={"mmd2": "MMD²", "p": "p (shift)", "shift": "training vs good test"})
           .set_index(["dataset", "layer"])[["MMD²", "p (shift)", "training vs good test", "as stored",
                                             "as stored vs chance", "normalised", "normalised vs chance",
                                             "difference", "p (DeLong)", "normalised is",
                                             "paper (table 3, k-NN)"]].round(4))

# %% tags=["hide-input"]
columns = min(3, len(page.splits))
fig, axes = plt.subplots(-(-len(page.splits) // columns), columns, figsize=(3.4 * columns, 3.2 * -(-len(page.splits) // columns)),
                         squeeze=False, sharey=True)
for ax, (name, rows_of) in zip(axes.flat, shift.groupby("dataset", sort=False)):
    for version, colour in (("as stored", "tab:grey"), ("normalised", "tab:green")):
        ax.errorbar(rows_of["layer"], rows_of[version], yerr=[rows_of[version] - rows_of[f"{version} low"],
                                                            rows_of[f"{version} high"] - rows_of[version]],
                    marker="o", capsize=3, color=colour, label=f"ours, {version}")
    if rows_of["paper (table 3, k-NN)"].notna().any():
        ax.plot(rows_of["layer"], rows_of["paper (table 3, k-NN)"], "k--", marker="x", label="paper (ENB5, k-NN)")
    shifted = rows_of[rows_of["shift"]]
    ax.plot(shifted["layer"], [0.04] * len(shifted), "rv", label="shift detected")
    ax.axhline(0.5, color="red", lw=0.8, ls=":", label="chance")
    ax.set(title=name, xlabel="layer", ylim=(0, 1.02), xticks=layers)
for ax in axes.flat[len(page.splits):]:
    ax.axis("off")
axes[0, 0].set_ylabel("image AUROC")
axes[0, 0].legend(loc="center right", fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# {glue:md}`shift_reading:myst`

# %% tags=["remove-cell"]
by_class = {name: (listing(str(k) for k in g.loc[g["shift"], "layer"]),
                   listing(f"{k} ({v})" for k, v in zip(g["layer"], g["normalised is"]) if v != "within noise"))
            for name, g in shift.groupby("dataset", sort=False)}
n_shifted = glue_csv(page, "n_shifted", "shift", how="count", kind="count", shift=True)
n_higher = glue_csv(page, "n_higher", "normalised is", how="count", kind="count", **{"normalised is": "higher"})
n_lower = glue_csv(page, "n_lower", "normalised is", how="count", kind="count", **{"normalised is": "lower"})
glue_text("confounds", listing(confounds, empty="no class of this run"))
_ = glue_text("shift_reading", "**What this shows.** The audit flags a shift between training and good test "
          f"features in {n_shifted} of the {len(shift)} (class, layer) tests, by class: "
          + "; ".join(f"{name} at layer(s) {shifted}" if shifted != "none" else f"{name} at no layer"
                      for name, (shifted, _) in by_class.items())
          + ". Normalisation changes the AUROC beyond noise at: "
          + "; ".join(f"{name}, layer(s) {changed}" if changed != "none" else f"{name}, no layer"
                      for name, (_, changed) in by_class.items())
          + ". An acquisition confound (both at one layer): "
          + (f"{listing(confounds)}: there the good test images differ from the training images in "
             "brightness, and the detector's AUROC measures that difference as well as the defects."
             if confounds else "no class of this run.")
          + (f" Shifted without a confound: {listing(unexplained)}: their good test images differ from the "
             "training images too, but normalising the brightness moves no AUROC beyond noise at a shifted layer, "
             "so this audit finds no sign that the difference is one of brightness." if unexplained else ""))

# %% [markdown]
# {glue:md}`screw_reading:myst`

# %% tags=["remove-cell"]
screw_rows = shift[shift["dataset"] == "screw"].set_index("layer")
if screw_rows.empty:
    glue_text("screw_reading", "")
else:
    first, last = screw_rows.iloc[0], screw_rows.iloc[-1]
    helped = [str(k) for k, v in screw_rows["normalised is"].items() if v == "higher"]
    hurt = [str(k) for k, v in screw_rows["normalised is"].items() if v == "lower"]
    glue_csv(page, "screw_layer1", "as stored", dataset="screw", layer=screw_rows.index[0])
    glue_csv(page, "screw_layer1_normalised", "normalised", dataset="screw", layer=screw_rows.index[0])
    glue_text("screw_layer1_vs_chance", first["as stored vs chance"])
    glue_text("screw_reading", f"**Screw.** As stored, layer {screw_rows.index[0]} scores "
              f"{ci_text(first['as stored'], first['as stored low'], first['as stored high'])}, {first['as stored vs chance']} (the paper's "
              f"table 3 has {first['paper (table 3, k-NN)']:g} there)"
              + (": its features rank the defective images as the more normal ones" if first["as stored vs chance"]
                 == "below chance" else "") + ". Normalised, it scores "
              f"{format_value(first['normalised'], 'auroc')}, {first['normalised vs chance']}. "
              "Normalisation raises the AUROC beyond noise at "
              + (f"layer(s) {', '.join(helped)}" if helped else "no layer")
              + (f", lowers it at layer(s) {', '.join(hurt)}" if hurt else "")
              + f"; at layer {screw_rows.index[-1]} it goes from {format_value(last['as stored'], 'auroc')} to "
              f"{format_value(last['normalised'], 'auroc')} ({last['normalised is']}). Where normalisation "
              "helps, the acquisition shift, not the defects, held the layer back; a layer it leaves where it "
              "was needs another explanation.")

# %% tags=["remove-cell"]
_ = glue_text("takeaways", teach.takeaways([
    found,
    f"The shift audit (MMD, permutation p; {audit['family'].iloc[0]}) flags a shift between training and good "
    f"test features in {n_shifted} of {len(shift)} class x layer tests; normalising the brightness raises the "
    f"AUROC beyond noise in {n_higher} and lowers it in {n_lower} of the {len(shift)} class x layer comparisons",
    (f"Acquisition confound (a shift and a normalisation effect at the same layer): {listing(confounds)}; a "
     "page's AUROC on such a class measures brightness as well as defects" if confounds else
     "No class of this run shows an acquisition confound (a shift and a normalisation effect at the same layer)"),
]))

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
# - Audit both kinds of solar cell at the first and last layers only (a smaller family, so each test is held
#   to a less strict level), and see whether either kind has a shift that brightness explains:
#   `.venv/bin/python scripts/build_book.py --only 01_data -p classes '[elpv_mono, elpv_poly]' -p shift_layers '[1, 7]'`
