import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import NotFittedError

import synthaug
from synthaug import VAE

FAST = dict(hidden_units=(32,), latent_dim=4, epochs=3, n_importance=20, random_state=0)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.images[:400], d.target[:400]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return VAE(hidden_units=(64,), latent_dim=8, epochs=40, patience=40, n_importance=50, random_state=0).fit(X, y)


def test_learning_lowers_loss_and_beats_independent_baseline(fitted, digits):
    X, y = digits
    loss = fitted.history_["loss"]
    assert loss[-1] < 0.8 * loss[0]
    # independent per-pixel categorical (Laplace-smoothed) on the same data
    levels = X.reshape(len(X), -1).astype(int)
    counts = np.stack([np.bincount(levels[:, j], minlength=17) + 1 for j in range(64)])
    probs = counts / counts.sum(1, keepdims=True)
    baseline = np.log(probs[np.arange(64), levels]).sum(1).mean()
    assert fitted.score_samples(X, y).mean() > baseline


def test_generate_shape_dtype_range_and_seed(fitted):
    X, y = fitted.generate(50, random_state=3)
    assert X.shape == (50, 8, 8) and X.dtype == np.float64
    assert X.min() >= 0 and X.max() <= 16 and np.all(X == np.round(X))
    assert set(np.unique(y)) <= set(range(10))
    X2, y2 = fitted.generate(50, random_state=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, y3 = fitted.generate(20, y=7, random_state=0)
    assert np.all(y3 == 7)


def test_uint8_images_come_back_uint8():
    rng = np.random.RandomState(0)
    X = (rng.rand(60, 6, 6, 1) * 255).astype(np.uint8)
    vae = VAE(**FAST).fit(X)
    out = vae.generate(5, random_state=0)
    assert out.shape == (5, 6, 6, 1) and out.dtype == np.uint8


def test_tabular_gaussian_density_in_caller_units():
    X = load_breast_cancer().data[:, :5]
    vae = VAE(**FAST).fit(X)
    assert vae.n_levels_ is None and vae.model_.likelihood == "gaussian"
    # scaling X by 10 lowers the log-density by 5 * log(10) (change of variables)
    vae10 = clone(vae).fit(X * 10)
    diff = vae.score_samples(X).mean() - vae10.score_samples(X * 10).mean()
    assert diff == pytest.approx(5 * np.log(10), rel=0.3)
    S = vae.generate(10, random_state=0)
    assert S.shape == (10, 5) and np.all(S >= X.min(0)) and np.all(S <= X.max(0))


def test_transform_inverse_transform_reconstruct(fitted, digits):
    X, y = digits
    Z = fitted.transform(X[:10])
    assert Z.shape == (10, 8) and Z.dtype == np.float32
    R = fitted.reconstruct(X[:10], y[:10])
    assert R.shape == X[:10].shape
    # reconstructions are closer to their own input than to other images
    err_own = np.abs(R - X[:10]).mean()
    err_other = np.abs(R - X[10:20]).mean()
    assert err_own < err_other
    with pytest.raises(ValueError, match="class-conditional"):
        fitted.inverse_transform(Z)


def test_save_load_pickle_clone(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.synthaug")
    with pytest.raises(FileExistsError, match="overwrite"):
        fitted.save(path)
    loaded = synthaug.load(path)
    np.testing.assert_array_equal(loaded.generate(5, random_state=1)[0], fitted.generate(5, random_state=1)[0])
    assert loaded.get_params() == fitted.get_params()
    unpickled = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(unpickled.transform(np.zeros((1, 8, 8))), fitted.transform(np.zeros((1, 8, 8))))
    c = clone(fitted)
    assert not hasattr(c, "model_") and c.get_params() == fitted.get_params()


def test_load_refuses_wrong_file(tmp_path):
    bad = tmp_path / "x.synthaug"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a synthaug model file"):
        synthaug.load(bad)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]]), "inf"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros(5), "2D array"),
        (np.zeros((3, 2, 2, 2, 2)), "tabular"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric|string|convert"),
    ],
)
def test_bad_input_errors(X, message):
    with pytest.raises(ValueError, match=message):
        VAE(**FAST).fit(X)


def test_errors_after_fit(fitted):
    with pytest.raises(ValueError, match="sample shape"):
        fitted.transform(np.zeros((2, 8, 4)))
    with pytest.raises(ValueError, match="4 features, but VAE is expecting 8"):
        fitted.transform(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="labels not seen"):
        fitted.generate(2, y=42)
    with pytest.raises(ValueError, match="positive integer"):
        fitted.generate(0)
    with pytest.raises(NotFittedError):
        VAE().generate(3)
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson").fit(np.zeros((4, 2)))


