"""Quality, diversity and privacy metrics for synthetic data.

Every function takes NumPy arrays (image batches of shape ``(n, H, W[, C])`` are flattened to
``(n, H * W * C)``) and returns a float or a dict of plain Python values, ready to log.

Only NumPy, SciPy and scikit-learn are imported here, so ``import synthaug.metrics`` stays fast
and never loads TensorFlow.

Which metric answers which question:

- Fidelity of the whole distribution: :func:`frechet_distance`, :func:`mmd`,
  :func:`sliced_wasserstein` (lower is better, 0 for identical distributions).
- Fidelity and diversity separately: :func:`precision_recall_density_coverage`.
- Usefulness for a downstream classifier: :func:`tstr`.
- Class-conditional generators: :func:`mode_coverage`.
- Privacy: :func:`memorization`.

The distance-based metrics compare raw feature values: put features on a common scale first
(or compare embeddings from a fixed network), or the widest feature decides the result.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy import linalg
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, pairwise_distances_chunked
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

__all__ = [
    "frechet_distance",
    "memorization",
    "mmd",
    "mode_coverage",
    "precision_recall_density_coverage",
    "sliced_wasserstein",
    "tstr",
]


# -- input checking -------------------------------------------------------------------------------
def _check_samples(X, name: str, min_samples: int = 1, why: str = "") -> np.ndarray:
    """Return `X` as a C-contiguous float64 array of shape (n_samples, n_features).

    1-D input is n samples of one feature; input with more than two dimensions (image batches)
    is flattened to ``(n_samples, -1)``.
    """
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array-like; could not convert it: {exc}") from None
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be numeric; got an object array holding non-numbers") from None
        else:
            raise ValueError(f"{name} must be numeric; got an array of dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array of samples; got the scalar {arr.item()!r}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: got shape {arr.shape}")
    arr = np.ascontiguousarray(arr.reshape(len(arr), -1) if arr.ndim > 1 else arr[:, None], dtype=np.float64)
    bad_nan = np.isnan(arr).any(axis=1)
    bad_inf = np.isinf(arr).any(axis=1)
    bad = bad_nan | bad_inf
    if bad.any():
        what = " and ".join(w for w, m in (("NaN", bad_nan), ("infinity", bad_inf)) if m.any())
        raise ValueError(
            f"{name} contains {what} in {int(bad.sum())} rows (first: row {int(np.argmax(bad))}); "
            "remove or impute them"
        )
    if len(arr) < min_samples:
        raise ValueError(f"{name} has {len(arr)} samples; {why or f'at least {min_samples} are needed'}")
    return arr


def _check_pair(a, b, names: tuple[str, str], min_samples: int = 1, why: str = ""):
    """Check two sample sets and that they have the same number of features."""
    A = _check_samples(a, names[0], min_samples, why)
    B = _check_samples(b, names[1], min_samples, why)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{names[0]} has {A.shape[1]} features but {names[1]} has {B.shape[1]} "
            f"(shapes {np.shape(a)} and {np.shape(b)}); both must describe the same features"
        )
    return A, B


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    return int(k)


def _check_labels(y, n: int, name: str, n_name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must have shape ({n},) to match {n_name}; got shape {y.shape}")
    return y


def _python(value):
    """A NumPy scalar as the matching Python scalar (for dict keys that log and serialise)."""
    return value.item() if isinstance(value, np.generic) else value


# -- distribution distances -----------------------------------------------------------------------
def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    w, V = linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def frechet_distance(real_features, synthetic_features) -> float:
    r"""Fréchet distance between Gaussian fits of two sample sets.

    With :math:`\mu_r, \Sigma_r` and :math:`\mu_s, \Sigma_s` the sample means and covariances,

    .. math::

        d^2 = \lVert \mu_r - \mu_s \rVert_2^2
              + \operatorname{Tr}\bigl(\Sigma_r + \Sigma_s - 2 (\Sigma_r \Sigma_s)^{1/2}\bigr),

    the squared 2-Wasserstein distance between :math:`N(\mu_r, \Sigma_r)` and
    :math:`N(\mu_s, \Sigma_s)` (Dowson & Landau, 1982). On Inception-v3 pool features of images
    it is the FID of Heusel et al. (2017); here it applies to whatever features are passed.

    Parameters
    ----------
    real_features : array-like of shape (n_real, n_features) or (n_real, ...)
        Real samples or their embeddings; more than two dimensions are flattened.
    synthetic_features : array-like of shape (n_synthetic, n_features) or (n_synthetic, ...)
        Synthetic samples or their embeddings, with the same features.

    Returns
    -------
    distance : float
        The squared Fréchet distance, >= 0; 0 when both sets have the same mean and covariance.

    Warns
    -----
    UserWarning
        When a set has no more samples than features: its covariance is then singular (rank at
        most ``n_samples - 1``) and the distance is dominated by estimation noise.

    Notes
    -----
    The trace of :math:`(\Sigma_r \Sigma_s)^{1/2}` is computed as the sum of square roots of the
    eigenvalues of the symmetric positive semi-definite matrix
    :math:`\Sigma_r^{1/2} \Sigma_s \Sigma_r^{1/2}`, which has the same eigenvalues; negative
    round-off eigenvalues are clipped to 0. This avoids the complex results that
    ``scipy.linalg.sqrtm`` gives on nearly singular covariances.

    The estimate is biased upwards for finite samples, more so in high dimension (Chong &
    Forsyth, 2020): compare values only at equal sample sizes.

    References
    ----------
    D. C. Dowson and B. V. Landau, "The Fréchet distance between multivariate normal
    distributions", Journal of Multivariate Analysis 12(3), 1982.

    M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler and S. Hochreiter, "GANs trained by a two
    time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017.

    M. J. Chong and D. Forsyth, "Effectively unbiased FID and Inception Score and where to find
    them", CVPR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from synthaug.metrics import frechet_distance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(5000, 2))
    >>> round(frechet_distance(X, X + [3.0, 4.0]), 6)  # a pure shift: ||shift||^2
    25.0
    """
    real, synthetic = _check_pair(
        real_features, synthetic_features, ("real_features", "synthetic_features"),
        min_samples=2, why="at least 2 are needed to estimate a covariance",
    )
    n_features = real.shape[1]
    for name, X in (("real_features", real), ("synthetic_features", synthetic)):
        if len(X) <= n_features:
            warnings.warn(
                f"{name} has {len(X)} samples for {n_features} features: its covariance is singular "
                "and the Fréchet distance is unreliable; use more samples or lower-dimensional features",
                UserWarning, stacklevel=2,
            )
    mu_r, mu_s = real.mean(axis=0), synthetic.mean(axis=0)
    cov_r = np.atleast_2d(np.cov(real, rowvar=False))
    cov_s = np.atleast_2d(np.cov(synthetic, rowvar=False))
    sqrt_r = _psd_sqrt(cov_r)
    M = sqrt_r @ cov_s @ sqrt_r
    eigvals = linalg.eigvalsh((M + M.T) / 2)
    tr_covmean = np.sqrt(np.clip(eigvals, 0.0, None)).sum()
    diff = mu_r - mu_s
    d2 = diff @ diff + np.trace(cov_r) + np.trace(cov_s) - 2.0 * tr_covmean
    return float(max(d2, 0.0))


def mmd(
    real,
    synthetic,
    kernel: str | Callable[[np.ndarray, np.ndarray], np.ndarray] = "rbf",
    gamma: float | None = None,
) -> float:
    r"""Unbiased estimate of the squared maximum mean discrepancy (MMD).

    For real samples :math:`x_1..x_m`, synthetic samples :math:`y_1..y_n` and a kernel
    :math:`k`, the U-statistic of Gretton et al. (2012, eq. 3) is

    .. math::

        \widehat{\mathrm{MMD}}^2_u = \frac{1}{m(m-1)} \sum_{i \ne j} k(x_i, x_j)
            + \frac{1}{n(n-1)} \sum_{i \ne j} k(y_i, y_j)
            - \frac{2}{mn} \sum_{i, j} k(x_i, y_j).

    Parameters
    ----------
    real : array-like of shape (n_real, n_features) or (n_real, ...)
        Real samples; more than two dimensions are flattened.
    synthetic : array-like of shape (n_synthetic, n_features) or (n_synthetic, ...)
        Synthetic samples with the same features.
    kernel : {"rbf", "linear"} or callable, default="rbf"
        ``"rbf"``: :math:`k(a, b) = \exp(-\gamma \lVert a - b \rVert^2)`.
        ``"linear"``: :math:`k(a, b) = \langle a, b \rangle`; the population MMD is then the
        squared distance between the means (the unbiased estimate returned leaves out each
        sample's product with itself, so it is not the sample means' squared distance and can
        be negative).
        A callable ``kernel(A, B)`` must return the kernel matrix of shape ``(len(A), len(B))``
        for two 2-D float arrays.
    gamma : float, default=None
        Width of the RBF kernel. ``None`` uses the median heuristic:
        ``gamma = 1 / median`` of the squared Euclidean distances between all distinct pairs of
        the pooled sample (real and synthetic together). Ignored unless ``kernel="rbf"``.

    Returns
    -------
    mmd2 : float
        The unbiased estimate of MMD². Being unbiased, it is centred on 0 when both sets come
        from the same distribution and can then be slightly negative; values well above the
        spread between two real samples mean the distributions differ.

    Notes
    -----
    Time and memory grow as ``(n_real + n_synthetic) ** 2``: subsample beyond a few thousand
    samples.

    References
    ----------
    A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schölkopf and A. Smola, "A kernel two-sample
    test", Journal of Machine Learning Research 13, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from synthaug.metrics import mmd
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(500, 3)), rng.normal(size=(500, 3))
    >>> abs(mmd(X, Y)) < 0.01, mmd(X, Y + 1.0) > 0.1
    (True, True)
    """
    X, Y = _check_pair(real, synthetic, ("real", "synthetic"), min_samples=2,
                       why="the unbiased MMD needs at least 2")
    m, n = len(X), len(Y)
    if callable(kernel):
        K = {}
        for key, A, B in (("xx", X, X), ("yy", Y, Y), ("xy", X, Y)):
            K[key] = np.asarray(kernel(A, B), dtype=np.float64)
            if K[key].shape != (len(A), len(B)):
                raise ValueError(
                    f"kernel must return a matrix of shape (len(A), len(B)) = {(len(A), len(B))}; "
                    f"got shape {K[key].shape}"
                )
    elif kernel == "linear":
        K = {"xx": X @ X.T, "yy": Y @ Y.T, "xy": X @ Y.T}
    elif kernel == "rbf":
        D = {
            "xx": euclidean_distances(X, squared=True),
            "yy": euclidean_distances(Y, squared=True),
            "xy": euclidean_distances(X, Y, squared=True),
        }
        if gamma is None:
            pooled = np.concatenate([
                D["xx"][np.triu(np.ones((m, m), dtype=bool), 1)],
                D["yy"][np.triu(np.ones((n, n), dtype=bool), 1)],
                D["xy"].ravel(),
            ])
            median = np.median(pooled)
            # Many duplicated samples make the median 0; fall back to the mean non-zero distance.
            if median <= 0:
                positive = pooled[pooled > 0]
                median = positive.mean() if positive.size else 1.0
            gamma = 1.0 / median
        elif not (gamma > 0 and np.isfinite(gamma)):
            raise ValueError(f"gamma must be a positive finite float or None; got {gamma!r}")
        K = {key: np.exp(-gamma * d) for key, d in D.items()}
    else:
        raise ValueError(f"kernel must be 'rbf', 'linear' or a callable; got {kernel!r}")
    kxx = (K["xx"].sum() - np.trace(K["xx"])) / (m * (m - 1))
    kyy = (K["yy"].sum() - np.trace(K["yy"])) / (n * (n - 1))
    kxy = K["xy"].mean()
    return float(kxx + kyy - 2.0 * kxy)


def sliced_wasserstein(
    real,
    synthetic,
    n_projections: int = 128,
    p: float = 1,
    random_state=None,
) -> float:
    r"""Sliced Wasserstein distance: the p-Wasserstein distance averaged over 1-D projections.

    .. math::

        SW_p(\mu, \nu) = \Bigl( \mathbb{E}_{\theta \sim U(S^{d-1})}
            W_p^p(\theta_\# \mu, \theta_\# \nu) \Bigr)^{1/p},

    estimated with ``n_projections`` random unit directions :math:`\theta`. Each 1-D distance is
    exact: :math:`W_p^p = \int_0^1 |F^{-1}(u) - G^{-1}(u)|^p \, du` with the empirical quantile
    functions :math:`F^{-1}, G^{-1}`, which also holds for unequal sample sizes.

    Parameters
    ----------
    real : array-like of shape (n_real,), (n_real, n_features) or (n_real, ...)
        Real samples; 1-D input is one feature, more than two dimensions are flattened.
    synthetic : array-like of shape (n_synthetic,), (n_synthetic, n_features) or (n_synthetic, ...)
        Synthetic samples with the same features.
    n_projections : int, default=128
        Number of random directions. The Monte Carlo error shrinks as
        ``1 / sqrt(n_projections)``.
    p : float, default=1
        Order of the Wasserstein distance, >= 1.
    random_state : int, RandomState instance or None, default=None
        Draws the directions. Pass an int for reproducible results.

    Returns
    -------
    distance : float
        The sliced p-Wasserstein distance, in the units of the features.

    Notes
    -----
    With one feature the only directions are +1 and -1, which give the same distance: the result
    is then the exact 1-D Wasserstein distance (for ``p=1`` the value of
    ``scipy.stats.wasserstein_distance``), and ``n_projections`` and ``random_state`` are unused.

    References
    ----------
    J. Rabin, G. Peyré, J. Delon and M. Bernot, "Wasserstein barycenter and its application to
    texture mixing", SSVM 2011.

    N. Bonneel, J. Rabin, G. Peyré and H. Pfister, "Sliced and Radon Wasserstein barycenters of
    measures", Journal of Mathematical Imaging and Vision 51(1), 2015.

    Examples
    --------
    >>> from synthaug.metrics import sliced_wasserstein
    >>> sliced_wasserstein([0.0, 1.0, 2.0], [5.0, 6.0, 7.0])  # 1-D: the Wasserstein distance
    5.0
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3))
    >>> sliced_wasserstein(X, X, random_state=0)
    0.0
    """
    X, Y = _check_pair(real, synthetic, ("real", "synthetic"))
    if isinstance(n_projections, bool) or not isinstance(n_projections, (int, np.integer)) or n_projections < 1:
        raise ValueError(f"n_projections must be a positive integer; got {n_projections!r}")
    if not (isinstance(p, (int, float, np.integer, np.floating)) and p >= 1 and math.isfinite(p)):
        raise ValueError(f"p must be a finite number >= 1; got {p!r}")
    d = X.shape[1]
    if d == 1:
        theta = np.ones((1, 1))
    else:
        theta = check_random_state(random_state).standard_normal((int(n_projections), d))
        theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    px = np.sort(X @ theta.T, axis=0)
    py = np.sort(Y @ theta.T, axis=0)
    m, n = len(px), len(py)
    # Quantile levels in integer units of 1/(m*n): the cuts i/m and j/n are exact integers, so
    # each interval between consecutive cuts maps to one order statistic of each sample.
    cuts = np.union1d(np.arange(0, m * n, n, dtype=np.int64), np.arange(0, m * n, m, dtype=np.int64))
    widths = np.diff(np.append(cuts, m * n)) / (m * n)
    gaps = np.abs(px[cuts // n] - py[cuts // m])
    return float(np.mean(widths @ gaps**p) ** (1.0 / p))


# -- fidelity and diversity -----------------------------------------------------------------------
def _kth_neighbour_distance(X: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of `X` to its k-th nearest other row of `X`."""
    # Querying X against itself returns each point (or a duplicate) at distance 0 first, so the
    # (k+1)-th distance is the k-th distance to the other points.
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    return dist[:, k]


