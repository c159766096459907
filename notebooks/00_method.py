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
# # The method, step by step
#
# Transfer anomaly detection uses a network trained for something else, ImageNet classification, as a fixed
# feature extractor, and models only what *good* images look like in its feature space. A test image far
# from the good images is anomalous; nothing is trained on defects. Ono & Mori split the pipeline into
# three choices (a layer, a reduction, an estimator) and tried every combination.
#
# This page is a short lecture: one idea per section, each with the formula, a picture, and the few lines
# of `tad` that compute it. Words in the {doc}`glossary <../glossary>` are linked where they first appear.

# %% [markdown]
# ## Notation
#
# One set of symbols serves the whole book; where a library name differs, it is given in brackets.
#
# | Symbol | Meaning |
# |---|---|
# | $C, H, W$ | channels, height and width of a layer's activation map |
# | $x$ | a pooled feature vector (of a test image unless said otherwise) |
# | $D$ | its dimension, the number of features (`d` in the results tables) |
# | $n$, $x_i$ | the number of good training images, and the $i$-th one's feature vector |
# | $\bar x$, $S$ | their mean and sample covariance |
# | $\lambda_j$, $v_j$ | the eigenvalues of a covariance (descending) and their eigenvectors, the principal axes |
# | $r$ | the reduction ratio (`ratio`) |
# | $q$ | the number of principal axes a reduction keeps, $q = \operatorname{round}(r D)$ |
# | $\mu$, $\Sigma$ | the mean and covariance of the Gaussian that {term}`MVG` fits |
# | $\Delta^2(x)$ | the squared {term}`Mahalanobis distance` of $x$, MVG's anomaly score |
# | $\delta$, $\bar\lambda$ | {term}`Ledoit-Wolf`'s shrinkage weight, and its target $\bar\lambda = \operatorname{tr}(S)/D$, the mean eigenvalue |
# | $k$ | the number of neighbours of {term}`k-NN` (1, 5 or 10); never the number of kept axes |
# | $s(x)$ | an anomaly score, higher meaning more anomalous; $s_k(x)$ the k-NN score |
# | $A$, $\theta$ | an observed {term}`AUROC` and a candidate true one |

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
category = "screw"                  # class of sections 5 and 9 (bottle ranks perfectly: a bare ROC)
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
layer = 7
pooling = "avg"
reduction = "npca"
ratio = 0.5
estimator = "mvg"
device = "cpu"
cache_dir = None                    # None means the library's default feature cache ($TAD_CACHE)
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from tad.data import load_image
from tad.estimators import MVG
from tad.evaluate import auroc
from tad.features import preprocess, select
from tad.plots import pipeline_figure, pooling_figure, roc_figure, score_histogram, stage_shapes
from tad.reduce import Reducer, spectrum
from tad.book.page import open_page
from tad.features import split_features
from tad.stats import auroc_ci
from tad.trial import score

page = open_page("00_method", data_root=data_root, classes=[category], backbone=backbone, input_size=input_size,
                 seed=seed, cache_dir=cache_dir)
(split,), bb, size = page.splits[:1], page.backbone, page.input_size
rng = np.random.default_rng(seed)

# %% tags=["remove-cell"]
from matplotlib_inline.backend_inline import set_matplotlib_formats

set_matplotlib_formats("png")  # glue needs a PNG of tad.plots' figures before pyplot has drawn any

# %% [markdown]
# ## 1. The pipeline in one picture
#
# The image is resized to the backbone's input size (no crop: {term}`MVTec AD` objects reach the borders)
# and passed once through the network. EfficientNet is a stack of seven {term}`stages <stage>`; each
# halves the spatial size or keeps it, and adds channels. The output of stage $i$ is the paper's
# {term}`layer` $i$, a $C \times H \times W$ activation map. The shapes below come from a forward pass,
# not from a table:

# %%
shapes = stage_shapes(bb, size)
shapes

# %% tags=["hide-input"]
d = int(shapes.loc[layer, "channels"])
k = max(round(ratio * d), 1)
fig = pipeline_figure(shapes, size, layer=layer, steps=[
    f"{pooling} pool\n{d} numbers", f"{reduction.upper()} {ratio:.0%}\n{k} axes",
    f"{estimator.upper()}\nscore", "rank test images\nAUROC"])
glue("fig_pipeline", fig, display=False)
glue("size", size, display=False)
glue("k", k, display=False)
glue("ratio_pct", f"{ratio:.0%}", display=False)
glue("last_hw", f"{shapes.iloc[-1].height} x {shapes.iloc[-1].width}", display=False)

