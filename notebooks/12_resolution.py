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
# # Does reading the images larger help? (beyond the paper)
#
# Ono & Mori extract their features with EfficientNet-B5 (ENB5); they state neither the input size they fed
# it nor which pretrained weights they used. Their best figures:
#
# > Table 3, layer 7 (k-NN, NPCA 50 %): mean AUROC 0.97 over the 15 classes, 0.95 on screw.
#
# The ENB5 weights this book pins, {glue:text}`enb5_tag` (timm), were trained at {glue:text}`enb5_native` px;
# the backbones this run reads natively take {glue:text}`native_sizes` px. If the paper fed ENB5 at its
# native size, it read more pixels than the offline backbones do. This page separates two things a larger
# backbone brings: input resolution (the reference network fed larger images than it was trained at) and
# network scale (Lite0 < Lite1 < Lite2, each at its own native size).

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
backbone = "tf_efficientnet_lite0"  # the reference backbone: the one fed larger images
sizes = [None, 320]                 # input sizes of the reference backbone (None: native)
scale_backbones = ["tf_efficientnet_lite1", "tf_efficientnet_lite2"]  # at their native sizes
full_sweep = False                  # True: the reference backbone at native, 320, 384, 448 and 512 px
layers = [7, "all"]
estimator = "knn1"                  # table 3 uses k-NN
reduction, ratio = "npca", 0.5
pooling = "avg"
device = "cpu"
cache_dir = None                    # None: the library's feature cache
results = None
alpha = 0.05                        # family-wise error rate of the page's comparisons, per data set
seed = 0

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

from tad.backbones import load_backbone
from tad.features import select
from tad.book.page import PAPER_BACKBONE, open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import auroc_entry, config_label, format_value, show_table
from tad.paper import paper_table
from tad.stats import Family, compare
from tad.sweep import score, split_features
from tad.book.words import listing, verdict_list

page = open_page("12_resolution", data_root=data_root, classes=classes, backbone=backbone, seed=seed,
                 cache_dir=cache_dir, results=results)
if full_sweep:
    sizes = [None, 320, 384, 448, 512]
runs = [(page.backbone, s or page.backbone.input_size) for s in sizes]
runs += [(b, b.input_size) for b in map(load_backbone, scale_backbones)]
print("runs:", ", ".join(f"{b.name.removeprefix('tf_efficientnet_')} at {s} px" for b, s in runs))
enb5 = load_backbone(PAPER_BACKBONE, weights="random")  # its pretrained configuration only: the native size
glue_text("enb5_tag", enb5.weights["tag"])
glue_value("enb5_native", enb5.input_size, "count")
glue_text("native_sizes", listing(sorted({str(b.input_size) for b, _ in runs}, key=int)))
native = page.backbone.input_size
largest = max(size for b, size in runs if b.name == page.backbone.name)
glue_value("ref_native", native, "count")
glue_value("largest_size", largest, "count")
glue_text("side_factor", f"{largest / native:.2f}")
glue_text("area_share", f"1/{(largest / native) ** 2:.2f}")
_ = glue_value("image_side", max(max(Image.open(s.train[0].path).size) for s in page.splits), "count")

# %% [markdown]
# ## A caveat before any number: a network fed larger images than it was trained at sees another scale
#
# An ImageNet CNN learns its filters for the apparent size objects have in its training crops. The reference
# backbone was trained at {glue:text}`ref_native` px; this run feeds it up to {glue:text}`largest_size` px,
# {glue:text}`side_factor` times the side, so every object spans that many times as many pixels across: the
# stage-7 cells, each with a fixed receptive field, now see {glue:text}`area_share` of the area they saw in
# training, and the statistics of the pooled activations shift.
# Touvron et al. (2019, "Fixing the train-test resolution discrepancy", FixRes) show that an ImageNet
# classifier's accuracy depends on this ratio of test to training resolution, and that it must be
# fine-tuned at the test size to profit from a larger one. So if a larger input does *not* rescue a class
# here, the cause is confounded: more pixels may help while the scale mismatch hurts. A clean test needs a
# network trained at the larger size (the pinned ENB5 weights were trained at {glue:text}`enb5_native` px)
# or fine-tuned to it, which the offline
# Lite weights are not; the scale comparison below (each Lite model at its own native size) is free of this
# confound, but changes the network and the size together.

# %% [markdown]
# ## Every run
#
# Each backbone and size at the layers asked for, with the seconds each run took: extraction, or only reading
# the feature cache when another page (or an earlier build) made the features, which is then all it shows.
# Extraction itself grows with the square of the input side.

# %% tags=["hide-input"]
rows, scores, seconds = [], {}, {}
for b, size in runs:
    t0 = time.perf_counter()
    for split in page.splits:
        train, test = split_features(split, b, input_size=size, cache_dir=page.cache_dir, device=device,
                                     progress=False)
        for lay in layers:
            s = score(select(train, lay, pooling, b), select(test, lay, pooling, b), reduction, ratio, estimator,
                      seed=seed)
            label = f"{b.name.removeprefix('tf_efficientnet_')} {size} px"
            scores[split.name, str(lay), label] = s
            rows.append({"dataset": split.name, "layer": str(lay), "run": label, "backbone": b.name,
                         "input_size": size, **auroc_entry(split.test_labels, s)})
    seconds[b.name.removeprefix("tf_efficientnet_"), size] = time.perf_counter() - t0
