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
# # Does the choice of backbone matter?
#
# Ono & Mori ran their whole grid (table 1) with two ImageNet networks, ResNet-18 (layers 1-5) and
# EfficientNet-B5 (ENB5, layers 1-7), and show only ENB5:
#
# > "Below we show the results with ENB5, which performed better in the experiments, as the pretrained
# > model." (section 3.2, our translation; no ResNet-18 figure is given. Table 3: ENB5 per layer, k-NN,
# > NPCA 50 %, mean over the 15 classes 0.97 at layer 7.)
#
# This page runs every backbone whose weights are at hand on every layer, beside the paper's table 3. ENB5
# and ResNet-18 need the Hugging Face Hub; without it they are skipped with the reason printed, never
# replaced by random weights. The offline EfficientNet-Lite0/1/2 (the same 7-stage layout, real ImageNet
# weights) always run.

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
backbone = "tf_efficientnet_lite0"  # the reference backbone the others are compared with
backbones = ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2",
             "tf_efficientnet_b5", "resnet18"]  # tried in turn; those without weights here are skipped
input_size = None                   # None means each backbone's native size
estimator = "knn1"                  # table 3 uses k-NN
reduction, ratio = "npca", 0.5
pooling = "avg"
device = "cpu"
cache_dir = None                    # None: the library's feature cache
results = None                      # None: the library's results table
alpha = 0.05                        # family-wise error rate of the backbone comparisons, per data set
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd

from tad.backbones import WeightsUnavailable, load_backbone
from tad.features import select
from tad.book.page import PAPER_BACKBONE, open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import auroc_entry, ci_text, format_value, show_table
from tad.paper import paper_table
from tad.plots import roc_figure, score_histogram, stage_shapes
from tad.scorecard import claim_row, save_claims
from tad.stats import BOOK_FAMILY, Family, compare
from tad.sweep import run_grid, score, split_features

page = open_page("07_backbones", data_root=data_root, classes=classes, backbone=backbone, input_size=input_size,
                 seed=seed, cache_dir=cache_dir, results=results)
loaded, skipped = {}, {}
for name in backbones:
    try:
        loaded[name] = page.backbone if name == page.backbone.name else load_backbone(name)
        print(f"{name}: {loaded[name].weights['source']}; native input {loaded[name].input_size} px")
    except WeightsUnavailable as err:
        skipped[name] = str(err)
        print(f"SKIPPED {name}: {err}")

# %% tags=["remove-cell"]
from matplotlib_inline.backend_inline import set_matplotlib_formats

set_matplotlib_formats("png")  # tad.plots' figures are built without pyplot: show them as PNG from the start

# %% [markdown]
# ## What each backbone hands over
#
# Each layer is a stage's activation map: channels x height x width for one image at the input size of
# this run (the network's native one unless `input_size` says otherwise). Pooling turns each map into one
# vector of its channel count, so deeper layers give longer vectors from coarser maps.

# %% tags=["hide-input"]
shapes = pd.concat({name.removeprefix("tf_efficientnet_"): stage_shapes(b, input_size)
                    .apply(lambda r: f"{r.channels} x {r.height} x {r.width}", axis=1)
                    for name, b in loaded.items()}, axis=1)
shapes.columns = [f"{c} ({input_size or loaded[n].input_size} px)" for c, n in zip(shapes.columns, loaded)]
shapes

# %% [markdown]
# ## Every layer of every backbone
#
# Every layer and their concatenation ("all"), one trial per class; the mean over the classes of this run
# beside the paper's table 3 over the same classes (rows the paper lacks stay empty).

# %%
frames = [run_grid(page.splits, b, page.results, poolings=[pooling], reductions=[(reduction, ratio)],
                   estimators=[estimator], input_size=input_size, cache_dir=page.cache_dir, device=device,
                   seed=seed, progress=False) for b in loaded.values()]
df = pd.concat(frames, ignore_index=True)
layers = [str(i) for i in range(1, max(b.n_layers for b in loaded.values()) + 1)] + ["all"]
table = df.pivot_table(index="backbone", columns="layer", values="auroc").reindex(columns=layers)

# %% tags=["hide-input"]
paper = paper_table(3)
present = [c for c in page.names if c in paper.index]
paper_mean = paper.loc[present].mean().reindex(layers) if present else None
shown = table.copy()
if present:
    shown.loc["paper ENB5 (table 3), same classes"] = paper_mean
