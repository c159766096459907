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
# # tad: transfer anomaly detection, a literate study
#
# *Can a network trained to tell cats from cars find a scratch on a screw it has never seen scratched?*
#
# Takuya Ono and Junichiro Mori (The University of Tokyo) asked which of the many small choices of transfer
# anomaly detection matter (an ImageNet-pretrained CNN turns each image into a feature vector, a simple model
# of the good images' vectors flags anything far from them) and made claims about each of them. This book
# reruns their study on the data it finds and tests every claim it can. This page is executed last: what
# follows is read from the other pages of this very build, so it holds for whatever data and parameters the
# build ran, and only for them.
#
# ## What replicates: the scorecard
#
# ```{glue:md} sc_rule
# :format: myst
# ```

# %% tags=["parameters", "remove-cell"]
generated = "../book/generated"  # folder of the executed pages whose glued values this page restates

# %% tags=["remove-cell"]
from pathlib import Path

from IPython.display import display

from tad import scorecard
from tad.book.glue import glue_text, read_glued
from tad.book.format import format_value, show_table
from tad.stats import BOOK_FAMILY
from tad.book.teach import restate_list, takeaway_items
from tad.book.words import bullets, listing

pages = sorted(p.stem for p in Path(generated).glob("*.ipynb") if p.stem != "intro" and not p.stem.startswith("."))
glued = {name: read_glued(Path(generated) / f"{name}.ipynb") for name in pages}
for values in glued.values():  # each page's takeaways, one sentence each, as takeaway_1, takeaway_2, ...
    values |= {f"takeaway_{i}": item for i, item in enumerate(takeaway_items(values.get("takeaways", "")), 1)}
claims = scorecard.read_claims(Path(generated) / "data")
claims = claims[claims.page.isin(pages)]  # rows of the pages executed in this build only
card = scorecard.scorecard_table(claims)
levels = listing(format_value(v, "percent") for v in sorted(set(claims.level)))
family = (BOOK_FAMILY.describe() if set(claims.level) <= {BOOK_FAMILY.level} else
          f"{levels} intervals; {BOOK_FAMILY.describe()}")
glue_text("sc_rule", (
    f"No page of this build tested a claim of the paper, so there is no scorecard to show: the claims are tested "
    f"by the pages {listing(dict.fromkeys(c.page for c in scorecard.CLAIMS))}."
    if claims.empty else
    f"Each row is one claim of the paper, each data set column one test of it on that data set's test images: "
    f"the difference of {{term}}`AUROCs <AUROC>` (the chance that a defective image scores above a good one) "
    f"between the two configurations the claim contrasts, a {{term}}`paired comparison` on the same images, "
    f"with its interval ({family}).\n\n"
    f"The rule: a claim is **replicated** on a data set when our interval lies wholly on the paper's side of 0 "
    f"(its direction holds), **contradicted** when the interval excludes the paper's effect without "
    f"establishing its direction (or establishes the opposite one), and **unresolved** when it holds both 0 "
    f"and the paper's effect. A claim that two choices perform alike is replicated when the interval lies "
    f"within ±{scorecard.NEGLIGIBLE:g}, contradicted when it lies wholly outside that margin. The last column is "
    f"the smallest difference these test images detect with {format_value(scorecard.POWER, 'percent')} "
    f"power at the interval's level (`tad.scorecard.detectable_difference`, median over the data sets): a "
    f"true effect smaller than that is likely to stay unresolved here."))
glue_text("synthesis", bullets(scorecard.synthesis(claims)) + (
    "\n\nEvery row of the scorecard with its two AUROCs, the test behind the interval and the page that ran it:"
    if len(claims) else ""))

# %% tags=["remove-input"]
if len(card):
    display(card)

# %% [markdown]
# ### What it says
#
# ```{glue:md} synthesis
# :format: myst
# ```

# %% tags=["remove-input"]
if len(claims):
    show_table(claims[["claim", "dataset", "page", "config", "auroc_a", "auroc_b", "effect", "ci_low", "ci_high",
                       "verdict", "method", "paper_effect", "detectable", "outcome"]]
               .rename(columns={"ci_low": "interval low", "ci_high": "interval high"}).round(3))

# %% [markdown]
# ## The study
#
# Visual inspection rarely has defective examples to learn from: defects are rare, varied and new. Transfer
# anomaly detection sidesteps the problem. An ImageNet-pretrained CNN turns each image into a feature
# vector; a simple model of the *good* images' vectors (a Gaussian, or the distance to the nearest good
# images) flags anything far from them. Nothing is trained on defects, and nothing of the CNN is trained at
# all. Ono and Mori tried every choice of this recipe on MVTec AD:
#
# > "Running every combination on MVTec's 15 classes gives 11,550 trials in all. Performance is evaluated
# > as the mean AUC over the 15 classes." (section 3.1, our translation) "Selecting the features of small
# > variance in the CNN's deep activation layers gives high performance even with simple models such as
# > MVG and k-NN." (section 4, our translation)
#
# This book rebuilds that study from its parts, runs it on the data it finds, and sets every number beside
# the paper's. Every page is a notebook executed when the book is built, calling the small library `tad`, and
# starts by saying which data and weights it found.
#
# ## Words you need first
#
# Each word links to the {doc}`glossary <../glossary>`. The data are {term}`MVTec AD` (photographs of objects
# with and without defects) and, where it is missing, {term}`ELPV` (solar cells). A *configuration* is one
# choice of network {term}`layer`, {term}`pooling`, reduction ({term}`PCA` keeps the principal axes of largest
# variance, {term}`NPCA` those of smallest) and estimator ({term}`MVG`, a Gaussian scored by the
# {term}`Mahalanobis distance`, or {term}`k-NN`). A configuration is judged by its {term}`AUROC`: the chance
# that a defective image scores above a good one, 1 a perfect ranking, one half chance. Every AUROC comes with
# its 95 % interval, a {term}`score interval`. Two configurations on the same images are compared by a
# {term}`paired comparison` ({term}`DeLong` test, {term}`MOVER` interval) within a declared family of
# comparisons (the book's headline comparisons, or a page's own), each at the family's Bonferroni level; a
# difference the data do not resolve is called {term}`within noise`.

