"""Evaluate a generator (or a set of synthetic samples) against real data in one call.

:func:`evaluate` draws synthetic samples, embeds real and synthetic data with a feature
extractor fitted on the real training data, and runs every metric of :mod:`synthaug.metrics`
that the data allows. It returns an :class:`EvaluationReport`: a flat dict of numbers, the same
numbers for real held-out data as a reference, a text table and a PNG (:mod:`synthaug.report`).

Feature extractors (no weights are ever downloaded):

- :class:`ClassifierFeatures`, the default for images: the penultimate layer of a small
  convolutional classifier trained on the real training images and their labels.
- ``sklearn.preprocessing.StandardScaler``, the default for tabular data: the raw features
  standardised with the real training data's mean and standard deviation.
- :class:`KerasFeatures`: any Keras model of yours (e.g. InceptionV3 with local weights).

TensorFlow and Keras are imported inside the methods that need them: ``import
synthaug.evaluation`` loads NumPy, SciPy and scikit-learn only.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from synthaug import metrics
from synthaug.tabular import TabularEncoder, is_dataframe

__all__ = ["ClassifierFeatures", "EvaluationReport", "KerasFeatures", "evaluate"]

_MIN_SAMPLES = 6  # precision/recall with k=5 needs k + 1 samples in each set
_MMD_MAX_SAMPLES = 2000  # MMD's memory grows as (m + n)**2: larger sets are subsampled
_MAX_DRAWS = 4  # equal-size sets averaged per column of the distribution metrics
_N_SHOW_IMAGES = 50  # images kept in a report for its sample grids
_N_SHOW_ROWS = 2000  # tabular rows kept in a report for its histograms


# -- input checking -------------------------------------------------------------------------------
def _check_array(X, name: str) -> np.ndarray:
    """``X`` as a numeric ndarray of samples, (n, d), (n, H, W) or (n, H, W, C), all finite."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got an array of dtype {X.dtype}")
    if X.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must be tabular (n, d) or images (n, H, W) / (n, H, W, C); got shape {X.shape}"
        )
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{name} contains NaN or inf in {len(rows)} rows (first: row {rows[0]}); remove or impute them"
            )
    return X


