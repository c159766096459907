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
# # Does noise augmentation help?
#
# Ono & Mori also trained the estimators on the good images plus noisy copies of them. They give no table,
# only a sentence beside table 4 (EfficientNet-B5 layer 7, NPCA 50 %):
#
# > Simple noise augmentation lowered the AUC by less than 0.1 point for both MVG and k-NN, so augmentation
# > matters little when the features come from a pretrained network. (section 3.2, our paraphrase; the
# > noise, its strength and the number of copies are not given.)
#
# Here the noise is ours: Gaussian, added to the image on its [0, 1] scale before normalisation, with
# noisy copies of every training image added to the clean ones (test images are never augmented). The
# question is whether the test sets at hand can see a change of the paper's size at all.

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
layer = 7
reduction, ratio = "npca", 0.5
pooling = "avg"
estimators = ["mvg", "knn1"]        # the two estimators the paper's sentence is about
noise_stds = [0.02, 0.05, 0.1]      # std of the Gaussian noise on the [0, 1] image; 0 (no augmentation) is always run
n_augment = 1                       # noisy copies per training image, added to the clean images
paper_loss = 0.001                  # the paper's "0.1 point", read as 0.1 percentage point of AUROC
claim_std = 0.05                    # noise level of the scorecard's claim row (the paper names none); None: no row
device = "cpu"
cache_dir = None                     # feature cache; None means $TAD_CACHE (the shared default)
results = None                       # shared results table; None means one in the cache folder
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd

from tad.features import select
from tad.book.page import open_page, save_csv
from tad.book.glue import glue_csv, glue_text, glue_value
from tad.book.format import auroc_entry, ci_text, config_label, format_value, show_table
from tad.scorecard import NEGLIGIBLE, claim_row, save_claims
from tad.stats import BOOK_FAMILY, Family, compare, gain_outcome, gain_statement
from tad.sweep import score, split_features

page = open_page("06_augmentation", data_root=data_root, classes=classes, backbone=backbone,
                 input_size=input_size, seed=seed, cache_dir=cache_dir, results=results)
if isinstance(n_augment, bool) or not isinstance(n_augment, int) or n_augment < 1:
    raise ValueError(f"n_augment {n_augment!r} must be an int >= 1 (the number of noisy copies per image)")
if not noise_stds or any(not s > 0 for s in noise_stds):
    raise ValueError(f"noise_stds {noise_stds!r} must be a non-empty list of values > 0")
if claim_std is not None and claim_std not in noise_stds:
    raise ValueError(f"claim_std {claim_std!r} must be one of noise_stds {noise_stds!r}, or None for no claim row")
glue_text("noise_stds", ", ".join(f"`{s}`" for s in noise_stds))
glue_text("n_augment", f"`{n_augment}`")
glue_text("paper_loss", f"`{paper_loss}`")

# %% [markdown]
# Noise standard deviations {glue:md}`noise_stds:myst`, each with {glue:md}`n_augment:myst` noisy copy
# (copies) per training image, against no augmentation. The features of every noisy copy are one more
# extraction of the training images, cached like the clean ones.

# %%
levels = [0.0] + [float(s) for s in noise_stds]
labels, scores = {}, {}
for split in page.splits:
    labels[split.name] = split.test_labels
    for std in levels:
        train, test = split_features(split, page.backbone, input_size=input_size, noise_std=std,
                                     n_augment=n_augment if std else 0, cache_dir=page.cache_dir,
                                     device=device, progress=False)
        X, Y = select(train, layer, pooling, page.backbone), select(test, layer, pooling, page.backbone)
        for est in estimators:
            scores[split.name, est, std] = score(X, Y, reduction, ratio, est, seed=seed)

# %% tags=["hide-input"]
rows = []
for (name, est, std), s in scores.items():
    rows.append({"dataset": name, "estimator": est, "noise_std": std, **auroc_entry(labels[name], s)})