# %% [markdown]
# ```{glue:figure} fig_pipeline
# :name: fig-pipeline
#
# The pipeline for one image. Squares are the seven layers drawn to scale (side proportional to the square
# root of the map's side), each labelled channels x height x width: a {glue:text}`size` px image becomes a
# {glue:text}`last_hw` map at the last stage. **Look at** the orange layer: its map is pooled into one
# number per channel, and only that vector goes on to the reduction, the estimator and the evaluation.
# ```
#
# ## 2. Pooling: a map becomes a vector
#
# Each channel's $H \times W$ map is summarised by one number: its average, maximum or minimum over the
# positions. Here is one channel of layer {glue:text}`layer` for a defective test image, the channel whose
# values vary most over the positions:

# %% tags=["hide-input"]
glue("layer", layer, display=False)
defect = next(s for s in split.test if s.label == 1)
mean, std = torch.tensor(bb.mean).view(3, 1, 1), torch.tensor(bb.std).view(3, 1, 1)
with torch.no_grad():
    fmap = bb(((preprocess(load_image(defect.path), size) - mean) / std)[None])[layer - 1][0].numpy()
channel = int(fmap.reshape(len(fmap), -1).std(axis=1).argmax())
glue("fig_pooling", pooling_figure(fmap[channel]), display=False)
print(f"{defect.path.name} ({defect.defect}), layer {layer}, channel {channel} of {len(fmap)}")

# %% [markdown]
# ```{glue:figure} fig_pooling
# :name: fig-pooling
#
# Left: one channel of the activation map, its largest value marked by a triangle up and its smallest by a
# triangle down. Right: the same values as dots, and the three pooled numbers. **Look at** how far apart
# they are: max pooling reports the single strongest position (where a small defect may light up), average
# pooling all positions together, min pooling the weakest.
# ```
#
# ## 3. The Mahalanobis distance
#
# The good images' pooled vectors form a cloud. The {term}`MVG` estimator fits a Gaussian to it, mean
# $\mu$ and covariance $\Sigma$, and scores a test vector $x$ by its squared
# {term}`Mahalanobis distance`:
#
# $$
# \Delta^2(x) = (x - \mu)^\top \Sigma^{-1} (x - \mu) = \sum_{j=1}^{D} \frac{\big(v_j^\top (x - \mu)\big)^2}{\lambda_j},
# $$
#
# where $\lambda_j$ and $v_j$ are the eigenvalues and eigenvectors of $\Sigma$. The second form says what
# it does: it measures the offset along each principal axis in units of that axis's standard deviation
# $\sqrt{\lambda_j}$. Points at equal distance lie on ellipses, not circles.

# %% tags=["hide-input"]
toy_cov = np.array([[3.0, 1.3], [1.3, 0.7]])
toy = rng.multivariate_normal([0, 0], toy_cov, size=300)
lam, vec = np.linalg.eigh(toy_cov)  # ascending: vec[:, 0] is the low-variance axis
a, b = 2.5 * vec[:, 1], 2.5 * vec[:, 0]  # equally far from the mean in Euclidean terms
maha = {name: float(p @ np.linalg.solve(toy_cov, p)) for name, p in (("a", a), ("b", b))}

fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(*toy.T, s=6, color="grey", alpha=0.5, label="good images (toy)")
t = np.linspace(0, 2 * np.pi, 200)
for r in (1, 2, 3):
    ellipse = (vec * np.sqrt(lam)) @ np.stack([np.cos(t), np.sin(t)]) * r
    ax.plot(*ellipse, color="tab:green", linewidth=1)
    ax.annotate(f"d = {r}", ellipse[:, 50], color="tab:green", fontsize=8)
for name, p, colour in (("a", a, "tab:blue"), ("b", b, "tab:red")):
    ax.scatter(*p, marker="*", s=200, color=colour, zorder=3,
               label=f"{name}: Euclidean 2.5, Mahalanobis {np.sqrt(maha[name]):.1f}")
ax.set_aspect("equal")
ax.legend(loc="upper left", fontsize=8)
glue("fig_mahalanobis", fig, display=False)
plt.close(fig)
glue("maha_a", float(np.sqrt(maha["a"])), display=False)
glue("maha_b", float(np.sqrt(maha["b"])), display=False)