def precision_recall_density_coverage(real_features, synthetic_features, k: int = 5) -> dict:
    r"""Precision, recall, density and coverage of synthetic samples, from k-NN balls.

    Each sample gets a ball of radius :math:`r_k`, its distance to its k-th nearest neighbour
    in its own set (itself excluded); :math:`B(x, r)` is the closed ball. With real samples
    :math:`x_1..x_N` and synthetic samples :math:`y_1..y_M`:

    - precision (Kynkäänniemi et al., 2019): share of synthetic samples inside the real
      manifold :math:`\bigcup_i B(x_i, r_k(x_i))`; measures fidelity.
    - recall (Kynkäänniemi et al., 2019): share of real samples inside the synthetic manifold
      :math:`\bigcup_j B(y_j, r_k(y_j))`; measures diversity.
    - density (Naeem et al., 2020):
      :math:`\frac{1}{kM} \sum_j \sum_i 1[y_j \in B(x_i, r_k(x_i))]`; like precision but counts
      how many real balls hold each synthetic sample, so it is robust to real outliers. Its
      expectation is 1 for identical distributions; it can exceed 1.
    - coverage (Naeem et al., 2020): share of real samples whose ball holds at least one
      synthetic sample; like recall but built on real balls only, so it is robust to synthetic
      outliers. For identical distributions and ``M = N`` it approaches
      :math:`1 - 2^{-k}` (0.969 for k=5).

    Parameters
    ----------
    real_features : array-like of shape (n_real, n_features) or (n_real, ...)
        Real samples or their embeddings; more than two dimensions are flattened.
    synthetic_features : array-like of shape (n_synthetic, n_features) or (n_synthetic, ...)
        Synthetic samples or their embeddings, with the same features.
    k : int, default=5
        Neighbourhood size; each set needs at least ``k + 1`` samples.

    Returns
    -------
    scores : dict
        ``{"precision": float, "recall": float, "density": float, "coverage": float}``;
        precision, recall and coverage lie in [0, 1], higher is better for all four.

    Notes
    -----
    Precision and recall of two samples of the same distribution fall below 1 as the dimension
    grows (about 0.7 for 2000 standard normal samples in 64 dimensions with k=5), while density
    stays near 1 and coverage near :math:`1 - 2^{-k}`: compare values at a fixed dimension, k
    and sample size.

    The real-to-synthetic distances are computed in chunks (scikit-learn's ``working_memory``),
    so memory stays bounded; time grows as ``n_real * n_synthetic``.

    References
    ----------
    T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen and T. Aila, "Improved precision and recall
    metric for assessing generative models", NeurIPS 2019.

    M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi and J. Yoo, "Reliable fidelity and diversity metrics for
    generative models", ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from synthaug.metrics import precision_recall_density_coverage
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(500, 8))
    >>> scores = precision_recall_density_coverage(real, rng.normal(size=(500, 8)) + 10.0)
    >>> scores["precision"], scores["coverage"]
    (0.0, 0.0)
    """
    k = _check_k(k)
    real, synthetic = _check_pair(
        real_features, synthetic_features, ("real_features", "synthetic_features"),
        min_samples=k + 1, why=f"with k={k} at least k + 1 = {k + 1} are needed",
    )
    # Centred on the real mean: the distances do not change, but the chunked pairwise formula
    # (|a|² + |b|² - 2ab) loses them to round-off when the features sit far from the origin.
    centre = real.mean(axis=0)
    real, synthetic = real - centre, synthetic - centre
    real_radii = _kth_neighbour_distance(real, k)
    synthetic_radii = _kth_neighbour_distance(synthetic, k)
    real_balls_holding = np.zeros(len(synthetic), dtype=np.int64)
    covered, recalled = [], []
    start = 0
    for D in pairwise_distances_chunked(real, synthetic):
        inside = D <= real_radii[start:start + len(D), None]
        real_balls_holding += inside.sum(axis=0)
        covered.append(inside.any(axis=1))
        recalled.append((D <= synthetic_radii[None, :]).any(axis=1))
        start += len(D)
    return {
        "precision": float(np.mean(real_balls_holding > 0)),
        "recall": float(np.concatenate(recalled).mean()),
        "density": float(real_balls_holding.sum() / (k * len(synthetic))),
        "coverage": float(np.concatenate(covered).mean()),
    }


