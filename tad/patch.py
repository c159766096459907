"""Patch-level anomaly detectors on feature maps: PaDiM and PatchCore, with PatchCore's greedy coreset.

Both take the maps of `tad.maps.extract_maps` (shape ``(n, H', W', C)``, the same backbone, layers and input
size as the maps page) and score every patch, higher = more anomalous:

- `PaDiM` (Defard et al. 2021): a Gaussian per position of the grid, its covariance regularised by
  ``epsilon * I``, a test patch scored by its Mahalanobis distance to the Gaussian of its position; optionally
  on a random subset of the channels, as the paper does;
- `PatchCore` (Roth et al. 2022): locally aware patches (each the mean of its neighbourhood on the grid) of all
  training images in one memory bank, thinned by `greedy_coreset` (greedy k-center, optionally on a random
  projection), a test patch scored by its distance to the nearest patch of the bank. A coreset ratio of 1 keeps
  every patch: the patch-level k-NN of SPADE (Cohen & Hoshen 2020) with k = 1.

An image's score (`score_samples`) is the maximum of its scores, as in the papers; `anomaly_maps` upsamples the
patch scores to an image-sized map and smooths it (`tad.maps.upsample_maps`).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from tad.maps import upsample_maps

__all__ = ["greedy_coreset", "local_patches", "PaDiM", "PatchCore"]

# One Gaussian per position is a batch of small matrices: BLAS threads gain nothing there and slow it many times
# over on a busy machine (as in `tad.maps`).
_one_blas_thread = threadpool_limits.wrap(limits=1, user_api="blas")


def greedy_coreset(X: np.ndarray, n: int, *, start: int = 0) -> np.ndarray:
    """Indices of ``n`` rows of ``X`` chosen by greedy k-center (Gonzalez 1985), as PatchCore subsamples.

    The first index is ``start``; each next one is the row farthest (Euclidean) from the rows chosen so far
    (the first such row on a tie). Squared distances are computed as ``|x|^2 - 2 x.c + |c|^2`` (one
    matrix-vector product per step, one thread) in ``X``'s float dtype; memory is ``X`` plus three vectors.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Float rows, finite.
    n : int
        Rows to choose, in 1..N.
    start : int
        Index of the first row chosen, in 0..N-1.

    Returns
    -------
    ndarray of shape (n,), int64
        Distinct indices in the order chosen.
    """
    X = np.asarray(X)
    if X.ndim != 2 or 0 in X.shape or not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"X must be a non-empty float array of shape (N, d); got {X.dtype} {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf")
    N = len(X)
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or not 1 <= n <= N:
        raise ValueError(f"n {n!r} must be an int in 1..{N} (the rows of X)")
    if not isinstance(start, numbers.Integral) or isinstance(start, bool) or not 0 <= start < N:
        raise ValueError(f"start {start!r} must be an int in 0..{N - 1}")
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    norms = (Xt * Xt).sum(dim=1)
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = start
    nearest = torch.full((N,), float("inf"), dtype=Xt.dtype)  # squared distance to the chosen rows
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one pass over X per step: memory-bound, and threads only contend on a busy machine
    try:
        for i in range(n):
            if i:
                chosen[i] = int(torch.argmax(nearest))
            c = chosen[i]
            step = torch.addmv(norms, Xt, Xt[c], alpha=-2).add_(norms[c])  # |x|^2 - 2 x.c + |c|^2
            torch.minimum(nearest, step, out=nearest)
    finally:
        torch.set_num_threads(threads)
    return chosen


def local_patches(maps: np.ndarray, size: int = 3) -> np.ndarray:
    """Locally aware patches: each position's feature vector replaced by the mean over its ``size x size``
    neighbourhood on the grid (the neighbours inside the grid only), as PatchCore aggregates.

    Parameters
    ----------
    maps : ndarray of shape (n, H', W', C)
    size : int
        Odd neighbourhood side; 1 returns the maps as float32.

    Returns
    -------
    ndarray of shape (n, H', W', C), float32
    """
    maps = _check_maps(maps)
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1 or size % 2 == 0:
        raise ValueError(f"neighbourhood size {size!r} must be an odd int >= 1")
    x = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
    if size == 1:
        return x.numpy()
    pooled = F.avg_pool2d(x.permute(0, 3, 1, 2), size, stride=1, padding=size // 2, count_include_pad=False)
    return pooled.permute(0, 2, 3, 1).contiguous().numpy()


class _MapDetector(BaseEstimator):
    """What both detectors share: image scores and image-sized maps from the patch scores of `score_maps`."""

    def score_samples(self, maps: np.ndarray) -> np.ndarray:
        """Anomaly score of each image: the maximum of its patch scores (`score_maps`), higher = more anomalous.

        Parameters
        ----------
        maps : ndarray of shape (n, H', W', C)

        Returns
        -------
        ndarray of shape (n,), float64
        """
        return self.score_maps(maps).max(axis=(1, 2))

    def anomaly_maps(self, maps: np.ndarray, size: int | tuple[int, int] = 256, sigma: float = 4.0) -> np.ndarray:
        """Image-sized anomaly maps: the patch scores upsampled (bilinear) and smoothed, `tad.maps.upsample_maps`.

        Parameters
        ----------
        maps : ndarray of shape (n, H', W', C)
        size : int or (height, width)
            Output size in pixels.
        sigma : float
            Gaussian smoothing, in output pixels; 0 for none.

        Returns
        -------
        ndarray of shape (n, height, width), float32
        """
        return upsample_maps(self.score_maps(maps), size, sigma)

    def _check_test(self, maps: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        maps = _check_maps(maps)
        if maps.shape[3] != self.n_features_in_ or maps.shape[1:3] != tuple(self.grid_):
            raise ValueError(f"maps have grid {maps.shape[1:3]} and {maps.shape[3]} channels; the model was fitted "
                             f"on grid {tuple(self.grid_)} and {self.n_features_in_} channels")
        return maps


class PaDiM(_MapDetector):
    """PaDiM: a Gaussian per position of the feature grid, Mahalanobis distance per patch (Defard et al. 2021).

    Parameters
    ----------
    epsilon : float
        Added to the diagonal of each position's sample covariance (the paper's 0.01), > 0.
    n_channels : int, optional
        Fit on this many channels drawn at random (without replacement, sorted), as the paper reduces its
        concatenated layers; None (default) keeps every channel.
    random_state : int
        Seed of the channel draw.

    Attributes
    ----------
    grid_ : tuple of int
        ``(H', W')`` of the training maps.
    n_features_in_ : int
        Channels of the training maps.
    channels_ : ndarray of shape (d,)
        Indices of the channels used.
    mean_ : ndarray of shape (H' * W', d)
        Per position (row-major), the mean of the training patches.
    precision_ : ndarray of shape (H' * W', d, d)
        Per position, the inverse of ``covariance + epsilon * I``.
    """

    def __init__(self, epsilon: float = 0.01, n_channels: int | None = None, random_state: int = 0) -> None:
        self.epsilon = epsilon
        self.n_channels = n_channels
        self.random_state = random_state

    @_one_blas_thread
    def fit(self, maps: np.ndarray, y: None = None) -> PaDiM:
        """Fit one Gaussian per position on good training maps of shape (n_train, H', W', C), n_train >= 2."""
        if not isinstance(self.epsilon, numbers.Real) or not self.epsilon > 0:
            raise ValueError(f"epsilon {self.epsilon!r} must be a number > 0")
        maps = _check_maps(maps)
        n, h, w, c = maps.shape
        if n < 2:
            raise ValueError(f"PaDiM needs at least 2 training maps, got {n}")
        if self.n_channels is None:
            self.channels_ = np.arange(c)
        elif (not isinstance(self.n_channels, numbers.Integral) or isinstance(self.n_channels, bool)
              or not 1 <= self.n_channels <= c):
            raise ValueError(f"n_channels {self.n_channels!r} must be None or an int in 1..{c} (the maps' channels)")
        else:
            rng = np.random.default_rng(self.random_state)
            self.channels_ = np.sort(rng.choice(c, self.n_channels, replace=False))
        self.grid_, self.n_features_in_ = (h, w), c
        X = self._positions(maps)  # (G, n, d)
        self.mean_ = X.mean(axis=1)
        Xc = X - self.mean_[:, None]
        cov = np.swapaxes(Xc, 1, 2) @ Xc / (n - 1) + self.epsilon * np.eye(X.shape[2])
        self.precision_ = np.linalg.inv(cov)
        return self

    @_one_blas_thread
    def score_maps(self, maps: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of every patch to its position's Gaussian, shape (n, H', W'), float64."""
        maps = self._check_test(maps)
        D = self._positions(maps) - self.mean_[:, None]  # (G, n, d)
        d2 = ((D @ self.precision_) * D).sum(axis=2)
        n, h, w = maps.shape[:3]
        return np.sqrt(np.maximum(d2, 0)).T.reshape(n, h, w)

    def _positions(self, maps: np.ndarray) -> np.ndarray:
        """(n, H', W', C) to (H' * W', n, d) float64 on the kept channels."""
        n, h, w, _ = maps.shape
        return maps[..., self.channels_].reshape(n, h * w, -1).transpose(1, 0, 2).astype(np.float64)


