"""GenerativeEstimator: the scikit-learn face shared by every synthaug generator.

It owns input validation, the mapping between the caller's data range and the network's,
labels, seeds, the Keras model's life cycle, and saving/loading without pickle.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from synthaug.tabular import TabularEncoder, is_dataframe

FORMAT_VERSION = 1
_MAX_DISCRETE_LEVELS = 32  # integer data with at most this many levels gets a categorical likelihood


def _check_finite(X: np.ndarray, name: str = "X") -> None:
    bad = ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        kind = "NaN" if np.isnan(X).any() else "inf"
        raise ValueError(
            f"{name} contains {kind} (NaN or inf) in {len(rows)} rows (first: row {rows[0]}); "
            "remove or impute them"
        )


def _json_param(value):
    """A parameter as the model file's JSON holds it: NumPy scalars (e.g. from a GridSearchCV grid
    of ``np.arange``) as Python numbers, tuples as lists; a ``RandomState`` as None (its state is
    not the model: the weights are saved)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_param(v) for v in value]
    if isinstance(value, np.random.RandomState):
        return None
    return value


def _check_class_labels(y: np.ndarray) -> None:
    """scikit-learn's checks for class labels: a regression target, NaN or labels of mixed types
    are refused by name."""
    from sklearn.utils.multiclass import check_classification_targets

    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"y contains NaN in {int(np.isnan(y).sum())} labels; every row needs a class label")
    if y.dtype == object:  # np.str_ is a str, np.int64 an int: compare Python types
        kinds = sorted({type(v.item() if isinstance(v, np.generic) else v).__name__ for v in y.tolist()})
        if len(kinds) > 1:
            raise TypeError(f"y mixes label types {kinds}; use labels of one type")
    try:
        check_classification_targets(y)
    except ValueError as error:
        raise ValueError(f"y must hold class labels (one distribution is learned per class): {error}") from None