def test_gaussian_likelihood_on_integer_data(digits):
    X, _ = digits
    vae = VAE(likelihood="gaussian", **FAST).fit(X)
    assert vae.n_levels_ is None and vae.model_.likelihood == "gaussian"
    S = vae.generate(20, random_state=0)
    assert S.shape == (20, 8, 8) and S.min() >= 0 and S.max() <= 16
    with pytest.raises(ValueError, match="categorical"):
        VAE(likelihood="categorical", **FAST).fit(X + 0.5)


def test_architecture_follows_the_data(fitted):
    from synthaug.models.networks import MLP, ConvDecoder, ConvEncoder

    assert isinstance(fitted.model_.encoder, ConvEncoder) and isinstance(fitted.model_.decoder, ConvDecoder)
    tabular = VAE(**FAST).fit(load_breast_cancer().data[:100, :6])
    assert isinstance(tabular.model_.encoder, MLP)
    with pytest.raises(ValueError, match="architecture='conv' needs images"):
        VAE(architecture="conv", **FAST).fit(np.zeros((10, 4)))
    X = load_digits().images[:60]
    assert isinstance(VAE(architecture="mlp", **FAST).fit(X).model_.encoder, MLP)


def test_conv_vae_on_odd_sized_colour_images(tmp_path):
    rng = np.random.RandomState(0)
    X = (rng.rand(40, 7, 5, 3) * 255).astype(np.uint8)
    vae = VAE(**FAST).fit(X)
    out = vae.generate(4, random_state=0)
    assert out.shape == (4, 7, 5, 3) and out.dtype == np.uint8
    assert vae.score_samples(X[:3]).shape == (3,)
    loaded = synthaug.load(vae.save(tmp_path / "c.synthaug"))
    np.testing.assert_array_equal(loaded.generate(4, random_state=0), out)


def test_kl_warmup_lowers_the_early_training_loss(digits):
    X, y = digits
    kw = dict(hidden_units=(32,), latent_dim=4, epochs=2, validation_fraction=0.0, random_state=0)
    plain = VAE(**kw).fit(X, y)
    warm = VAE(kl_warmup_epochs=10, **kw).fit(X, y)
    # KL weight 0.1 then 0.2: the training objective is looser than the true bound...
    assert warm.history_["loss"][0] < plain.history_["loss"][0]
    # ...and the weight is back at 1 after fit, so scores are the true bound.
    assert float(warm.model_.kl_weight.numpy()) == 1.0


def test_free_bits_keep_latent_dimensions_in_use(digits):
    X, y = digits
    kw = dict(hidden_units=(32,), latent_dim=8, epochs=8, validation_fraction=0.0, random_state=0)
    plain = VAE(**kw).fit(X, y)
    free = VAE(free_bits=1.0, **kw).fit(X, y)
    # below 1 nat per dimension the KL costs nothing, so the encoder uses more of it
    assert free.history_["kl"][-1] > 1.5 * plain.history_["kl"][-1]
    with pytest.raises(ValueError, match="free_bits"):
        VAE(free_bits=-1.0).fit(X, y)


def test_verbose_shows_one_progress_bar(digits, capsys):
    X, y = digits
    VAE(hidden_units=(16,), latent_dim=2, epochs=3, verbose=1, random_state=0).fit(X[:100], y[:100])
    err = capsys.readouterr().err
    assert "VAE" in err and "3/3" in err and "epoch" in err


def test_decoder_output_mean_gives_smooth_samples_on_the_levels(fitted):
    speckled, _ = fitted.generate(200, y=3, random_state=0)
    fitted.set_params(decoder_output="mean")
    try:
        smooth, y = fitted.generate(200, y=3, random_state=0)
    finally:
        fitted.set_params(decoder_output="sample")
    assert smooth.shape == speckled.shape and np.all(y == 3)
    assert np.all(smooth == np.round(smooth)) and smooth.min() >= 0 and smooth.max() <= 16
    # neighbouring pixels differ less in the mean image than in pixel-wise samples
    roughness = lambda X: np.abs(np.diff(X, axis=2)).mean()
    assert roughness(smooth) < 0.8 * roughness(speckled)
    fitted.set_params(decoder_output="median")
    try:
        with pytest.raises(ValueError, match="decoder_output"):
            fitted.generate(2)
    finally:
        fitted.set_params(decoder_output="sample")
