import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import linalg, special, stats
from scipy.spatial.distance import cdist, pdist
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from synthaug.metrics import (
    frechet_distance,
    memorization,
    mmd,
    mode_coverage,
    precision_recall_density_coverage,
    sliced_wasserstein,
    tstr,
)


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, synthaug.metrics; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module", autouse=True)
def _single_blas_thread():
    # The matrices here are small: threaded BLAS spends more time synchronising than computing
    # (a digits LogisticRegression fit takes 0.03 s on one thread, 0.5-3 s on several).
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        d.images, d.target, test_size=0.3, stratify=d.target, random_state=0
    )
    return X_train, X_test, y_train, y_test


@pytest.fixture(scope="module")
def digits_classifier(digits):
    X_train, _, y_train, _ = digits
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return clf.fit(X_train.reshape(len(X_train), -1), y_train)


def _random_cov(rng, d):
    A = rng.normal(size=(d, d))
    return A @ A.T / d + 0.1 * np.eye(d)


# -- Fréchet distance -------------------------------------------------------------------------------
def test_frechet_distance_matches_closed_form_of_true_gaussians():
    rng = np.random.default_rng(0)
    d = 4
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    S1, S2 = _random_cov(rng, d), _random_cov(rng, d)  # they do not commute
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(S1 + S2 - 2 * linalg.sqrtm(S1 @ S2).real)
    X = rng.multivariate_normal(mu1, S1, size=100_000)
    Y = rng.multivariate_normal(mu2, S2, size=100_000)
    assert frechet_distance(X, Y) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_equals_sqrtm_formula_on_sample_moments():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    Y = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 1.0
    S1, S2 = np.cov(X, rowvar=False), np.cov(Y, rowvar=False)
    expected = np.sum((X.mean(0) - Y.mean(0)) ** 2) + np.trace(S1 + S2 - 2 * linalg.sqrtm(S1 @ S2).real)
    assert frechet_distance(X, Y) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    X = np.random.default_rng(2).normal(size=(500, 16))
    assert frechet_distance(X, X) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_warns_when_covariance_is_singular():
    rng = np.random.default_rng(3)
    with pytest.warns(UserWarning, match="synthetic_features has 10 samples for 20 features"):
        value = frechet_distance(rng.normal(size=(100, 20)), rng.normal(size=(10, 20)))
    assert np.isfinite(value) and value >= 0


def test_frechet_distance_flattens_images():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(200, 3, 2)), rng.normal(size=(200, 3, 2))
    assert frechet_distance(X, Y) == frechet_distance(X.reshape(200, 6), Y.reshape(200, 6))


# -- sliced Wasserstein -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(-1,), (-1, 1)])
def test_sliced_wasserstein_in_1d_is_scipy_wasserstein(shape):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=137), rng.exponential(size=59)
    expected = stats.wasserstein_distance(x, y)
    assert sliced_wasserstein(x.reshape(shape), y.reshape(shape)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("p", [1, 2, 3.5])
def test_sliced_wasserstein_unequal_sizes_matches_replicated_equal_sizes(p):
    # Repeating every sample of x n times and of y m times leaves both distributions unchanged and
    # makes the sizes equal, where W_p^p is the mean p-th power gap between sorted samples.
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=7), rng.normal(size=4) + 0.5
    xr, yr = np.sort(np.repeat(x, len(y))), np.sort(np.repeat(y, len(x)))
    expected = np.mean(np.abs(xr - yr) ** p) ** (1 / p)
    assert sliced_wasserstein(x, y, p=p) == pytest.approx(expected, rel=1e-12)


def test_sliced_wasserstein_is_reproducible_and_larger_when_shifted():
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(300, 5)), rng.normal(size=(300, 5))
    a = sliced_wasserstein(X, Y, random_state=0)
    assert a == sliced_wasserstein(X, Y, random_state=0)
    assert a != sliced_wasserstein(X, Y, random_state=1)
    assert sliced_wasserstein(X, Y + 2.0, random_state=0) > 5 * a


def test_sliced_wasserstein_of_shifted_gaussian_matches_expectation():
    # Projected on theta, N(0, I) and N(delta, I) differ by a shift <delta, theta>, so W1 is
    # |<delta, theta>|, whose mean over the sphere is |delta| * Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)).
    rng = np.random.default_rng(8)
    d, delta = 5, np.array([3.0, 0, 0, 0, 0])
    X, Y = rng.normal(size=(3000, d)), rng.normal(size=(3000, d)) + delta
    expected = 3.0 * math.exp(special.gammaln(d / 2) - special.gammaln((d + 1) / 2)) / math.sqrt(math.pi)
    value = sliced_wasserstein(X, Y, n_projections=1000, random_state=0)
    assert value == pytest.approx(expected, rel=0.05)