trials = pd.DataFrame(rows)
show_table(trials.pivot(index=["estimator", "noise_std"], columns="dataset", values="interval").loc[estimators]
           .reset_index())

# %% [markdown]
# {term}`AUROC` with its 95 % interval from `tad.stats.auroc_ci` (open at AUROC 1, where a percentile
# {term}`bootstrap` collapses to width 0), per estimator, noise level (0: no augmentation) and data set.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(estimators), figsize=(4.5 * len(estimators), 3.6), sharey=True, squeeze=False)
for ax, est in zip(axes[0], estimators):
    for name, g in trials[trials.estimator == est].sort_values("noise_std").groupby("dataset"):
        ax.errorbar(g.noise_std, g.auroc, yerr=[g.auroc - g.ci_low, g.ci_high - g.auroc], marker="o",
                    capsize=3, label=name)
    ax.set(title=config_label({"estimator": est}, parts=("estimator",)), xlabel="noise std (on the [0, 1] image)",
           xticks=levels)
axes[0, 0].set_ylabel("image AUROC (95 % interval)")
axes[0, -1].legend(fontsize=8, loc="lower left")
fig.suptitle(f"{page.backbone.name}, {config_label({'layer': layer, 'pooling': pooling, 'reduction': reduction, 'ratio': ratio}, parts=('layer', 'pooling', 'reduction'))}, "
             f"clean + {n_augment} noisy copy(ies) per image")
fig.tight_layout()
plt.show()

# %% [markdown]
# Each line is one data set; the leftmost point is no augmentation. **Look at** whether any line leaves
# the interval of its own leftmost point: changes inside it are not resolved by these test images.
#
# ## Augmented against clean, paired
#
# Each noise level against no augmentation, a {term}`paired comparison` on the same test images
# (`tad.stats.compare`: DeLong's test and an interval of the difference at the family's Bonferroni level,
# "higher" or "lower" only when both say so). The paper's claim is one of the book's headline comparisons:
# MVG with noise std {glue:text}`claim_std` against none (the paper names no noise level; the parameter
# `claim_std` picks one), tested in their family ({glue:text}`book_family`); every other pair belongs to
# this page's family ({glue:text}`page_family`). The last column asks whether the interval excludes a loss
# of the paper's size ({glue:md}`paper_loss:myst` of AUROC).

# %% tags=["hide-input"]
headline = ("mvg", claim_std)  # the claim's pair: MVG, one noise level against none
pairs = [(est, std) for est in estimators for std in levels[1:]]
page_family = Family("each noise level against none, each estimator, but the headline pair",
                     max(len(pairs) - (headline in pairs), 1))
aurocs = trials.set_index(["dataset", "estimator", "noise_std"]).auroc
rows, claim_rows = [], []
for name in labels:
    for est, std in pairs:
        family = BOOK_FAMILY if (est, std) == headline else page_family
        c = compare(labels[name], scores[name, est, std], scores[name, est, 0.0], family=family)
        rows.append({"dataset": name, "estimator": est, "noise_std": std, "minus_clean": c.diff,
                     "minus_clean_low": c.ci_low, "minus_clean_high": c.ci_high, "p": c.p, "level": c.level,
                     "verdict": c.verdict, "family": "book" if family is BOOK_FAMILY else "page",
                     "paper's loss": gain_statement((c.ci_low, c.ci_high), -paper_loss, level=c.level).split(" (")[0],
                     "paper_loss_outcome": gain_outcome((c.ci_low, c.ci_high), -paper_loss),
                     "claim_outcome": ""})
        if (est, std) == headline:
            claim_rows.append(claim_row(
                "augmentation vs none", name, c, auroc_a=aurocs[name, est, std], auroc_b=aurocs[name, est, 0.0],
                config=f"noise std {std} ({n_augment} noisy copy per image) vs none; "
                       + config_label({"layer": layer, "pooling": pooling, "reduction": reduction, "ratio": ratio,
                                       "estimator": est}),
                page=page.name))
            rows[-1]["claim_outcome"] = claim_rows[-1]["outcome"]