# %% [markdown]
# ```{glue:figure} fig_mahalanobis
# :name: fig-mahalanobis
#
# A 2-D toy Gaussian and its ellipses of Mahalanobis distance 1, 2 and 3. The stars are both 2.5 away from
# the mean as the crow flies. **Look at** their Mahalanobis distances: the blue one, along the cloud, is
# {glue:text}`maha_a:.1f` standard deviations out; the red one, across it, {glue:text}`maha_b:.1f`.
# ```
#
# ## 4. PCA and NPCA: a choice of axes
#
# The eigenvectors of the training covariance are the *principal axes*; the eigenvalue of each is the
# variance of the good images along it. {term}`PCA` keeps the axes of largest variance, {term}`NPCA`
# ("negated PCA", Rippel et al. 2020) those of *smallest* variance. In the sum above, an axis with a small
# $\lambda_j$ has a large weight $1/\lambda_j$: a small step along it is already far. NPCA keeps exactly
# those axes. On the toy, with one axis of two kept by each (`tad.reduce.Reducer`):

# %%
anomaly = np.array([[-0.9, 1.9]])  # leaves the cloud across its narrow direction
for method in ("pca", "npca"):
    reducer = Reducer(method, ratio=0.5).fit(toy)
    z_good, z_anomaly = reducer.transform(toy)[:, 0], reducer.transform(anomaly)[0, 0]
    print(f"{method:>4}: anomaly at {z_anomaly / z_good.std():+.1f} standard deviations of the good images")

# %% tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), width_ratios=[1.2, 1])
left.scatter(*toy.T, s=6, color="grey", alpha=0.5)
left.scatter(*anomaly.T, marker="*", s=200, color="tab:red", zorder=3, label="anomaly")
for method, colour in (("pca", "tab:blue"), ("npca", "tab:orange")):
    reducer = Reducer(method, ratio=0.5).fit(toy)
    axis = reducer.components_[0] * (3 * np.sqrt(reducer.explained_variance_[0]) + 0.5)
    left.plot(*np.stack([-axis, axis]).T, color=colour, linewidth=2.5)
    left.text(*(axis * 1.08), f"{method.upper()} axis", color=colour, fontsize=10, weight="bold")
    z = reducer.transform(np.vstack([toy, anomaly]))[:, 0]
    row = 1 if method == "pca" else 0
    right.scatter(z[:-1], row + rng.uniform(-0.15, 0.15, len(toy)), s=6, color=colour, alpha=0.5)
    right.scatter(z[-1], row, marker="*", s=200, color="tab:red", zorder=3)
