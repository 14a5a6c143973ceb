"""scikit-learn and imbalanced-learn adapters: synthaug generators as augmentation steps.

- :class:`SyntheticAugmenter` is a *sampler*: ``fit_resample(X, y)`` fits a clone of a
  class-conditional generator on ``(X, y)`` and returns the real rows, unchanged, followed by
  synthetic rows and their labels. It runs inside ``imblearn.pipeline.Pipeline`` (resampling at
  fit time only) and follows imbalanced-learn's sampler conventions, without importing
  imbalanced-learn (an optional extra: ``pip install "synthaug[imbalanced]"``).
- :class:`AugmentedEstimator` wraps a classifier so that the augmentation happens inside ``fit``;
  it is an ordinary scikit-learn classifier for ``Pipeline``, ``cross_val_score`` and
  ``GridSearchCV`` (parameters such as ``augmenter__generator__latent_dim`` can be searched).

The generators themselves are transformers (``transform`` gives the latent code), so
``Pipeline([("vae", VAE()), ("clf", LogisticRegression())])`` learns features for a downstream
model; and they take pandas DataFrames with numeric and categorical columns (see
:mod:`synthaug.tabular`). Keras is imported only when a generator is fitted.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, OneToOneFeatureMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d, validate_data

from synthaug.tabular import is_dataframe

__all__ = ["SyntheticAugmenter", "AugmentedEstimator"]

_STRATEGIES = ("auto", "not majority", "minority", "not minority", "all")


def _python_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _synthetic_counts(sampling_strategy, ratio, y) -> dict:
    """Number of synthetic rows per class for a sampling strategy and a ratio.

    Parameters
    ----------
    sampling_strategy : str, dict, callable or None
        See :class:`SyntheticAugmenter`.
    ratio : float or None
        See :class:`SyntheticAugmenter`.
    y : ndarray of shape (n_samples,)
        Class labels.

    Returns
    -------
    counts : dict
        ``{class: number of synthetic rows}`` for every class of ``y``, in sorted class order.
    """
    classes, counts = np.unique(y, return_counts=True)
    present = {c: int(n) for c, n in zip(classes, counts)}
    target = dict(present)
    if isinstance(sampling_strategy, str):
        if sampling_strategy not in _STRATEGIES:
            raise ValueError(
                f"sampling_strategy must be one of {list(_STRATEGIES)}, a dict {{class: count}}, a "
                f"callable or None; got {sampling_strategy!r}"
            )
        if len(classes) < 2:
            raise ValueError(
                f"sampling_strategy={sampling_strategy!r} balances classes, but y has only one class "
                f"({_python_scalar(classes[0])!r}); pass sampling_strategy=None with a ratio to augment "
                "a single class"
            )
        majority, minority = classes[counts.argmax()], classes[counts.argmin()]
        chosen = {
            "auto": [c for c in classes if c != majority],
            "not majority": [c for c in classes if c != majority],
            "minority": [minority],
            "not minority": [c for c in classes if c != minority],
            "all": list(classes),
        }[sampling_strategy]
        for c in chosen:
            target[c] = int(counts.max())
    elif sampling_strategy is not None:
        requested = sampling_strategy(y) if callable(sampling_strategy) else sampling_strategy
        if not isinstance(requested, Mapping):
            raise ValueError(
                "sampling_strategy must be one of "
                f"{list(_STRATEGIES)}, a dict {{class: count}}, a callable returning such a dict, "
                f"or None; got {sampling_strategy!r}"
            )
        unknown = [k for k in requested if k not in present]
        if unknown:
            raise ValueError(
                f"sampling_strategy names classes that are not in y: {unknown}; "
                f"classes of y: {[_python_scalar(c) for c in classes]}"
            )
        for c, n in requested.items():
            if not isinstance(n, numbers.Integral) or n < present[c]:
                raise ValueError(
                    f"sampling_strategy asks for {n!r} samples of class {c!r}, which has {present[c]}; "
                    "the augmenter only adds rows, so ask for an integer at least that large"
                )
            target[c] = int(n)
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0 <= ratio < math.inf:
            raise ValueError(f"ratio must be a finite number >= 0 (synthetic rows per row) or None; got {ratio!r}")
        target = {c: int(round((1.0 + ratio) * n)) for c, n in target.items()}
    return {c: target[c] - present[c] for c in classes}


class SyntheticAugmenter(OneToOneFeatureMixin, BaseEstimator):
    """Augment a labelled data set with samples of a class-conditional generator.

    A sampler in imbalanced-learn's sense: ``fit_resample(X, y)`` fits a clone of ``generator``
    on ``(X, y)`` (labels make it class-conditional), asks it for the needed number of rows of
    each class with ``generate(n, y=labels)`` and returns the **real rows unchanged and in their
    order, followed by the synthetic rows** (grouped by class) and their labels.
    Inside ``imblearn.pipeline.Pipeline`` this happens during ``fit`` only; ``predict`` sees the
    data untouched.

    Parameters
    ----------
    generator : synthaug generator or None, default=None
        The generative model, e.g. ``VAE(latent_dim=8)``. It is cloned, never fitted in place.
        ``None`` uses ``VAE()`` with its defaults. For augmentation a VAE with
        ``decoder_output="mean"`` did better than the decoder's noisy samples on both of the
        README's augmentation benchmarks (the decoder's noise is independent per feature).
    sampling_strategy : {"auto", "not majority", "minority", "not minority", "all"}, dict, \
