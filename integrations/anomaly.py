"""Anomaly detection from reconstruction error, in scikit-learn's outlier-detector API.

:class:`ReconstructionAnomalyDetector` fits a generator on (mostly) normal data and scores new
samples by how badly the generator reconstructs them, or by the generator's likelihood. It
follows scikit-learn's ``OutlierMixin`` contract (``score_samples``: higher is more normal;
``decision_function = score_samples - offset_``; ``predict`` in {-1, +1}) and adds per-pixel (or
per-feature) error maps, so a user can see *where* a sample is abnormal, and a matplotlib
figure of them.

Keras is imported only when the default generator is built or a saved detector is loaded.
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from synthaug.base import GenerativeEstimator
from synthaug.tabular import TabularEncoder, is_dataframe

__all__ = ["ReconstructionAnomalyDetector", "auto_score", "default_generator", "ssim_map"]

SCORES = ("auto", "reconstruction", "normalized", "topk", "ssim", "likelihood")
# "auto" scores images with both sides at least this long by SSIM (structure is visible at that size).
_AUTO_SSIM_MIN_SIDE = 16
FORMAT = "synthaug-anomaly-detector"
FORMAT_VERSION = 1
# "normalized": per-feature errors are divided by (their mean on normal data + this share of
# the average over features), so features the generator always reconstructs perfectly on normal
# data (constant background pixels) get a large but finite weight.
_NORMALIZE_FLOOR = 1.0
# contamination="auto": the offset is this quantile of the training scores, lowered by this
# share of the spread between it and the median (the training scores are optimistic: the
# generator was fitted on those samples).
_AUTO_QUANTILE = 0.01
_AUTO_MARGIN = 0.5
_SSIM_SIGMA = 1.5  # Gaussian window of Wang et al. (2004)
_SSIM_K1, _SSIM_K2 = 0.01, 0.03


def ssim_map(X: np.ndarray, Y: np.ndarray, data_range: float, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    """Per-pixel structural similarity of image batches (Wang et al., 2004), in NumPy/SciPy.

    Local means, variances and the covariance are Gaussian-weighted (``sigma`` pixels, borders
    reflected), with population statistics, as ``skimage.metrics.structural_similarity(...,
    gaussian_weights=True, use_sample_covariance=False, full=True)`` computes them.

    Parameters
    ----------
    X, Y : ndarray of shape (n, H, W) or (n, H, W, C)
        Two image batches of the same shape; channels are compared separately.
    data_range : float
        The value range of the images (e.g. 255 for uint8, 16 for digits).
    sigma : float, default=1.5
        Standard deviation of the Gaussian window, in pixels.

    Returns
    -------
    S : ndarray of the shape of X
        SSIM at every pixel, at most 1 (identical neighbourhoods).
    """
    from scipy.ndimage import gaussian_filter

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.shape != Y.shape or X.ndim not in (3, 4):
        raise ValueError(f"X and Y must be image batches of one shape (n, H, W[, C]); got {X.shape} and {Y.shape}")
    # smooth over the two image axes only: not across samples, not across channels
    sigmas = (0, sigma, sigma) + ((0,) if X.ndim == 4 else ())

    def smooth(A):
        return gaussian_filter(A, sigmas, mode="reflect", truncate=3.5)

    ux, uy = smooth(X), smooth(Y)
    vx = smooth(X * X) - ux * ux
    vy = smooth(Y * Y) - uy * uy
    vxy = smooth(X * Y) - ux * uy
    c1, c2 = (_SSIM_K1 * data_range) ** 2, (_SSIM_K2 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def _can_reconstruct(generator) -> bool:
    """A synthaug generator reconstructs with ``reconstruct`` (a flow's transform is exactly
    invertible, so it has none); any other estimator with ``transform`` and ``inverse_transform``."""
    if isinstance(generator, GenerativeEstimator):
        return hasattr(generator, "reconstruct")
    return hasattr(generator, "transform") and hasattr(generator, "inverse_transform")


def _generator_view(generator, X: np.ndarray) -> np.ndarray:
    """synthaug generators take samples in their shape; other estimators take them flattened."""
    return X if isinstance(generator, GenerativeEstimator) else X.reshape(len(X), -1)


def auto_score(input_shape, generator) -> str:
    """The score ``anomaly_score="auto"`` uses for samples of ``input_shape`` and a fitted ``generator``.

    Chosen from benchmarks/anomaly.py: SSIM for images of at least 16×16 pixels (lfw faces vs
    non-faces: AUROC 0.980 against 0.921 for the mean squared error), the mean squared error for
    smaller images (one-class 8×8 digits: 0.996), the generator's likelihood for tabular data
    (breast_cancer 0.958 and wine 0.975, against 0.937 and 0.977 for the squared error). A
    generator that cannot reconstruct (a ``Flow``) is scored by its likelihood; a tabular
    generator without ``score_samples`` by the normalised error.
    """
    if not _can_reconstruct(generator):
        return "likelihood"
    if len(input_shape) == 1:
        return "likelihood" if hasattr(generator, "score_samples") else "normalized"
    return "ssim" if min(input_shape[:2]) >= _AUTO_SSIM_MIN_SIDE else "reconstruction"


def default_generator(**params):
    """The VAE that ``ReconstructionAnomalyDetector(generator=None)`` uses, with overrides.

    A Gaussian decoder (``reconstruct`` returns the decoder's mean, not a rounded level), dense
    networks ``(512, 512)``, ``latent_dim=32``, ``dropout=0.1``, ``batch_size=64`` and
    ``patience=20``. On one-class digits (benchmarks/anomaly.py) it gave a mean AUROC of 0.996
    (reconstruction error); the VAE's own defaults (convolutional networks, a categorical decoder
    whose reconstruction is the most likely level) gave 0.971, and 0.982 with the decoder's mean.

    Parameters
    ----------
    **params
        VAE parameters that replace the defaults above (e.g. ``epochs=50``).

    Returns
    -------
    vae : synthaug.VAE
        Unfitted.
    """
    from synthaug.models.vae import VAE

    settings = dict(likelihood="gaussian", architecture="mlp", hidden_units=(512, 512), latent_dim=32,
                    dropout=0.1, batch_size=64, patience=20)
    return VAE(**{**settings, **params})


class ReconstructionAnomalyDetector(OutlierMixin, BaseEstimator):
    """Outlier detector that scores samples by a generator's reconstruction error or likelihood.

    ``fit(X)`` fits a clone of ``generator`` on (mostly) normal data. A sample the generator
    reconstructs badly, or finds unlikely, is abnormal. Works on images ``(n, H, W)`` /
    ``(n, H, W, C)`` and on tabular data (arrays, or pandas DataFrames with numeric and
    categorical columns, which are one-hot encoded with :class:`synthaug.tabular.TabularEncoder`).

    Errors are measured in units of the training data's standard deviation (per feature for
    tabular data, one value over all pixels for images): the error at a pixel or feature is
    ``((x - reconstruction) / std) ** 2``.

    Parameters
    ----------
    generator : synthaug generator, scikit-learn transformer or None, default=None
        Model of normal data; it is cloned, never fitted in place. A synthaug generator (``VAE``)
        is used through ``reconstruct`` (and ``score_samples`` for ``anomaly_score="likelihood"``;
        a ``Flow`` supports only that score) and sees images in their shape. Any other estimator
        with ``transform`` and ``inverse_transform`` (e.g. ``sklearn.decomposition.PCA``) sees
        the samples flattened to ``(n, d)`` and reconstructs them as
        ``inverse_transform(transform(X))``. ``None`` uses a VAE with settings measured for
        anomaly detection: a Gaussian decoder (its reconstruction is the decoder's mean),
        dense networks ``(512, 512)``, ``latent_dim=32``, ``dropout=0.1``, ``batch_size=64``,
        ``patience=20``.
    anomaly_score : {"auto", "reconstruction", "normalized", "topk", "ssim", "likelihood"}, default="auto"
        How a sample is scored (higher is more normal). Not named ``score``: scikit-learn
        reserves that name for an estimator's ``score(X, y)`` method, which ``GridSearchCV`` calls.

        - ``"auto"``: picked in ``fit`` from the data and the generator (see :func:`auto_score`):
          ``"ssim"`` for images of at least 16×16 pixels, ``"reconstruction"`` for smaller
          images, ``"likelihood"`` for tabular data (``"normalized"`` if the generator has no
          ``score_samples``) and for generators that cannot reconstruct. ``anomaly_score_``
          says which.

        - ``"reconstruction"``: minus the mean squared error over pixels/features (for a
          DataFrame, over its encoded entries: numeric columns and one-hot entries).
        - ``"normalized"``: as ``"reconstruction"``, but each feature's error is divided by its
          mean error on the training data (plus the average over features, so that features
          always reconstructed perfectly keep a finite weight). Features that are hard to
          reconstruct even on normal data count less.
        - ``"topk"``: minus the mean of the largest ``top_k`` share of the per-pixel errors
          (channels averaged): small local defects are not drowned by the rest of the image.
        - ``"ssim"``: images only; the mean structural similarity between the sample and its
          reconstruction (Gaussian window of 1.5 pixels, :func:`ssim_map`).
        - ``"likelihood"``: ``generator.score_samples`` (for a VAE an importance-weighted lower
          bound on log p(x); exact for a ``Flow``).
    contamination : "auto" or float, default="auto"
        Expected share of outliers in the training data; sets ``offset_``. A float in
        ``(0, 0.5]``: ``offset_`` is that quantile of the training scores, as in
        ``IsolationForest``, so ``fit_predict`` flags that share of the training data.
        ``"auto"``: training scores are optimistic (the generator has seen those samples), so
        ``offset_`` is the 1 % quantile of the training scores moved down by half of its
        distance to the median. On one-class digits with the default generator this flagged
        1.4 % of held-out normal digits and 95 % of the other digits (benchmarks/anomaly.py); the
        plain 1 % quantile flagged 8 % of held-out normal digits (digits 0, 3 and 8). Training
        data without clear outliers may have no sample flagged.
    top_k : float, default=0.01
        Share of pixels (or features) averaged by ``anomaly_score="topk"``, in ``(0, 1]``; at
        least one pixel is used. Pick it near the share of the image a defect covers: with 0.01, a blob of
        a few pixels in a 24x24 image stands out (benchmarks/anomaly.py).
    random_state : int, RandomState or None, default=None
        Seeds the generator's training when the generator's own ``random_state`` is ``None``.

    Attributes
    ----------
    generator_ : estimator
        The fitted clone of ``generator``.
    anomaly_score_ : str
        The score in use: ``anomaly_score``, or the one ``"auto"`` picked in ``fit``.
    offset_ : float
        ``decision_function(X) = score_samples(X) - offset_``; negative values are outliers.
    input_shape_ : tuple of int
        Shape of one sample (for DataFrames: the number of encoded columns).
    feature_scale_ : ndarray
        Standard deviation of the training data: per feature for tabular data, shape ``()`` for
        images.
    error_scale_ : ndarray of shape input_shape_
        Mean error of every pixel/feature on the training data (used by ``"normalized"``).
    data_range_ : float
        Value range of the training data (used by ``"ssim"``).
    tabular_encoder_ : TabularEncoder or None
        The encoder of a DataFrame seen in ``fit``; ``None`` for arrays.
    n_features_in_ : int
        ``X.shape[1]`` as scikit-learn defines it (the height for images, the number of
        columns for DataFrames).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame with string column names.

    See Also
    --------
    sklearn.ensemble.IsolationForest : the same outlier API, on tree depths.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from synthaug import VAE
    >>> from synthaug.integrations.anomaly import ReconstructionAnomalyDetector
    >>> digits = load_digits()
    >>> zeros, others = digits.images[digits.target == 0], digits.images[digits.target != 0]
    >>> detector = ReconstructionAnomalyDetector(VAE(likelihood="gaussian", epochs=5), random_state=0)
    >>> detector = detector.fit(zeros[:150])
    >>> detector.predict(others[:3]).shape, detector.error_map(others[:3]).shape
    ((3,), (3, 8, 8))
    """

    def __init__(self, generator=None, anomaly_score: str = "auto", contamination="auto",
                 top_k: float = 0.01, random_state=None):
        self.generator = generator
        self.anomaly_score = anomaly_score
        self.contamination = contamination
        self.top_k = top_k
        self.random_state = random_state

    # -- validation --------------------------------------------------------------------------
    def _check_params(self):
        if self.anomaly_score not in SCORES:
            raise ValueError(f"anomaly_score must be one of {list(SCORES)}; got {self.anomaly_score!r}")
        c = self.contamination
        if not (isinstance(c, str) and c == "auto") and not (
            isinstance(c, numbers.Real) and not isinstance(c, bool) and 0.0 < c <= 0.5
        ):
            raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5]; got {c!r}")
        k = self.top_k
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not 0.0 < k <= 1.0:
            raise ValueError(f"top_k must be a float in (0, 1] (a share of the pixels); got {k!r}")

    def _check_generator(self):
        generator = default_generator() if self.generator is None else self.generator
        if not hasattr(generator, "fit") or not hasattr(generator, "get_params"):
            raise TypeError(
                "generator must be an estimator with fit, such as synthaug.VAE() or "
                f"sklearn.decomposition.PCA(); got {type(generator).__name__}"
            )
        if self.anomaly_score == "auto":
            if not (_can_reconstruct(generator) or hasattr(generator, "score_samples")):
                raise TypeError(
                    "generator must reconstruct (a synthaug VAE, or transform and inverse_transform like PCA) "
                    f"or have score_samples; {type(generator).__name__} has neither")
        elif self.anomaly_score == "likelihood":
            if not hasattr(generator, "score_samples"):
                raise TypeError(f"anomaly_score='likelihood' needs a generator with score_samples; "
                                f"{type(generator).__name__} has none")
        elif not _can_reconstruct(generator):
            raise TypeError(
                f"anomaly_score={self.anomaly_score!r} needs a generator that reconstructs: a synthaug "
                "generator with reconstruct (a VAE), or an estimator with transform and inverse_transform "
                f"(PCA); {type(generator).__name__} has neither: use anomaly_score='likelihood'"
            )
        return generator

    def _validate(self, X, *, reset: bool) -> np.ndarray:
        """X as a float64 array in its sample shape (DataFrames: their encoded columns)."""
        if not reset:
            check_is_fitted(self)
        if (reset and is_dataframe(X)) or (not reset and self.tabular_encoder_ is not None):
            # a DataFrame in fit: later input (a DataFrame, or an array of its columns) is encoded alike
            validate_data(self, X, reset=reset, skip_check_array=True)
            if reset:
                self.tabular_encoder_ = TabularEncoder().fit(X)
            return self.tabular_encoder_.transform(X)
        if not reset:
            # Images are checked first: scikit-learn's check compares only X.shape[1] ("32 features,
            # expecting 8" for 32x32 images against 8x8 ones). Tabular input keeps its message.
            shape = getattr(X, "shape", None)
            if shape is not None and (len(shape) >= 3 or self._is_image):
                self._check_sample_shape(shape)
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype="numeric", ensure_min_samples=1 + reset)
        if reset:
            if X.ndim not in (2, 3, 4):
                raise ValueError(
                    f"X must be tabular (n, d) or images (n, H, W) / (n, H, W, C); got shape {X.shape}"
                )
            self.tabular_encoder_ = None
        else:
            self._check_sample_shape(X.shape)
        return np.asarray(X, dtype=np.float64)

    def _check_sample_shape(self, shape) -> None:
        if tuple(shape[1:]) != tuple(self.input_shape_):
            raise ValueError(
                f"X has sample shape {tuple(shape[1:])}, but {type(self).__name__} was fitted on "
                f"sample shape {tuple(self.input_shape_)}"
            )

    @property
    def _is_image(self) -> bool:
        return len(self.input_shape_) >= 2

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the generator on X, (mostly) normal data, and set ``offset_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, d), (n_samples, H, W) or (n_samples, H, W, C)
            Training data.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : ReconstructionAnomalyDetector
        """
        self._check_params()
        generator = self._check_generator()
        X = self._validate(X, reset=True)
        if self.anomaly_score == "ssim" and X.ndim == 2:
            raise ValueError(
                f"anomaly_score='ssim' needs images (n, H, W) or (n, H, W, C); got tabular X of shape {X.shape}"
            )
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        std = X.std(axis=0) if X.ndim == 2 else np.asarray(X.std())
        self.feature_scale_ = np.where(std > 0, std, 1.0)
        self.data_range_ = float(X.max() - X.min()) or 1.0
        generator = self._new_generator(generator)
        self.generator_ = generator.fit(_generator_view(generator, X))
        if _can_reconstruct(self.generator_):
            self.error_scale_ = self._squared_errors(X).mean(axis=0)
        else:
            self.error_scale_ = None  # a generator that cannot reconstruct (Flow): likelihood only
        self.anomaly_score_ = (auto_score(self.input_shape_, self.generator_) if self.anomaly_score == "auto"
                               else self.anomaly_score)
        scores = self._score(X)
        finite = np.isfinite(scores)
        # A few -inf scores (e.g. a contaminating sample under the likelihood) still leave a threshold;
        # NaN or a quantile among the -inf ones do not.
        with np.errstate(invalid="ignore"):
            if self.contamination == "auto":
                low, median = np.quantile(scores, [_AUTO_QUANTILE, 0.5])
                offset = float(low - _AUTO_MARGIN * (median - low))
            else:
                offset = float(np.percentile(scores, 100.0 * self.contamination))
        if np.isnan(scores).any() or not np.isfinite(offset):
            raise ValueError(
                f"the fitted {type(self.generator_).__name__} scores {int((~finite).sum())} of {len(scores)} training "
                f"samples as -inf or NaN (anomaly_score={self.anomaly_score_!r}), so no threshold can be set: its "
                "fit is degenerate (e.g. PCA with about as many components as samples); use more samples, a "
                "smaller model or another anomaly_score"
            )
        self._offset_top_k = float(self.top_k)
        self.offset_ = offset
        return self

    def _new_generator(self, generator):
        new = clone(generator)
        params = new.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None and self.random_state is not None:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            new.set_params(random_state=seed)
        return new

    # -- reconstruction ------------------------------------------------------------------------
    def _reconstruct(self, X: np.ndarray) -> np.ndarray:
        gen = self.generator_
        if isinstance(gen, GenerativeEstimator) and hasattr(gen, "reconstruct"):
            R = gen.reconstruct(X)
        elif _can_reconstruct(gen):
            R = gen.inverse_transform(gen.transform(_generator_view(gen, X)))
        else:
            raise TypeError(
                f"{type(gen).__name__} cannot reconstruct samples, so it has no error maps; "
                "only anomaly_score='likelihood' works with it"
            )
        return np.asarray(R, dtype=np.float64).reshape(X.shape)

    def _squared_errors(self, X: np.ndarray, R: np.ndarray | None = None) -> np.ndarray:
        """((X - reconstruction) / std) ** 2, in X's shape."""
        R = self._reconstruct(X) if R is None else R
        return np.square((X - R) / self.feature_scale_)

    # -- scores ------------------------------------------------------------------------------
    def _score_name(self) -> str:
        """The score to compute: ``anomaly_score`` (which ``set_params`` may change after ``fit``),
        or for ``"auto"`` the one picked in ``fit``."""
        return self.anomaly_score_ if self.anomaly_score == "auto" else self.anomaly_score

    def _error_map(self, X: np.ndarray, R: np.ndarray | None = None) -> np.ndarray:
        """The per-pixel/per-feature error the score aggregates, in X's (encoded) shape."""
        score = self._score_name()
        if score == "ssim":
            R = self._reconstruct(X) if R is None else R
            return (1.0 - ssim_map(X, R, self.data_range_)) / 2.0
        E = self._squared_errors(X, R)
        if score == "normalized":
            E = E / (self.error_scale_ + _NORMALIZE_FLOOR * self.error_scale_.mean())
        return E

    def _score(self, X: np.ndarray) -> np.ndarray:
        score = self._score_name()
        if score == "likelihood":
            scores = self.generator_.score_samples(_generator_view(self.generator_, X))
            return np.asarray(scores, dtype=np.float64)
        E = self._error_map(X)
        if score != "topk":
            return -E.reshape(len(E), -1).mean(axis=1)
        per_pixel = E.mean(axis=-1) if E.ndim == 4 else E  # channels of one pixel count once
        per_pixel = per_pixel.reshape(len(E), -1)
        k = max(1, math.ceil(self.top_k * per_pixel.shape[1]))
        return -np.sort(per_pixel, axis=1)[:, -k:].mean(axis=1)

    def score_samples(self, X) -> np.ndarray:
        """Normality score of each sample: higher is more normal.

        Parameters
        ----------
        X : array-like or DataFrame, shaped as in ``fit``

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the aggregated error (or the log-likelihood for ``anomaly_score="likelihood"``).
        """
        return self._score(self._validate(X, reset=False))

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, non-negative for inliers.

        Parameters
        ----------
        X : array-like or DataFrame, shaped as in ``fit``

        Returns
        -------
        decision : ndarray of shape (n_samples,)

        Raises
        ------
        ValueError
            If ``anomaly_score`` or ``top_k`` were changed with ``set_params`` after ``fit``:
            ``score_samples`` then follows the new setting, but ``offset_`` was set for the old
            one, so refit before thresholding.
        """
        self._check_offset_applies()
        return self.score_samples(X) - self.offset_

    def _check_offset_applies(self) -> None:
        """Refuse to threshold a score other than the one ``offset_`` was set for in ``fit``."""
        check_is_fitted(self)
        fitted_top_k = getattr(self, "_offset_top_k", self.top_k)
        score = self._score_name()
        if score != self.anomaly_score_ or (score == "topk" and self.top_k != fitted_top_k):
            fitted = f"anomaly_score={self.anomaly_score_!r}" + (
                f", top_k={fitted_top_k!r}" if self.anomaly_score_ == "topk" else "")
            now = f"anomaly_score={score!r}" + (f", top_k={self.top_k!r}" if score == "topk" else "")
            raise ValueError(f"offset_ was set in fit for {fitted}, but set_params has changed it to {now}: "
                             "score_samples follows the new setting, but call fit again before predict, "
                             "decision_function or plot_error_maps")

    def predict(self, X) -> np.ndarray:
        """-1 for outliers, +1 for inliers.

        Parameters
        ----------
        X : array-like or DataFrame, shaped as in ``fit``

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        decision = self.decision_function(X)
        labels = np.ones(len(decision), dtype=int)
        labels[~(decision >= 0)] = -1  # NaN (a sample the generator cannot score) is no inlier
        return labels

    # -- error maps --------------------------------------------------------------------------
    def error_map(self, X):
        """Where each sample is abnormal: the per-pixel (per-feature) error that the score uses.

        ``"reconstruction"``, ``"topk"`` and ``"likelihood"``: squared reconstruction error in
        units of the training data's standard deviation; ``"normalized"``: that error divided by
        its value on normal data; ``"ssim"``: ``(1 - SSIM) / 2``, in ``[0, 1]``.

        Parameters
        ----------
        X : array-like or DataFrame, shaped as in ``fit``

        Returns
        -------
        errors : ndarray of X's shape, or DataFrame
            For a DataFrame, a DataFrame with its index and columns (a categorical column's
            error is the sum over its one-hot entries).
        """
        E = self._error_map(self._validate(X, reset=False))
        if self.tabular_encoder_ is None:
            return E
        import pandas as pd

        index = X.index if is_dataframe(X) else None
        return pd.DataFrame(self._per_column(E), columns=self._column_names(), index=index)

    def _column_names(self) -> list:
        return [spec["name"] for spec in self.tabular_encoder_.columns_]

    def _per_column(self, E: np.ndarray) -> np.ndarray:
        """Errors of encoded columns summed per DataFrame column (one-hot blocks into one)."""
        columns, j = [], 0
        for spec in self.tabular_encoder_.columns_:
            width = len(spec["categories"]) if spec["kind"] == "categorical" else 1
            columns.append(E[:, j:j + width].sum(axis=1))
            j += width
        return np.stack(columns, axis=1)

    def plot_error_maps(self, X, *, max_samples: int = 8, cmap: str = "inferno"):
        """A matplotlib figure of where samples are abnormal (Agg canvas; no display needed).

        Images: one column per sample, with rows for the image, its reconstruction and the
        error map as a heat map; each column is titled with its score and flag. Tabular data:
        one heat map of per-feature errors (samples x features).

        Parameters
        ----------
        X : array-like or DataFrame, shaped as in ``fit``
        max_samples : int, default=8
            Draw at most this many samples (the first ones).
        cmap : str, default="inferno"
            Matplotlib colour map of the error maps.

        Returns
        -------
        fig : matplotlib.figure.Figure
            Save it with ``fig.savefig(path)``.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not isinstance(max_samples, numbers.Integral) or max_samples < 1:
            raise ValueError(f"max_samples must be a positive integer; got {max_samples!r}")
        self._check_offset_applies()
        Xv = self._validate(X, reset=False)[:max_samples]
        R = self._reconstruct(Xv)
        E = self._error_map(Xv, R)
        scores = self._score(Xv)
        flags = np.where(scores >= self.offset_, "inlier", "outlier")  # NaN: outlier, as in predict
        if self._is_image:
            fig = self._plot_images(Figure, Xv, R, E, scores, flags, cmap)
        else:
            fig = self._plot_table(Figure, E, scores, flags, cmap)
        FigureCanvasAgg(fig)  # this figure only: no pyplot, no global backend
        return fig

    def _plot_images(self, Figure, X, R, E, scores, flags, cmap):
        n = len(X)
        fig = Figure(figsize=(1.6 * n + 1.2, 5.2))
        axes = fig.subplots(3, n, squeeze=False)
        lo, hi = float(min(X.min(), R.min())), float(max(X.max(), R.max()))
        vmax = float(E.max()) or 1.0
        for i in range(n):
            image, recon, err = X[i], R[i], E[i]
            if image.ndim == 3:
                if image.shape[-1] != 3:  # grey (1 channel) or not RGB: show the channel mean
                    image, recon = image.mean(-1), recon.mean(-1)
                err = err.mean(-1)
            grey = dict(cmap="gray", vmin=lo, vmax=hi) if image.ndim == 2 else {}
            if image.ndim == 3:
                image, recon = (np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1) for a in (image, recon))
            axes[0, i].imshow(image, interpolation="nearest", **grey)
            axes[1, i].imshow(recon, interpolation="nearest", **grey)
            heat = axes[2, i].imshow(err, interpolation="nearest", cmap=cmap, vmin=0.0, vmax=vmax)
            axes[0, i].set_title(f"{scores[i]:.3g}\n{flags[i]}", fontsize=8,
                                 color="tab:red" if flags[i] == "outlier" else "black")
            for ax in axes[:, i]:
                ax.set_xticks([])
                ax.set_yticks([])
        for row, label in enumerate(("input", "reconstruction", "error")):
            axes[row, 0].set_ylabel(label, fontsize=8)
        fig.subplots_adjust(top=0.82)  # room for the title above the column titles
        fig.colorbar(heat, ax=axes[2, :].tolist(), fraction=0.05, pad=0.02)
        fig.suptitle(f"score ({self._score_name()}; offset {self.offset_:.3g})", fontsize=9)
        return fig

    def _plot_table(self, Figure, E, scores, flags, cmap):
        if self.tabular_encoder_ is not None:
            E, names = self._per_column(E), [str(name) for name in self._column_names()]
        else:
            names = [f"x{j}" for j in range(E.shape[1])]
        n, d = E.shape
        fig = Figure(figsize=(min(2.0 + 0.3 * d, 16.0), 1.5 + 0.35 * n))
        ax = fig.subplots()
        heat = ax.imshow(E, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0.0)
        ax.set_xticks(range(d), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), [f"{s:.3g} {f}" for s, f in zip(scores, flags)], fontsize=7)
        ax.set_ylabel("sample: score, flag", fontsize=8)
        fig.colorbar(heat, ax=ax, fraction=0.05, pad=0.02)
        fig.suptitle(f"per-feature error (score {self._score_name()}; offset {self.offset_:.3g})", fontsize=9)
        fig.tight_layout()
        return fig

    # -- saving -------------------------------------------------------------------------------
    def save(self, path, *, overwrite: bool = False) -> Path:
        """Save the fitted detector to one file, without pickle.

        The file is a zip of ``detector.json`` (parameters and fitted state) and
        ``generator.synthaug`` (the fitted generator, written by its own ``save``). It is
        written atomically. Only synthaug generators can be saved this way; pickle the
        detector for others.

        Parameters
        ----------
        path : str or Path
            File to write (the CLI uses the suffix ``.synthaug-detector``).
        overwrite : bool, default=False
            Replace an existing file; otherwise an existing file raises ``FileExistsError``.

        Returns
        -------
        path : Path
        """
        check_is_fitted(self)
        if not isinstance(self.generator_, GenerativeEstimator):
            raise TypeError(
                f"only detectors with a synthaug generator can be saved; this one has a "
                f"{type(self.generator_).__name__} (pickle it instead)"
            )
        from synthaug.io import write_archive

        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "class": type(self).__name__,
                "params": self._json_params(), "state": self._fitted_state()}
        members = {"detector.json": json.dumps(meta, indent=1), "generator.synthaug": self.generator_.to_bytes()}
        return write_archive(path, members, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> ReconstructionAnomalyDetector:
        """Load a detector written by :meth:`save`. Never unpickles and never runs code from the file.

        The JSON part is read as data; the generator is loaded with :func:`synthaug.load`
        (known model classes only, Keras ``safe_mode``).

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        detector : ReconstructionAnomalyDetector
            Fitted; ``generator`` is ``None`` if it was ``None`` when saved, else an unfitted
            clone of the loaded generator.
        """
        from synthaug.base import load as load_generator
        from synthaug.io import read_archive

        members = read_archive(path, ("detector.json", "generator.synthaug"), f"saved {cls.__name__}")
        meta = members["detector.json"]
        if (not isinstance(meta, dict) or meta.get("format") != FORMAT
                or meta.get("format_version") != FORMAT_VERSION or meta.get("class") != cls.__name__):
            raise ValueError(f"{path} is not a saved {cls.__name__} of format version {FORMAT_VERSION}")
        generator = load_generator(members["generator.synthaug"])
        params = dict(meta["params"])
        default = params.pop("default_generator")
        detector = cls(generator=None if default else clone(generator), **params)
        detector._restore_state(meta["state"])
        detector.generator_ = generator
        return detector

    def _json_params(self) -> dict:
        c = self.contamination
        return {
            "default_generator": self.generator is None,
            "anomaly_score": self.anomaly_score,
            "contamination": c if isinstance(c, str) else float(c),
            "top_k": float(self.top_k),
            # a RandomState object cannot be stored; the fitted state does not depend on it
            "random_state": int(self.random_state) if isinstance(self.random_state, numbers.Integral) else None,
        }

    def _fitted_state(self) -> dict:
        def array(a):
            return None if a is None else {"shape": list(np.shape(a)), "data": np.ravel(a).tolist()}

        state = {
            "offset_": self.offset_,
            "offset_top_k": getattr(self, "_offset_top_k", float(self.top_k)),
            "anomaly_score_": self.anomaly_score_,
            "input_shape_": list(self.input_shape_),
            "n_features_in_": int(self.n_features_in_),
            "data_range_": self.data_range_,
            "feature_scale_": array(self.feature_scale_),
            "error_scale_": array(self.error_scale_),
            "tabular_encoder_": None if self.tabular_encoder_ is None else self.tabular_encoder_.to_dict(),
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(name) for name in self.feature_names_in_]
        return state

    def _restore_state(self, state: dict) -> None:
        def array(entry):
            if entry is None:
                return None
            return np.asarray(entry["data"], dtype=np.float64).reshape(entry["shape"])

        self.offset_ = float(state["offset_"])
        self._offset_top_k = float(state.get("offset_top_k", self.top_k))
        self.anomaly_score_ = state["anomaly_score_"]
        self.input_shape_ = tuple(int(s) for s in state["input_shape_"])
        self.n_features_in_ = int(state["n_features_in_"])
        self.data_range_ = float(state["data_range_"])
        self.feature_scale_ = array(state["feature_scale_"])
        self.error_scale_ = array(state["error_scale_"])
        encoder = state["tabular_encoder_"]
        self.tabular_encoder_ = None if encoder is None else TabularEncoder.from_dict(encoder)
        if "feature_names_in_" in state:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True  # neural generators; same seed, same scores on one machine
        tags.input_tags.allow_nan = False
        return tags
