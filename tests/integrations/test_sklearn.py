"""SyntheticAugmenter and AugmentedEstimator inside scikit-learn and imbalanced-learn workflows."""
import pickle
from collections import Counter

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from synthaug import VAE
from synthaug.integrations.sklearn import AugmentedEstimator, SyntheticAugmenter

imblearn = pytest.importorskip("imblearn")
pd = pytest.importorskip("pandas")
from imblearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

# Contract tests on tiny fits: run eagerly (see eager_tensorflow in conftest.py).
pytestmark = pytest.mark.usefixtures("eager_tensorflow")
FAST = dict(hidden_units=(8,), latent_dim=2, epochs=2, n_importance=4, validation_fraction=0.0, random_state=0)

# Every imbalanced-learn sampler check that applies runs. The ones that branch on
# `isinstance(sampler, BaseOverSampler)` (check_samplers_fit_resample,
# check_samplers_sampling_strategy_fit_resample) pass without asserting anything, since the
# augmenter does not inherit from imbalanced-learn (an optional dependency); the same
# properties are asserted in test_strategies_and_real_rows_first below.
EXPECTED_FAILED = {}


@parametrize_with_checks(
    [SyntheticAugmenter(VAE(**FAST), random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_imblearn_sampler_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def imbalanced():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :6])
    rng = np.random.RandomState(0)
    keep = np.concatenate([np.flatnonzero(y == 1)[:90], rng.choice(np.flatnonzero(y == 0), 10, replace=False)])
    return X[keep], y[keep]  # 90 benign, 10 malignant


class RowCounter(ClassifierMixin, BaseEstimator):
    """A classifier that remembers how many rows it was fitted and asked to predict on."""

    def fit(self, X, y):
        self.classes_, self.n_fit_rows_ = np.unique(y), len(X)
        self.fit_counts_ = Counter(np.asarray(y).tolist())
        return self

    def predict(self, X):
        self.n_predict_rows_ = len(X)
        return np.full(len(X), self.classes_[0])


def test_strategies_and_real_rows_first(imbalanced):
    X, y = imbalanced
    generator = VAE(**FAST)
    aug = SyntheticAugmenter(generator, random_state=0)
    X_res, y_res = aug.fit_resample(X, y)
    assert Counter(y_res.tolist()) == {0: 90, 1: 90}
    np.testing.assert_array_equal(X_res[: len(X)], X)  # real rows unchanged, in order, first
    np.testing.assert_array_equal(y_res[: len(y)], y)
    assert aug.sampling_strategy_ == {0: 80, 1: 0}
    assert not hasattr(generator, "model_") and hasattr(aug.generator_, "model_")  # cloned, not fitted in place
    assert aug.generator_.random_state == 0  # its own seed is kept

    aug.set_params(sampling_strategy="not minority")
    assert aug.fit(X, y).generator_ is None  # nothing to generate: no generator is trained


def test_fit_per_class(imbalanced):
    X, y = imbalanced
    aug = SyntheticAugmenter(VAE(**dict(FAST, random_state=None)), fit_per_class=True, random_state=0)
    X_res, y_res = aug.fit_resample(X, y)
    assert Counter(y_res.tolist()) == {0: 90, 1: 90}
    np.testing.assert_array_equal(X_res[: len(X)], X)
    assert list(aug.generator_) == [0]  # only the class that needed rows gets a generator
    minority = aug.generator_[0]
    assert minority.classes_ is None and isinstance(minority.random_state, int)  # unconditional, seeded
    synthetic = X_res[len(X):]
    assert np.all(synthetic >= X[y == 0].min(0)) and np.all(synthetic <= X[y == 0].max(0))  # in its class's range
    with pytest.raises(ValueError, match="fit_per_class must be True or False"):
        aug.set_params(fit_per_class="yes").fit(X, y)
    one_row = np.r_[np.flatnonzero(y == 1), np.flatnonzero(y == 0)[:1]]  # class 0 keeps a single row
    with pytest.raises(ValueError, match=r"on class 0 alone \(1 rows\) failed: Found array with 1 sample"):
        aug.set_params(fit_per_class=True).fit_resample(X[one_row], y[one_row])


@pytest.mark.parametrize(
    "strategy, ratio, expected",
    [
        ("auto", None, {0: 80, 1: 0}),
        ("not majority", None, {0: 80, 1: 0}),
        ("minority", None, {0: 80, 1: 0}),
        ("all", None, {0: 80, 1: 0}),
        ("not minority", None, {0: 0, 1: 0}),
        ({0: 50}, None, {0: 40, 1: 0}),
        (lambda labels: {0: 30}, None, {0: 20, 1: 0}),
        (None, 2.0, {0: 20, 1: 180}),  # 2 synthetic rows per real row
        ("auto", 0.5, {0: 125, 1: 45}),  # balanced to 90 each, then x1.5
        (None, None, {0: 0, 1: 0}),
    ],
)
def test_synthetic_counts(strategy, ratio, expected):
    from synthaug.integrations.sklearn import _synthetic_counts

    y = np.array([1] * 90 + [0] * 10)
    assert _synthetic_counts(strategy, ratio, y) == expected


def test_images_and_dtypes_come_back_as_given():
    digits = load_digits()
    X, y = digits.images[:40].astype(np.float32), digits.target[:40].astype(np.int32)
    aug = SyntheticAugmenter(VAE(**FAST), sampling_strategy=None, ratio=1.0, random_state=0)
    X_res, y_res = aug.fit_resample(X, y)
    assert X_res.shape == (80, 8, 8) and X_res.dtype == np.float32 and y_res.dtype == np.int32
    assert X_res.min() >= 0 and X_res.max() <= 16
    np.testing.assert_array_equal(np.bincount(y_res), 2 * np.bincount(y))


def test_dataframe_in_dataframe_out():
    rng = np.random.RandomState(0)
    n = 60
    X = pd.DataFrame({
        "size": rng.normal(10, 2, n).astype(np.float32),
        "count": rng.randint(0, 9, n),
        "colour": pd.Categorical(rng.choice(["red", "blue"], n), categories=["red", "blue", "green"]),
    }, index=np.arange(100, 100 + n))
    y = pd.Series(np.where(np.arange(n) < 45, "common", "rare"), name="kind", dtype="category")
    aug = SyntheticAugmenter(VAE(**FAST), random_state=0)
    X_res, y_res = aug.fit_resample(X, y)
    pd.testing.assert_series_equal(X_res.dtypes, X.dtypes)
    assert X_res["colour"].dtype == X["colour"].dtype
    pd.testing.assert_frame_equal(X_res.iloc[:n], X.reset_index(drop=True))
    assert y_res.name == "kind" and y_res.dtype == y.dtype and (y_res.index == X_res.index).all()
    assert y_res.value_counts().to_dict() == {"common": 45, "rare": 45}
    np.testing.assert_array_equal(aug.feature_names_in_, ["size", "count", "colour"])
    np.testing.assert_array_equal(aug.get_feature_names_out(), ["size", "count", "colour"])


def test_imblearn_pipeline_resamples_at_fit_only(imbalanced):
    from imblearn.pipeline import Pipeline as ImbPipeline

    X, y = imbalanced
    pipe = ImbPipeline([("scale", StandardScaler()), ("aug", SyntheticAugmenter(VAE(**FAST), random_state=0)),
                        ("clf", RowCounter())]).fit(X, y)
    assert pipe.named_steps["clf"].fit_counts_ == {0: 90, 1: 90}
    pipe.predict(X[:7])
    assert pipe.named_steps["clf"].n_predict_rows_ == 7
    with pytest.raises(TypeError, match="implement fit and transform"):
        # the generator itself (transform + no fit_resample) is a transformer, never a sampler:
        # imbalanced-learn refuses a step that is both, which is why the augmenter is its own object
        ImbPipeline([("aug", _BothTransformAndResample()), ("clf", RowCounter())]).fit(X, y)


class _BothTransformAndResample(BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X

    def fit_resample(self, X, y):
        return X, y


def test_augmented_estimator_in_pipeline_cv_and_grid_search(imbalanced):
    X, y = imbalanced
    model = make_pipeline(
        StandardScaler(),
        AugmentedEstimator(LogisticRegression(), SyntheticAugmenter(VAE(**FAST), random_state=0)),
    )
    scores = cross_val_score(model, X, y, cv=2, scoring="balanced_accuracy")
    assert scores.shape == (2,) and np.all(scores > 0.5)

    inner = AugmentedEstimator(RowCounter(), SyntheticAugmenter(VAE(**FAST), random_state=0))
    search = GridSearchCV(inner, {"augmenter__generator__latent_dim": [2, 3]}, cv=2, scoring="accuracy").fit(X, y)
    assert search.best_estimator_.augmenter_.generator_.latent_dim in (2, 3)
    assert search.best_estimator_.estimator_.fit_counts_ == {0: 90, 1: 90}
    assert "augmenter__generator__latent_dim" in inner.get_params()


def test_augmented_estimator_clone_pickle_and_methods(imbalanced):
    X, y = imbalanced
    model = AugmentedEstimator(LogisticRegression(), SyntheticAugmenter(VAE(**FAST), random_state=0)).fit(X, y)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    assert model.n_features_in_ == X.shape[1]
    assert model.predict_proba(X[:3]).shape == (3, 2) and model.decision_function(X[:3]).shape == (3,)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert restored.augmenter_.generator_.generate(2, y=[0, 1], random_state=0)[0].shape == (2, X.shape[1])
    copy = clone(model)
    assert not hasattr(copy, "estimator_") and copy.get_params()["augmenter__generator__latent_dim"] == 2
    assert not hasattr(AugmentedEstimator(RowCounter()), "predict_proba")


def test_generator_as_transformer_in_pipeline(imbalanced):
    X, y = imbalanced
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    pipe = Pipeline([("vae", VAE(**FAST)), ("clf", LogisticRegression())]).fit(frame, y)
    assert pipe.predict(frame).shape == (len(y),)
    assert pipe.named_steps["vae"].transform(frame).shape == (len(y), 2)
    np.testing.assert_array_equal(pipe[:-1].get_feature_names_out(), ["vae0", "vae1"])


@pytest.mark.parametrize(
    "params, X, y, error, message",
    [
        ({"generator": LogisticRegression()}, None, None, TypeError, "generator must be a synthaug generator"),
        ({"sampling_strategy": "most"}, None, None, ValueError, "sampling_strategy must be one of"),
        ({"sampling_strategy": 0.5}, None, None, ValueError, "sampling_strategy must be one of"),
        ({"sampling_strategy": {7: 100}}, None, None, ValueError, "classes that are not in y: \\[7\\]"),
        ({"sampling_strategy": {1: 5}}, None, None, ValueError, "asks for 5 samples of class 1, which has 90"),
        ({"ratio": -1.0}, None, None, ValueError, "ratio must be a finite number >= 0"),
        ({"ratio": float("inf")}, None, None, ValueError, "ratio must be a finite number >= 0"),
        ({}, None, np.linspace(0, 1, 100), ValueError, "Unknown label type"),
        ({}, None, np.zeros(100), ValueError, "only one class"),
        ({}, None, np.zeros(50), ValueError, "inconsistent numbers of samples"),
        ({}, sparse.csr_matrix(np.ones((100, 6))), None, TypeError, "needs dense X"),
        ({}, np.full((100, 2), "a", dtype=object), None, ValueError, "object array"),
    ],
)
def test_errors_on_wrong_input(imbalanced, params, X, y, error, message):
    X0, y0 = imbalanced
    aug = SyntheticAugmenter(VAE(**FAST)).set_params(**params)
    with pytest.raises(error, match=message):
        aug.fit_resample(X0 if X is None else X, y0 if y is None else y)


def test_augmented_estimator_errors(imbalanced):
    X, y = imbalanced
    with pytest.raises(TypeError, match="augmenter must have fit_resample"):
        AugmentedEstimator(LogisticRegression(), augmenter=StandardScaler()).fit(X, y)
    for fit in (SyntheticAugmenter(VAE(**FAST)).fit_resample, AugmentedEstimator(LogisticRegression()).fit):
        with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
            fit(X, None)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AugmentedEstimator(LogisticRegression()).predict(X)


def test_one_hot_label_frame_comes_back_as_a_frame(imbalanced):
    X, y = imbalanced
    Y = pd.get_dummies(pd.Series(np.where(y == 1, "benign", "malignant")))  # bool columns benign, malignant
    X_res, Y_res = SyntheticAugmenter(VAE(**FAST), random_state=0).fit_resample(X, Y)
    assert isinstance(Y_res, pd.DataFrame) and list(Y_res.columns) == ["benign", "malignant"]
    pd.testing.assert_series_equal(Y_res.dtypes, Y.dtypes)
    assert len(Y_res) == len(X_res) == 180 and Y_res.sum().to_dict() == {"benign": 90, "malignant": 90}
    pd.testing.assert_frame_equal(Y_res.iloc[:100], Y.reset_index(drop=True))


def test_refit_on_arrays_forgets_the_frames_feature_names(imbalanced):
    X, y = imbalanced
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = AugmentedEstimator(LogisticRegression(), SyntheticAugmenter(VAE(**FAST), random_state=0))
    assert list(model.fit(frame, y).feature_names_in_) == list(frame.columns)
    assert not hasattr(model.fit(X, y), "feature_names_in_") and model.n_features_in_ == X.shape[1]