class PatchCore(_MapDetector):
    """PatchCore: nearest-neighbour distance to a coreset of locally aware training patches (Roth et al. 2022).

    Parameters
    ----------
    coreset_ratio : float in (0, 1]
        Share of the training patches kept in the memory bank, chosen by `greedy_coreset` (at least one);
        1 keeps them all (SPADE's patch-level 1-NN).
    neighbourhood : int
        Odd side of the neighbourhood averaged into each patch (`local_patches`); 1 for none.
    projection_dim : int, optional
        Choose the coreset on a Gaussian random projection of the patches to this many dimensions (as the
        paper does, to make the greedy search cheaper); None (default) chooses it on the patches themselves.
        The bank always holds the unprojected patches.
    reweight : int
        0 (default): an image scores its largest patch distance. b >= 1: that distance times the paper's
        weight ``1 - exp(s) / sum(exp(|p - m|) for m in N_b)``, where ``p`` is the farthest test patch, ``s``
        its distance to its nearest bank patch ``m*`` and ``N_b`` the ``b`` bank patches nearest to ``m*``
        (``m*`` itself included): a patch whose neighbour lies in a sparse part of the bank counts less.
    random_state : int
        Seed of the coreset's first patch and of the projection.
    chunk : int
        Test patches compared with the bank at once (`torch.cdist`), bounding memory at ``chunk * bank`` floats.

    Attributes
    ----------
    grid_ : tuple of int
        ``(H', W')`` of the training maps.
    n_features_in_ : int
        Channels of the training maps.
    bank_ : ndarray of shape (m, C), float32
        The memory bank.
    coreset_ : ndarray of shape (m,)
        Indices of the bank's patches among all training patches (row-major over images, then positions).
    """

    def __init__(self, coreset_ratio: float = 0.1, neighbourhood: int = 3, projection_dim: int | None = None,
                 reweight: int = 0, random_state: int = 0, chunk: int = 4096) -> None:
        self.coreset_ratio = coreset_ratio
        self.neighbourhood = neighbourhood
        self.projection_dim = projection_dim
        self.reweight = reweight
        self.random_state = random_state
        self.chunk = chunk

    def fit(self, maps: np.ndarray, y: None = None) -> PatchCore:
        """Build the memory bank from good training maps of shape (n_train, H', W', C)."""
        if (not isinstance(self.coreset_ratio, numbers.Real) or isinstance(self.coreset_ratio, bool)
                or not 0 < self.coreset_ratio <= 1):
            raise ValueError(f"coreset_ratio {self.coreset_ratio!r} must be a number in (0, 1]")
        for name in ("reweight", "chunk"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < (name == "chunk"):
                raise ValueError(f"{name} {value!r} must be an int >= {int(name == 'chunk')}")
        if self.projection_dim is not None and (not isinstance(self.projection_dim, numbers.Integral)
                                                or isinstance(self.projection_dim, bool) or self.projection_dim < 1):
            raise ValueError(f"projection_dim {self.projection_dim!r} must be None or an int >= 1")
        patches = local_patches(maps, self.neighbourhood)
        n, h, w, c = patches.shape
        X = patches.reshape(n * h * w, c)
        self.grid_, self.n_features_in_ = (h, w), c
        keep = max(1, int(round(self.coreset_ratio * len(X))))
        if keep >= len(X):
            self.coreset_ = np.arange(len(X))
        else:
            rng = np.random.default_rng(self.random_state)
            start = int(rng.integers(len(X)))
            search = X
            if self.projection_dim is not None:
                P = rng.standard_normal((c, self.projection_dim)).astype(np.float32)
                search = X @ (P / np.sqrt(self.projection_dim))
            self.coreset_ = greedy_coreset(search, keep, start=start)
        self.bank_ = np.ascontiguousarray(X[self.coreset_])
        if self.reweight > len(self.bank_):
            raise ValueError(f"reweight {self.reweight} is more than the {len(self.bank_)} patches of the bank")
        return self

    def score_maps(self, maps: np.ndarray) -> np.ndarray:
        """Distance of every locally aware patch to its nearest bank patch, shape (n, H', W'), float64."""
        maps = self._check_test(maps)
        distance, _ = self._nearest(maps)
        return distance

    def score_samples(self, maps: np.ndarray) -> np.ndarray:
        """Anomaly score of each image: its largest patch distance, reweighted when ``reweight`` > 0.

        Parameters
        ----------
        maps : ndarray of shape (n, H', W', C)

        Returns
        -------
        ndarray of shape (n,), float64
        """
        maps = self._check_test(maps)
        distance, index = self._nearest(maps)
        n = len(distance)
        flat_d, flat_i = distance.reshape(n, -1), index.reshape(n, -1)
        worst = flat_d.argmax(axis=1)
        score = flat_d[np.arange(n), worst]
        if not self.reweight:
            return score
        patches = local_patches(maps, self.neighbourhood).reshape(n, -1, self.bank_.shape[1])
        farthest = torch.from_numpy(patches[np.arange(n), worst])  # (n, C)
        bank = torch.from_numpy(self.bank_)
        anchors = bank[flat_i[np.arange(n), worst]]  # m* of each image
        neighbours = torch.cdist(anchors, bank).topk(self.reweight, largest=False).indices  # (n, b), m* first
        to_neighbours = torch.linalg.vector_norm(farthest[:, None] - bank[neighbours], dim=2).double()
        weight = 1 - torch.exp(torch.from_numpy(score) - torch.logsumexp(to_neighbours, dim=1))
        return (weight * torch.from_numpy(score)).numpy()

    def _nearest(self, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance to and index of the nearest bank patch of every locally aware test patch, each (n, H', W')."""
        patches = local_patches(maps, self.neighbourhood)
        n, h, w, c = patches.shape
        queries = torch.from_numpy(patches.reshape(-1, c))
        bank = torch.from_numpy(self.bank_)
        distance, index = [], []
        for i in range(0, len(queries), self.chunk):
            d, j = torch.cdist(queries[i:i + self.chunk], bank).min(dim=1)
            distance.append(d)
            index.append(j)
        return (torch.cat(distance).double().numpy().reshape(n, h, w), torch.cat(index).numpy().reshape(n, h, w))


def _check_maps(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 4 or 0 in maps.shape:
        raise ValueError(f"maps must have shape (n, H', W', C) with no empty axis; got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf")
    return maps