table = pd.DataFrame(rows)
pd.Series(seconds, name="seconds").rename_axis(["backbone", "input size (px)"]).round(1).to_frame()

# %% tags=["hide-input"]
table.pivot(index=["dataset", "layer"], columns="run", values="interval")

# %% [markdown]
# Each run's AUROC with its 95 % interval (`tad.stats.auroc_ci`, which stays open at AUROC 1 where a
# percentile bootstrap collapses).

# %% [markdown]
# ## Size against scale, tested
#
# Per data set and layer, each larger input of the reference backbone against its native size (the
# *size* comparisons), and each larger Lite model against the reference, all at native sizes (the *scale*
# comparisons): {term}`paired comparison`s on the same test images (`tad.stats.compare`), all of a data set's
# comparisons one family of this page, tested at its Bonferroni level (printed below the table). Each run's
# row of the CSV download carries its comparison against the reference.

# %% tags=["hide-input"]
ref = f"{page.backbone.name.removeprefix('tf_efficientnet_')} {native} px"
family = Family(f"12_resolution, each larger input or Lite model against {ref} at each layer",
                size=max(len(layers) * (len(runs) - 1), 1), alpha=alpha)
labels_of = {s.name: s.test_labels.astype(bool) for s in page.splits}
comparisons = []
for r in table.itertuples():
    if r.run != ref:
        c = compare(labels_of[r.dataset], scores[r.dataset, r.layer, r.run], scores[r.dataset, r.layer, ref],
                    family=family)
        comparisons.append({"dataset": r.dataset, "layer": r.layer, "run": r.run,
                            "change": "size" if r.backbone == page.backbone.name else "scale", "against": ref,
                            "diff": c.diff, "diff_low": c.ci_low, "diff_high": c.ci_high, "p": c.p,
                            "verdict": c.verdict, "method": getattr(c, "method", "DeLong + MOVER")})
cmp_all = pd.DataFrame(comparisons, columns=["dataset", "layer", "run", "change", "against", "diff", "diff_low",
                                             "diff_high", "p", "verdict", "method"])
table = table.merge(cmp_all, on=["dataset", "layer", "run"], how="left")
glue_text("csv_link", save_csv(table, page))
show_table(cmp_all.round(3))
print(family.describe())
glue_text("family", family.describe())

# %% tags=["hide-input"]
paper = paper_table(3)["7"]
names = page.names
fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), sharey=True, squeeze=False)
l7 = table[table.layer == str(layers[0])]
for ax, d in zip(axes[0], names):
    for name, g in l7[l7.dataset == d].groupby("backbone"):
        g = g.sort_values("input_size")
        ax.errorbar(g.input_size, g.auroc, yerr=[g.auroc - g.ci_low, g.ci_high - g.auroc], marker="o", capsize=2,
                    label=name.removeprefix("tf_efficientnet_"))
    if d in paper.index:
        ax.axhline(paper[d], color="k", ls="--", lw=0.8, label="paper (ENB5, table 3)")
    ax.set(title=d, xlabel="input size (px)")
axes[0, 0].set_ylabel(f"image AUROC (layer {layers[0]}, {estimator})")
axes[0, -1].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# AUROC against input size at the first layer asked for, one panel per data set, with 95 % intervals; the
# dashed line is the paper's ENB5 when it reports the class. Look at whether the reference backbone's line
# climbs with size beyond its intervals, and whether the larger Lite models sit above it.

# %% tags=["remove-cell"]
for kind in ("size", "scale"):
    glue_text(f"{kind}_words", verdict_list(((f"{r.dataset} {config_label({'layer': r.layer}, parts=('layer',))}, "
                                              f"{r.run}", r.verdict, r.diff)
                                             for r in cmp_all[cmp_all.change == kind].itertuples()),
                                            empty="none were run"))
glue_text("ref", ref)
counts = {f"n_{kind}_{word.replace(' ', '_')}": glue_csv(page, f"n_{kind}_{word.replace(' ', '_')}", "run", "count",
                                                         "count", change=kind, verdict=word)
          for kind in ("size", "scale") for word in ("higher", "lower", "within noise")}
n_size = glue_csv(page, "n_size", "run", "count", "count", change="size")
glue_csv(page, "ref_mean", "auroc", "mean", run=ref)
gaps = [f"{d} {glue_csv(page, f'best_{d}', 'auroc', 'max', dataset=d, layer=layers[0])} against "
        f"{format_value(paper[d], 'auroc')}" for d in names if d in paper.index]  # read back from the CSV