callable or None, default="auto"
        Which classes to top up, as imbalanced-learn's over-samplers do:

        - ``"auto"`` (= ``"not majority"``): every class but the majority grows to the majority's
          count (balances minority classes); ``"minority"``, ``"not minority"`` and ``"all"``
          choose other sets of classes to grow to that count.
        - dict ``{class: count}``: the number of rows each named class has after resampling
          (at least its current count); other classes are left as they are.
        - callable: ``f(y)`` returning such a dict.
        - ``None``: no balancing (use with ``ratio``).
    ratio : float or None, default=None
        Multiplicative augmentation on top of ``sampling_strategy``: each class ends with
        ``(1 + ratio)`` times the count that the strategy gave it, so ``ratio`` synthetic rows
        are added per row and the class balance the strategy produced is kept. With
        ``sampling_strategy=None, ratio=4`` a 10-row class gets 40 synthetic rows.
    fit_per_class : bool, default=False
        ``False``: one class-conditional generator, fitted on all rows with their labels.
        ``True``: one clone of ``generator`` per class that needs rows, fitted on that class's
        rows alone (without labels) -- as SMOTE stays within a class. Prefer it for strongly
        imbalanced data: a conditional model that sees few minority rows beside many majority
        rows tends to give the minority class majority-like rows.
    random_state : int, RandomState or None, default=None
        Seeds the sampling; it also seeds the generator's training when the generator's own
        ``random_state`` is ``None``.

    Attributes
    ----------
    generator_ : synthaug generator, dict or None
        The fitted clone of ``generator`` (``None`` when no row had to be generated); with
        ``fit_per_class=True`` a dict ``{class: fitted generator}`` of the classes that needed rows.
    sampling_strategy_ : dict
        ``{class: number of synthetic rows}`` for every class, as imbalanced-learn reports it.
    n_features_in_ : int
        Number of features (columns) seen in ``fit_resample``; the height for images.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame with string column names.

    Notes
    -----
    X may be tabular ``(n, d)`` (a numpy array, a list or a pandas DataFrame with numeric and
    categorical columns) or images ``(n, H, W)`` / ``(n, H, W, C)``. The output has the input's
    type: a list stays a list, a DataFrame a DataFrame (same columns, dtypes and category sets,
    a fresh ``RangeIndex``), a Series ``y`` a Series with its name and dtype. One-hot ``y``
    comes back one-hot. Sparse input is refused: generators model dense data.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from synthaug import VAE
    >>> from synthaug.integrations.sklearn import SyntheticAugmenter
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> aug = SyntheticAugmenter(VAE(epochs=5), random_state=0)
    >>> X_res, y_res = aug.fit_resample(X, y)
    >>> (X_res[: len(X)] == X).all(), sorted(aug.sampling_strategy_.values())
    (np.True_, [0, 145])
    """

    def __init__(self, generator=None, sampling_strategy="auto", ratio: float | None = None,
                 fit_per_class: bool = False, random_state=None):
        self.generator = generator
        self.sampling_strategy = sampling_strategy
        self.ratio = ratio
        self.fit_per_class = fit_per_class
        self.random_state = random_state

    # -- validation ------------------------------------------------------------------------------
    def _check_inputs(self, X, y):
        """Validate y (and X's type); returns (X, y as 1-d labels, how to rebuild the outputs)."""
        if sparse.issparse(X):
            raise TypeError(
                f"{type(self).__name__} needs dense X (generators model dense data); got a sparse "
                "matrix: convert it with X.toarray()"
            )
        if y is None:  # scikit-learn's own wording, which its estimator checks look for
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None; "
                             "it generates synthetic rows per class")
        out = {"X_list": isinstance(X, list), "X_frame": is_dataframe(X), "y_kind": "array"}
        if is_dataframe(y):
            out.update(y_kind="frame", y_columns=y.columns, y_dtypes=y.dtypes)
        elif type(y).__module__.split(".")[0] == "pandas" and hasattr(y, "name"):
            out.update(y_kind="series", y_name=y.name, y_dtype=y.dtype)
        elif isinstance(y, list):
            out["y_kind"] = "list"
        if not out["X_frame"]:
            X = np.asarray(X)
            if X.dtype == object:
                raise ValueError(
                    "X is an object array; pass numbers, or a pandas DataFrame for categorical columns"
                )
        check_consistent_length(X, y)
        if len(y) == 0:
            raise ValueError("X and y have 0 samples; fit_resample needs labelled data")
        y_arr = np.asarray(y)
        check_classification_targets(y_arr)
        if type_of_target(y_arr) == "multilabel-indicator":
            if np.any(y_arr.sum(axis=1) != 1):
                raise ValueError(
                    "y is a multilabel indicator matrix; only binary and multiclass targets (also "
                    "one-hot encoded) can be augmented. Multilabel and multioutput targets are not supported."
                )
            out.update(y_kind="onehot", y_width=y_arr.shape[1], y_dtype=y_arr.dtype,
                       y_onehot_frame=out["y_kind"] == "frame")  # pd.get_dummies: keep its columns
            y_arr = y_arr.argmax(axis=1)
        else:
            y_arr = column_or_1d(y_arr)
        validate_data(self, X, reset=True, skip_check_array=True)
        return X, y_arr, out

    def _check_generator(self):
        if self.generator is None:
            from synthaug.models.vae import VAE

            return VAE()
        if not (hasattr(self.generator, "fit") and hasattr(self.generator, "generate")
                and hasattr(self.generator, "get_params")):
            raise TypeError(
                "generator must be a synthaug generator with fit(X, y) and generate(n, y=...), "
                f"such as VAE(); got {type(self.generator).__name__}"
            )
        return self.generator

    # -- fitting -----------------------------------------------------------------------------
    def _fit(self, X, y):
        generator = self._check_generator()
        if not isinstance(self.fit_per_class, (bool, np.bool_)):
            raise ValueError(f"fit_per_class must be True or False; got {self.fit_per_class!r}")
        X, y, out = self._check_inputs(X, y)
        counts = _synthetic_counts(self.sampling_strategy, self.ratio, y)
        self.sampling_strategy_ = {_python_scalar(c): n for c, n in counts.items()}
        rng = check_random_state(self.random_state)
        self.generator_ = None
        if not sum(counts.values()):
            return X, y, counts, rng, out
        if not self.fit_per_class:
            self.generator_ = self._new_generator(generator, rng).fit(X, y)
            return X, y, counts, rng, out
        self.generator_ = {}
        for c, n in counts.items():
            if n:
                rows = np.flatnonzero(y == c)
                X_c = X.iloc[rows] if out["X_frame"] else X[rows]
                try:
                    fitted = self._new_generator(generator, rng).fit(X_c)
                except ValueError as error:
                    raise ValueError(f"fit_per_class=True: fitting the generator on class "
                                     f"{_python_scalar(c)!r} alone ({len(rows)} rows) failed: {error}") from error
                self.generator_[_python_scalar(c)] = fitted
        return X, y, counts, rng, out

    def _new_generator(self, generator, rng):
        """A clone of ``generator``, seeded from ``random_state`` when its own seed is ``None``."""
        new = clone(generator)
        params = new.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None and self.random_state is not None:
            new.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        return new

    def fit(self, X, y):
        """Fit the generator on ``(X, y)`` and work out the synthetic counts; generates nothing.

        Use :meth:`fit_resample` to get the augmented data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, ...)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : SyntheticAugmenter
        """
        self._fit(X, y)
        return self

    def fit_resample(self, X, y):
        """Fit the generator on ``(X, y)``; return the real rows plus synthetic rows.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, d), (n_samples, H, W) or (n_samples, H, W, C)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (binary or multiclass; a one-hot matrix is accepted).

        Returns
        -------
        X_resampled : same type as X, of shape (n_samples + n_synthetic, ...)
            ``X`` unchanged, then the synthetic rows grouped by class.
        y_resampled : same type as y, of shape (n_samples + n_synthetic,)
            ``y`` unchanged, then the labels of the synthetic rows.
        """
        X, y, counts, rng, out = self._fit(X, y)
        X_res, y_res = X, y
        total = sum(counts.values())
        if total:
            seed = int(rng.randint(np.iinfo(np.int32).max))
            if self.fit_per_class:
                parts = [self.generator_[_python_scalar(c)].generate(n, random_state=seed)
                         for c, n in counts.items() if n]
                y_syn = np.repeat(np.asarray(list(counts)), list(counts.values()))
            else:
                labels = np.repeat(np.asarray(list(counts)), list(counts.values())).astype(y.dtype)
                generated = self.generator_.generate(total, y=labels, random_state=seed)
                if not isinstance(generated, tuple):
                    raise TypeError(
                        f"{type(self.generator_).__name__}.generate returned unlabelled samples; the "
                        "augmenter needs a class-conditional generator that returns (X, y)"
                    )
                parts, y_syn = [generated[0]], generated[1]
            X_res = self._concat_X(X, parts)
            y_res = np.concatenate([y, np.asarray(y_syn, dtype=y.dtype)])
        return self._restore_types(X_res, y_res, out)

    @staticmethod
    def _concat_X(X, parts):
        if is_dataframe(X):
            import pandas as pd

            return pd.concat([X.reset_index(drop=True), *parts], ignore_index=True)
        return np.concatenate([X] + [np.asarray(p, dtype=X.dtype) for p in parts])

    @staticmethod
    def _restore_types(X_res, y_res, out):
        if out["X_list"]:
            X_res = X_res.tolist()
        kind = out["y_kind"]
        if kind == "list":
            y_res = y_res.tolist()
        elif kind == "onehot":
            y_res = np.eye(out["y_width"], dtype=out["y_dtype"])[y_res]
            if out["y_onehot_frame"]:
                import pandas as pd

                index = X_res.index if out["X_frame"] else None
                y_res = pd.DataFrame(y_res, columns=out["y_columns"], index=index).astype(out["y_dtypes"])
        elif kind in ("series", "frame"):
            import pandas as pd

            index = X_res.index if out["X_frame"] else None
            if kind == "series":
                y_res = pd.Series(y_res, name=out["y_name"], index=index).astype(out["y_dtype"])
            else:
                y_res = pd.DataFrame({out["y_columns"][0]: y_res}, index=index).astype(out["y_dtypes"])
        return X_res, y_res

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "sampler"
        tags.target_tags.required = True
        tags.non_deterministic = True  # neural generators; same seed, same samples on one machine
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        try:  # imbalanced-learn's checks read its own tag class (sampler_tags)
            from imblearn.utils._tags import InputTags, SamplerTags, Tags
        except ImportError:
            return tags
        input_tags = InputTags(two_d_array=True, three_d_array=True, sparse=False, dataframe=True,
                               allow_nan=False, string=False)
        return Tags(
            estimator_type="sampler", target_tags=tags.target_tags, transformer_tags=None,
            classifier_tags=None, regressor_tags=None, array_api_support=False,
            no_validation=False, non_deterministic=True, requires_fit=True,
            input_tags=input_tags, sampler_tags=SamplerTags(sample_indices=False),
        )