verdicts = pd.DataFrame(rows)
save_claims(claim_rows, page.download_dir, page.name)
trials = trials.merge(verdicts, on=["dataset", "estimator", "noise_std"], how="left")
glue_text("csv_link", save_csv(trials, page))
glue_text("claim_std", str(claim_std))
glue_text("book_family", BOOK_FAMILY.describe())
glue_text("page_family", page_family.describe())
verdicts["augmented minus clean"] = [ci_text(d, lo, hi) for d, lo, hi in
                                     zip(verdicts.minus_clean, verdicts.minus_clean_low, verdicts.minus_clean_high)]
verdicts["interval level"] = [format_value(lv, "percent") for lv in verdicts.level]
show_table(verdicts[["dataset", "estimator", "noise_std", "augmented minus clean", "interval level", "p", "verdict",
                     "family", "paper's loss"]])

# %% [markdown]
# The headline rows are also read as the introduction's scorecard reads the claim (`tad.scorecard`): the
# paper says augmentation changes little, read as alike within {glue:text}`negligible` of AUROC
# (`tad.scorecard.NEGLIGIBLE`, a margin wider than the page's `paper_loss`): *replicated* when the interval
# lies within it, *contradicted* when it lies wholly outside it, *unresolved* otherwise (the CSV's column
# `claim_outcome`). Every trial with its comparison against no augmentation:
#
# ```{glue:md} csv_link
# :format: myst
# ```

# %% tags=["remove-cell"]
counts = verdicts.verdict.value_counts()
excluded = verdicts.paper_loss_outcome == "excluded"
half = (verdicts.minus_clean_high - verdicts.minus_clean_low) / 2
change = verdicts.minus_clean  # AUROC augmented minus AUROC clean, same test images
glue_text("negligible", format_value(NEGLIGIBLE, "auroc"))
glue_value("n_pairs", len(verdicts), "count")
glue_csv(page, "n_lower", "verdict", "count", "count", verdict="lower")  # read back from the page's CSV
glue_csv(page, "n_higher", "verdict", "count", "count", verdict="higher")
glue_csv(page, "n_excluded", "paper_loss_outcome", "count", "count", paper_loss_outcome="excluded")
glue_value("median_half_width", half.median())
glue_value("n_drops", int((change < 0).sum()), "count")
glue_value("n_changes", len(change), "count")
glue_value("largest_change", change.abs().max())
clear = counts.get("lower", 0) + counts.get("higher", 0)
glue_text("agree", ("So no change is resolved by these test sets: at their scale the data agree with the paper that "
                    "augmentation changes little" if not clear else
                    f"So augmentation moves the AUROC beyond the noise in {clear} of the {len(verdicts)} "
                    "comparisons, more than the paper's sentence allows there")
          + ("; whether it changes the AUROC by as little as the paper reports they cannot say, since no interval "
             "excludes a loss of that size (that needs many more test images, or the paper's 15 classes)."
             if not excluded.any() else
             f"; {int(excluded.sum())} of the intervals exclude a loss of the paper's size."))

# %% [markdown]
# ## What this shows
#
# Of {glue:text}`n_pairs` augmented-against-clean comparisons, {glue:text}`n_lower` come out lower and
# {glue:text}`n_higher` higher beyond the noise. The point estimates move both ways
# ({glue:text}`n_drops` of {glue:text}`n_changes` are drops; the largest change is
# {glue:text}`largest_change`), but the intervals of the difference have a median half-width of
# {glue:text}`median_half_width`, and {glue:text}`n_excluded` of them exclude a loss of the paper's size.
# {glue:text}`agree` The paper's "point" is itself ambiguous (a point of AUROC, or a
# percentage point); the comparisons above use the reading in the parameter `paper_loss`.
#
# ## Try it
#
# - More copies and stronger noise:
#   `.venv/bin/python scripts/build_book.py --only 06_augmentation -p n_augment 3 -p noise_stds "[0.05, 0.2]"`.
#   Look at whether any verdict leaves "within noise".
# - Read the paper's sentence as a loss of a tenth of AUROC: `-p paper_loss 0.1`. Look at how many
#   intervals now exclude a loss that large.