left.set_aspect("equal")
left.legend(loc="lower right", fontsize=8)
right.set_yticks([0, 1], ["NPCA\ncoordinate", "PCA\ncoordinate"])
right.set_xlabel("coordinate along the kept axis")
glue("fig_npca", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_npca
# :name: fig-npca
#
# Left: the toy cloud, its two principal axes and an anomaly (red star) that leaves the cloud sideways.
# Right: the coordinates that survive each reduction. **Look at** the red star: on the PCA axis it sits
# among the good images, so a model of the PCA coordinate cannot see it; on the NPCA axis it is far
# outside them.
# ```
#
# The paper's "reduction ratio" $r$ ($10$ to $50\,\%$) is read as the share of the $D$ dimensions kept:
# $q = \operatorname{round}(r D)$ axes, which fits its table 2, where PCA approaches "no reduction" as $r$
# grows. The book's one reading (`tad.reduce.DEFAULT_BASIS`, `"block"`, in every table unless a page says
# otherwise) adds one rule for the null space of section 5: it is kept or dropped whole. NPCA keeps these $q$
# axes, or, where they would hold only part of the null space, all of it and the smallest non-null axis; PCA
# stops at the last non-null axis. Elsewhere this is the paper's literal reading (`basis="dims"`).
#
# ## 5. The null space
#
# With $n$ training images in $D$ dimensions, the centred images span at most $n - 1$ directions: the
# covariance has at most $n - 1$ non-zero eigenvalues. The other directions, where no good image varies
# at all, are the {term}`null space`. The smallest toy: three points in 3-D always lie in a plane.

# %%
points = rng.normal(size=(3, 3))
centre, eigenvalues, axes = spectrum(points)
off_plane = centre + 0.8 * axes[:, 2]  # a step along the third axis, out of the plane
null = Reducer("npca", ratio=1 / 3).fit(points)  # keeps 1 of 3 axes: the smallest, here the null one
print("eigenvalues:", eigenvalues.round(3))
print("training points on the null axis:", null.transform(points)[:, 0].round(12))
print("a point off the plane on the null axis:", null.transform(off_plane[None])[0, 0].round(3))

# %% tags=["hide-input"]
u, v = axes[:, 0], axes[:, 1]
grid_s, grid_t = np.meshgrid(np.linspace(-2, 2, 2), np.linspace(-2, 2, 2))
plane = centre[:, None, None] + u[:, None, None] * grid_s + v[:, None, None] * grid_t
fig = plt.figure(figsize=(5, 4))
ax = fig.add_subplot(projection="3d")
ax.plot_surface(*plane, alpha=0.25, color="tab:green")
ax.scatter(*points.T, s=50, color="tab:blue", label="3 good images")
ax.scatter(*centre, s=25, color="black", label="its foot on the plane")
ax.plot(*np.stack([centre, off_plane]).T, color="tab:red", linestyle="--", linewidth=2,
        label="its step out of the plane")
ax.scatter(*off_plane, marker="*", s=90, color="tab:red", label="test image off the plane")
# Look along the plane, tilted 25 degrees towards its normal: the step out of the plane is seen side on.
view = np.cos(np.radians(25)) * u + np.sin(np.radians(25)) * axes[:, 2]
ax.view_init(elev=np.degrees(np.arcsin(view[2])), azim=np.degrees(np.arctan2(view[1], view[0])))
ax.legend(loc="upper left", fontsize=8)
glue("fig_null", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_null
# :name: fig-null
#
# Three good images (blue) span a plane (green); the third eigenvalue of their covariance is zero. **Look
# at** the dashed line: the test image's step out of the plane is a coordinate on the null axis, where
# every good image has exactly 0. Any non-zero value there is something no good image did.
# ```
#
# The same holds for the real features:

# %%
train, test = split_features(split, bb, input_size=input_size, cache_dir=page.cache_dir, device=device,
                             progress=False)
X, Y = select(train, layer, pooling, bb), select(test, layer, pooling, bb)
null_dims = {}
for name in (layer, "all"):
    Z = select(train, name, pooling, bb)
    values = spectrum(Z)[1]
    rank = int((values > values[0] * len(values) * np.finfo(float).eps).sum())
    null_dims[name] = Z.shape[1] - rank
    print(f"{split.name}, layer {name}, {pooling} pooling: n = {len(Z)} good images, d = {Z.shape[1]} "
          f"dimensions, rank {rank}, null space of {null_dims[name]} dimensions")

# %% tags=["remove-cell"]
glue("n_train", len(X), display=False)
glue("d", X.shape[1], display=False)
glue("d_all", Z.shape[1], display=False)  # Z: the last of the loop, all layers
glue("null_layer", null_dims[layer], display=False)
glue("null_all", null_dims["all"], display=False)

# %% [markdown]
# With {glue:text}`n_train` images, {glue:text}`null_layer` of the {glue:text}`d` dimensions of layer
# {glue:text}`layer` carry no training variance at all, and {glue:text}`null_all` of the
# {glue:text}`d_all` dimensions of all layers concatenated. NPCA at {glue:text}`ratio_pct` keeps the
# {glue:text}`k` axes of layer {glue:text}`layer` with the least variance: null axes first, then the
# nearly flat ones. The page {doc}`11_why_npca` measures what the null space contributes;
# `basis="rank"` in `tad.reduce` offers the other reading of the ratio, a share of the axes with non-zero
# variance only.
#
# ## 6. Ledoit-Wolf shrinkage
#
# The Mahalanobis distance needs $\Sigma^{-1}$, but the sample covariance
# $S = \frac{1}{n} \sum_i (x_i - \bar x)(x_i - \bar x)^\top$ is singular when $n \le D$, and even when it is
# not, its eigenvalues are too spread: the large ones too large, the small ones too small, so $1/\lambda_j$
# explodes on the smallest. {term}`Ledoit-Wolf` shrinks $S$ towards a multiple of the identity:
#
# $$
# \Sigma_{LW} = (1 - \delta)\, S + \delta\, \bar\lambda I, \qquad \bar\lambda = \frac{\operatorname{tr}(S)}{D},
# $$
#
# $$
# \delta = \min\left(1,\; \frac{\frac{1}{n^2} \sum_{i=1}^{n} \lVert x_i x_i^\top - S \rVert_F^2}{\lVert S - \bar\lambda I \rVert_F^2}\right),
# $$
#
# with $x_i$ centred. The numerator estimates how noisy $S$ is, the denominator how far $S$ is from the
# identity's shape: the noisier the estimate, the more it is shrunk. Each eigenvalue moves to
# $(1 - \delta)\lambda_j + \delta \bar\lambda$, the eigenvectors stay. Below, the formula typed out against `tad`'s
# `MVG`, on samples from a covariance that *is* the identity (every true eigenvalue is 1):

# %%
dim, sample_sizes = 100, (50, 400)
white = {n: rng.normal(size=(n, dim)) for n in sample_sizes}
for n, W in white.items():
    Xc = W - W.mean(axis=0)
    S = Xc.T @ Xc / n
    mu = np.trace(S) / dim
    noise = sum(np.linalg.norm(np.outer(x, x) - S) ** 2 for x in Xc) / n**2
    delta = min(1.0, noise / np.linalg.norm(S - mu * np.eye(dim)) ** 2)
    print(f"n = {n:>3}, d = {dim}: delta by the formula {delta:.4f}, by tad's MVG {MVG().fit(W).shrinkage_:.4f}")

# %% tags=["hide-input"]
fig, axs = plt.subplots(1, len(sample_sizes), figsize=(9, 3.4), sharey=True)
for ax, (n, W) in zip(axs, white.items()):
    Wc = W - W.mean(axis=0)
    model = MVG().fit(W)
    ax.plot(np.linalg.eigvalsh(Wc.T @ Wc / n)[::-1], color="tab:blue", label="sample $S$")
    ax.plot(np.linalg.eigvalsh(model.covariance_)[::-1], color="tab:orange",
            label=rf"Ledoit-Wolf, $\delta$ = {model.shrinkage_:.2f}")
    ax.axhline(1, color="black", linestyle="--", label="true (all 1)")
    ax.set_title(f"n = {n} samples, d = {dim}")
    ax.set_xlabel("eigenvalue rank")
axs[0].set_ylabel("eigenvalue")
axs[0].legend(fontsize=8)
glue("fig_lw", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_lw
# :name: fig-lw
#
# Sorted eigenvalues of the sample covariance (blue) of $n$ draws from a $D = 100$ identity covariance,
# whose true eigenvalues are all 1 (dashed). **Look at** the spread: with fewer samples than dimensions
# (left) half of them are exactly 0, and even with four samples per dimension (right) they range widely
# around 1. Ledoit-Wolf (orange) pulls them back towards their mean $\bar\lambda$; here, where the truth *is* a
# multiple of the identity, the formula rightly shrinks (almost) all the way, $\delta \approx 1$.
# ```
#
# ## 7. The k-NN score
#
# {term}`k-NN` makes no distributional assumption. It keeps the $n$ good training vectors $t_1, \dots,
# t_n$ and scores a test vector by its mean Euclidean distance to the $k$ nearest of them
# ($t_{(1)}(x), \dots, t_{(k)}(x)$, sorted by distance):
#
# $$
# s_k(x) = \frac{1}{k} \sum_{j=1}^{k} \lVert x - t_{(j)}(x) \rVert_2 .
# $$
#
# It uses Euclidean distance, so unlike the MVG every axis counts with its raw scale; after NPCA those
# scales are the small ones.
#
# ## 8. A normalizing flow, in one paragraph
#
# A {term}`normalizing flow` learns an invertible map $f$ from feature space to a standard Gaussian $z =
# f(x)$ and gets the exact density of $x$ by the change of variables:
#
# $$
# \log p_X(x) = \log \mathcal{N}\big(f(x); 0, I\big) + \log \left| \det \frac{\partial f(x)}{\partial x} \right| .
# $$
#
# A *masked autoregressive flow* (MAF) builds $f$ from steps $z_i = (x_i - m_i(x_{<i}))\, e^{-a_i(x_{<i})}$,
# where the shift $m_i$ and log-scale $a_i$ of coordinate $i$ depend only on the coordinates before it.
# The Jacobian is then triangular and its log-determinant is just $-\sum_i a_i(x_{<i})$. The functions $m$
# and $a$ for all $i$ come from one network, a MADE (*masked autoencoder for distribution estimation*),
# whose weight masks cut every path from $x_j$ to output $i$ unless $j < i$. `tad` stacks two such steps
# (zuko's `MAF`), fits them by maximum likelihood on the standardised good features, and scores a test
# vector by $-\log p_X(x)$: unlikely means anomalous.
#
# ## 9. AUROC: does the score rank defects above good images?
#
# The scores are never thresholded. The {term}`AUROC` asks only whether they *rank* the test images right:
#
# $$
# \begin{aligned}
# \mathrm{AUROC} &= P\big(s(x_{\text{defective}}) > s(x_{\text{good}})\big) \\
# &= \frac{1}{n_+ n_-} \sum_{i \in \text{defective}} \sum_{j \in \text{good}} \Big( \mathbf{1}[s_i > s_j] + \tfrac{1}{2}\, \mathbf{1}[s_i = s_j] \Big),
# \end{aligned}
# $$
#
# with $n_+$ defective and $n_-$ good test images: the share of (defective, good) pairs in the right order.
# It equals the area under the ROC curve, which plots, for every threshold, the share of defects caught
# against the share of good images flagged.
# Here are real scores:

# %%
scores = score(X, Y, reduction, ratio, estimator, seed=seed)
labels = split.test_labels
pairs = (scores[labels == 1][:, None] > scores[labels == 0]).mean() \
    + 0.5 * (scores[labels == 1][:, None] == scores[labels == 0]).mean()
low, high = auroc_ci(labels, scores)
print(f"{split.name}, {backbone} layer {layer} {pooling}, {reduction.upper()} {ratio:.0%}, {estimator.upper()}: "
      f"AUROC by counting pairs {pairs:.4f}, tad.evaluate.auroc {auroc(labels, scores):.4f}, "
      f"95 % interval (tad.stats.auroc_ci) [{low:.3f}, {high:.3f}]")
config = f"{split.name}, layer {layer}, {reduction.upper()} {ratio:.0%}, {estimator.upper()}"

# %% tags=["remove-cell"]
glue("fig_hist", score_histogram(labels, scores), display=False)
glue("fig_roc", roc_figure(labels, scores, name=config), display=False)
glue("config", config, display=False)
glue("auroc", auroc(labels, scores), display=False)
glue("ci", f"[{low:.3f}, {high:.3f}]", display=False)

# %% [markdown]
# ```{glue:figure} fig_hist
# :name: fig-hist
#
# Scores of the good (blue) and defective (red) test images of {glue:text}`config`. **Look at** the
# overlap: the AUROC is the share of (red, blue) pairs in which red lies to the right, so only the
# overlapping region costs anything.
# ```
#
# ```{glue:figure} fig_roc
# :name: fig-roc
#
# The ROC curve of the same scores: each point is one threshold. **Look at** how close the curve gets to
# the top-left corner (all defects caught, no good image flagged); the dashed diagonal is a random
# ranking. The area under the curve is {glue:text}`auroc:.3f`.
# ```
#
# A test set holds tens of images, so an AUROC is uncertain. Its $95\,\%$ score interval
# (`tad.stats.auroc_ci`, the one interval of every page and result row) is {glue:text}`ci`; a percentile
# {term}`bootstrap` would not do, since for perfectly separated scores it has width zero (page {doc}`13_uncertainty`).
# Two configurations are compared by a {term}`paired comparison` on the same test images. Anomaly *maps*
# are scored per pixel instead, by the pixel AUROC and by {term}`PRO`.
#
# ## Where each step lives in `tad`
#
# | step | module | what it does |
# | --- | --- | --- |
# | data | `tad.data` | MVTec AD folders or ELPV as `Split`s of file paths |
# | features | `tad.backbones`, `tad.features` | every layer in one pass; avg, max, min pooling; cached on disk |
# | reduction | `tad.reduce` | `Reducer("pca" \| "npca" \| "none", ratio, basis)`; the one reading `DEFAULT_BASIS` |
# | estimators | `tad.estimators` | `MVG`, `KNN`, `Flow`: `fit(good)`, `score_samples(x)`, higher = more anomalous |
# | evaluation | `tad.evaluate`, `tad.stats` | AUROC, its interval `auroc_ci`, paired comparisons (`compare`), pixel AUROC, PRO |
# | trials | `tad.trial`, `tad.sweep` | `Trial` and `run_trials` for any set of configurations, `run_grid` for grids, resumable |
#
# ## Try it
#
# 1. Another class and layer: `python scripts/build_book.py --only 00_method -p category bottle -p layer 4`.
#    Look at the histograms: does the overlap shrink or grow, and does the interval still exclude chance ($0.5$)?
# 2. The other reduction: `-p reduction pca`. Look at the ROC curve and the toy of section 4: which
#    defects might leave the cloud along its wide directions?