# -- usefulness -----------------------------------------------------------------------------------
def _default_classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def tstr(
    generator_or_samples,
    X_train,
    y_train,
    X_test,
    y_test,
    estimator=None,
    n_samples: int | None = None,
    random_state=None,
) -> dict:
    """Train on synthetic, test on real (TSTR), beside train on real, test on real (TRTR).

    One clone of `estimator` is fitted on labelled synthetic samples, another on the real
    training set; both are scored on the same real test set. Synthetic data as useful as the real
    data it imitates gives a ratio near 1.

    Parameters
    ----------
    generator_or_samples : tuple (X_synthetic, y_synthetic) or fitted generator
        Either labelled synthetic samples, or a fitted class-conditional generator with a
        ``generate(n_samples, y=None, random_state=None)`` method that returns ``(X, y)`` and,
        given no ``y``, draws labels in its training class balance (as
        :meth:`synthaug.GenerativeEstimator.generate` does).
    X_train : array-like of shape (n_train, n_features) or (n_train, ...)
        Real training data (the data the generator was fitted on); images are flattened.
    y_train : array-like of shape (n_train,)
        Labels of `X_train`.
    X_test : array-like of shape (n_test, n_features) or (n_test, ...)
        Real held-out data, never seen by the generator.
    y_test : array-like of shape (n_test,)
        Labels of `X_test`.
    estimator : classifier, default=None
        Unfitted scikit-learn classifier; it is cloned, never fitted itself. ``None`` uses
        ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))``.
    n_samples : int, default=None
        Number of samples to draw from a generator; ``None`` draws ``len(X_train)``. Must be
        ``None`` when samples are passed.
    random_state : int, RandomState instance or None, default=None
        Passed to ``generate``.

    Returns
    -------
    scores : dict
        ``tstr_accuracy`` (float), ``trtr_accuracy`` (float), ``ratio`` (``tstr_accuracy /
        trtr_accuracy``; NaN when ``trtr_accuracy`` is 0) and ``n_synthetic`` (int).

    Warns
    -----
    UserWarning
        When the synthetic labels hold a single class. No classifier can be trained on it; the
        TSTR accuracy is then that of always predicting this class, as any classifier fitted on
        such data would.

    References
    ----------
    C. Esteban, S. L. Hyland and G. Rätsch, "Real-valued (medical) time series generation with
    recurrent conditional GANs", arXiv:1706.02633, 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from synthaug.metrics import tstr
    >>> X, y = load_digits(return_X_y=True)
    >>> scores = tstr((X[:1000], y[:1000]), X[:1000], y[:1000], X[1000:], y[1000:])
    >>> scores["ratio"], scores["n_synthetic"]  # real data as its own "synthetic" data
    (1.0, 1000)
    """
    X_tr, X_te = _check_pair(X_train, X_test, ("X_train", "X_test"))
    y_tr = _check_labels(y_train, len(X_tr), "y_train", "X_train")
    y_te = _check_labels(y_test, len(X_te), "y_test", "X_test")

    if isinstance(generator_or_samples, (tuple, list)):
        if len(generator_or_samples) != 2:
            raise ValueError(
                "generator_or_samples must be a pair (X_synthetic, y_synthetic) or a generator; "
                f"got a sequence of length {len(generator_or_samples)}"
            )
        if n_samples is not None:
            raise ValueError("n_samples applies to a generator only; subsample the synthetic samples instead")
        X_syn, y_syn = generator_or_samples
    elif hasattr(generator_or_samples, "generate"):
        n_draw = len(X_tr) if n_samples is None else n_samples
        if isinstance(n_draw, bool) or not isinstance(n_draw, (int, np.integer)) or n_draw < 1:
            raise ValueError(f"n_samples must be a positive integer or None; got {n_samples!r}")
        out = generator_or_samples.generate(int(n_draw), random_state=random_state)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(
                f"{type(generator_or_samples).__name__}.generate returned samples without labels: "
                "TSTR needs a class-conditional generator fitted with labels"
            )
        X_syn, y_syn = out
    else:
        raise ValueError(
            "generator_or_samples must be a pair (X_synthetic, y_synthetic) or an object with a "
            f"generate method; got {type(generator_or_samples).__name__}"
        )
    X_syn = _check_samples(X_syn, "synthetic samples")
    if X_syn.shape[1] != X_tr.shape[1]:
        raise ValueError(
            f"synthetic samples have {X_syn.shape[1]} features but X_train has {X_tr.shape[1]}"
        )
    y_syn = _check_labels(y_syn, len(X_syn), "synthetic labels", "the synthetic samples")

    estimator = _default_classifier() if estimator is None else estimator
    trtr_accuracy = accuracy_score(y_te, clone(estimator).fit(X_tr, y_tr).predict(X_te))
    synthetic_classes = np.unique(y_syn)
    if len(synthetic_classes) == 1:
        warnings.warn(
            f"the synthetic labels hold the single class {_python(synthetic_classes[0])!r}: the generator "
            "has collapsed; TSTR accuracy is that of always predicting this class",
            UserWarning, stacklevel=2,
        )
        tstr_accuracy = float(np.mean(y_te == synthetic_classes[0]))
    else:
        tstr_accuracy = accuracy_score(y_te, clone(estimator).fit(X_syn, y_syn).predict(X_te))
    return {
        "tstr_accuracy": float(tstr_accuracy),
        "trtr_accuracy": float(trtr_accuracy),
        "ratio": float(tstr_accuracy / trtr_accuracy) if trtr_accuracy > 0 else float("nan"),
        "n_synthetic": int(len(X_syn)),
    }