# %% tags=["remove-cell"]
AXES = ("NPCA 50 % is at or below no reduction on {03_reduction/n_at_or_below} of {03_reduction/n_classes} class(es) "
        "(mean AUROC {03_reduction/npca_mean} against {03_reduction/none_mean}); the paper's gain of "
        "{03_reduction/paper_npca_gain} is excluded on {03_reduction/excluded_on}.")
PRETRAINING = ("The main configuration against baselines that do not use the pretrained features, per data set "
               "(main minus baseline): a random network of the same architecture: {07b_baselines/v_random}; raw "
               "pixels: {07b_baselines/v_pixels}.")
BOTTOM_LINE = [  # (page, lead, template): {page/name} references to this build's glued values
    ("02_layers", "**Which layer.**", "The last layer ({02_layers/last_layer}) against layer 1, on the same test "
                                      "images: mean AUROC {02_layers/last_mean} against {02_layers/first_mean}; "
                                      "the paper's depth claim is {02_layers/depth_outcome}."),
    ("03_reduction", "**Which axes.**", AXES),
    ("10_datasets", "**Does the recipe transfer?**", "{10_datasets/takeaway_1}"),
    ("12_resolution", "**Reading the images larger.**", "Fed larger than its native {12_resolution/ref_native} px, "
                                                        "the reference backbone scores higher beyond noise in "
                                                        "{12_resolution/n_size_higher}, lower in "
                                                        "{12_resolution/n_size_lower} and within noise in "
                                                        "{12_resolution/n_size_within_noise} of "
                                                        "{12_resolution/n_size} comparisons (data set and layer)."),
    ("08_grid", "**The paper's configuration**", "({08_grid/paper_config}) ranks {08_grid/paper_rank} of "
                                                 "{08_grid/n_models} distinct models at {08_grid/paper_auroc} and "
                                                 "{08_grid/paper_ties}; {08_grid/n_tied} distinct models in all "
                                                 "tie with the best."),
    ("07b_baselines", "**What pretraining adds.**", PRETRAINING),
    ("13_uncertainty", "**How much is noise.**", "{13_uncertainty/takeaway_1}"),
]
QUESTIONS = {  # page: its question, as its title asks it (the answer is that page's first takeaway)
    "00_start": "How does one image become a score?",
    "01_data": "What data does this run have?",
    "02_layers": "Which layer carries the anomaly signal?",
    "03_reduction": "Which principal axes should the features keep?",
    "04_pooling": "How should an activation map be pooled?",
    "05_estimators": "Which estimator scores the features best?",
    "06_augmentation": "Does noise augmentation help?",
    "07_backbones": "Does the backbone matter?",
    "07b_baselines": "How much do pretrained features add over simple baselines?",
    "08_grid": "Where does the paper's configuration stand in the whole grid?",
    "08b_selection": "Can the configuration be chosen without the test set?",
    "09_maps": "Where is the defect?",
    "10_datasets": "Does the recipe transfer to solar cells?",
    "11_why_npca": "Why do the smallest-variance axes work?",
    "12_resolution": "Does reading the images larger help?",
    "13_uncertainty": "How much of a difference in AUROC is noise?",
    "14_line": "How do I fit a detector once and score my line's images?",
}
ANSWERS = {  # pages whose first takeaway is longer than a line here: the same answer, shorter
    "03_reduction": AXES,  # its first takeaway says the same with every interval
    "07b_baselines": PRETRAINING,  # its first takeaway adds every interval
}
glue_text("bottom_line", restate_list(BOTTOM_LINE, glued))
glue_text("findings", restate_list([(page, f"{{doc}}`{question} <{page}>`", ANSWERS.get(page, f"{{{page}/takeaway_1}}"))
                                    for page, question in QUESTIONS.items()], glued))

# %% [markdown]
# ## The bottom line
#
# Each line restates a page's answer in this build's numbers; a page that did not run here is left out.
#
# ```{glue:md} bottom_line
# :format: myst
# ```
#
# ## What each page found
#
# Each line asks one page's question and answers it with that page's first key takeaway, in this build's
# numbers; follow the link for its tables, intervals and the paper's figures beside ours.
#
# ```{glue:md} findings
# :format: myst
# ```
#
# ## A reading path
#
# | If you want to ... | read | first know |
# |---|---|---|
# | see the idea work on one image | {doc}`00_start` | Python; what an image classifier is |
# | understand each step and its maths | {doc}`00_method`, then {doc}`01_data` | means, covariances, eigenvectors |
# | check the paper's claims | {doc}`02_layers` to {doc}`08b_selection`, in order | the method page; the words above |
# | judge how sure any number is | {doc}`13_uncertainty`, then {doc}`08_grid` | the AUROC and its interval |
# | run it on your own images | {doc}`00_start`, the section "Your own images" of {doc}`10_datasets`, {doc}`../rerun` | a folder in MVTec AD's layout |
#
# Reading time per page, our estimate (code cells skimmed, tables read): the start page and the data page
# about 10 minutes each; the method page about 30; each of the paper's pages (layers to selection) 10 to 15;
# each page beyond the paper 15 to 20. Running a page yourself is described in {doc}`../rerun`.

# %% [markdown]
# ```{tableofcontents}
# ```
