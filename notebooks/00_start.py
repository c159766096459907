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
# # Start here: how does one image become a score?
#
# > "Features from the CNN's deep layers with a low contribution ratio in principal component analysis are
# > effective, and simple methods built on them, such as k-NN and a multivariate Gaussian (MVG), perform
# > well enough." (section 1, our translation)
#
# This page follows one defective test image from its file to its anomaly score, one step of `tad` at a
# time, with a picture at each step. It runs in under a minute on a laptop CPU.

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
classes = ["bottle"]                # one class; ELPV (elpv_mono) when it is not present
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
layer = 7                           # the layer whose activations are pooled
ratio = 0.5                         # NPCA: share of the principal axes kept (the smallest-variance ones)
estimator = "mvg"                   # mvg or knn1, knn5, knn10
image = 0                           # which defective test image to follow (index among the defective ones)
device = "cpu"
cache_dir = None                    # None means the library's default feature cache
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from tad.data import load_image
from tad.features import extract, preprocess, select
from tad.book.page import open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import auroc_entry, format_value
from tad.plots import pipeline_figure, pooling_figure, roc_figure, score_histogram, stage_shapes
from tad.reduce import kept_axes, null_axes, spectrum
from tad.sweep import score
from tad.book.words import deviation_sentence, versus_chance

page = open_page("00_start", data_root=data_root, classes=classes, backbone=backbone, seed=seed,
                 cache_dir=cache_dir)
split = page.splits[0]

# %% [markdown]
# ## 1. The image
#
# A class has good training images only, and a test set of good and defective images. We follow one
# defective test image:

# %%
sample = [t for t in split.test if t.label == 1][image]
picture = load_image(sample.path)  # RGB, whatever the file's mode
plt.imshow(picture)
plt.title(f"{split.name}, defect: {sample.defect}")
plt.axis("off")
plt.show()

# %% [markdown]
# ## 2. The network's activations
#
# An ImageNet-trained CNN, never trained on this data, turns the image into a stack of activation maps at
# every {term}`layer`. The maps shrink and multiply with depth (the table gives each layer's shape; the
# figure draws them to scale):

# %%
shapes = stage_shapes(page.backbone, page.input_size)
shapes

# %% tags=["hide-input"]
pipeline_figure(shapes, page.input_size, layer=layer,
                steps=[f"avg pool\n{shapes.loc[layer, 'channels']} numbers", f"NPCA {format_value(ratio, 'percent')}",
                       f"{estimator}\nscore"])

# %% [markdown]
# Four of the chosen layer's channels for our image; bright is a strong response:

# %%
with torch.no_grad():
    maps = page.backbone(preprocess(picture, page.input_size)[None])
activations = maps[layer - 1][0].numpy()  # (channels, height, width)

# %% tags=["hide-input"]
strongest = np.argsort(activations.mean(axis=(1, 2)))[::-1][:4]
fig, axes = plt.subplots(1, 5, figsize=(10, 2.4))
axes[0].imshow(picture.resize((page.input_size, page.input_size)))
axes[0].set_title("input")
for ax, c in zip(axes[1:], strongest):
    ax.imshow(activations[c], cmap="viridis")
    ax.set_title(f"channel {c}")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. The pooled vector
#
# Each channel's map becomes one number, its average over positions (max and min pooling are the other
# choices), so the image becomes one vector with a number per channel. For the strongest channel:

# %% tags=["hide-input"]
pooling_figure(activations[strongest[0]])

# %% [markdown]
# `tad.features.extract` does this for every image of the class (cached on disk), and `select` picks the
# layer and pooling. The test image's vector beside the average vector of the good training images:

# %%
train, test = (extract(page.backbone, paths, input_size=page.input_size, cache_dir=page.cache_dir,
                       device=device, progress=False) for paths in (split.train_paths, split.test_paths))
X = select(train, layer, "avg", page.backbone)  # (n_train, channels): good training images
Y = select(test, layer, "avg", page.backbone)   # (n_test, channels)
ours = split.test.index(sample)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(9, 2.8))
ax.plot(X.mean(axis=0), color="tab:blue", lw=1, label="good training images, average")
ax.plot(Y[ours], color="tab:red", lw=1, alpha=0.8, label="the defective test image")
ax.set(xlabel="channel", ylabel="average activation")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. The NPCA projection
#
# The principal axes of the good training vectors order the directions by how much good images vary
# along them. {term}`NPCA` keeps the {glue:text}`ratio` of axes with the *smallest* variance. The figure
# shows each axis's training variance (grey) and how far our image lies from the training mean along it
# (red), the kept axes shaded:

# %% tags=["hide-input"]
glue_value("ratio", ratio, "percent")
mean, variances, axes_ = spectrum(X)
kept, null = kept_axes("npca", ratio, variances), null_axes(variances)
coordinates = (Y[ours] - mean) @ axes_  # the image's coordinate along each principal axis
fig, ax = plt.subplots(figsize=(9, 3))
ax.semilogy(variances + 1e-12, color="grey", label="training variance of the axis")
ax.semilogy(coordinates ** 2 + 1e-12, color="tab:red", lw=0.8, label="our image's squared deviation")
ax.axvspan(kept.start, kept.stop or len(variances), color="orange", alpha=0.2, label="kept by NPCA")
if null.start < null.stop:
    ax.axvline(null.start, color="black", ls=":", label="null space from here")
ax.set(xlabel="principal axis (largest variance first)", ylabel="squared value (log)")
ax.legend(fontsize=8)
plt.show()
_ = glue_text("deviation_line", deviation_sentence(coordinates[kept] ** 2, variances[kept]))