def _class_labels(y, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted classes of ``y`` and each label's code, after :func:`_check_class_labels`."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(f"y must be 1-d with {n_samples} labels to match X; got shape {y.shape}")
    _check_class_labels(y)
    classes, codes = np.unique(y, return_inverse=True)
    return classes, codes.reshape(-1)


def _distinct(y: np.ndarray) -> tuple[list, np.ndarray]:
    """The distinct values of 1-d ``y`` (as Python scalars) and each element's index among them."""
    try:
        values, inverse = np.unique(y, return_inverse=True)
    except TypeError:  # unorderable (mixed types): they are unseen labels anyway
        values = list(dict.fromkeys(y.tolist()))
        index = {v: i for i, v in enumerate(values)}
        return values, np.array([index[v] for v in y.tolist()], dtype=np.intp)
    return values.tolist(), inverse.reshape(-1)


def _is_tf_dataset(X) -> bool:
    # Checked by module name first, so that array input never imports TensorFlow.
    if not type(X).__module__.startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(X, tf.data.Dataset)


class GenerativeEstimator(BaseEstimator):
    """Base class of synthaug generators (not used directly).

    Subclasses implement ``_build_model`` and ``_fit_model`` and the sampling hooks. This class
    validates input, learns the data's range and dtype, encodes labels and handles saving.

    Data shapes: images ``(n, H, W)`` or ``(n, H, W, C)`` and tabular ``(n, d)``. Output of
    ``generate`` has the input's sample shape, dtype and value range.
    """

    _parameter_constraints: dict = {}

    # -- validation -------------------------------------------------------------------------
    def _validate_params(self) -> None:
        """Check the parameters against the class's ``_parameter_constraints`` (start of ``fit``)."""
        from synthaug._param_validation import validate_params

        validate_params(self, self._parameter_constraints)

    def _fit_random_state(self) -> tuple[np.random.RandomState, int]:
        """The RandomState of one ``fit`` (from ``random_state``) and the seed it gives the network."""
        rng = check_random_state(self.random_state)
        return rng, int(rng.randint(0, 2**31 - 1))

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        if reset:
            self.tabular_encoder_ = None
            if is_dataframe(X):
                return self._validate_frame(X, reset=True)
            X = np.asarray(X) if not hasattr(X, "tocsr") else X
            X = validate_data(
                self, X, reset=True, allow_nd=True, ensure_all_finite=False,
                dtype="numeric", ensure_min_samples=2,
            )
            if X.ndim not in (2, 3, 4):
                raise ValueError(
                    f"X must be tabular (n, d) or images (n, H, W) / (n, H, W, C); got shape {X.shape}"
                )
            _check_finite(X)
            return X
        check_is_fitted(self)
        if getattr(self, "tabular_encoder_", None) is not None:
            return self._validate_frame(X, reset=False)
        X = validate_data(self, X, reset=False, allow_nd=True, ensure_all_finite=False, dtype="numeric")
        if X.shape[1:] != tuple(self.input_shape_):
            raise ValueError(
                f"X has sample shape {X.shape[1:]}, but {type(self).__name__} was fitted on "
                f"sample shape {tuple(self.input_shape_)}"
            )
        _check_finite(X)
        return X

    def _validate_frame(self, X, *, reset: bool) -> np.ndarray:
        """A pandas DataFrame: check column names as scikit-learn does, then encode it.

        ``n_features_in_`` and ``feature_names_in_`` describe the DataFrame's columns; the
        generator itself sees the encoded matrix (``input_shape_`` is its width).
        """
        validate_data(self, X, reset=reset, skip_check_array=True)
        if reset:
            names, n_features = getattr(self, "feature_names_in_", None), self.n_features_in_
            encoder = TabularEncoder().fit(X)
            Z = self._validate_X(encoder.transform(X), reset=True)
            self.tabular_encoder_ = encoder
            self.n_features_in_ = n_features
            if names is not None:
                self.feature_names_in_ = names
            return Z
        Z = self.tabular_encoder_.transform(X)
        if Z.shape[1:] != tuple(self.input_shape_):
            raise ValueError(f"X encodes to {Z.shape[1:]} features; {type(self).__name__} expects {self.input_shape_}")
        _check_finite(Z)
        return Z

    def _fit_data(self, X, y, *, discrete: bool = True):
        """Validate X and y, learn range/dtype/labels. Returns (X in network units, y codes).

        ``discrete=False`` treats integer data as continuous (a model asked for a continuous
        likelihood); otherwise integer data with few levels is kept as levels 0..L-1.
        A ``tf.data.Dataset`` X goes to :meth:`_fit_dataset` (streamed, never held in memory).
        """
        if _is_tf_dataset(X):
            return self._fit_dataset(X, y, discrete=discrete)
        X = self._validate_X(X, reset=True)
        self.input_shape_ = tuple(X.shape[1:])
        self.dtype_ = X.dtype
        self.data_min_ = float(X.min())
        self.data_max_ = float(X.max())
        from synthaug.provenance.record import data_fingerprint

        self.data_fingerprint_ = data_fingerprint(X, y)  # for provenance records
        is_integer = discrete and bool(np.all(np.equal(np.mod(X, 1), 0)))
        levels = int(round(self.data_max_ - self.data_min_)) + 1
        self.n_levels_ = levels if is_integer and levels <= _MAX_DISCRETE_LEVELS else None
        if self.n_levels_ is None:
            # Continuous data: per-feature standardisation for tabular, global for images.
            axis = 0 if X.ndim == 2 else None
            self.offset_ = np.asarray(X.mean(axis=axis), dtype=np.float64)
            scale = np.asarray(X.std(axis=axis), dtype=np.float64)
            self.scale_ = np.where(scale > 0, scale, 1.0)
            self.feature_min_ = np.asarray(X.min(axis=axis), dtype=np.float64)
            self.feature_max_ = np.asarray(X.max(axis=axis), dtype=np.float64)
        if y is None:
            self.classes_ = None
            self.class_prior_ = None
            codes = None
        else:
            self.classes_, codes = _class_labels(y, len(X))
            self.class_prior_ = np.bincount(codes) / len(codes)
        return self._to_network(X), codes

    def _fit_dataset(self, dataset, y, *, discrete: bool):
        """``_fit_data`` for a ``tf.data.Dataset`` of features or (features, labels), batched or not.

        One streaming pass learns what ``_fit_data`` learns from an array (range, levels, mean and
        std, classes and their balance, a fingerprint); nothing is held in memory. Returns a
        :class:`~synthaug.models.streamed.StreamedData` (the network-unit data, mapped in-graph
        on every pass) in place of the array, and a stand-in for the label codes (``None`` when
        the elements carry no labels).
        """
        from synthaug.models.streamed import StreamedData, StreamedLabels, StreamStatistics, dataset_layout

        if y is not None:
            raise ValueError("y must be None when X is a tf.data.Dataset: the labels come from its "
                             "(features, labels) elements")
        layout = dataset_layout(dataset)
        stats = StreamStatistics(layout).run(dataset)
        self.tabular_encoder_ = None
        self.__dict__.pop("feature_names_in_", None)
        self.input_shape_ = layout.sample_shape
        self.n_features_in_ = layout.sample_shape[0]  # X.shape[1], as scikit-learn defines it
        self.dtype_ = np.dtype(layout.x_dtype.as_numpy_dtype)
        self.data_min_, self.data_max_ = float(stats.min.min()), float(stats.max.max())
        self.data_fingerprint_ = stats.fingerprint()
        levels = int(round(self.data_max_ - self.data_min_)) + 1
        is_integer = discrete and stats.is_integer
        self.n_levels_ = levels if is_integer and levels <= _MAX_DISCRETE_LEVELS else None
        if self.n_levels_ is None:
            self.offset_, std = stats.per_dataset(stats.mean), stats.per_dataset(stats.std())
            self.scale_ = np.where(std > 0, std, 1.0)
            self.feature_min_, self.feature_max_ = stats.per_dataset(stats.min), stats.per_dataset(stats.max)
        self.classes_, self.class_prior_ = stats.classes() if layout.labelled else (None, None)
        if self.classes_ is not None:
            _check_class_labels(self.classes_)  # the distinct labels decide it, as in _fit_data
        stream = StreamedData(dataset, layout, self, stats.n, stats.bucket_counts)
        return stream, (StreamedLabels() if layout.labelled else None)

    # -- the data scaler ----------------------------------------------------------------------
    def _to_network(self, X: np.ndarray) -> np.ndarray:
        """Caller's units → network units: integer levels 0..L-1, or standardised floats."""
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        if self.n_levels_ is not None:
            return np.clip(np.rint(X - self.data_min_), 0, self.n_levels_ - 1).astype(np.int32)
        # reshape(1, -1) broadcasts both per-feature (d,) and global () statistics.
        return ((X - self.offset_.reshape(1, -1)) / self.scale_.reshape(1, -1)).astype(np.float32)

    def _with_off_levels_impossible(self, log_p: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``log_p`` with -inf for the rows of X (validated, caller's units) holding a value off the
        integer levels learned in fit: a model of those levels gives them probability 0, where
        :meth:`_to_network` would round and clip them onto a level."""
        if self.n_levels_ is None:
            return log_p
        V = np.asarray(X, dtype=np.float64).reshape(len(X), -1) - self.data_min_
        off = ((V != np.rint(V)) | (V < 0) | (V > self.n_levels_ - 1)).any(axis=1)
        return np.where(off, -np.inf, log_p)

    def _from_network(self, Z: np.ndarray, clip: bool = True) -> np.ndarray:
        """Network units → caller's shape, dtype and value range.

        ``clip=False`` skips clipping continuous values to the training range, for exact
        inverses (a flow's ``inverse_transform``).
        """
        Z = np.asarray(Z, dtype=np.float64)
        if self.n_levels_ is not None:
            X = Z + self.data_min_
        else:
            X = Z * self.scale_.reshape(1, -1) + self.offset_.reshape(1, -1)
            if clip:
                X = np.clip(X, self.feature_min_.reshape(1, -1), self.feature_max_.reshape(1, -1))
        if np.issubdtype(self.dtype_, np.integer):
            X = np.rint(X)
        X = X.astype(self.dtype_).reshape((len(X),) + tuple(self.input_shape_))
        if getattr(self, "tabular_encoder_", None) is not None:
            return self.tabular_encoder_.inverse_transform(X)  # fitted on a DataFrame: one comes back
        return X

    # -- the same mappings and sampling in-graph (TensorFlow), for tf.data and Keras layers -----
    def _to_network_graph(self, X):
        """:meth:`_to_network` on a batch tensor (B, *input_shape_), in-graph; returns (B, D)."""
        import tensorflow as tf

        X = tf.reshape(tf.cast(X, tf.float32), (-1, int(np.prod(self.input_shape_))))
        if self.n_levels_ is not None:
            return tf.cast(tf.clip_by_value(tf.round(X - self.data_min_), 0, self.n_levels_ - 1), tf.int32)
        offset, scale = (tf.constant(np.reshape(a, (1, -1)), tf.float32) for a in (self.offset_, self.scale_))
        return (X - offset) / scale

    def _from_network_graph(self, Z):
        """:meth:`_from_network` in-graph: float32 (B, *input_shape_) in the caller's units and range
        (clipped to the training range, rounded for integer dtypes; the caller casts)."""
        import tensorflow as tf

        Z = tf.cast(Z, tf.float32)
        if self.n_levels_ is not None:
            X = Z + self.data_min_
        else:
            def row(a):
                return tf.constant(np.reshape(a, (1, -1)), tf.float32)

            X = tf.clip_by_value(Z * row(self.scale_) + row(self.offset_), row(self.feature_min_),
                                 row(self.feature_max_))
        if np.issubdtype(self.dtype_, np.integer):
            X = tf.round(X)
        return tf.reshape(X, (-1,) + tuple(self.input_shape_))

    def _codes_graph(self, labels):
        """Labels (B,) → int32 codes into ``classes_``, in-graph; a label not seen in fit fails."""
        import tensorflow as tf

        labels = tf.reshape(labels, (-1,))
        integer_classes = np.issubdtype(self.classes_.dtype, np.integer) and (
            self.classes_.size == 0 or int(self.classes_.max()) <= np.iinfo(np.int64).max)
        if labels.dtype == tf.string:
            classes = tf.constant([str(c).encode() for c in self.classes_])
        elif labels.dtype.is_integer and integer_classes:  # exact: float64 merges 2**53 and 2**53 + 1
            classes, labels = tf.constant(self.classes_.astype(np.int64)), tf.cast(labels, tf.int64)
        else:
            classes, labels = tf.constant(self.classes_, tf.float64), tf.cast(labels, tf.float64)
        hits = tf.equal(labels[:, None], classes[None, :])
        check = tf.debugging.assert_equal(
            tf.reduce_any(hits, axis=1), True,
            message=f"labels not seen in fit; {type(self).__name__} knows {self.classes_.tolist()[:20]}")
        with tf.control_dependencies([check]):
            return tf.argmax(tf.cast(hits, tf.int32), axis=1, output_type=tf.int32)

    def _prior_codes_graph(self, n, seed):
        """``n`` label codes drawn in the training class balance, with a stateless seed (shape (2,))."""
        import tensorflow as tf

        logits = tf.constant(np.log(np.maximum(self.class_prior_, 1e-30))[None, :], tf.float32)
        return tf.cast(tf.random.stateless_categorical(logits, n, seed)[0], tf.int32)

    _GRAPH_PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

    def _sample_graph(self, n, codes, seed, *, precision: str = "float32"):
        """``n`` samples in-graph: float32 (n, *input_shape_) in the caller's units and range.

        The graph counterpart of ``generate`` (the same networks), for tf.data pipelines and Keras
        layers: ``codes`` are int32 label codes (``None`` for an unconditional model), ``seed`` a
        shape-(2,) integer tensor for TensorFlow's stateless random ops (same seed, same samples),
        ``precision`` a Keras dtype policy for the network's maths. Families implement
        ``_sample_network_graph(n, codes, seed, model)``, which returns network units.
        """
        check_is_fitted(self)
        if not hasattr(self, "_sample_network_graph"):
            raise TypeError(f"{type(self).__name__} has no in-graph sampler (_sample_network_graph)")
        if (codes is None) != (self.classes_ is None):
            raise ValueError(f"{type(self).__name__} is {'un' if self.classes_ is None else ''}conditional: "
                             f"pass {'no' if self.classes_ is None else 'the'} label codes")
        model = self._sampling_model(precision)
        return self._from_network_graph(self._sample_network_graph(n, codes, seed, model))

    def _sampling_model(self, precision: str):
        """The Keras model to sample with: ``model_`` for float32, else a copy of it built under
        the dtype policy ``precision`` (cached; variables float32, maths in float16/bfloat16)."""
        if precision not in self._GRAPH_PRECISIONS:
            raise ValueError(f"precision must be one of {self._GRAPH_PRECISIONS} for {type(self).__name__}; "
                             f"got {precision!r}")
        if precision == "float32":
            return self.model_
        import keras
        import tensorflow as tf

        cache = self.model_.__dict__.setdefault("_precision_copies", {})
        if precision not in cache:
            with tf.init_scope():  # built eagerly, also when first asked for inside a traced function
                previous = keras.config.dtype_policy()
                keras.config.set_dtype_policy(precision)
                try:
                    copy = type(self.model_).from_config(self.model_.get_config())
                finally:
                    keras.config.set_dtype_policy(previous)
                copy.set_weights(self.model_.get_weights())
            cache[precision] = copy
        return cache[precision]

    def _image_shape(self):
        """(H, W, C) of image data, ``None`` for tabular data."""
        if len(self.input_shape_) == 2:
            return tuple(self.input_shape_) + (1,)
        if len(self.input_shape_) == 3:
            return tuple(self.input_shape_)
        return None

    def _conv_shape(self, architecture: str, min_side: int = 1):
        """(H, W, C) when the networks should be convolutional, ``None`` for MLPs.

        ``"auto"`` is convolutional for images whose sides are at least ``min_side`` pixels,
        ``"conv"`` always (and refuses tabular data), ``"mlp"`` never.
        """
        image_shape = self._image_shape()
        if architecture == "conv":
            if image_shape is None:
                raise ValueError(
                    f"architecture='conv' needs images (n, H, W[, C]); got samples of shape {self.input_shape_}")
            return image_shape
        if architecture == "auto" and image_shape is not None and min(image_shape[:2]) >= min_side:
            return image_shape
        return None

    _progress_keys = ("loss", "val_loss")  # the training logs the progress bar shows

    def _progress_callbacks(self, epochs: int) -> tuple[list, int]:
        """Callbacks and Keras ``verbose`` for this estimator's ``verbose``.

        0: silent; 1: one progress bar over epochs; 2 or more: Keras' line per epoch.
        """
        if self.verbose == 1:
            from synthaug._progress import EpochProgressBar

            return [EpochProgressBar(epochs, type(self).__name__, self._progress_keys)], 0
        return [], 2 if self.verbose and self.verbose > 1 else 0

    def _log_jacobian(self) -> float:
        """log |d network / d X| summed over dimensions, for densities in the caller's units."""
        if self.n_levels_ is not None:
            return 0.0
        d = int(np.prod(self.input_shape_))
        return float(-np.sum(np.broadcast_to(np.log(self.scale_), (d,))))

    # -- labels -------------------------------------------------------------------------------
    @property
    def is_conditional_(self) -> bool:
        check_is_fitted(self)
        return self.classes_ is not None

    def _label_codes(self, y, n_samples: int, rng: np.random.RandomState):
        if self.classes_ is None:
            if y is not None:
                raise ValueError(f"{type(self).__name__} was fitted without labels; pass y=None")
            return None
        if y is None:
            return rng.choice(len(self.classes_), size=n_samples, p=self.class_prior_)
        y = np.asarray(y)
        if y.ndim > 1 or (y.ndim == 1 and y.shape != (n_samples,)):
            raise ValueError(f"y must be a single label or {n_samples} labels; got shape {y.shape}")
        # Matched by Python equality on the distinct labels, never by casting y to the classes'
        # dtype first: '7' is not 7, 7.6 is not 7 and 'bb' is not 'b'.
        code_of = {c: i for i, c in enumerate(self.classes_.tolist())}
        labels, inverse = ([y.item()], np.zeros(n_samples, np.intp)) if y.ndim == 0 else _distinct(y)
        codes = [code_of.get(label) for label in labels]
        unknown = [label for label, code in zip(labels, codes) if code is None]
        if unknown:
            raise ValueError(
                f"y contains labels not seen in fit: {unknown[:5]}; known: {self.classes_.tolist()}"
            )
        return np.asarray(codes, dtype=np.intp)[inverse]

    def _log_marginal(self, log_p, n_samples: int, y=None) -> np.ndarray:
        """log p(x | y) with labels; log p(x) = logsumexp_c [log p(c) + log p(x | c)] without.

        ``log_p(codes)`` returns the per-sample log-likelihood given label codes (``None`` for an
        unconditional model); ``n_samples`` is the number of samples it scores.
        """
        if self.classes_ is None:
            return log_p(self._label_codes(y, n_samples, check_random_state(0)))
        if y is not None:
            return log_p(self._label_codes(np.asarray(y), n_samples, check_random_state(0)))
        from scipy.special import logsumexp

        per_class = np.stack([log_p(np.full(n_samples, c)) + np.log(self.class_prior_[c])
                              for c in range(len(self.classes_))])
        return logsumexp(per_class, axis=0)

    def _batched_call(self, fn, V, codes, batch_size: int = 4096) -> np.ndarray:
        """``fn(V[i:j], labels[i:j])`` over batches of ``batch_size`` rows, as one numpy array."""
        import tensorflow as tf

        out = []
        for i in range(0, len(V), batch_size):
            labels = None if codes is None else tf.constant(np.asarray(codes[i:i + batch_size], dtype="int32"))
            out.append(fn(tf.constant(V[i:i + batch_size]), labels).numpy())
        return np.concatenate(out)

    def _check_label_input(self, X, y):
        if self.classes_ is None:
            return self._label_codes(y, len(X), check_random_state(0))  # refuses labels
        if y is None:
            raise ValueError(f"{type(self).__name__} is class-conditional: pass the labels y of X")
        return self._label_codes(np.asarray(y), len(X), check_random_state(0))

    # -- public API ---------------------------------------------------------------------------
    def generate(self, n_samples: int, y=None, random_state=None, *, watermark: bool = True):
        """Draw synthetic samples.

        Parameters
        ----------
        n_samples : int
            Number of samples.
        y : label or array-like of shape (n_samples,), default=None
            Labels to condition on (conditional models only). ``None`` samples labels in the
            training class balance.
        random_state : int, RandomState or None, default=None
            Same seed, same samples.
        watermark : bool, default=True
            Embed synthaug's invisible watermark (:mod:`synthaug.provenance`) in image samples of
            at least 32×32 pixels and 33 grey levels, carrying the model's 32-bit id. The key is
            ``$SYNTHAUG_WATERMARK_KEY`` if set, else the public default key. Smaller images
            (e.g. 8×8 digits) and tabular samples get no pixel mark and rely on the provenance
            record that the CLI writes. ``False`` returns the samples unmarked.

        Returns
        -------
        X : ndarray of shape (n_samples, *input_shape_)
            Samples in the dtype and value range of the training data.
        y : ndarray of shape (n_samples,)
            Returned only by a model fitted with labels: the labels of the samples. A conditional
            model always returns ``(X, y)``, an unconditional one ``X`` alone.
        """
        return self._generate(n_samples, y, random_state, watermark=watermark)

    def _generate(self, n_samples, y, random_state, watermark: bool = True, **sample_options):
        """``generate`` with family-specific options (e.g. a flow's temperature) passed on to
        ``_sample_network``."""
        check_is_fitted(self)
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
        rng = check_random_state(random_state)
        codes = self._label_codes(y, int(n_samples), rng)
        Z = self._sample_network(int(n_samples), codes, rng, **sample_options)
        X = self._from_network(Z)
        if watermark:
            from synthaug.provenance.generated import mark_samples

            X = mark_samples(self, X)
        if self.classes_ is None:
            return X
        return X, self.classes_[codes]

    # -- saving -------------------------------------------------------------------------------
    _FITTED_ARRAYS = ("offset_", "scale_", "feature_min_", "feature_max_", "classes_", "class_prior_")

    def _fitted_state(self) -> dict:
        state = {
            "input_shape_": list(self.input_shape_),
            "dtype_": np.dtype(self.dtype_).str,
            "data_min_": self.data_min_,
            "data_max_": self.data_max_,
            "n_levels_": self.n_levels_,
            "n_features_in_": int(self.n_features_in_),
            "history_": self.history_,
            "data_fingerprint_": getattr(self, "data_fingerprint_", None),
        }
        encoder = getattr(self, "tabular_encoder_", None)
        if encoder is not None:
            state["tabular_encoder_"] = encoder.to_dict()
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(name) for name in self.feature_names_in_]
        for name in self._FITTED_ARRAYS:
            value = getattr(self, name, None)
            if value is not None:
                value = np.asarray(value)
                state[name] = {"dtype": value.dtype.str, "data": value.tolist()}
        return state

    def _restore_state(self, state: dict) -> None:
        self.input_shape_ = tuple(state["input_shape_"])
        self.dtype_ = np.dtype(state["dtype_"])
        for name in ("data_min_", "data_max_", "n_levels_", "n_features_in_", "history_"):
            setattr(self, name, state[name])
        self.data_fingerprint_ = state.get("data_fingerprint_")  # absent from files saved before provenance
        for name in self._FITTED_ARRAYS:
            entry = state.get(name)
            setattr(self, name, None if entry is None else np.asarray(entry["data"], dtype=entry["dtype"]))
        encoder = state.get("tabular_encoder_")
        self.tabular_encoder_ = None if encoder is None else TabularEncoder.from_dict(encoder)
        if "feature_names_in_" in state:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)

    def _model_bytes(self) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            self.model_.save(path)
            return Path(path).read_bytes()

    @staticmethod
    def _load_model_bytes(data: bytes):
        import keras

        from synthaug.models import vae  # noqa: F401  registers the custom classes

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            Path(path).write_bytes(data)
            return keras.saving.load_model(path, safe_mode=True, compile=False)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Save the fitted generator to one ``.synthaug`` file (a zip of JSON and a ``.keras`` model).

        No pickle is used; :func:`synthaug.load` reads it back with Keras' ``safe_mode``.
        The file is written atomically; an existing file is refused unless ``overwrite=True``.
        Parameters are saved as JSON: NumPy numbers as Python ones, and a ``RandomState`` passed
        as ``random_state`` as None (the fitted weights are what is saved).
        """
        from synthaug.io import write_archive

        check_is_fitted(self)
        return write_archive(path, self._archive_members(), overwrite=overwrite)

    def to_bytes(self) -> bytes:
        """The bytes of the file :meth:`save` writes (for embedding a generator in another file)."""
        from synthaug.io import archive_bytes

        check_is_fitted(self)
        return archive_bytes(self._archive_members())

    def _archive_members(self) -> dict:
        meta = {
            "format": "synthaug",
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "params": {name: _json_param(value) for name, value in self.get_params(deep=False).items()},
            "state": self._fitted_state(),
        }
        return {"synthaug.json": json.dumps(meta, indent=1), "model.keras": self._model_bytes()}

    # -- pickling: the Keras model travels as .keras bytes and is reloaded in safe mode ---------
    def __getstate__(self):
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = self._model_bytes()
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            state["model_"] = self._load_model_bytes(state["model_"])
        self.__dict__.update(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        tags.input_tags.allow_nan = False
        return tags


# Model classes that ``load`` can rebuild, by the name saved in the file; each module is imported
# only when a file names its class.
_MODEL_CLASSES = {
    "VAE": "synthaug.models.vae",
    "Flow": "synthaug.models.flow",
    "GAN": "synthaug.models.gan",
    "PixelCNN": "synthaug.models.pixelcnn",
    "PoseModel": "synthaug.models.pose",
}


def _model_class(name):
    import importlib

    module = _MODEL_CLASSES.get(name)
    return None if module is None else getattr(importlib.import_module(module), name)


def load(path):
    """Load a generator saved with ``save``. Never unpickles and never runs code from the file.

    ``path`` may also be the bytes of such a file (see ``to_bytes``).

    Raises
    ------
    ValueError
        If the file is not a synthaug model file, or names an unknown model class.
    """
    import synthaug
    from synthaug.io import read_archive

    members = read_archive(path, ("synthaug.json", "model.keras"), "synthaug model file")
    meta, model_bytes = members["synthaug.json"], members["model.keras"]
    source = "synthaug model file" if isinstance(path, (bytes, bytearray)) else path
    if not isinstance(meta, dict) or meta.get("format") != "synthaug":
        raise ValueError(f"{source} is not a synthaug model file of format version {FORMAT_VERSION}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{source} is a synthaug model file of format version {meta.get('format_version')!r}; "
                         f"this synthaug ({synthaug.__version__}) reads version {FORMAT_VERSION}: install the synthaug "
                         "that wrote it")
    cls = _model_class(meta.get("class"))
    if cls is None:
        raise ValueError(f"{source} names an unknown model class {meta.get('class')!r}")
    defaults = cls().get_params(deep=False)
    try:
        params = {
            # JSON has no tuples: give tuple-valued parameters back their type.
            k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
            for k, v in meta["params"].items()
        }
        est = cls(**params)
        est._validate_params()  # a hand-edited value would otherwise fail deep inside generate
        est._restore_state(meta["state"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        detail = f"lacks {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{source} is damaged: its synthaug.json does not describe a fitted {cls.__name__} "
                         f"({detail})") from exc
    try:
        est.model_ = GenerativeEstimator._load_model_bytes(model_bytes)
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        # Keras names its temporary copy, not this file: say which file is damaged.
        raise ValueError(f"{source} is damaged: its Keras model (model.keras) cannot be read "
                         f"({type(exc).__name__})") from exc
    return est