shown.round(3)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4))
for name in table.index:
    row = table.loc[name].drop("all").dropna()
    ax.plot(row.index.astype(int), row.values, marker="o", label=name.removeprefix("tf_efficientnet_"))
if present:
    ax.plot(paper_mean.drop("all").index.astype(int), paper_mean.drop("all").values, "k--", marker="s",
            label="paper ENB5 (table 3)")
ax.set(xlabel="layer", ylabel=f"mean image AUROC ({len(page.splits)} data set(s))",
       title=f"{pooling} pooling, {reduction.upper()} {ratio:.0%}, {estimator}")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# Mean AUROC by layer, one line per backbone (the dashed line is the paper's ENB5 over the same classes,
# when it reports them). Look at whether the lines share a shape, rising with depth, more than at the
# gaps between them.

# %% [markdown]
# ## At the last layer, with intervals
#
# Per data set, each backbone's last layer (7 for EfficientNet, 5 for ResNet-18) with the 95 % interval of
# `tad.stats.auroc_ci` (a score interval that stays open at AUROC 1, where a percentile bootstrap collapses
# to a point), and each backbone against the reference one, a {term}`paired comparison` on the same test
# images (`tad.stats.compare`: DeLong's test and an interval of the difference at the family's Bonferroni
# level, "higher" or "lower" only when both say so). EfficientNet-B5 against the reference is the paper's
# claim and one of the book's headline comparisons, tested in their family ({glue:text}`book_family`); every
# other backbone belongs to this page's family ({glue:text}`page_family`). {glue:text}`claim_tested`

# %% tags=["hide-input"]
rivals = [n for n in loaded if n != page.backbone.name]
headline = PAPER_BACKBONE if PAPER_BACKBONE in rivals else None  # the claim: ENB5 against the reference
page_family = Family(f"each backbone against the reference ({page.backbone.name}) but EfficientNet-B5",
                     max(len(rivals) - (headline is not None), 1), alpha)
rows, scores, claim_rows = [], {}, []
for split in page.splits:
    s = {}
    for name, b in loaded.items():
        train, test = split_features(split, b, input_size=input_size, cache_dir=page.cache_dir, device=device,
                                     progress=False)
        s[name] = score(select(train, b.n_layers, pooling, b), select(test, b.n_layers, pooling, b),
                        reduction, ratio, estimator, seed=seed)
    scores[split.name] = s
    labels = split.test_labels
    for name, v in s.items():
        row = {"dataset": split.name, "backbone": name, "layer": loaded[name].n_layers, **auroc_entry(labels, v),
               "minus reference": 0.0, "minus_reference_low": None, "minus_reference_high": None, "p": None,
               "level": None, "vs reference": "reference", "family": "", "claim_outcome": ""}
        if name != page.backbone.name:
            family = BOOK_FAMILY if name == headline else page_family
            c = compare(labels, v, s[page.backbone.name], family=family)
            row |= {"minus reference": c.diff, "minus_reference_low": c.ci_low, "minus_reference_high": c.ci_high,
                    "p": c.p, "level": c.level, "vs reference": c.verdict,
                    "family": "book" if family is BOOK_FAMILY else "page"}
            if name == headline:
                claim_rows.append(claim_row(
                    "EfficientNet-B5 vs the reference backbone", split.name, c, auroc_a=row["auroc"],
                    auroc_b=auroc_entry(labels, s[page.backbone.name])["auroc"],
                    config=f"{name} vs {page.backbone.name}, last layers; {pooling}, {reduction.upper()} "
                           f"{format_value(ratio, 'percent')}, {estimator}", page=page.name))
                row["claim_outcome"] = claim_rows[-1]["outcome"]
        rows.append(row)
last = pd.DataFrame(rows)
save_claims(claim_rows, page.download_dir, page.name)
glue_text("csv_link", save_csv(last, page))
glue_text("book_family", BOOK_FAMILY.describe())
glue_text("page_family", page_family.describe())
glue_text("claim_tested", f"{PAPER_BACKBONE} ran here, so the paper's claim is tested below." if headline else
          f"{PAPER_BACKBONE}, the paper's backbone, "
          + ("has no weights at hand here" if PAPER_BACKBONE in skipped else "is the reference here"
             if PAPER_BACKBONE == page.backbone.name else "is not among the parameter `backbones`")
          + ", so the paper's claim that it beats a smaller network is not tested on this page.")
