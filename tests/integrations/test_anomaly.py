"""ReconstructionAnomalyDetector: the outlier contract, scores, error maps, saving, errors."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import copy
import pickle
import zipfile

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from synthaug import VAE
from synthaug.integrations.anomaly import SCORES, ReconstructionAnomalyDetector, default_generator, ssim_map


def tiny_vae(**params):
    """A small, quickly trained VAE with the detector's choices (Gaussian decoder, dense networks)."""
    settings = dict(likelihood="gaussian", architecture="mlp", hidden_units=(64,), latent_dim=8, dropout=0.0,
                    batch_size=32, epochs=40, validation_fraction=0.0, n_importance=16)
    return VAE(**{**settings, **params})


def paste_blob(X, rng, sigma):
    """Each image with a bright Gaussian blob (peak = the data's maximum) at a random interior pixel."""
    X = np.array(X, dtype=np.float64)
    h, w = X.shape[1:3]
    yy, xx = np.mgrid[:h, :w]
    for i in range(len(X)):
        cy, cx = rng.randint(1, h - 1), rng.randint(1, w - 1)
        X[i] = np.maximum(X[i], X.max() * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)))
    return X


@pytest.fixture(scope="module")
def digits():
    """Digits protocol split: (X_train, X_test, y_train, y_test)."""
    d = load_digits()
    return train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)


@pytest.fixture(scope="module")
def zeros_detector(digits):
    """A tiny VAE detector fitted once on the training zeros."""
    X_train, _, y_train, _ = digits
    return ReconstructionAnomalyDetector(tiny_vae(), random_state=0).fit(X_train[y_train == 0])


# -- scikit-learn's own checks -------------------------------------------------------------------------
# contamination="auto" puts the offset below the 1 % quantile of the training scores (training
# errors are optimistic); on make_blobs neither PCA's reconstruction error nor the VAE's
# likelihood (what anomaly_score="auto" picks for tabular data) has a training sample that far
# out, while these checks want fit_predict on the training data to flag at least one with "auto".
AUTO_FLAGS_NONE = "contamination='auto' flags no training sample of make_blobs, by design"
EXPECTED_FAILED = {
    "check_outliers_train": AUTO_FLAGS_NONE,
    "check_outliers_train(readonly_memmap=True)": AUTO_FLAGS_NONE,
    "check_outliers_fit_predict": AUTO_FLAGS_NONE,
}