def _check_labels(y, n: int, name: str, of: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must have shape ({n},) to match {of}; got shape {y.shape}")
    return y


def _is_image(X: np.ndarray) -> bool:
    return X.ndim in (3, 4)


def _seed(random_state) -> int:
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**32:  # what train_test_split and RandomState accept
            raise ValueError(f"random_state must be an int in [0, 2**32 - 1], a RandomState or None; "
                             f"got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


# -- feature extractors ---------------------------------------------------------------------------
class ClassifierFeatures(TransformerMixin, BaseEstimator):
    """Image features: the embedding layer of a small convolutional classifier.

    ``fit`` trains a network of ``len(conv_filters)`` blocks (3x3 convolution, ReLU, 2x2 max
    pooling), a dense ReLU embedding of ``embedding_dim`` units and a softmax layer on the real
    images and their labels; ``transform`` returns the embedding. Trained on labels, the
    embedding is organised by class, like the Inception features of FID, but fits the data at
    hand and needs no download (digits: a few seconds on two CPU cores).

    Without labels (or with a single class) the network is not trained: the features are those
    of the same network with fixed random weights, which still compare distributions, but
    weigh what the network happens to respond to rather than what separates classes.

    Parameters
    ----------
    embedding_dim : int, default=64
        Number of features.
    conv_filters : tuple of int, default=(32, 64)
        Filters of the convolutional blocks; each block halves the image. Feature maps larger
        than 8x8 after the blocks are average-pooled down to at most 8x8.
    epochs : int, default=10
        Training epochs (no early stopping: the aim is a stable embedding, not the last
        percent of accuracy).
    batch_size : int, default=64
    learning_rate : float, default=2e-3
        Adam's learning rate.
    random_state : int, RandomState or None, default=0
        Seeds the weights and the shuffling: the same seed and data give the same features.

    Attributes
    ----------
    model_ : keras.Model
        The network from the input up to the embedding layer.
    classes_ : ndarray or None
        Labels the network was trained on; ``None`` for random features.
    trained_ : bool
        Whether the network was trained (False: random features).
    input_shape_ : tuple
        Shape of one sample as given to ``fit``.
    data_min_, data_max_ : float
        Range of the training data; every input is mapped with ``(X - data_min_) /
        (data_max_ - data_min_)``, so synthetic data in the units of the real data maps the same
        way.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from synthaug.evaluation import ClassifierFeatures
    >>> digits = load_digits()
    >>> features = ClassifierFeatures().fit(digits.images, digits.target)
    >>> features.transform(digits.images[:5]).shape
    (5, 64)
    """

    def __init__(self, embedding_dim: int = 64, conv_filters=(32, 64), epochs: int = 10,
                 batch_size: int = 64, learning_rate: float = 2e-3, random_state=0):
        self.embedding_dim = embedding_dim
        self.conv_filters = conv_filters
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("embedding_dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        filters = tuple(self.conv_filters)
        if not filters or not all(isinstance(f, (int, np.integer)) and f > 0 for f in filters):
            raise ValueError(f"conv_filters must be a non-empty tuple of positive integers; got {self.conv_filters!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {self.learning_rate!r}")

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        """Samples in [0, 1] by the training range, with a channel axis: (n, H, W, C) float32."""
        span = self.data_max_ - self.data_min_
        Z = (np.asarray(X, dtype=np.float32) - self.data_min_) / (span if span > 0 else 1.0)
        return Z[..., None] if Z.ndim == 3 else Z

    def _build(self, image_shape, n_classes: int, seed: int):
        import keras

        def init(i):
            return keras.initializers.GlorotUniform(seed + i)

        inputs = keras.Input(shape=image_shape)
        h, (height, width) = inputs, image_shape[:2]
        for i, filters in enumerate(self.conv_filters):
            h = keras.layers.Conv2D(int(filters), 3, padding="same", activation="relu", kernel_initializer=init(i))(h)
            h = keras.layers.MaxPooling2D(2, padding="same")(h)
            height, width = -(-height // 2), -(-width // 2)
        if max(height, width) > 8:
            h = keras.layers.AveragePooling2D((-(-height // 8), -(-width // 8)), padding="same")(h)
        h = keras.layers.Flatten()(h)
        embedding = keras.layers.Dense(int(self.embedding_dim), activation="relu", kernel_initializer=init(50),
                                       name="embedding")(h)
        classifier = None
        if n_classes:
            logits = keras.layers.Dense(n_classes, kernel_initializer=init(51), name="logits")(embedding)
            classifier = keras.Model(inputs, logits)
        return keras.Model(inputs, embedding), classifier

    def fit(self, X, y=None):
        """Train the classifier on real images ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W) or (n_samples, H, W, C)
            Real images, in any numeric range.
        y : array-like of shape (n_samples,), default=None
            Class labels. ``None`` (or a single class) gives features of an untrained network
            with fixed random weights.

        Returns
        -------
        self : ClassifierFeatures
        """
        self._check_params()
        X = _check_array(X, "X")
        if not _is_image(X):
            raise ValueError(
                f"ClassifierFeatures needs images (n, H, W) or (n, H, W, C); got shape {X.shape}. "
                "For tabular data use StandardScaler (evaluate's default) or your own features."
            )
        self.input_shape_ = tuple(X.shape[1:])
        self.data_min_, self.data_max_ = float(X.min()), float(X.max())
        Z = self._scaled(X)
        seed = _seed(self.random_state)
        self.classes_, codes = None, None
        if y is not None:
            classes, codes = np.unique(_check_labels(y, len(X), "y", "X"), return_inverse=True)
            if len(classes) > 1:
                self.classes_ = classes
        import keras
        import tensorflow as tf

        self.model_, classifier = self._build(Z.shape[1:], 0 if self.classes_ is None else len(self.classes_), seed)
        self.trained_ = classifier is not None
        if self.trained_:
            classifier.compile(
                optimizer=keras.optimizers.Adam(self.learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=False,  # XLA compilation costs seconds on CPU, more than this training
            )
            data = (tf.data.Dataset.from_tensor_slices((Z, codes.astype("int32")))
                    .shuffle(len(Z), seed=seed, reshuffle_each_iteration=True)
                    .batch(int(self.batch_size)))
            classifier.fit(data, epochs=int(self.epochs), verbose=0, shuffle=False)  # data shuffles itself
        return self

    def transform(self, X) -> np.ndarray:
        """Embed images: the classifier's penultimate layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, *input_shape_)
            Images in the units of the training data.

        Returns
        -------
        features : ndarray of shape (n_samples, embedding_dim), float64
        """
        check_is_fitted(self)
        X = _check_array(X, "X")
        if X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X has sample shape {X.shape[1:]}, but ClassifierFeatures was fitted on sample shape "
                f"{self.input_shape_}"
            )
        from keras import ops

        Z = self._scaled(X)
        out = [ops.convert_to_numpy(self.model_(Z[i:i + 1024], training=False)) for i in range(0, len(Z), 1024)]
        return np.concatenate(out).astype(np.float64)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")


class KerasFeatures(TransformerMixin, BaseEstimator):
    """Features from any Keras model of yours: the (flattened) output of one of its layers.

    Nothing is trained or downloaded: ``fit`` only picks the layer. Resizing and the model's
    own input preprocessing are yours to do, in ``preprocess`` or beforehand.

    Parameters
    ----------
    model : keras.Model
        A built Keras model, e.g. ``keras.applications.InceptionV3(weights="/path/to/weights.h5",
        include_top=False, pooling="avg")``.
    layer : str, int or None, default=None
        Name or index of the layer whose output are the features; ``None`` uses the model's
        output. Naming a layer needs a functional or Sequential model (one with ``inputs``).
    preprocess : callable, default=None
        ``preprocess(batch) -> array`` applied to each float32 batch of samples before the
        model, e.g. a resize and ``keras.applications.inception_v3.preprocess_input``.
    batch_size : int, default=256
        Samples per forward pass.

    Examples
    --------
    >>> import keras
    >>> from synthaug.evaluation import KerasFeatures
    >>> net = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(),
    ...                         keras.layers.Dense(16, name="hidden"), keras.layers.Dense(10)])
    >>> import numpy as np
    >>> KerasFeatures(net, layer="hidden").fit(np.zeros((3, 8, 8))).transform(np.zeros((3, 8, 8))).shape
    (3, 16)
    """

    def __init__(self, model, layer: str | int | None = None, preprocess: Callable | None = None,
                 batch_size: int = 256):
        self.model = model
        self.layer = layer
        self.preprocess = preprocess
        self.batch_size = batch_size

    def _feature_model(self):
        cached = self.__dict__.get("_feature_model_cache")
        if cached is not None and cached[0] is self.model and cached[1] == self.layer:
            return cached[2]
        if not callable(self.model):
            raise ValueError(f"model must be a Keras model; got {type(self.model).__name__}")
        if self.layer is None:
            net = self.model
        else:
            import keras

            if isinstance(self.layer, bool) or not isinstance(self.layer, (str, int, np.integer)):
                raise ValueError(f"layer must be a layer name, an index or None; got {self.layer!r}")
            try:
                inputs = self.model.inputs
                inputs = inputs[0] if len(inputs) == 1 else inputs  # called with one array, not a list
                chosen = (self.model.get_layer(name=self.layer) if isinstance(self.layer, str)
                          else self.model.get_layer(index=int(self.layer)))
                net = keras.Model(inputs, chosen.output)
            except (AttributeError, ValueError, IndexError) as exc:
                names = [lyr.name for lyr in getattr(self.model, "layers", [])]
                raise ValueError(
                    f"cannot take the output of layer {self.layer!r} of {type(self.model).__name__} "
                    f"(layers: {names}); a functional or Sequential model is needed ({exc})"
                ) from None
        self.__dict__["_feature_model_cache"] = (self.model, self.layer, net)
        return net

    def fit(self, X=None, y=None):
        """Pick the feature layer; nothing is trained.

        Parameters
        ----------
        X : Ignored
        y : Ignored

        Returns
        -------
        self : KerasFeatures
        """
        self._feature_model()
        return self

    def transform(self, X) -> np.ndarray:
        """The chosen layer's output for ``X``, flattened to (n_samples, n_features), float64."""
        from keras import ops

        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {self.batch_size!r}")
        net = self._feature_model()
        X = np.asarray(X, dtype=np.float32)
        out = []
        for i in range(0, len(X), int(self.batch_size)):
            batch = X[i:i + int(self.batch_size)]
            if self.preprocess is not None:
                batch = self.preprocess(batch)
            F = ops.convert_to_numpy(net(batch, training=False))
            out.append(np.asarray(F, dtype=np.float64).reshape(len(F), -1))
        return np.concatenate(out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_feature_model_cache", None)
        return state


def _default_features(X: np.ndarray, random_state: int):
    return ClassifierFeatures(random_state=random_state) if _is_image(X) else StandardScaler()


def _describe_features(features) -> str:
    inner = getattr(features, "estimator", features)  # FrozenEstimator
    if isinstance(inner, ClassifierFeatures) and hasattr(inner, "trained_"):
        how = f"trained on {len(inner.classes_)} classes" if inner.trained_ else "random weights, no labels"
        return f"ClassifierFeatures ({inner.embedding_dim}-d, {how})"
    if isinstance(inner, StandardScaler):
        return "standardised raw features (StandardScaler on real train)"
    return type(inner).__name__


# -- the report -----------------------------------------------------------------------------------
# name, section, which direction is better, what the reference column holds
_METRICS = [
    ("frechet_distance", "distribution (features)", "lower"),
    ("mmd", "distribution (features)", "lower"),
    ("sliced_wasserstein", "distribution (features)", "lower"),
    ("precision", "fidelity and diversity (features)", "higher"),
    ("recall", "fidelity and diversity (features)", "higher"),
    ("density", "fidelity and diversity (features)", "~1"),
    ("coverage", "fidelity and diversity (features)", "higher"),
    ("tstr_accuracy", "usefulness (classifier on raw data)", "higher"),
    ("tstr_ratio", "usefulness (classifier on raw data)", "~1"),
    ("mode_coverage", "modes (classifier fitted on real train)", "higher"),
    ("mode_entropy", "modes (classifier fitted on real train)", "higher"),
    ("label_agreement", "modes (classifier fitted on real train)", "higher"),
    ("dcr_median", "privacy (distance to closest training record)", "higher"),
    ("dcr_ratio", "privacy (distance to closest training record)", ">=1"),
    ("near_copy_share", "privacy (distance to closest training record)", "lower"),
    ("exact_copy_share", "privacy (distance to closest training record)", "lower"),
    ("bits_per_dim", "likelihood (real holdout)", "lower"),
]


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}"


def _jsonable(value):
    """Plain JSON values: dict keys as str, arrays and tuples as lists, numpy scalars as Python
    ones, NaN and infinity as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class EvaluationReport:
    """What :func:`evaluate` measured, and a few samples to look at.

    Attributes
    ----------
    metrics : dict of str to float
        Every number measured on the synthetic data (see :func:`evaluate` for which data each
        one uses). NaN where a number is undefined.
    reference : dict of str to float
        The same measures for *real* data, the yardstick for reading ``metrics``: the real
        holdout in place of the synthetic samples for the distribution, mode and privacy
        metrics, and train-on-real-test-on-real (TRTR) accuracy for ``tstr_accuracy``.
    info : dict
        Sample counts, sample shape, the features used, where the holdout came from, seconds.
    real_samples, synthetic_samples : ndarray
        A few real training and synthetic samples (images) or up to 2000 rows (tabular data)
        for :meth:`plot`; not part of :meth:`to_dict`.
    real_labels, synthetic_labels : ndarray or None
        Their labels, if any.
    is_image : bool
        Whether the samples are images.
    feature_names : list of str or None
        Column names of tabular data (from a DataFrame), used in plots.
    """

    metrics: dict[str, float]
    reference: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    real_samples: np.ndarray | None = field(default=None, repr=False)
    synthetic_samples: np.ndarray | None = field(default=None, repr=False)
    real_labels: np.ndarray | None = field(default=None, repr=False)
    synthetic_labels: np.ndarray | None = field(default=None, repr=False)
    is_image: bool = False
    feature_names: list[str] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """``{"metrics": ..., "reference": ..., "info": ...}`` as plain Python values (NaN → None)."""
        return _jsonable({"metrics": self.metrics, "reference": self.reference, "info": self.info})

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text (NaN is written as ``null``)."""
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """The metrics as an aligned text table: metric, synthetic, real reference, better."""
        info = self.info
        lines = [
            f"real: {info.get('n_train')} train, {info.get('n_holdout')} holdout ({info.get('holdout', '?')})",
            f"synthetic: {info.get('n_synthetic')} ({info.get('synthetic_source', '?')})",
            f"features: {info.get('features', '?')}",
        ]
        known = [row for row in _METRICS if row[0] in self.metrics]
        extra = [(name, "other", "") for name in self.metrics if name not in {r[0] for r in _METRICS}]
        rows = [("metric", "synthetic", "real", "better")]
        sections = []
        for name, section, better in known + extra:
            rows.append((name, _fmt(self.metrics[name]), _fmt(self.reference.get(name)), better))
            sections.append(section)
        widths = [max(len(r[i]) for r in rows) for i in range(4)]

        def line(r):
            return (f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:<{widths[3]}}").rstrip()

        lines += ["", line(rows[0]), "  ".join("-" * w for w in widths)]
        previous = None
        for section, row in zip(sections, rows[1:]):
            if section != previous:
                lines.append(f"[{section}]")
                previous = section
            lines.append(line(row))
        lines += ["", "real: real held-out data in place of the synthetic data",
                  "      (tstr_accuracy: trained on real train, TRTR)"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot(self, path, overwrite: bool = False) -> Path:
        """Write a PNG: real beside synthetic samples (a grid of images, or per-feature
        histograms for tabular data) and the metric table.

        Parameters
        ----------
        path : str or Path
            PNG file to write (atomically).
        overwrite : bool, default=False
            Replace an existing file; otherwise an existing file raises ``FileExistsError``.

        Returns
        -------
        path : Path
        """
        from synthaug.report import plot_report

        return plot_report(self, path, overwrite=overwrite)


# -- evaluate -------------------------------------------------------------------------------------
def _synthetic_samples(generator, n_samples, n_default: int, seed: int):
    """(X_syn, y_syn or None, description) from a generator, a pair or an array."""
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer))
                                  or n_samples < _MIN_SAMPLES):
        raise ValueError(f"n_samples must be an integer >= {_MIN_SAMPLES} or None; got {n_samples!r}")
    if hasattr(generator, "generate"):
        out = generator.generate(int(n_default if n_samples is None else n_samples), random_state=seed)
        X_syn, y_syn = out if isinstance(out, tuple) else (out, None)
        return X_syn, y_syn, f"{type(generator).__name__}.generate"
    if isinstance(generator, tuple):
        if len(generator) != 2:
            raise ValueError(
                "generator must be a fitted generator, an array of samples or a pair (X_synthetic, "
                f"y_synthetic); got a tuple of length {len(generator)}"
            )
        X_syn, y_syn = generator
    elif isinstance(generator, np.ndarray) or hasattr(generator, "__array__"):
        X_syn, y_syn = generator, None
    else:
        raise TypeError(
            "generator must be a fitted generator (with a generate method), an array of samples or a "
            f"pair (X_synthetic, y_synthetic); got {type(generator).__name__}"
        )
    X_syn = X_syn if is_dataframe(X_syn) else np.asarray(X_syn)
    if y_syn is not None:
        y_syn = _check_labels(y_syn, len(X_syn), "the synthetic labels", "the synthetic samples")
    if n_samples is not None:
        if n_samples > len(X_syn):
            raise ValueError(f"n_samples={n_samples} but only {len(X_syn)} synthetic samples were given")
        keep = np.sort(check_random_state(seed).choice(len(X_syn), n_samples, replace=False))
        X_syn = X_syn.iloc[keep] if is_dataframe(X_syn) else X_syn[keep]
        y_syn = None if y_syn is None else y_syn[keep]
    return X_syn, y_syn, "given samples"


def _warn_if_other_units(X_real: np.ndarray, X_syn: np.ndarray) -> None:
    """Warn when the synthetic values' span is far from the real one's, e.g. display PNGs (0-255)
    against arrays in 0-16: every metric would then say "nothing alike", whatever the shapes."""
    real_lo, real_hi = float(np.min(X_real)), float(np.max(X_real))
    syn_lo, syn_hi = float(np.min(X_syn)), float(np.max(X_syn))
    real_span, syn_span = real_hi - real_lo, syn_hi - syn_lo
    if real_span <= 0 or syn_span <= 0:
        return
    if syn_span > 4 * real_span or real_span > 4 * syn_span or syn_lo > real_hi or syn_hi < real_lo:
        warnings.warn(f"the synthetic samples span [{syn_lo:g}, {syn_hi:g}] but the real ones [{real_lo:g}, "
                      f"{real_hi:g}]: are they in the same units (e.g. images scaled for display)? The metrics "
                      "compare values as they are", UserWarning, stacklevel=3)


def _split(X, y, X_test, y_test, seed: int):
    if X_test is None:
        if y_test is not None:
            raise ValueError("y_test was given without X_test")
        parts = train_test_split(X, *(() if y is None else (y,)), test_size=0.25, random_state=seed,
                                 stratify=y)
        if y is None:
            return parts[0], None, parts[1], None, "25% split of X"
        X_train, X_hold, y_train, y_hold = parts
        return X_train, y_train, X_hold, y_hold, "25% stratified split of X"
    X_test = _check_array(X_test, "X_test")
    if X_test.shape[1:] != X.shape[1:]:
        raise ValueError(f"X_test has sample shape {X_test.shape[1:]}, but X has sample shape {X.shape[1:]}")
    if y is not None and y_test is None:
        raise ValueError("y was given but y_test was not: pass the labels of X_test too (or neither)")
    if y is None and y_test is not None:
        raise ValueError("y_test was given but y was not: pass the labels of X too (or neither)")
    if y_test is not None:
        y_test = _check_labels(y_test, len(X_test), "y_test", "X_test")
    return X, y, X_test, y_test, "X_test"


def _encode_tables(X, X_test):
    """Real DataFrames as numbers: numeric columns as they are, categorical ones one-hot.

    One encoder is fitted on all real rows, so a category seen only in the holdout is known.
    Returns the encoder, the encoded ``X`` and ``X_test``, and a name per encoded column.
    """
    import pandas as pd

    if X_test is not None and is_dataframe(X_test):
        if list(X_test.columns) != list(X.columns):
            raise ValueError(
                f"X_test has the columns {[str(c) for c in X_test.columns][:10]}, but X has "
                f"{[str(c) for c in X.columns][:10]}; both must have the same columns in the same order"
            )
        encoder = TabularEncoder().fit(pd.concat([X, X_test], ignore_index=True))
    else:
        encoder = TabularEncoder().fit(X)
    names = []
    for spec in encoder.columns_:
        if spec["kind"] == "numeric":
            names.append(str(spec["name"]))
        else:
            names.extend(f"{spec['name']}={category}" for category in spec["categories"])
    X_test = None if X_test is None else encoder.transform(X_test, data="X_test")
    return encoder, encoder.transform(X), X_test, names


def _subsample(X: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    return X if len(X) <= n else X[np.sort(rng.choice(len(X), n, replace=False))]


def _rbf_gamma(F: np.ndarray) -> float:
    """1 / median squared distance between real samples: one RBF width for every MMD of a report.

    (``metrics.mmd``'s own median heuristic pools both sets, so the kernel would change with the
    synthetic data and the synthetic and reference values would not be comparable.)
    """
    from sklearn.metrics.pairwise import euclidean_distances

    D = euclidean_distances(F, squared=True)[np.triu_indices(len(F), 1)]
    median = np.median(D)
    if median <= 0:
        median = D[D > 0].mean() if (D > 0).any() else 1.0
    return float(1.0 / median)


def _distribution_metrics(F_real, F_other, seed: int) -> dict:
    rng = check_random_state(seed)
    real = _subsample(F_real, _MMD_MAX_SAMPLES, rng)
    out = {
        "frechet_distance": metrics.frechet_distance(F_real, F_other),
        "mmd": metrics.mmd(real, _subsample(F_other, _MMD_MAX_SAMPLES, rng), gamma=_rbf_gamma(real)),
        "sliced_wasserstein": metrics.sliced_wasserstein(F_real, F_other, random_state=seed),
    }
    out.update(metrics.precision_recall_density_coverage(F_real, F_other))
    return out


def _distribution_metrics_at_size(F_real, F_other, size: int, seed: int) -> dict:
    """:func:`_distribution_metrics` of ``size`` samples of ``F_other``, averaged over up to
    :data:`_MAX_DRAWS` disjoint random sets of that size.

    Fréchet distance, sliced Wasserstein and coverage move with the number of samples compared,
    so the synthetic and the reference (holdout) columns are only comparable at one size: the
    smaller of the two sets. Averaging over disjoint sets uses the larger one's extra samples.
    """
    order = check_random_state(seed).permutation(len(F_other))
    draws = [order[i * size:(i + 1) * size] for i in range(min(_MAX_DRAWS, len(F_other) // size))]
    with warnings.catch_warnings(record=True) as caught:  # one warning per kind, not one per draw
        warnings.simplefilter("always")
        per_draw = [_distribution_metrics(F_real, F_other[np.sort(idx)], seed) for idx in draws]
    for message in dict.fromkeys((w.category, str(w.message)) for w in caught):
        warnings.warn(message[1], message[0], stacklevel=3)
    return {key: float(np.mean([d[key] for d in per_draw])) for key in per_draw[0]}


def _mode_metrics(samples, classifier, y) -> dict:
    report = metrics.mode_coverage(samples.reshape(len(samples), -1), classifier, y=y)
    out = {"mode_coverage": report["coverage"], "mode_entropy": report["entropy"]}
    if "label_agreement" in report:
        out["label_agreement"] = report["label_agreement"]
    return out


def _privacy_metrics(train, other, holdout) -> dict:
    report = metrics.memorization(train, other, holdout)
    return {
        "dcr_median": report["dcr_synthetic_median"],
        "dcr_ratio": report["dcr_ratio"],
        "near_copy_share": report["near_copy_share"],
        "exact_copy_share": report["exact_copy_share"],
    }


def _shown(X, y, n: int, seed: int):
    idx = np.sort(check_random_state(seed).choice(len(X), min(n, len(X)), replace=False))
    X, y = X[idx], None if y is None else y[idx]
    if y is not None:
        order = np.argsort(y, kind="stable")
        X, y = X[order], y[order]
    return X, y


def evaluate(generator, X, y=None, *, X_test=None, y_test=None, n_samples: int | None = None,
             features=None, classifier=None, log_likelihood: bool = False,
             random_state=0) -> EvaluationReport:
    """Measure how close synthetic data is to real data, how useful and how private it is.

    Parameters
    ----------
    generator : fitted generator, ndarray or tuple (X_synthetic, y_synthetic)
        A fitted synthaug estimator (anything with ``generate(n_samples, random_state=...)``;
        a class-conditional one returns labels too), or ready synthetic samples: an array, or a
        pair of samples and labels (labels may be ``None``).
    X : array-like of shape (n_samples, d), (n_samples, H, W) or (n_samples, H, W, C), or DataFrame
        Real data: the data the generator imitates. With ``X_test``, all of ``X`` is the real
        training set; without it, ``X`` is split (see Notes). A DataFrame (and the synthetic
        DataFrame a generator fitted on one returns) is compared as numbers: numeric columns as
        they are, categorical, string and bool columns one-hot.
    y : array-like of shape (n_samples,), default=None
        Labels of ``X``. They enable TSTR, mode coverage and a trained image feature extractor.
    X_test : array-like, default=None
        Real data the generator never saw (the holdout). ``None`` holds out 25 % of ``X``.
    y_test : array-like of shape (n_test,), default=None
        Labels of ``X_test``; required with ``X_test`` when ``y`` is given.
    n_samples : int, default=None
        Synthetic samples to draw from a generator (``None``: as many as the real training
        set), or to pick at random from given samples (``None``: all of them).
    features : transformer, default=None
        Feature extractor with ``fit(X, y)`` and ``transform(X)``, fitted here on the real
        training set (wrap a pre-fitted one in ``sklearn.frozen.FrozenEstimator`` to use it as
        is). ``None``: :class:`ClassifierFeatures` for images, ``StandardScaler`` for tabular
        data.
    classifier : classifier, default=None
        Unfitted scikit-learn classifier for TSTR and mode coverage, fitted on flattened raw
        data. ``None``: ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))``.
    log_likelihood : bool, default=False
        Also compute the generator's own ``score_samples`` on the holdout, in bits per
        dimension (off by default: the VAE's bound costs ``n_importance`` decoder passes per
        sample, 1000 by default).
    random_state : int, RandomState or None, default=0
        Seeds the split, the generator's samples, the feature extractor and the metrics.
        An int gives the same split as ``train_test_split(X, y, test_size=0.25,
        random_state=random_state, stratify=y)``: with 0 and digits, the digits protocol.

    Returns
    -------
    report : EvaluationReport
        ``report.metrics`` for the synthetic data, ``report.reference`` for real held-out data.

    Raises
    ------
    ValueError
        If the synthetic samples' shape differs from the real ones', if labels disagree, or if a
        set has fewer than 6 samples.

    Notes
    -----
    Which data each metric uses ("train": the real training set, ``X`` or its 75 % part;
    "holdout": ``X_test`` or the other 25 %):

    - ``frechet_distance``, ``mmd``, ``sliced_wasserstein``, ``precision``, ``recall``,
      ``density``, ``coverage``: synthetic vs train, on features fitted on train. MMD uses at
      most 2000 samples of each set and an RBF kernel whose width is the median distance
      between train samples. Reference: holdout vs train. Several of these move with the
      number of samples compared (fewer samples, larger Fréchet distance, lower coverage), so
      both columns compare sets of one size, the smaller of the synthetic set and the holdout
      (by default the holdout: a third of the synthetic samples), each averaged over up to 4
      disjoint random sets of that size. Data from the real distribution then scores as the
      reference does.
    - ``tstr_accuracy``, ``tstr_ratio`` (labels on both sides): ``classifier`` trained on the
      synthetic samples, tested on the holdout; reference: trained on train (TRTR).
    - ``mode_coverage``, ``mode_entropy``, ``label_agreement`` (real labels): ``classifier``
      fitted on train labels the synthetic samples; ``label_agreement`` needs synthetic labels.
      Reference: the holdout labelled the same way (``label_agreement`` is then the
      classifier's holdout accuracy).
    - ``dcr_median``, ``dcr_ratio``, ``near_copy_share``, ``exact_copy_share``: distance of
      each synthetic sample to its closest train record, against the holdout's distances
      (:func:`synthaug.metrics.memorization`), on raw data, not features: a copied record is
      then an exact copy, which a privacy reviewer can check. Images use raw flattened values;
      tabular data is standardised with train's mean and deviation. Reference: the holdout.
    - ``bits_per_dim`` (``log_likelihood=True``): ``-score_samples(holdout) / (D log 2)``,
      with the holdout labels for a conditional model (log p(x | y)). For the VAE this is an
      upper bound (its ``score_samples`` is a lower bound on the log-likelihood).

    The holdout is only a holdout if the generator never saw it: pass data it never saw as
    ``X_test``, or fit the generator on the training part of the same split, ``X_train, y_train``
    of ``train_test_split(X, y, test_size=0.25, random_state=random_state, stratify=y)``.
    Otherwise the privacy metrics understate copying and TSTR is optimistic.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from synthaug.evaluation import evaluate
    >>> digits = load_digits()
    >>> X_a, X_b, y_a, y_b = train_test_split(digits.images, digits.target, test_size=0.5,
    ...                                       random_state=0, stratify=digits.target)
    >>> report = evaluate((X_b, y_b), X_a, y_a)  # real data posing as synthetic
    >>> report.metrics["tstr_ratio"] > 0.9
    True
    """
    start = time.perf_counter()
    seed = _seed(random_state)
    encoder, feature_names = None, None
    if is_dataframe(X):
        encoder, X, X_test, feature_names = _encode_tables(X, X_test)
    X = _check_array(X, "X")
    if y is not None:
        y = _check_labels(y, len(X), "y", "X")
    X_train, y_train, X_hold, y_hold, holdout = _split(X, y, X_test, y_test, seed)
    for name, part in (("the real training set", X_train), ("the real holdout", X_hold)):
        if len(part) < _MIN_SAMPLES:
            raise ValueError(f"{name} has {len(part)} samples; evaluate needs at least {_MIN_SAMPLES}")

    X_syn, y_syn, source = _synthetic_samples(generator, n_samples, len(X_train), seed)
    if encoder is not None:
        X_syn = encoder.transform(X_syn, data="the synthetic samples")
    X_syn = _check_array(X_syn, "the synthetic samples")
    if X_syn.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"the synthetic samples have sample shape {X_syn.shape[1:]}, but the real data X has sample "
            f"shape {X.shape[1:]}; both must describe the same kind of sample"
        )
    if len(X_syn) < _MIN_SAMPLES:
        raise ValueError(f"got {len(X_syn)} synthetic samples; evaluate needs at least {_MIN_SAMPLES}")
    if y_syn is not None and y is not None:
        classes = np.unique(np.concatenate([y_train, y_hold]))
        unknown = sorted(set(np.unique(y_syn).tolist()) - set(classes.tolist()), key=str)
        if unknown:
            raise ValueError(
                f"the synthetic labels hold values not among the real labels: {unknown[:5]} "
                f"(real: {classes.tolist()[:10]}); labels must use the same values and type"
            )
    _warn_if_other_units(X_train, X_syn)
    if log_likelihood and not hasattr(generator, "score_samples"):
        raise ValueError(
            "log_likelihood=True needs a generator with score_samples; "
            f"got {type(generator).__name__}"
        )

    # Features, fitted on the real training set.
    features = _default_features(X, seed) if features is None else features
    features.fit(X_train, y_train)
    F_train, F_hold, F_syn = (np.asarray(features.transform(A), dtype=np.float64) for A in (X_train, X_hold, X_syn))
    # The matrices below are small: threaded BLAS spends more time synchronising than computing
    # (a digits LogisticRegression fit: 0.15 s on one thread, 2 s on two), as in KMeans.
    with threadpool_limits(limits=1, user_api="blas"):
        size = min(len(F_syn), len(F_hold))  # both columns at one size (see the Notes)
        result = _distribution_metrics_at_size(F_train, F_syn, size, seed)
        reference = _distribution_metrics_at_size(F_train, F_hold, size, seed)

        # Usefulness and modes: a classifier on flattened raw data.
        base = metrics._default_classifier() if classifier is None else classifier
        flat = {name: A.reshape(len(A), -1) for name, A in (("train", X_train), ("hold", X_hold), ("syn", X_syn))}
        if y is not None and len(np.unique(y_train)) > 1:
            fitted = clone(base).fit(flat["train"], y_train)
            result.update(_mode_metrics(flat["syn"], fitted, y_syn))
            reference.update(_mode_metrics(flat["hold"], fitted, y_hold))
            if y_syn is not None:
                scores = metrics.tstr((flat["syn"], y_syn), flat["train"], y_train, flat["hold"], y_hold, estimator=base)
                result["tstr_accuracy"], result["tstr_ratio"] = scores["tstr_accuracy"], scores["ratio"]
                reference["tstr_accuracy"] = scores["trtr_accuracy"]

        # Privacy, on raw data (standardised when tabular).
        if _is_image(X):
            space = flat
        else:
            scaler = StandardScaler().fit(flat["train"])
            space = {name: scaler.transform(A) for name, A in flat.items()}
        result.update(_privacy_metrics(space["train"], space["syn"], space["hold"]))
        reference.update(_privacy_metrics(space["train"], space["hold"], space["hold"]))

    if log_likelihood:
        conditional = getattr(generator, "classes_", None) is not None and y_hold is not None
        # a generator fitted on a DataFrame scores the table; one fitted on arrays, the numbers
        as_table = encoder is not None and getattr(generator, "tabular_encoder_", None) is not None
        scored = encoder.inverse_transform(X_hold) if as_table else X_hold
        scores = generator.score_samples(scored, y_hold) if conditional else generator.score_samples(scored)
        dims = int(np.prod(X.shape[1:])) if encoder is None else len(encoder.columns_)
        result["bits_per_dim"] = float(-np.mean(scores) / (dims * math.log(2)))

    is_image = _is_image(X)
    n_show = _N_SHOW_IMAGES if is_image else _N_SHOW_ROWS
    real_shown, real_labels = _shown(X_train, y_train, n_show, seed)
    syn_shown, syn_labels = _shown(X_syn, y_syn, n_show, (seed + 1) % 2**32)
    info = {
        "n_train": int(len(X_train)),
        "n_holdout": int(len(X_hold)),
        "n_synthetic": int(len(X_syn)),
        "sample_shape": list(X.shape[1:]),
        "holdout": holdout,
        "synthetic_source": source,
        "features": _describe_features(features),
        "labels": y is not None,
        "random_state": seed,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return EvaluationReport(
        metrics={k: float(v) for k, v in result.items()},
        reference={k: float(v) for k, v in reference.items()},
        info=info,
        real_samples=real_shown, synthetic_samples=syn_shown,
        real_labels=real_labels, synthetic_labels=syn_labels,
        is_image=is_image, feature_names=feature_names,
    )