last["difference from the reference"] = [
    ci_text(d, lo, hi) if v != "reference" else "" for d, lo, hi, v in
    zip(last["minus reference"], last.minus_reference_low, last.minus_reference_high, last["vs reference"])]
show_table(last[["dataset", "backbone", "interval", "difference from the reference", "vs reference", "family"]])

# %% [markdown]
# Download these rows: {glue:md}`csv_link:myst`

# %% tags=["hide-input"]
first = page.splits[0]
fig = score_histogram(first.test_labels, scores[first.name][page.backbone.name])
fig.axes[0].set_title(f"{first.name}: {page.backbone.name}, layer {page.backbone.n_layers}", fontsize=10)
display(fig)
display(roc_figure(first.test_labels, scores[first.name][page.backbone.name],
                   name=f"{first.name}: {page.backbone.name}, layer {page.backbone.n_layers}"))

# %% [markdown]
# The reference backbone's last-layer scores of good and defective test images of the first data set, and
# its ROC curve: the overlap of the two histograms is where any threshold makes mistakes.

# %% tags=["remove-cell"]
mean_last = pd.Series({n: table.loc[n, str(b.n_layers)] for n, b in loaded.items()})
glue_value("n_loaded", len(loaded), "count")
glue_text("loaded", ", ".join(n.removeprefix("tf_efficientnet_") for n in loaded))
glue_text("skipped", (f"Skipped for want of weights: {', '.join(skipped)} (the reason is printed above), so "
                      "the paper's ENB5-against-ResNet-18 comparison is not repeated here."
                      if skipped else "Every backbone asked for ran."))
glue_text("best_last", mean_last.idxmax().removeprefix("tf_efficientnet_"))
glue_value("best_last_auroc", mean_last.max())
glue_text("worst_last", mean_last.idxmin().removeprefix("tf_efficientnet_"))
glue_value("worst_last_auroc", mean_last.min())
rising = [n.removeprefix("tf_efficientnet_") for n in table.index if table.loc[n, str(loaded[n].n_layers)]
          > table.loc[n, "1"]]
glue_text("rising", ", ".join(rising) if rising else "none of them")
others = last[last["vs reference"] != "reference"]
glue_value("n_cmp", len(others), "count")
glue_csv(page, "n_noise", "backbone", "count", "count", **{"vs reference": "within noise"})
glue_text("reference", page.backbone.name.removeprefix("tf_efficientnet_"))
if present:
    gap = mean_last[page.backbone.name] - paper_mean["7"]
    glue_text("vs_paper", "Over the class(es) the paper reports, its ENB5 has "
              f"{format_value(paper_mean['7'], 'auroc')} "
              f"at layer 7, the reference backbone {format_value(mean_last[page.backbone.name], 'auroc')} "
              f"({format_value(gap, 'diff')}).")
else:
    glue_text("vs_paper", "The paper reports none of these data sets, so there is no ENB5 figure to set beside ours.")

# %% [markdown]
# ## What this shows
#
# {glue:text}`n_loaded` backbone(s) ran ({glue:text}`loaded`). {glue:md}`skipped:myst` At the last layer the
# mean AUROC is highest for {glue:text}`best_last` ({glue:text}`best_last_auroc`) and lowest for
# {glue:text}`worst_last` ({glue:text}`worst_last_auroc`); the last layer beats layer 1 for
# {glue:text}`rising`, the shape of the paper's table 3. {glue:md}`vs_paper:myst`
#
# Whether the backbones differ is a question for the intervals, not for the means: of the
# {glue:text}`n_cmp` per-data-set comparisons with the reference backbone ({glue:text}`reference`),
# {glue:text}`n_noise` are within noise at the stated error rate. Bigger Lite models also read larger inputs
# (their native sizes in the stage table), so a difference between them mixes network and resolution; the
# resolution page separates the two. With the ENB5 weights at hand (a local state_dict, see
# `tad.backbones.load_backbone`) ENB5 and ResNet-18 join this page with no change.
#
# ## Try it
#
# - With MVG instead of k-NN: `.venv/bin/python scripts/build_book.py --only 07_backbones -p estimator mvg`.
#   Do the backbones keep their order at the last layer, and do the intervals still overlap?
# - One class: `-p classes '[screw]'`. Look at the stage table's 7 x 7 last map: how large is one cell of
#   it on a screw's thread?