def _estimator_has(attr):
    def check(self):
        est = self.estimator_ if hasattr(self, "estimator_") else self.estimator
        return hasattr(est, attr)

    return check


class AugmentedEstimator(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """A classifier trained on augmented data: the augmentation happens inside ``fit``.

    For plain scikit-learn pipelines, which have no resampling steps: ``fit(X, y)`` runs
    ``augmenter.fit_resample(X, y)`` on a clone of ``augmenter`` and fits a clone of
    ``estimator`` on the result; ``predict`` and friends go straight to the fitted estimator.
    Inside ``cross_val_score`` or ``GridSearchCV`` each training fold is augmented on its own,
    so no synthetic row is derived from test data.

    Parameters
    ----------
    estimator : classifier
        The model trained on real plus synthetic rows, e.g. ``SVC()``.
    augmenter : SyntheticAugmenter or None, default=None
        Anything with ``fit_resample(X, y)``; ``None`` uses ``SyntheticAugmenter()``.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    augmenter_ : SyntheticAugmenter
        The fitted clone of ``augmenter`` (its ``generator_`` is the fitted generator).
    classes_ : ndarray
        Class labels, from ``estimator_``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.svm import SVC
    >>> from synthaug import VAE
    >>> from synthaug.integrations.sklearn import AugmentedEstimator, SyntheticAugmenter
    >>> model = AugmentedEstimator(SVC(), SyntheticAugmenter(VAE(epochs=20), ratio=1.0))
    >>> search = GridSearchCV(model, {"augmenter__generator__latent_dim": [4, 8]}, cv=3)
    """

    def __init__(self, estimator, augmenter=None):
        self.estimator = estimator
        self.augmenter = augmenter

    def fit(self, X, y):
        """Augment ``(X, y)`` with the augmenter, then fit the estimator on the result.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, ...)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : AugmentedEstimator
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        augmenter = SyntheticAugmenter() if self.augmenter is None else self.augmenter
        if not hasattr(augmenter, "fit_resample"):
            raise TypeError(
                f"augmenter must have fit_resample(X, y), such as SyntheticAugmenter; got {type(augmenter).__name__}"
            )
        if not hasattr(self.estimator, "fit"):
            raise TypeError(f"estimator must be a scikit-learn estimator with fit; got {type(self.estimator).__name__}")
        self.augmenter_ = clone(augmenter)
        X_res, y_res = self.augmenter_.fit_resample(X, y)
        self.estimator_ = clone(self.estimator).fit(X_res, y_res)
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.augmenter_, name):
                setattr(self, name, getattr(self.augmenter_, name))
            elif name in self.__dict__:  # left by an earlier fit on a DataFrame
                delattr(self, name)
        return self

    @property
    def classes_(self):
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_

    def predict(self, X):
        """Predict with the fitted estimator (no augmentation at predict time)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the fitted estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the fitted estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the fitted estimator."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimator_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        tags.input_tags.sparse = False
        tags.input_tags.three_d_array = True
        return tags