@pytest.fixture
def eager_functions():
    """The API-contract checks fit hundreds of 1-epoch models: tracing each training step would
    cost more than running it, so they run eagerly; the behaviour tests below stay compiled."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@parametrize_with_checks(
    [
        ReconstructionAnomalyDetector(
            VAE(hidden_units=(8,), latent_dim=2, epochs=1, n_importance=4, likelihood="gaussian",
                architecture="mlp", validation_fraction=0.0), random_state=0),
        ReconstructionAnomalyDetector(PCA(n_components=1), anomaly_score="topk", top_k=0.5, random_state=0),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check, eager_functions):
    check(estimator)


# -- behaviour ----------------------------------------------------------------------------------------------
def test_anomalies_score_lower_than_normal_data(zeros_detector, digits):
    _, X_test, _, y_test = digits
    det = copy.copy(zeros_detector)  # score_samples uses only the fitted generator and statistics
    for score in SCORES:
        assert roc_auc_score(y_test == 0, det.set_params(anomaly_score=score).score_samples(X_test)) > 0.95, score


def test_outlier_contract(zeros_detector, digits):
    _, X_test, _, _ = digits
    scores = zeros_detector.score_samples(X_test)
    decision = zeros_detector.decision_function(X_test)
    labels = zeros_detector.predict(X_test)
    np.testing.assert_allclose(decision, scores - zeros_detector.offset_)
    assert labels.dtype.kind == "i" and set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    # a sample's score does not depend on the other samples in the batch
    np.testing.assert_allclose(zeros_detector.score_samples(X_test[:7]), scores[:7], rtol=1e-5)


def test_auto_offset_flags_few_normal_and_most_abnormal_samples(zeros_detector, digits):
    X_train, X_test, y_train, y_test = digits
    assert np.mean(zeros_detector.predict(X_train[y_train == 0]) == -1) <= 0.01
    assert np.mean(zeros_detector.predict(X_test[y_test != 0]) == -1) > 0.5


@pytest.mark.parametrize("contamination", [0.05, 0.2, 0.5])
def test_contamination_is_the_share_flagged_in_training_data(digits, contamination):
    X_train, _, _, _ = digits
    detector = ReconstructionAnomalyDetector(PCA(10), contamination=contamination)
    labels = detector.fit_predict(X_train)
    assert abs(np.mean(labels == -1) - contamination) <= 1 / len(X_train)
    np.testing.assert_array_equal(labels, detector.predict(X_train))


def test_topk_beats_mse_on_a_small_bright_blob(digits):
    # Digits enlarged to 24x24: a blob of a few pixels is a small share of the image, which is
    # where the mean over all pixels (MSE) dilutes it and the top 1 % of pixel errors does not.
    X_train, X_test, y_train, y_test = digits
    enlarge = np.ones((1, 3, 3))
    det = ReconstructionAnomalyDetector(tiny_vae(), random_state=0).fit(np.kron(X_train[y_train == 0], enlarge))
    clean = np.kron(X_test[y_test == 0], enlarge)
    X = np.concatenate([clean, paste_blob(clean, np.random.RandomState(0), sigma=1.0)])
    normal = np.r_[np.ones(len(clean)), np.zeros(len(clean))]
    mse = roc_auc_score(normal, det.score_samples(X))
    topk = roc_auc_score(normal, det.set_params(anomaly_score="topk").score_samples(X))
    assert topk > mse + 0.05, (topk, mse)


def test_score_definitions(zeros_detector, digits):
    _, X_test, _, _ = digits
    X = X_test[:20]
    det = copy.copy(zeros_detector)
    recon = det.generator_.reconstruct(X)
    squared = ((X - recon) / det.feature_scale_) ** 2
    np.testing.assert_allclose(det.error_map(X), squared)
    np.testing.assert_allclose(det.score_samples(X), -squared.reshape(20, -1).mean(1))
    det.set_params(anomaly_score="normalized")
    normalized = squared / (det.error_scale_ + det.error_scale_.mean())
    np.testing.assert_allclose(det.error_map(X), normalized)
    det.set_params(anomaly_score="topk", top_k=0.05)  # 5 % of 64 pixels: the 4 largest errors
    np.testing.assert_allclose(det.score_samples(X), -np.sort(squared.reshape(20, -1), 1)[:, -4:].mean(1))
    det.set_params(anomaly_score="ssim")
    assert np.all((det.error_map(X) >= 0) & (det.error_map(X) <= 1))
    det.set_params(anomaly_score="likelihood")
    np.testing.assert_allclose(det.score_samples(X), det.generator_.score_samples(X))


def test_ssim_map_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 16, size=(3, 14, 12))  # scikit-image needs the 11x11 window to fit
    Y = np.clip(X + rng.normal(0, 2, size=X.shape), 0, 16)
    ours = ssim_map(X, Y, data_range=16.0)
    for i in range(3):
        _, full = metrics.structural_similarity(X[i], Y[i], data_range=16.0, gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False, full=True)
        np.testing.assert_allclose(ours[i], full, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ssim_map(X, X, data_range=16.0), 1.0)


def test_auto_score_follows_the_data_and_the_generator(digits):
    from sklearn.decomposition import TruncatedSVD

    X_train, X_test, _, _ = digits
    large = np.kron(X_train[:300], np.ones((1, 2, 2)))  # 16x16 images
    tabular = load_breast_cancer().data
    for X, generator, expected in (
        (X_train, PCA(10), "reconstruction"),  # small images: squared error
        (large, PCA(10), "ssim"),
        (tabular, PCA(5), "likelihood"),  # PCA has score_samples (probabilistic PCA)
        (tabular, TruncatedSVD(5), "normalized"),  # reconstructs, has no likelihood
    ):
        det = ReconstructionAnomalyDetector(generator).fit(X)
        assert det.anomaly_score_ == expected
        auto = det.score_samples(X[:20])
        np.testing.assert_array_equal(auto, det.set_params(anomaly_score=expected).score_samples(X[:20]))
        det.set_params(anomaly_score="auto")
        np.testing.assert_array_equal(auto, det.score_samples(X[:20]))
    with pytest.raises(TypeError, match="reconstruct .* or have score_samples; KMeans has neither"):
        ReconstructionAnomalyDetector(KMeans(2)).fit(tabular)


def test_error_maps_have_the_input_shape(digits):
    X_train, X_test, _, _ = digits
    rgb = np.stack([X_train, X_train[::-1], X_train], axis=-1)
    for X, score in ((X_train, "ssim"), (rgb, "topk"), (rgb, "ssim"), (X_train.reshape(len(X_train), -1), "topk")):
        det = ReconstructionAnomalyDetector(PCA(10), anomaly_score=score).fit(X)
        assert det.error_map(X[:5]).shape == X[:5].shape
        assert det.score_samples(X[:5]).shape == (5,)


def test_dataframes_in_error_maps_out(tmp_path):
    pd = pytest.importorskip("pandas")
    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:, :6].copy()
    frame["size"] = pd.Categorical(np.where(frame["mean radius"] > 14, "large", "small"))
    benign = frame[data.target == 1]
    det = ReconstructionAnomalyDetector(tiny_vae(epochs=30), random_state=0).fit(benign)
    assert list(det.feature_names_in_) == list(frame.columns)
    maps = det.error_map(frame.iloc[:4])
    assert isinstance(maps, pd.DataFrame) and list(maps.columns) == list(frame.columns)
    assert list(maps.index) == list(frame.index[:4]) and (maps.to_numpy() >= 0).all()
    assert roc_auc_score(data.target, det.score_samples(frame)) > 0.8
    with pytest.raises(ValueError, match="size"):
        det.score_samples(frame.drop(columns="size"))
    # an array of the same columns is encoded as the DataFrame was (scikit-learn warns about the names)
    with pytest.warns(UserWarning, match="feature names"):
        from_array = det.score_samples(frame.to_numpy(dtype=object)[:5])
    np.testing.assert_allclose(from_array, det.score_samples(frame[:5]))
    fig = det.plot_error_maps(frame.iloc[:5])
    fig.savefig(tmp_path / "table.png")
    assert (tmp_path / "table.png").stat().st_size > 0
    loaded = ReconstructionAnomalyDetector.load(det.save(tmp_path / "frame.synthaug-detector"))
    np.testing.assert_allclose(loaded.score_samples(frame), det.score_samples(frame), rtol=1e-6)


def test_plot_error_maps_draws_image_reconstruction_and_error(zeros_detector, digits, tmp_path):
    from matplotlib.figure import Figure

    _, X_test, _, _ = digits
    fig = zeros_detector.plot_error_maps(X_test, max_samples=4)
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.images]) == 3 * 4  # image, reconstruction, error of 4 samples
    assert len(fig.axes) == 3 * 4 + 1  # and the colour bar
    fig.savefig(tmp_path / "maps.png")
    with pytest.raises(ValueError, match="max_samples"):
        zeros_detector.plot_error_maps(X_test, max_samples=0)


# -- saving, pickling, cloning --------------------------------------------------------------------------
def test_save_and_load_round_trip(zeros_detector, digits, tmp_path):
    _, X_test, _, _ = digits
    path = zeros_detector.save(tmp_path / "zeros.synthaug-detector")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["detector.json", "generator.synthaug"]
    loaded = ReconstructionAnomalyDetector.load(path)
    np.testing.assert_allclose(loaded.score_samples(X_test), zeros_detector.score_samples(X_test), rtol=1e-6)
    assert loaded.offset_ == zeros_detector.offset_
    assert loaded.get_params()["anomaly_score"] == "auto"
    assert loaded.anomaly_score_ == zeros_detector.anomaly_score_ == "reconstruction"  # 8x8 images
    with pytest.raises(FileExistsError, match="overwrite"):
        zeros_detector.save(path)
    (tmp_path / "junk").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a saved ReconstructionAnomalyDetector"):
        ReconstructionAnomalyDetector.load(tmp_path / "junk")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("detector.json", '{"format": "something else"}')
        zf.writestr("generator.synthaug", b"")
    with pytest.raises(ValueError, match="format version"):
        ReconstructionAnomalyDetector.load(tmp_path / "other.zip")


def test_pickle_and_clone(zeros_detector, digits):
    _, X_test, _, _ = digits
    restored = pickle.loads(pickle.dumps(zeros_detector))
    np.testing.assert_allclose(restored.score_samples(X_test), zeros_detector.score_samples(X_test), rtol=1e-6)
    fresh = clone(zeros_detector)
    assert not hasattr(fresh, "generator_") and fresh.get_params()["random_state"] == 0


def test_only_synthaug_generators_are_saved(digits, tmp_path):
    X_train, _, _, _ = digits
    det = ReconstructionAnomalyDetector(PCA(5)).fit(X_train)
    with pytest.raises(TypeError, match="pickle"):
        det.save(tmp_path / "pca.synthaug-detector")


def test_default_generator():
    vae = ReconstructionAnomalyDetector()._check_generator()
    assert vae.get_params() == default_generator().get_params()
    assert default_generator(epochs=7).epochs == 7 and default_generator().likelihood == "gaussian"


# -- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, match",
    [
        ({"anomaly_score": "mse"}, "anomaly_score must be one of"),
        ({"contamination": 0.7}, r"contamination must be 'auto' or a float in \(0, 0.5\]"),
        ({"contamination": "none"}, "contamination must be"),
        ({"top_k": 0.0}, r"top_k must be a float in \(0, 1\]"),
        ({"anomaly_score": "ssim"}, "needs images"),
    ],
)
def test_bad_parameters(params, match):
    X = load_breast_cancer().data
    with pytest.raises(ValueError, match=match):
        ReconstructionAnomalyDetector(PCA(3), **params).fit(X)


def test_bad_generators():
    X = load_breast_cancer().data
    with pytest.raises(TypeError, match="reconstruct"):
        ReconstructionAnomalyDetector(KMeans(2)).fit(X)
    with pytest.raises(TypeError, match="score_samples"):
        ReconstructionAnomalyDetector(KMeans(2), anomaly_score="likelihood").fit(X)
    with pytest.raises(TypeError, match="generator must be an estimator"):
        ReconstructionAnomalyDetector("vae").fit(X)


def test_bad_input(zeros_detector, digits):
    X_train, _, _, _ = digits
    with pytest.raises(NotFittedError):
        ReconstructionAnomalyDetector(PCA(3)).predict(X_train)
    with pytest.raises(ValueError, match=r"sample shape \(8, 9\)"):
        zeros_detector.score_samples(np.zeros((3, 8, 9)))
    with pytest.raises(ValueError, match=r"sample shape \(64,\), but .* fitted on sample shape \(8, 8\)"):
        zeros_detector.score_samples(X_train.reshape(len(X_train), -1))
    with pytest.raises(ValueError, match=r"sample shape \(32, 32\), but"):  # not "32 features, expecting 8"
        zeros_detector.score_samples(np.zeros((2, 32, 32)))
    bad = X_train[:10].copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        zeros_detector.score_samples(bad)
    with pytest.raises(ValueError, match=r"got shape \(5,\)|Expected 2D array"):
        ReconstructionAnomalyDetector(PCA(1)).fit(np.arange(5.0))
    with pytest.raises(ValueError, match="tabular .* or images"):
        ReconstructionAnomalyDetector(PCA(1)).fit(np.zeros((4, 2, 2, 2, 2)))


def test_cli_score_choices_match_the_detector():
    from synthaug.cli import _DETECT_SCORES

    assert tuple(_DETECT_SCORES) == SCORES


def test_a_changed_score_is_not_thresholded_with_the_old_offset(zeros_detector, digits):
    _, X_test, _, y_test = digits
    det = copy.copy(zeros_detector)
    fitted_score = det.anomaly_score_
    other = "likelihood" if fitted_score != "likelihood" else "reconstruction"
    det.set_params(anomaly_score=other)
    assert det.score_samples(X_test[:5]).shape == (5,)  # scores follow the new setting
    message = f"offset_ was set in fit for anomaly_score='{fitted_score}'.*changed it to anomaly_score='{other}'"
    for call in (det.predict, det.decision_function, det.plot_error_maps):
        with pytest.raises(ValueError, match=message):
            call(X_test[:5])
    det.set_params(anomaly_score=fitted_score)
    assert set(det.predict(X_test[:5])) <= {-1, 1}


class FirstRowImpossiblePCA(PCA):
    """PCA whose likelihood calls the first row of every call impossible (-inf)."""

    def score_samples(self, X):
        scores = super().score_samples(X)
        scores[0] = -np.inf
        return scores


def test_a_degenerate_fit_is_refused_and_unscorable_samples_are_outliers():
    X, y = load_breast_cancer(return_X_y=True)
    benign = X[y == 1]
    # PCA keeping about every direction of 10 rows: its likelihood of the training rows is -inf
    with pytest.raises(ValueError, match="scores 10 of 10 training samples as -inf or NaN"):
        ReconstructionAnomalyDetector(PCA(n_components=9)).fit(benign[:10])
    # one impossible training sample still leaves a threshold among the others
    one = ReconstructionAnomalyDetector(FirstRowImpossiblePCA(n_components=2), anomaly_score="likelihood",
                                        contamination=0.1).fit(benign[:100])
    assert np.isfinite(one.offset_) and one.predict(benign[:3])[0] == -1
    det = ReconstructionAnomalyDetector(PCA(n_components=2)).fit(benign[:100])
    det.score_samples = lambda X: np.array([np.nan, det.offset_ + 1.0])  # a generator returning NaN
    np.testing.assert_array_equal(det.predict(benign[:2]), [-1, 1])