# %% tags=["remove-cell"]
from tad.book import teach

short = {n: n.removeprefix("tf_efficientnet_") for n in loaded}
if headline:  # the page's answer to the paper's claim, each number read from the page's CSV
    parts = [f"{d} {glue_csv(page, f'head_verdict_{d}', 'vs reference', kind='text', dataset=d, backbone=headline)}, "
             f"{glue_csv(page, f'head_diff_{d}', 'minus reference', kind='diff', dataset=d, backbone=headline)} "
             f"[{glue_csv(page, f'head_low_{d}', 'minus_reference_low', kind='diff', dataset=d, backbone=headline)}, "
             f"{glue_csv(page, f'head_high_{d}', 'minus_reference_high', kind='diff', dataset=d, backbone=headline)}]"
             f", claim {glue_csv(page, f'head_outcome_{d}', 'claim_outcome', kind='text', dataset=d, backbone=headline)}"
             for d in page.names]
    head = (f"EfficientNet-B5, the paper's backbone, against {short[page.backbone.name]}, per data set: "
            f"{'; '.join(parts)} (the difference with its "
            f"{glue_csv(page, 'head_level', 'level', 'max', 'percent', backbone=headline)} interval, in the book's "
            "headline family)")
else:
    head = ("EfficientNet-B5, the paper's backbone, did not run here, so the paper's claim that it beats a smaller "
            "network is not tested" + (
                f"; of the {glue_csv(page, 'n_rival_rows', 'backbone', 'count', 'count', family='page')} comparisons "
                f"of the backbones that ran with {short[page.backbone.name]}, "
                f"{glue_csv(page, 'n_rival_noise', 'backbone', 'count', 'count', family='page', **{'vs reference': 'within noise'})}"
                " are within noise" if rivals else f", and only {short[page.backbone.name]} ran"))
points = [head,
          *([teach.tally_sentence(list(others["vs reference"]), what=f"each backbone against "
                                  f"{short[page.backbone.name]}, per data set", higher="higher than the reference",
                                  lower="lower")] if headline else []),
          teach.extremes_sentence({short[n]: v for n, v in mean_last.items()},
                                  what=f"the mean last-layer AUROC over the {len(page.splits)} data set(s)")]
if present:
    points.append(teach.paper_sentence(f"at the last layer, over the class(es) the paper reports, ENB5 against "
                                       f"{short[page.backbone.name]}", mean_last[page.backbone.name], paper_mean["7"]))
glue_text("takeaways", teach.takeaways(points))
glue_text("ex_rising", f"The last layer beats layer 1 for {len(rising)} of the {len(table)} backbone(s)"
          + (f" ({', '.join(rising)})." if rising else "."))
if len(others):
    o = others.loc[others["minus reference"].abs().idxmax()]
    glue_text("ex_gap", f"The largest per-data-set difference from the reference is {short[o.backbone]} on "
              f"{o.dataset}: {format_value(o['minus reference'], 'diff')}, verdict {o['vs reference']}.")
else:
    glue_text("ex_gap", "Only the reference backbone ran here, so there is no difference to read.")

# %% [markdown]
# ## Exercises
#
# **1. The shape of table 3.** For how many backbones does the last layer beat layer 1?
#
# ```{dropdown} Solution
# Compare the first and the last layer's columns of the table of means, one row per backbone.
# {glue:md}`ex_rising:myst` A shared shape across backbones says the depth effect is not one network's quirk.
# ```
#
# **2. The biggest backbone difference.** Which backbone differs most from the reference on one data set, and
# is the difference resolved?
#
# ```{dropdown} Solution
# Sort the last-layer table by the size of "minus reference". {glue:md}`ex_gap:myst` Bigger Lite models
# also read larger inputs, so such a difference mixes network and resolution (see {doc}`12_resolution`).
# ```
#
# **3. Another estimator.** Rerun with `-p estimator mvg`. Do the backbones keep their order?
#
# ```{dropdown} Solution
# Compare the new ranking in the first takeaway with this one. An order that flips between estimators while
# every comparison stays within noise was never resolved in the first place: only verdicts outside noise
# carry over.
# ```