# %% [markdown]
# {glue:md}`deviation_line:myst` Past the dotted line, if there is one, good training images do
# not vary at all (there are fewer of them than channels): that is the {term}`null space`.
#
# ## 5. The score, and all test images' scores
#
# An estimator fitted to the good training vectors on the kept axes gives every test image a score,
# higher for more anomalous: {term}`MVG` is the {term}`Mahalanobis distance` to the good images' Gaussian,
# {term}`k-NN` the distance to the nearest good images. One call of `tad.sweep.score` does steps 4 and 5:

# %%
scores = score(X, Y, "npca", ratio, estimator)  # (n_test,): one score per test image
labels = split.test_labels

# %% tags=["hide-input"]
score_histogram(labels, scores, marks={"our image": scores[ours]})

# %% [markdown]
# Good test images (blue) should score low and defective ones (red) high; the dashed line is the image we
# followed. How well the scores separate the two groups over every threshold is the ROC curve, and the
# area under it the {term}`AUROC` (1: every defective image above every good one; one half: chance):

# %% tags=["hide-input"]
roc_figure(labels, scores, name=f"layer {layer}, NPCA {format_value(ratio, 'percent')}, {estimator}")

# %% tags=["remove-cell"]
entry = auroc_entry(labels, scores)
glue_text("start_auroc", entry["interval"])
glue_text("start_chance", versus_chance(entry["ci_low"], entry["ci_high"])
          + (": it ranks the defective images as the more normal ones" if entry["ci_high"] < 0.5 else ""))
glue_text("start_data", split.name)
test_scores = pd.DataFrame({"image": [f"{s.defect}/{s.path.name}" for s in split.test],
                            "defect": [s.defect for s in split.test], "label": labels, "score": scores,
                            "below the image followed": scores < scores[ours]})
glue_text("csv_link", save_csv(test_scores, page, text="Download every test image's score (CSV)"))
glue_csv(page, "start_rank", "image", "count", "count", label=0, **{"below the image followed": True})
_ = glue_csv(page, "start_good", "image", "count", "count", label=0)

# %% [markdown]
# On {glue:text}`start_data` this configuration reaches an AUROC of {glue:text}`start_auroc` (95 %
# interval, `tad.stats.auroc_ci`), {glue:text}`start_chance`; the image we followed scores above
# {glue:text}`start_rank` of the {glue:text}`start_good` good test images.
# ```{glue:md} csv_link
# :format: myst
# ```
#
# ## Next
#
# Three commands a newcomer runs next (from the repository root):
#
# 1. `make test`: the library's tests, a few minutes on a laptop.
# 2. `.venv/bin/python -m tad layers --category screw`: the same pipeline on every layer of another class
#    (any class under the data root, or `elpv_mono`), one line per layer with its interval;
#    `.venv/bin/python -m tad --help` lists the other commands.
# 3. `.venv/bin/python scripts/build_book.py --only 00_start -p classes '[screw]' -p layer 1`: this page
#    again on screw at the first layer; compare the score histogram with bottle's, then read the data page
#    for why layer 1 fails there.

# %% tags=["remove-cell"]
from tad.book import teach
from tad.book.format import config_label

entry = auroc_entry(labels, scores)
est_name = config_label({"estimator": estimator}, parts=("estimator",))
good, bad = scores[labels == 0], scores[labels == 1]
rank = int((good < scores[ours]).sum())
glue_text("takeaways", teach.takeaways([
    teach.auroc_sentence(f"On {split.name}, the recipe (layer {layer} average-pooled, NPCA "
                         f"{format_value(ratio, 'percent')}, {est_name})", entry["auroc"], entry["ci_low"],
                         entry["ci_high"]),
    f"The defective image followed scores above {rank} of the {len(good)} good test images"
    + (", above every one of them" if rank == len(good) else ""),
    f"Nothing here was trained on a defect: the network keeps its ImageNet weights and the {est_name} model "
    f"saw only the {len(split.train)} good training images"]))
clean = float((bad > good.max()).mean())
glue_text("ex_clean", f"Here {format_value(clean, 'percent')} of the {len(bad)} defective test images score above "
          f"the highest good score ({int((bad > good.max()).sum())} images).")
glue_text("ex_now", teach.auroc_sentence(f"This run, {split.name} at layer {layer},", entry["auroc"],
                                         entry["ci_low"], entry["ci_high"]))

# %% [markdown]
# ## Exercises
#
# **1. A threshold without false alarms.** Put the threshold just above the highest score of a good test
# image. Which share of the defective images does it still flag?
#
# ```{dropdown} Solution
# Such a threshold raises no alarm on any good test image, so it flags exactly the defective images whose
# score exceeds every good one (in the histogram: the red bars right of the last blue one).
# {glue:md}`ex_clean:myst` The AUROC summarises every threshold at once; this is the one that matters when a
# false alarm is expensive.
# ```
#
# **2. Another class, the first layer.** Rerun this page on screw at layer 1:
# `.venv/bin/python scripts/build_book.py --only 00_start -p classes '[screw]' -p layer 1`. Predict first:
# above chance, at chance, or below?
#
# ```{dropdown} Solution
# {glue:md}`ex_now:myst` Layer 1 sees edges and brightness, not parts. On screw, the good test images were
# photographed brighter or darker than the training images (see {doc}`01_data`), so a low-level layer
# flags the *good* test images as different: expect the AUROC to fall, possibly below chance, where the
# red histogram lies left of the blue one.
# ```
#
# **3. Another image.** Follow the fourth defective image instead: `-p image 3`. Does its place among the
# good scores change the AUROC?
#
# ```{dropdown} Solution
# No: the AUROC ranks every test image, whichever one this page follows. Only the dashed line in the
# histogram and the count of good images below it move.
# ```