# -- MMD --------------------------------------------------------------------------------------------
def _brute_force_mmd2(X, Y, k):
    m, n = len(X), len(Y)
    xx = sum(k(X[i], X[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(Y[i], Y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(X[i], Y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd_matches_brute_force_unbiased_estimate():
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(7, 3)) + 0.3
    rbf = lambda a, b: math.exp(-0.4 * np.sum((a - b) ** 2))  # noqa: E731
    assert mmd(X, Y, gamma=0.4) == pytest.approx(_brute_force_mmd2(X, Y, rbf), rel=1e-12)
    assert mmd(X, Y, kernel="linear") == pytest.approx(_brute_force_mmd2(X, Y, np.dot), rel=1e-12)
    assert mmd(X, Y, kernel=lambda A, B: A @ B.T) == pytest.approx(mmd(X, Y, kernel="linear"), rel=1e-12)


def test_mmd_default_gamma_is_median_heuristic_over_pooled_sample():
    rng = np.random.default_rng(10)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) * 2
    gamma = 1 / np.median(pdist(np.vstack([X, Y]), "sqeuclidean"))
    assert mmd(X, Y) == pytest.approx(mmd(X, Y, gamma=gamma), rel=1e-10)


def test_mmd_near_zero_for_same_distribution_and_positive_when_shifted():
    rng = np.random.default_rng(11)
    X, Y = rng.normal(size=(500, 5)), rng.normal(size=(500, 5))
    same = mmd(X, Y)
    shifted = mmd(X, Y + 1.0)
    assert abs(same) < 0.005
    assert shifted > 0.1 and shifted > 20 * abs(same)


def test_mmd_rejects_bad_kernel_output():
    X = np.zeros((4, 2)) + np.arange(4)[:, None]
    with pytest.raises(ValueError, match=r"kernel must return a matrix of shape"):
        mmd(X, X, kernel=lambda A, B: np.ones(3))
    with pytest.raises(ValueError, match="kernel must be 'rbf', 'linear' or a callable"):
        mmd(X, X, kernel="poly")
    for gamma in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="gamma must be a positive finite float"):
            mmd(X, X, gamma=gamma)


# -- precision, recall, density, coverage -----------------------------------------------------------
def test_prdc_identical_distributions():
    rng = np.random.default_rng(12)
    real, fake = rng.normal(size=(2000, 64)), rng.normal(size=(2000, 64))
    scores = precision_recall_density_coverage(real, fake, k=5)
    assert scores["density"] == pytest.approx(1.0, abs=0.1)
    assert scores["coverage"] == pytest.approx(1 - 1 / 2**5, abs=0.02)
    # In 64-d the k-NN balls leave gaps: precision and recall of identical sets settle near 0.7
    # (Naeem et al. 2020, fig. 3), which is why density and coverage were introduced.
    assert 0.6 < scores["precision"] < 0.85 and 0.6 < scores["recall"] < 0.85


def test_prdc_disjoint_distributions():
    rng = np.random.default_rng(13)
    real, fake = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 100.0
    assert precision_recall_density_coverage(real, fake) == {
        "precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0,
    }


def test_prdc_mode_collapse_keeps_precision_and_loses_recall():
    rng = np.random.default_rng(14)
    centres = 20.0 * np.eye(5, 8)
    labels = rng.integers(5, size=1000)
    real = centres[labels] + rng.normal(size=(1000, 8))
    fake = centres[0] + rng.normal(size=(1000, 8))
    scores = precision_recall_density_coverage(real, fake)
    share_of_first_mode = np.mean(labels == 0)
    assert scores["precision"] > 0.9
    assert scores["recall"] <= share_of_first_mode + 0.01
    assert scores["coverage"] <= share_of_first_mode + 0.01


def test_prdc_matches_brute_force_definitions():
    rng = np.random.default_rng(15)
    real, fake = rng.normal(size=(60, 3)), rng.normal(size=(45, 3)) + 0.5
    k = 3
    D_rr, D_ff, D_rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_real = np.sort(D_rr, axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(D_ff, axis=1)[:, k]
    inside_real = D_rf <= r_real[:, None]
    expected = {
        "precision": inside_real.any(axis=0).mean(),
        "recall": (D_rf <= r_fake[None, :]).any(axis=1).mean(),
        "density": inside_real.sum() / (k * len(fake)),
        "coverage": inside_real.any(axis=1).mean(),
    }
    scores = precision_recall_density_coverage(real, fake, k=k)
    assert scores == pytest.approx(expected)
    # far from the origin (e.g. timestamps) the same sets give the same answer
    assert precision_recall_density_coverage(real + 1e8, fake + 1e8, k=k) == pytest.approx(expected)


# -- TSTR ------------------------------------------------------------------------------------------
class _ShuffledLabelGenerator:
    """Returns real images with labels that have nothing to do with them."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def generate(self, n_samples, y=None, random_state=None):
        rng = check_random_state(random_state)
        idx = rng.choice(len(self.X), size=n_samples)
        return self.X[idx], rng.permutation(self.y[idx])


def test_tstr_with_real_training_data_equals_trtr(digits):
    X_train, X_test, y_train, y_test = digits
    scores = tstr((X_train, y_train), X_train, y_train, X_test, y_test)
    assert scores["tstr_accuracy"] == scores["trtr_accuracy"] > 0.9
    assert scores["ratio"] == 1.0 and scores["n_synthetic"] == len(X_train)


def test_tstr_with_label_shuffling_generator_is_near_chance(digits):
    X_train, X_test, y_train, y_test = digits
    scores = tstr(_ShuffledLabelGenerator(X_train, y_train), X_train, y_train, X_test, y_test,
                  estimator=KNeighborsClassifier(), n_samples=500, random_state=0)
    assert scores["n_synthetic"] == 500
    assert scores["tstr_accuracy"] < 0.25 and scores["ratio"] < 0.3


def test_tstr_single_class_warns_and_scores_constant_prediction(digits):
    X_train, X_test, y_train, y_test = digits
    with pytest.warns(UserWarning, match="single class 3"):
        scores = tstr((X_train[y_train == 3], y_train[y_train == 3]), X_train, y_train, X_test, y_test,
                      estimator=KNeighborsClassifier())
    assert scores["tstr_accuracy"] == pytest.approx(np.mean(y_test == 3))


def test_tstr_rejects_unconditional_generator(digits):
    X_train, X_test, y_train, y_test = digits

    class Unconditional:
        def generate(self, n_samples, y=None, random_state=None):
            return X_train[:n_samples]

    with pytest.raises(ValueError, match="returned samples without labels"):
        tstr(Unconditional(), X_train, y_train, X_test, y_test)


# -- mode coverage ---------------------------------------------------------------------------------
def test_mode_coverage_of_collapsed_generator(digits, digits_classifier):
    X_train, _, y_train, _ = digits
    threes = X_train[y_train == 3]  # the classifier was fitted on these: all predicted 3
    report = mode_coverage(threes, digits_classifier)
    assert report["covered_classes"] == [3] and report["n_covered"] == 1
    assert report["coverage"] == pytest.approx(0.1)
    assert report["entropy"] == 0.0 and report["class_share"][3] == 1.0
    # asked for every digit, it gave threes: agreement only where a three was asked for
    requested = np.arange(len(threes)) % 10
    report = mode_coverage(threes, digits_classifier, y=requested)
    assert report["label_agreement"] == pytest.approx(np.mean(requested == 3))
    assert report["per_class_agreement"][3] == 1.0 and report["per_class_agreement"][0] == 0.0


def test_mode_coverage_of_real_test_set(digits, digits_classifier):
    _, X_test, _, y_test = digits
    report = mode_coverage(X_test, digits_classifier, y=y_test)
    assert report["n_covered"] == 10 and report["covered_classes"] == list(range(10))
    assert report["entropy"] > 0.99
    flat = X_test.reshape(len(X_test), -1)
    assert report["label_agreement"] == pytest.approx(digits_classifier.score(flat, y_test))
    predicted = digits_classifier.predict(flat)
    assert report["class_share"][7] == pytest.approx(np.mean(predicted == 7))
    assert report["per_class_agreement"][5] == pytest.approx(np.mean(predicted[y_test == 5] == 5))
    # labels of another type than the classes would all count as disagreeing: refused
    with pytest.raises(ValueError, match=r"y holds labels that are not among the classes: \['0', '1'"):
        mode_coverage(X_test, digits_classifier, y=y_test.astype(str))
    assert mode_coverage(X_test, digits_classifier, y=y_test.astype(float))["label_agreement"] == \
        report["label_agreement"]


def test_mode_coverage_needs_classes():
    class NoClasses:
        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    with pytest.raises(ValueError, match="has no classes_ attribute: pass classes"):
        mode_coverage(np.zeros((3, 2)), NoClasses())
    report = mode_coverage(np.zeros((3, 2)), NoClasses(), classes=[0, 1])
    assert report["covered_classes"] == [0]


# -- memorization ----------------------------------------------------------------------------------
def test_memorization_of_copies():
    rng = np.random.default_rng(16)
    train, holdout = rng.normal(size=(500, 6)), rng.normal(size=(500, 6))
    report = memorization(train, train[rng.permutation(500)[:200]], holdout)
    assert report["exact_copy_share"] == 1.0 and report["near_copy_share"] == 1.0
    assert report["dcr_synthetic_median"] == 0.0 and report["dcr_ratio"] == 0.0
    # copies kept in float32 (or read back from a float32 file) are still exact copies
    stored = (train[:100] * 1000).astype(np.float32)
    assert memorization(train * 1000, stored, holdout * 1000)["exact_copy_share"] == 1.0
    # while a sample a little off its record is not
    assert memorization(train, train[:100] + 1e-3, holdout)["exact_copy_share"] == 0.0


def test_memorization_of_fresh_samples():
    rng = np.random.default_rng(17)
    train, holdout, fresh = (rng.normal(size=(2000, 6)) for _ in range(3))
    report = memorization(train, fresh, holdout)
    expected_dcr = cdist(fresh, train).min(axis=1)
    assert report["dcr_synthetic_median"] == pytest.approx(np.median(expected_dcr), rel=1e-10)
    assert report["threshold"] == pytest.approx(np.percentile(cdist(holdout, train).min(axis=1), 5))
    assert report["near_copy_share"] == pytest.approx(0.05, abs=0.02)
    assert report["holdout_near_copy_share"] == pytest.approx(0.05, abs=0.001)
    assert report["dcr_ratio"] == pytest.approx(1.0, abs=0.05)
    assert report["exact_copy_share"] == 0.0


def test_memorization_with_explicit_threshold():
    train = np.array([[0.0, 0.0], [10.0, 0.0]])
    synthetic = np.array([[0.5, 0.0], [10.0, 3.0], [10.0, 0.0]])
    report = memorization(train, synthetic, holdout=np.array([[5.0, 0.0]]), threshold=1.0)
    assert report["near_copy_share"] == pytest.approx(2 / 3)
    assert report["exact_copy_share"] == pytest.approx(1 / 3)


# -- input checking --------------------------------------------------------------------------------
def test_mismatched_features_are_named():
    rng = np.random.default_rng(18)
    real, fake = rng.normal(size=(50, 64)), rng.normal(size=(50, 32))
    with pytest.raises(ValueError, match="real_features has 64 features but synthetic_features has 32"):
        frechet_distance(real, fake)
    with pytest.raises(ValueError, match="real has 64 features but synthetic has 32"):
        mmd(real, fake)
    with pytest.raises(ValueError, match="real has 64 features but synthetic has 32"):
        sliced_wasserstein(real, fake)
    with pytest.raises(ValueError, match="train has 64 features but synthetic has 32"):
        memorization(real, fake, real)
    with pytest.raises(ValueError, match="train has 64 features but holdout has 32"):
        memorization(real, real, fake)


def test_too_few_samples_for_k():
    rng = np.random.default_rng(19)
    with pytest.raises(ValueError, match=r"synthetic_features has 5 samples; with k=5 at least k \+ 1 = 6"):
        precision_recall_density_coverage(rng.normal(size=(50, 3)), rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        precision_recall_density_coverage(rng.normal(size=(50, 3)), rng.normal(size=(50, 3)), k=0)


@pytest.mark.parametrize(
    "func", [frechet_distance, mmd, sliced_wasserstein, precision_recall_density_coverage]
)
def test_nan_and_inf_are_rejected_with_row(func):
    rng = np.random.default_rng(20)
    real, fake = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    fake[[17, 30], 1] = np.nan
    with pytest.raises(ValueError, match=r"synthetic\w* contains NaN in 2 rows \(first: row 17\)"):
        func(real, fake)
    real[4, 0] = np.inf
    with pytest.raises(ValueError, match=r"real\w* contains infinity in 1 rows \(first: row 4\)"):
        func(real, fake)


def test_empty_and_non_numeric_input_are_rejected():
    with pytest.raises(ValueError, match=r"real is empty: got shape \(0, 3\)"):
        mmd(np.empty((0, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="synthetic must be numeric; got an array of dtype <U1"):
        sliced_wasserstein(np.ones((4, 1)), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="train must be numeric; got an object array"):
        memorization(np.array([[1.0, "x"]], dtype=object), np.ones((2, 2)), np.ones((2, 2)))