glue_text("vs_paper", ("Against ENB5 (table 3, layer 7), the highest AUROC of any run here at that layer: "
                       + "; ".join(gaps) + ". (Picking the highest of several runs on the test images flatters it.)")
          if gaps and str(layers[0]) == "7" else "The paper reports none of these data sets at this layer.")

# %% [markdown]
# ## What this shows
#
# Larger inputs to the reference backbone ({glue:text}`ref`, mean AUROC {glue:text}`ref_mean` over data sets
# and layers) against its native size: {glue:text}`size_words`. Of these {glue:text}`n_size` comparisons,
# {glue:text}`n_size_higher` are higher beyond noise, {glue:text}`n_size_lower` lower and
# {glue:text}`n_size_within_noise` within noise ({glue:text}`family`). Larger networks at their own native
# sizes against the reference: {glue:text}`scale_words`. {glue:md}`vs_paper:myst`
#
# Read the size comparisons with the caveat above: the Lite weights were trained at their native size, so a
# larger input changes the scale the filters see as well as the number of pixels. A size gain that is
# "within noise" therefore does not show that resolution cannot rescue a class such as screw, nor even that
# feeding a network trained at {glue:text}`ref_native` px larger images cannot: only that these test images
# resolve no such gain. The images of this run are
# also at most {glue:text}`image_side` px on a side, so an input beyond that adds no detail, only
# interpolation. The paper states neither the size at which it fed ENB5 nor the size of the images it read
# that input from (MVTec AD's originals are 700 to 1024 px on a side), so no page of this book can say how
# much of its higher figures comes from resolution.
#
# ## Try it
#
# - The full size sweep (slow the first time, then cached):
#   `.venv/bin/python scripts/build_book.py --only 12_resolution -p full_sweep true`. Does the
#   reference backbone's AUROC rise and then fall with size, as FixRes would predict for a fixed network?
# - Screw alone at a shallower layer, whose cells see less of the object:
#   `-p classes '[screw]' -p layers '[5, 7]'`. Does the size effect change sign between the layers?

# %% tags=["remove-cell"]
from tad.book import teach

size_cmp, scale_cmp = cmp_all[cmp_all.change == "size"], cmp_all[cmp_all.change == "scale"]
up, down = int(counts["n_size_higher"]), int(counts["n_size_lower"])
answer = ("helps here" if up == len(size_cmp) else "helps in part here" if up and not down else
          "does not help beyond noise here" if not up and not down else "hurts here" if not up else
          "helps in some comparisons here and hurts in others")
headline = (f"This run cannot say whether reading the images larger helps: no input larger than the native "
            f"{native} px was run" if size_cmp.empty else
            f"Reading the images larger {answer}: {ref.split()[0]} fed larger than its native "
            f"{native} px scores higher beyond noise in {counts['n_size_higher']}, lower in "
            f"{counts['n_size_lower']} and within noise in {counts['n_size_within_noise']} of {n_size} "
            f"comparisons (data set and layer; {format_value(family.level, 'percent')} intervals, this page's "
            f"family): " + "; ".join(f"{r.dataset}, {config_label({'layer': r.layer}, parts=('layer',))}, at "
                                     f"{r.run.split()[1]} px {format_value(r.diff, 'diff')} "
                                     f"[{r.diff_low:.3f}, {r.diff_high:.3f}]".replace("-", "−") + f", {r.verdict}"
                                     for r in size_cmp.itertuples()))
points = [headline,
          teach.tally_sentence(list(scale_cmp.verdict), what=f"larger Lite models against {ref}",
                               higher="higher with the larger model", lower="lower") if len(scale_cmp) else
          "No larger model was run",
          teach.extremes_sentence(table.groupby("run").auroc.mean().to_dict(),
                                  what="the mean AUROC over data sets and layers")]
glue_text("takeaways", teach.takeaways(points))
glue_text("ex_time", "; ".join(f"{b} at {s} px: {format_value(v, 'seconds')}" for (b, s), v in seconds.items()) + ".")
big = cmp_all.loc[cmp_all["diff"].abs().idxmax()] if len(cmp_all) else None
glue_text("ex_big", f"The largest change is {big.run} on {big.dataset} layer {big.layer} ({big.change}): "
          + teach.comparison_sentence(big.run, big.against, big["diff"], big.diff_low, big.diff_high, big.verdict)
          if big is not None else "No comparison was run.")

# %% [markdown]
# ## Exercises
#
# **1. What does size cost?** How long did each run take, and how does that grow with the input side?
#
# ```{dropdown} Solution
# {glue:md}`ex_time:myst` These times include feature extraction only where the features were not cached
# yet, so a run that found its features in the cache looks cheap. For a fresh extraction, a convolutional
# network's work grows with the number of positions, the square of the side: doubling the side should cost
# about four times as much, plus a fixed overhead per image.
# ```
#
# **2. The largest change.** Which larger input or larger model moved the AUROC most, and is it resolved?
#
# ```{dropdown} Solution
# Sort the comparisons by the size of `diff`. {glue:md}`ex_big:myst` A size change also changes the scale at
# which the network sees the object (see the caveat at the top), so a change with input size is not only
# "more detail".
# ```