# %% tags=["remove-cell"]
from tad.book import teach

if claim_rows:  # the page's answer to the paper's claim, each number read from the page's CSV
    where = {"estimator": headline[0], "noise_std": headline[1]}
    parts = [f"{d} {glue_csv(page, f'head_verdict_{d}', 'verdict', kind='text', dataset=d, **where)}, "
             f"{glue_csv(page, f'head_diff_{d}', 'minus_clean', kind='diff', dataset=d, **where)} "
             f"[{glue_csv(page, f'head_low_{d}', 'minus_clean_low', kind='diff', dataset=d, **where)}, "
             f"{glue_csv(page, f'head_high_{d}', 'minus_clean_high', kind='diff', dataset=d, **where)}], claim "
             f"{glue_csv(page, f'head_outcome_{d}', 'claim_outcome', kind='text', dataset=d, **where)}"
             for d in labels]
    head = (f"Noise augmentation (std {claim_std}) against none with MVG, which the paper says changes the AUROC "
            f"by less than 0.1 point (read here as alike within ±{format_value(NEGLIGIBLE, 'auroc')}), per data "
            f"set: {'; '.join(parts)} (augmented minus clean with its "
            f"{glue_csv(page, 'head_level', 'level', 'max', 'percent', **where)} interval, in the book's headline "
            "family)")
else:
    head = ("This run fits no MVG at a claim noise level (`claim_std`), so the paper's claim that augmentation "
            "changes little is not tested here")
glue_text("takeaways", teach.takeaways([
    head,
    teach.tally_sentence(list(verdicts.verdict), what="each noise level against no augmentation, per data set "
                         "and estimator", higher="higher with augmentation", lower="lower"),
    teach.resolution_sentence(half, "intervals of the differences"),
    f"{int(excluded.sum())} of the {len(verdicts)} intervals exclude a loss as small as the paper's, so this run "
    f"{'can' if excluded.all() else 'cannot'} confirm that augmentation costs no more than that"]))
big = verdicts.loc[change.abs().idxmax()]
glue_text("ex_largest", f"The largest change is noise std {big.noise_std} on {big.dataset} with "
          f"{config_label({'estimator': big.estimator}, parts=('estimator',))}: "
          + teach.comparison_sentence("augmented", "clean", big.minus_clean, big.minus_clean_low,
                                      big.minus_clean_high, big.verdict))
glue_text("ex_excluded", f"Here {int(excluded.sum())} of the {len(verdicts)} intervals exclude a loss of "
          f"{format_value(paper_loss, 'auroc')}; the median half-width is {format_value(half.median(), 'auroc')}.")

# %% [markdown]
# ## Exercises
#
# **1. The largest change.** Which noise level, data set and estimator moved the AUROC most, and is the change
# resolved?
#
# ```{dropdown} Solution
# Sort the verdict table by the size of `diff`. {glue:md}`ex_largest:myst` A large point change can still be
# within noise when its interval is wide; the verdict, not the size, says whether it is resolved.
# ```
#
# **2. How small a loss can these test sets exclude?** Rerun with the paper's loss read as a tenth of AUROC:
# `-p paper_loss 0.1`. How many intervals then exclude it?
#
# ```{dropdown} Solution
# {glue:md}`ex_excluded:myst` An interval excludes a loss when its lower end lies above minus that loss. A
# loss larger than most half-widths is excluded wherever the point change is near zero, so with a loss of a
# tenth most intervals should exclude it; the paper's small loss needs intervals narrower than it, that is,
# far more test images.
# ```