def mode_coverage(
    samples,
    classifier,
    y=None,
    classes=None,
    min_share: float | None = None,
) -> dict:
    """Which classes a generator produces, as judged by a classifier trained on real data.

    The fitted `classifier` labels every sample. A class is *covered* when it receives at least
    `min_share` of the predictions; a collapsed generator covers few classes. When the labels
    the samples were generated for are passed as `y`, the agreement between requested and
    predicted labels measures how well a conditional generator obeys its condition.

    Parameters
    ----------
    samples : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Generated samples; more than two dimensions are flattened before ``predict``, so the
        classifier must have been fitted on flattened data.
    classifier : fitted classifier
        Any object with ``predict``, trained on real data, ideally held out from the generator's
        training set.
    y : array-like of shape (n_samples,), default=None
        Labels the samples were requested for (conditional generation).
    classes : array-like, default=None
        The classes to look for. ``None`` uses ``classifier.classes_``.
    min_share : float, default=None
        Least share of predictions a covered class receives. ``None`` uses
        ``0.2 / n_classes``: a fifth of a uniform share, so that a handful of misclassified
        samples does not count as a mode, while a class at a fifth of its fair share still
        does. Lower it for generators of strongly imbalanced classes.

    Returns
    -------
    report : dict
        ``class_share`` (dict class -> share of predictions), ``covered_classes`` (list),
        ``n_covered`` (int), ``coverage`` (``n_covered / n_classes``), ``entropy`` (entropy of
        the predicted-class distribution divided by ``log(n_classes)``: 1 for a uniform spread,
        0 when a single class is predicted) and ``min_share`` (the threshold used). With `y`
        also ``label_agreement`` (share of samples predicted as their requested label) and
        ``per_class_agreement`` (dict requested class -> that share among its samples).

    Notes
    -----
    The classifier's own errors bound what this can show: read ``label_agreement`` beside the
    classifier's accuracy on real test data.

    References
    ----------
    T. Che, Y. Li, A. P. Jacob, Y. Bengio and W. Li, "Mode regularized generative adversarial
    networks", ICLR 2017 (counting modes with a pretrained classifier).

    A. Odena, C. Olah and J. Shlens, "Conditional image synthesis with auxiliary classifier GANs",
    ICML 2017 (accuracy of a classifier on class-conditional samples).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from synthaug.metrics import mode_coverage
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KNeighborsClassifier().fit(X, y)
    >>> report = mode_coverage(X[y == 3], clf)  # a generator stuck on one class
    >>> report["covered_classes"], round(report["entropy"], 2)  # one misread 3 is no mode
    ([3], 0.03)
    """
    X = _check_samples(samples, "samples")
    if classes is None:
        if not hasattr(classifier, "classes_"):
            raise ValueError(
                f"classifier ({type(classifier).__name__}) has no classes_ attribute: pass classes"
            )
        classes = classifier.classes_
    classes = np.asarray(classes)
    if classes.ndim != 1 or len(np.unique(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must be at least 2 distinct labels; got {classes.tolist()!r}")
    n_classes = len(classes)
    if min_share is None:
        min_share = 0.2 / n_classes
    elif not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1]; got {min_share!r}")

    predicted = np.asarray(classifier.predict(X))
    unknown = np.setdiff1d(predicted, classes)
    if unknown.size:
        raise ValueError(
            f"classifier predicted labels outside classes: {unknown[:5].tolist()}; classes: {classes.tolist()}"
        )
    counts = np.array([np.sum(predicted == c) for c in classes])
    shares = counts / len(predicted)
    covered = shares >= min_share
    nonzero = shares[shares > 0]
    entropy = -(nonzero * np.log(nonzero)).sum() / np.log(n_classes)
    report = {
        "class_share": {_python(c): float(s) for c, s in zip(classes, shares)},
        "covered_classes": [_python(c) for c in classes[covered]],
        "n_covered": int(covered.sum()),
        "coverage": float(covered.mean()),
        "entropy": float(abs(entropy)),
        "min_share": float(min_share),
    }
    if y is not None:
        requested = _check_labels(y, len(X), "y", "samples")
        known = set(classes.tolist())
        foreign = [label for label in np.unique(requested).tolist() if label not in known]
        if foreign:  # e.g. "3" against 3: every sample would count as disagreeing
            raise ValueError(f"y holds labels that are not among the classes: {foreign[:5]} "
                             f"(classes: {classes.tolist()[:10]}); pass labels of the classifier's type")
        agree = predicted == requested
        report["label_agreement"] = float(agree.mean())
        report["per_class_agreement"] = {
            _python(c): float(agree[requested == c].mean()) for c in np.unique(requested)
        }
    return report


# -- privacy --------------------------------------------------------------------------------------
# A copy stored in float32 (or written to a file and read back) differs from its float64 record
# by float32's rounding, about 6e-8 of each value: still an exact copy for a privacy review.
_EXACT_COPY_RTOL = 1e-6


def _distance_to_closest_record(reference: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each query's distance to its closest reference record, that record's norm)."""
    _, idx = NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(queries)
    nearest = reference[idx[:, 0]]
    # Recompute the distance to the neighbour found: the fast pairwise formula leaves round-off
    # (about 1e-8) where an exact copy should read 0.
    return np.linalg.norm(queries - nearest, axis=1), np.linalg.norm(nearest, axis=1)


def memorization(train, synthetic, holdout, threshold: float | None = None) -> dict:
    """How closely synthetic samples copy the generator's training records.

    The distance to closest record (DCR) of a sample is its Euclidean distance to the nearest
    training record. A generator that learnt the distribution places its samples no closer to
    the training records than fresh real data (the `holdout` set, never seen in training) lies;
    one that memorised places them closer, down to exact copies. Synthetic data that copies its
    training records is a privacy leak: it discloses those records, however plausible it looks.

    Parameters
    ----------
    train : array-like of shape (n_train, n_features) or (n_train, ...)
        The records the generator was fitted on.
    synthetic : array-like of shape (n_synthetic, n_features) or (n_synthetic, ...)
        Generated samples.
    holdout : array-like of shape (n_holdout, n_features) or (n_holdout, ...)
        Real records from the same source, not used to fit the generator.
    threshold : float, default=None
        A synthetic sample is a *near copy* when its DCR is at most `threshold`. ``None`` uses
        the 5th percentile of the holdout DCRs, so that about 5 % of fresh real records would
        be called near copies; a synthetic near-copy share well above 5 % signals memorisation.

    Returns
    -------
    report : dict
        ``dcr_synthetic_median`` and ``dcr_holdout_median`` (floats), ``dcr_ratio`` (their
        quotient: about 1 or more is healthy, well below 1 means samples sit closer to the
        training records than real data does; NaN when the holdout median is 0),
        ``threshold`` (the near-copy threshold used), ``near_copy_share`` (share of synthetic
        samples with DCR <= threshold), ``holdout_near_copy_share`` (the same share for the
        holdout, the baseline to compare with) and ``exact_copy_share`` (share of synthetic
        samples equal to a training record up to float32 rounding: DCR at most 1e-6 of that
        record's norm, so a float32 copy of float64 data counts).

    Notes
    -----
    Distances are taken on the raw features: standardise mixed-scale tabular data first. A low
    DCR is evidence of copying, but a healthy DCR is no privacy guarantee (it does not bound
    membership inference); use differential privacy where guarantees are needed.

    References
    ----------
    N. Park, M. Mohammadi, K. Gorde, S. Jajodia, H. Park and Y. Kim, "Data synthesis based on
    generative adversarial networks", PVLDB 11(10), 2018 (distance to closest record).

    M. Platzer and T. Reutterer, "Holdout-based empirical assessment of mixed-type synthetic
    data", Frontiers in Big Data 4, 2021 (comparison against a holdout set).

    Examples
    --------
    >>> import numpy as np
    >>> from synthaug.metrics import memorization
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
    >>> report = memorization(train, train[:100], holdout)  # a generator that copies
    >>> report["exact_copy_share"], report["near_copy_share"]
    (1.0, 1.0)
    """
    tr, syn = _check_pair(train, synthetic, ("train", "synthetic"))
    hold = _check_samples(holdout, "holdout")
    if hold.shape[1] != tr.shape[1]:
        raise ValueError(f"train has {tr.shape[1]} features but holdout has {hold.shape[1]}")
    dcr_synthetic, nearest_norm = _distance_to_closest_record(tr, syn)
    dcr_holdout, _ = _distance_to_closest_record(tr, hold)
    if threshold is None:
        threshold = float(np.percentile(dcr_holdout, 5))
    elif not threshold >= 0:
        raise ValueError(f"threshold must be a distance >= 0 or None; got {threshold!r}")
    median_synthetic = float(np.median(dcr_synthetic))
    median_holdout = float(np.median(dcr_holdout))
    return {
        "dcr_synthetic_median": median_synthetic,
        "dcr_holdout_median": median_holdout,
        "dcr_ratio": median_synthetic / median_holdout if median_holdout > 0 else float("nan"),
        "threshold": float(threshold),
        "near_copy_share": float(np.mean(dcr_synthetic <= threshold)),
        "holdout_near_copy_share": float(np.mean(dcr_holdout <= threshold)),
        "exact_copy_share": float(np.mean(dcr_synthetic <= _EXACT_COPY_RTOL * nearest_norm)),
    }
