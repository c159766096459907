"""Anomaly estimators fitted on good images' features: Gaussian (Mahalanobis), k-NN and a normalizing flow.

All follow scikit-learn: parameters in ``__init__``, validation in ``fit``, and ``score_samples`` returns
one score per row, **higher meaning more anomalous** (unlike scikit-learn's outlier detectors).
"""

from __future__ import annotations

import numpy as np
import torch
import zuko
from sklearn.base import BaseEstimator
from scipy.linalg import cho_factor, cho_solve
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.utils.validation import check_array, check_is_fitted

ESTIMATORS = ("mvg", "knn1", "knn5", "knn10", "flow")
# The one flow configuration every page uses (pass as ``flow_params``), so pages and results rows agree.
FLOW_PARAMS = {"transforms": 2, "hidden": 64, "epochs": 100, "null_rtol": 1e-6}


class MVG(BaseEstimator):
    """Multivariate Gaussian with Ledoit-Wolf shrinkage; the score is the squared Mahalanobis distance.

    Shrinkage makes the covariance invertible when n_train <= d, where the sample covariance is singular.
    The shrunk covariance is scikit-learn's `LedoitWolf`; its inverse is taken by Cholesky, or directly
    from the diagonal when the features are already decorrelated (principal-axis coordinates, as after
    PCA/NPCA), which turns an O(d^3) inverse into O(d).

    Attributes
    ----------
    location_ : ndarray of shape (d,)
    covariance_ : ndarray of shape (d, d)
    precision_ : ndarray of shape (d, d)
    shrinkage_ : float
    """

    def fit(self, X: np.ndarray, y: None = None) -> MVG:
        X = _check_train(X, minimum=2, what="MVG")
        self.location_ = X.mean(axis=0)
        Xc = X - self.location_
        self.shrinkage_ = float(ledoit_wolf_shrinkage(Xc, assume_centered=True))
        S = Xc.T @ Xc / len(X)  # empirical covariance, as LedoitWolf shrinks it
        cov = (1 - self.shrinkage_) * S
        cov.flat[:: len(S) + 1] += self.shrinkage_ * np.trace(S) / len(S)
        self.covariance_ = cov
        diag = np.diag(cov)
        if np.abs(cov - np.diag(diag)).max() <= 1e-9 * diag.max():
            self.precision_ = np.diag(1 / diag)
        else:
            self.precision_ = cho_solve(cho_factor(cov), np.eye(len(cov)))
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row to the training distribution, shape (n_samples,)."""
        check_is_fitted(self)
        D = check_array(X, dtype=np.float64) - self.location_
        return ((D @ self.precision_) * D).sum(axis=1)  # BLAS; einsum's 3-operand loop is ~100x slower


class KNN(BaseEstimator):
    """k nearest neighbours; the score is the mean Euclidean distance to the k nearest training images.

    Parameters
    ----------
    k : int
        Number of neighbours, 1 <= k <= n_train.
    """

    def __init__(self, k: int = 1) -> None:
        self.k = k

    def fit(self, X: np.ndarray, y: None = None) -> KNN:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"k {self.k!r} must be a positive int")
        X = _check_train(X, minimum=1, what="k-NN")
        if self.k > len(X):
            raise ValueError(f"k={self.k} is larger than the training set ({len(X)} images)")
        self.train_ = X
        self.train_sq_ = (X * X).sum(axis=1)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Mean distance to the k nearest training rows, shape (n_samples,).

        Exhaustive search: one matrix product (|x - t|^2 = |x|^2 - 2 x.t + |t|^2) finds the k nearest, whose
        distances are then computed directly, free of that formula's cancellation. The training sets here
        hold hundreds of images, where this beats any index, and scikit-learn's threaded search by 50x.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=np.float64)
        d2 = (X * X).sum(axis=1)[:, None] - 2 * X @ self.train_.T + self.train_sq_
        nearest = np.argpartition(d2, self.k - 1, axis=1)[:, : self.k]
        return np.linalg.norm(X[:, None, :] - self.train_[nearest], axis=2).mean(axis=1)


class Flow(BaseEstimator):
    """A masked autoregressive flow (zuko's MAF) fitted by maximum likelihood; the score is -log p(z).

    z is the standardised input, so the score is -log p(x) up to a constant per fitted model (the
    standardisation's log-determinant), which leaves the ranking and the AUROC unchanged.

    Inputs are standardised with the training mean and standard deviation first. Training is full-batch
    Adam for a fixed number of epochs with weight decay, seeded, on the CPU unless ``device`` says so,
    with one torch thread while training (the steps are too small to gain from more).

    Parameters
    ----------
    transforms : int
        Autoregressive transforms stacked.
    hidden : int
        Width of the two hidden layers of each transform's MADE network.
    epochs : int
    lr : float
    weight_decay : float
    seed : int
    device : str
    null_rtol : float or None
        Leave out input axes whose training standard deviation is at most ``null_rtol`` times the largest
        one: axes where good images do not vary beyond rounding (the null space NPCA keeps when
        n_train <= d). A density there is a spike, so a test image off the training span scores ~1e14 sd
        out and every such image ties at +inf. None keeps every axis. The rule is relative to the inputs,
        so when *every* input axis is null (NPCA at a small ratio of all dimensions) it cannot tell and
        keeps them all.

    Attributes
    ----------
    kept_ : ndarray of bool, shape (d,)
        The input axes the flow models.
    """

    def __init__(self, transforms: int = 2, hidden: int = 128, epochs: int = 150, lr: float = 1e-3,
                 weight_decay: float = 1e-4, seed: int = 0, device: str = "cpu",
                 null_rtol: float | None = None) -> None:
        self.transforms = transforms
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device
        self.null_rtol = null_rtol

    def fit(self, X: np.ndarray, y: None = None) -> Flow:
        for name in ("transforms", "hidden", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} {value!r} must be a positive int")
        if self.null_rtol is not None and not 0 <= self.null_rtol < 1:
            raise ValueError(f"null_rtol {self.null_rtol!r} must be None or in [0, 1)")
        X = _check_train(X, minimum=2, what="Flow")
        std = X.std(axis=0)
        self.kept_ = (std > self.null_rtol * std.max() if self.null_rtol is not None
                      else np.ones(X.shape[1], dtype=bool))
        X = X[:, self.kept_]
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(X.std(axis=0), 1e-6 * max(X.std(), 1e-12))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny full-batch steps: threads only add overhead (6-10x slower on 2 busy cores)
        try:
            self._train(X)
        finally:
            torch.set_num_threads(threads)
        return self

    def _train(self, X: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        flow = zuko.flows.MAF(X.shape[1], transforms=self.transforms,
                              hidden_features=(self.hidden, self.hidden)).to(self.device)
        opt = torch.optim.Adam(flow.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        z = self._standardise(X)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = -flow().log_prob(z).mean()
            loss.backward()
            opt.step()
        self.flow_ = flow.eval()
        self.final_loss_ = loss.item()

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Negative log-likelihood of each row under the flow, shape (n_samples,)."""
        check_is_fitted(self)
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.kept_.size:
            raise ValueError(f"X has {X.shape[1]} columns; the flow was fitted on {self.kept_.size}")
        z = torch.as_tensor((X[:, self.kept_] - self.mean_) / self.scale_, device=self.device)
        with torch.no_grad():  # in float64: NPCA can keep axes where good images barely vary at all, and a
            nll = -self.flow_.double()().log_prob(z).cpu().numpy()  # test image there is ~1e14 sd out
        self.flow_.float()
        # Beyond even float64 the density is 0: as anomalous as can be, so the largest float (ties among them).
        return np.nan_to_num(nll, nan=np.nan, posinf=np.finfo(np.float64).max)

    def _standardise(self, X: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=self.device)


def make_estimator(name: str, *, seed: int = 0, **flow_params) -> MVG | KNN | Flow:
    """Estimator for a name in `ESTIMATORS`: ``"mvg"``, ``"knn1"``/``"knn5"``/``"knn10"`` or ``"flow"``."""
    if name == "mvg":
        return MVG()
    if name in ("knn1", "knn5", "knn10"):
        return KNN(k=int(name[3:]))
    if name == "flow":
        return Flow(seed=seed, **flow_params)
    raise ValueError(f"estimator {name!r} not in {ESTIMATORS}")


def _check_train(X: np.ndarray, minimum: int, what: str) -> np.ndarray:
    X = check_array(X, dtype=np.float64)  # rejects NaN and inf with a message that says so
    if len(X) < minimum:
        raise ValueError(f"{what} needs at least {minimum} training images, got {len(X)}")
    return X
