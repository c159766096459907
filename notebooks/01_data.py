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
# # What data is this?
#
# Ono & Mori evaluate on all 15 classes of MVTec AD (Bergmann et al., CVPR 2019): each class has good
# training images only, and a test set of good and defective images with pixel masks. Their tables 2-4
# report the image AUROC averaged over the 15 classes; table 3 lists every class. They name "other data
# sets than MVTec AD" as future work; this book adds ELPV (solar cells) for that on the page 10_datasets.
#
# **This run differs from the paper**: only the MVTec AD classes under the data root are used (here 3 of
# 15), downscaled so that the longest side is 512 px. This page states which classes are there, checks
# their split counts against the official ones, and shows what the images look like.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0
download = True                     # try the official MVTec AD download when classes are missing

# %%
import warnings
from collections import Counter

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

from tad.data import MVTEC_CATEGORIES, count_report, load_elpv, load_image, load_mask
from tad.download import ensure_mvtec
from tad.report import setup_run

splits, bb = setup_run(data_root, classes, backbone, input_size, seed)

# %% [markdown]
# ## Which MVTec AD classes are here
#
# `ensure_mvtec` looks for the 15 official classes under the data root and, if some are missing, tries the
# official download (about 5 GB) once. Offline, or where the root cannot be written, it reports the missing
# classes and the reason, and the book goes on with the classes present.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    present, missing = ensure_mvtec(data_root, list(MVTEC_CATEGORIES), download=download)
print(f"present ({len(present)} of {len(MVTEC_CATEGORIES)}): {', '.join(present) or 'none'}")
print(f"missing ({len(missing)}): {', '.join(missing) or 'none'}")
for w in caught:
    print(f"note: {w.message}")

# %% [markdown]
# Split counts of every class under the data root beside the official MVTec AD counts:

# %%
counts = count_report(data_root)
counts

# %%
print(f"{int(counts.matches.sum())} of {len(counts)} classes match the official split counts")

# %% [markdown]
# Defect types of the test sets (number of test images per type; `good` are the normal test images):

# %%
mvtec = [s for s in splits if s.name in MVTEC_CATEGORIES]
defects = pd.DataFrame([(s.name, t.defect) for s in mvtec for t in s.test], columns=["class", "defect"])
pd.crosstab(defects["defect"], defects["class"], margins=True, margins_name="total")

# %% [markdown]
# Image sizes and modes as stored (the backbones resize to their own input size):

# %%
def header(path):
    with Image.open(path) as im:
        return im.size, im.mode


sizes = pd.DataFrame([(s.name, *header(t.path)) for s in mvtec for t in s.train + s.test],
                     columns=["class", "size (w, h)", "mode"])
sizes.groupby(["class", "size (w, h)", "mode"]).size().rename("images").reset_index()

# %% [markdown]
# One good test image and one image of each of up to three defect types per class, the ground-truth mask
# outlined in red:

# %%
def examples(split, n_defects=3):
    good = next(t for t in split.test if t.label == 0)
    first = {}
    for t in split.test:
        if t.label == 1 and t.defect not in first:
            first[t.defect] = t
    return [good, *list(first.values())[:n_defects]]


rows = [examples(s) for s in mvtec]
fig, axes = plt.subplots(len(rows), 4, figsize=(6, 1.6 * len(rows)), dpi=80, squeeze=False)
for row, samples in zip(axes, rows):
    for ax, sample in zip(row, samples):
        image = load_image(sample.path)
        ax.imshow(image)
        if sample.mask is not None:
            ax.contour(load_mask(sample.mask, image.size), levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(sample.defect, fontsize=8)
    for ax in row:
        ax.axis("off")
for row, split in zip(axes, mvtec):
    row[0].text(-0.08, 0.5, split.name, transform=row[0].transAxes, rotation=90, va="center", ha="right")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## ELPV: solar cells
#
# ELPV (the PyPI package `elpv-dataset`) holds 300 x 300 px grayscale electroluminescence images of solar
# cells, each labelled with a defect probability of 0, 1/3, 2/3 or 1. `tad.data.load_elpv` turns one cell
# type (mono- or polycrystalline) into an anomaly-detection split: good = probability 0, anomalous =
# probability 1, the uncertain 1/3 and 2/3 cells are left out. A quarter of the good cells, drawn with
# `numpy.random.default_rng(seed)`, go to the test set; the rest are the training set.

# %%
elpv = []
for kind in ("mono", "poly"):
    split = load_elpv(kind, seed=seed)
    labels = Counter(t.defect for t in load_elpv(kind, seed=seed, intermediate="anomalous").test)
    elpv.append({"split": split.name, "train (good)": len(split.train),
                 "test good": int((split.test_labels == 0).sum()), "test anomalous": int(split.test_labels.sum()),
                 "excluded (p = 1/3)": labels["possibly_defective"],
                 "excluded (p = 2/3)": labels["likely_defective"], "size, mode": header(split.train[0].path)})
    print(split.source)
pd.DataFrame(elpv).set_index("split")

# %%
fig, axes = plt.subplots(2, 4, figsize=(6, 3.3), dpi=80)
for row, kind in zip(axes, ("mono", "poly")):
    split = load_elpv(kind, seed=seed)
    picks = [t for t in split.test if t.label == 0][:2] + [t for t in split.test if t.label == 1][:2]
    for ax, sample in zip(row, picks):
        ax.imshow(load_image(sample.path))
        ax.set_title(f"{kind}: {sample.defect}", fontsize=8)
        ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Licences and provenance
#
# - **MVTec AD** is © 2019 MVTec Software GmbH, licensed CC BY-NC-SA 4.0 (non-commercial use only; adaptations
#   under the same licence). Credit: Paul Bergmann, Michael Fauser, David Sattlegger, Carsten Steger, "MVTec
#   AD — A Comprehensive Real-World Dataset for Unsupervised Anomaly Detection", CVPR 2019.
# - **The copies used here are an adaptation**: every image was resized so that its longest side is 512 px
#   (Lanczos; the originals are 900 px for bottle, 1024 px for screw and transistor), masks with nearest
#   neighbour, saved as PNG in the original mode (screw is grayscale). The split counts and folder layout are
#   the official ones; for 69 of the 119 defective screw images the defect-type folder was inferred by matching
#   images to masks, which does not affect the image-level AUROC. Details and checksums are in the data
#   folder's `README.md` and `mvtec_ad.sha256`.
# - **ELPV** is licensed CC BY-NC-SA 4.0. Credit: C. Buerhop-Lutz, S. Deitsch et al., "A Benchmark for Visual
#   Identification of Defective Solar Cells in Electroluminescence Imagery", EU PVSEC 2018; S. Deitsch et al.,
#   "Automatic classification of defective photovoltaic module cells in electroluminescence images", Solar
#   Energy 185, 2019.
#
# ## What this shows
#
# The tables above say which classes every later page averages over and whether their splits are the
# official ones (the count check above). A "mean" in this book is the mean over these classes only, not the
# paper's 15-class mean; later pages compare it with the paper's mean over the same classes. The 512 px
# copies are still larger than any backbone input used here (224-456 px), so every backbone receives a
# further downsampled image: the 512 px step removes only detail finer than what the backbones see at their
# input size (the page 12_resolution varies that size).
