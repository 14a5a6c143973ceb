import pickle

import numpy as np
import pytest
import tensorflow as tf
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split

import synthaug
from synthaug import PixelCNN
from synthaug.models.pixelcnn import PixelCNNModel

TINY = dict(filters=16, n_blocks=2, head_units=32, epochs=3, batch_size=32, learning_rate=5e-3, random_state=0)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)


@pytest.fixture(scope="module")
def fitted(digits):
    X_train, _, y_train, _ = digits
    return PixelCNN(**TINY).fit(X_train, y_train)


@pytest.fixture(scope="module")
def colour_patches():
    """6x6 RGB patches of skimage's astronaut: uint8, 3 channels, well over 32 levels."""
    from skimage.data import astronaut

    image = astronaut()[::8, ::8]  # 64x64x3
    return np.stack([image[i:i + 6, j:j + 6] for i in range(0, 58, 6) for j in range(0, 58, 6)])


def _jacobian(model, x, labels):
    """|d out(pixel, channel) / d in(pixel', channel')| summed over the batch, (D, D) in raster order."""
    proj = tf.constant(np.random.RandomState(1).randn(model.per_channel).astype("float32"))
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reshape(model.params(x, labels) @ proj[:, None], (len(x), -1))
    jac = tape.batch_jacobian(out, x).numpy()  # (B, D, H, W, C)
    return np.abs(jac).reshape(len(x), out.shape[1], -1).sum(0)


@pytest.mark.parametrize("likelihood,levels,channels", [("categorical", 5, 1), ("logistic", 256, 3)])
def test_causal_and_no_blind_spot_by_gradients(likelihood, levels, channels):
    # 5x5 images: with a 5-wide input block and two 3-wide blocks the receptive field of the last
    # pixel covers the whole image, so it must depend on *every* earlier value (no blind spot),
    # and no output may depend on its own value or later ones (raster order, channels in order).
    model = PixelCNNModel((5, 5, channels), levels, likelihood, n_mixtures=2, filters=12, n_blocks=2,
                          head_units=12, n_classes=3, seed=0)
    rng = np.random.RandomState(0)
    for w in model.weights:  # zero-initialised biases and label embeddings would hide paths
        if "bias" in w.path or "label" in w.path:
            w.assign(0.3 * rng.randn(*w.shape).astype("float32"))
    x = rng.randint(0, levels, (3, 5, 5, channels)).astype("float32")
    jac = _jacobian(model, x, tf.constant([0, 1, 2]))
    d = jac.shape[0]
    assert np.all(jac[np.triu_indices(d)] == 0), "an output depends on its own value or a later one"
    assert np.all(jac[-1, :-1] > 0), "blind spot: the last value misses an earlier one"
    assert np.all(jac[np.tril_indices(d, -1)] > 0)
    # the channel order within a pixel: G sees R, B sees R and G, R sees neither
    if channels == 3:
        centre = (2 * 5 + 2) * 3
        assert jac[centre + 1, centre] > 0 and jac[centre + 2, centre + 1] > 0


@pytest.mark.parametrize("likelihood,levels", [("categorical", 17), ("logistic", 256)])
def test_likelihood_is_normalised_over_levels(likelihood, levels):
    model = PixelCNNModel((2, 2, 1), levels, likelihood, n_mixtures=3, filters=4, n_blocks=0, head_units=4, seed=0)
    rng = np.random.RandomState(0)
    params = tf.constant(3 * rng.randn(5, 1, model.per_channel).astype("float32"))
    every_level = tf.constant(np.tile(np.arange(levels), (5, 1)))
    log_p = model.level_log_prob(every_level, tf.repeat(params, levels, axis=1)).numpy().astype(np.float64)
    np.testing.assert_allclose(np.exp(log_p).sum(1), 1.0, rtol=2e-4)


def _independent_log_p(train, test):
    """Per-image log-probability under a Laplace-smoothed categorical per pixel, (n_test,)."""
    counts = np.stack([np.bincount(train[:, j], minlength=17) + 1 for j in range(train.shape[1])])
    probs = counts / counts.sum(1, keepdims=True)
    return np.log(probs[np.arange(train.shape[1]), test]).sum(1)


def test_likelihood_beats_independent_pixels_on_held_out_digits(fitted, digits):
    X_train, X_test, y_train, y_test = digits
    train = X_train.reshape(len(X_train), -1).astype(int)
    test = X_test.reshape(len(X_test), -1).astype(int)
    # The baselines know the class too: independent pixels given the class for log p(x | y), and
    # their mixture over the class prior for log p(x). A network that ignored the earlier pixels
    # would be such a model, and would not beat them.
    per_class = np.stack([_independent_log_p(train[y_train == c], test) for c in range(10)])
    given_class = per_class[y_test, np.arange(len(test))].mean()
    prior = np.bincount(y_train) / len(y_train)
    top = per_class.max(0)
    mixture = (top + np.log(np.exp(per_class - top).T @ prior)).mean()
    assert mixture > _independent_log_p(train, test).mean()  # the mixture is the stronger baseline
    assert fitted.history_["val_loss"][-1] < fitted.history_["val_loss"][0]
    assert fitted.score_samples(X_test, y_test).mean() > given_class
    assert fitted.score_samples(X_test).mean() > mixture
    # the label informs the model: true labels score higher than shifted ones
    assert fitted.score_samples(X_test, y_test).mean() > fitted.score_samples(X_test, (y_test + 3) % 10).mean() + 2


def test_unconditional_score_marginalises_over_classes(fitted, digits):
    _, X_test, _, _ = digits
    per_class = np.stack([fitted.score_samples(X_test[:6], np.full(6, c)) for c in range(10)])
    expected = np.log(np.exp(per_class).T @ fitted.class_prior_)
    np.testing.assert_allclose(fitted.score_samples(X_test[:6]), expected, rtol=1e-6)


def test_values_outside_the_training_levels_have_probability_zero(fitted, digits):
    _, X_test, _, y_test = digits
    X, y = X_test[:4].copy(), y_test[:4]
    clean = fitted.score_samples(X, y)
    X[[1, 3], 2, 3] = 17  # one level above the 0..16 the model was fitted on
    X[2, 0, 0] = -1
    np.testing.assert_array_equal(fitted.score_samples(X, y), [clean[0], -np.inf, -np.inf, -np.inf])
    assert fitted.score_samples(X)[0] == pytest.approx(fitted.score_samples(X_test[:1])[0])
    assert np.all(np.isneginf(fitted.score_samples(X)[1:]))


def test_fast_sampling_equals_naive_for_a_seed(fitted):
    X_fast, y_fast = fitted.generate(12, random_state=5)
    X_naive, y_naive = fitted.generate(12, random_state=5, method="naive")
    np.testing.assert_array_equal(y_fast, y_naive)
    np.testing.assert_array_equal(X_fast, X_naive)
    X_other, _ = fitted.generate(12, random_state=6)
    assert not np.array_equal(X_fast, X_other)
    with pytest.raises(ValueError, match="method"):
        fitted.generate(2, method="slow")


def test_generate_dtype_range_labels_and_seed(fitted, digits):
    X_train = digits[0]
    X, y = fitted.generate(40, random_state=3)
    assert X.shape == (40, 8, 8) and X.dtype == X_train.dtype
    assert X.min() >= 0 and X.max() <= 16 and np.all(X == np.round(X))
    X2, y2 = fitted.generate(40, random_state=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X7, y7 = fitted.generate(30, y=7, random_state=0)
    assert np.all(y7 == 7)
    # conditioning reaches the samples: the model finds its sevens likelier as sevens than as zeros
    assert fitted.score_samples(X7, y7).mean() > fitted.score_samples(X7, np.zeros(30, int)).mean() + 2
    with pytest.raises(ValueError, match="not seen in fit"):
        fitted.generate(2, y=11)


def test_complete_keeps_given_pixels_and_resampling_uses_them(fitted, digits):
    _, X_test, _, y_test = digits
    X = X_test[:30]
    mask = np.zeros((8, 8), bool)
    mask[:4] = True  # the top half is missing: the given pixels all come after it
    out, y = fitted.complete(X, mask, y_test[:30], random_state=0)
    np.testing.assert_array_equal(out[:, 4:], X[:, 4:])
    np.testing.assert_array_equal(y, y_test[:30])
    assert out.dtype == X.dtype and np.all(out == np.round(out)) and out.max() <= 16
    assert not np.array_equal(out[:, :4], X[:, :4])
    # nothing missing: the images come back unchanged
    same, _ = fitted.complete(X, np.zeros(X.shape, bool), y_test[:30], random_state=0)
    np.testing.assert_array_equal(same, X)
    # the drawn pixels follow the given ones: with the bottom half missing, completions of the real
    # top halves are closer to the real bottoms than free samples of the same labels and noise
    bottom = ~mask
    filled, _ = fitted.complete(X, bottom, y_test[:30], random_state=2)
    free, _ = fitted.generate(30, y=y_test[:30], random_state=2)
    np.testing.assert_array_equal(filled[:, :4], X[:, :4])
    assert np.abs(filled[:, 4:] - X[:, 4:]).mean() < 0.9 * np.abs(free[:, 4:] - X[:, 4:]).mean()

    # sampling-importance-resampling: candidates chosen by the likelihood of the given pixels
    def given_log_p(images, labels):
        dims = fitted.model_.log_prob_dims(tf.constant(fitted._to_network(images)), tf.constant(labels.astype("int32")))
        return dims.numpy()[:, 4:].sum((1, 2, 3))

    plain, _ = fitted.complete(X, mask, y_test[:30], random_state=1)
    resampled, _ = fitted.complete(X, mask, y_test[:30], random_state=1, n_candidates=16)
    np.testing.assert_array_equal(resampled[:, 4:], X[:, 4:])
    assert given_log_p(resampled, y_test[:30]).mean() > given_log_p(plain, y_test[:30]).mean()
    with pytest.raises(ValueError, match="mask must have the shape"):
        fitted.complete(X, mask[:4])
    with pytest.raises(TypeError, match="boolean"):
        fitted.complete(X, mask.astype(int))


def test_save_load_pickle_clone_round_trips(fitted, digits, tmp_path):
    _, X_test, _, y_test = digits
    expected = fitted.score_samples(X_test[:20], y_test[:20])
    loaded = synthaug.load(fitted.save(tmp_path / "pixelcnn.synthaug"))
    assert isinstance(loaded, PixelCNN)
    np.testing.assert_allclose(loaded.score_samples(X_test[:20], y_test[:20]), expected, rtol=1e-6)
    np.testing.assert_array_equal(loaded.generate(5, random_state=0)[0], fitted.generate(5, random_state=0)[0])
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.score_samples(X_test[:20], y_test[:20]), expected, rtol=1e-6)
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params() and not hasattr(fresh, "model_")
    with pytest.raises(FileExistsError):
        fitted.save(tmp_path / "pixelcnn.synthaug")


def test_colour_8bit_images_logistic_mixture(colour_patches):
    X = colour_patches
    model = PixelCNN(filters=12, n_blocks=1, head_units=12, n_mixtures=3, epochs=1, validation_fraction=0,
                     random_state=0).fit(X)
    assert model.n_levels_ == int(X.max()) - int(X.min()) + 1 > 32
    assert model.model_.likelihood == "logistic"
    out = model.generate(4, random_state=0)
    assert out.shape == (4, 6, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, model.generate(4, random_state=0, method="naive"))
    log_p = model.score_samples(X[:5])
    assert log_p.shape == (5,) and np.all(log_p < 0) and np.all(np.isfinite(log_p))
    mask = np.zeros(X.shape[1:], bool)
    mask[2:4, 2:4, 1:] = True  # green and blue of the centre pixels
    completed = model.complete(X[:3], mask, random_state=0)
    np.testing.assert_array_equal(completed[:, ~mask], X[:3][:, ~mask])


def test_quantised_levels_for_non_integer_data(digits):
    X_train, X_test, _, _ = digits
    X = X_train[:200] / 16.0 * 3.5 - 1.0  # floats in [-1, 2.5]
    with pytest.raises(ValueError, match="non-integer"):
        PixelCNN(**TINY).fit(X)
    model = PixelCNN(levels=8, **{**TINY, "epochs": 1, "validation_fraction": 0}).fit(X)
    assert model.n_levels_ == 8
    out = model.generate(10, random_state=0)
    grid = np.linspace(X.min(), X.max(), 8)
    assert out.dtype == X.dtype and np.all(np.isclose(out[..., None], grid).any(-1))
    assert np.all(np.isfinite(model.score_samples(X_test[:5] / 16.0 * 3.5 - 1.0)))
    # quantising: a value past the training range counts as the end level, not as impossible
    beyond = X[:2].copy()
    beyond[:, 0, 0] = X.max() + 5
    at_top = X[:2].copy()
    at_top[:, 0, 0] = X.max()
    np.testing.assert_allclose(model.score_samples(beyond), model.score_samples(at_top))


def test_errors(fitted, digits):
    X_train, X_test, y_train, _ = digits
    with pytest.raises(NotFittedError):
        PixelCNN().generate(2)
    with pytest.raises(ValueError, match="images"):
        PixelCNN(**TINY).fit(X_train.reshape(len(X_train), -1))
    with pytest.raises(ValueError, match="sample shape"):
        fitted.score_samples(X_test[:, :, :7])
    with pytest.raises(ValueError, match="non-integer"):
        fitted.score_samples(X_test[:3] + 0.5)
    with pytest.raises(ValueError, match="levels"):
        PixelCNN(levels=1).fit(X_train, y_train)
    with pytest.raises(ValueError, match="likelihood"):
        PixelCNN(likelihood="gaussian").fit(X_train, y_train)
    with pytest.raises(ValueError, match="single value"):
        PixelCNN(**TINY).fit(np.ones((10, 4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        PixelCNN(**TINY).fit(np.where(X_train == 3, np.nan, X_train))
    with pytest.raises(ValueError, match="2 labels"):
        fitted.complete(X_test[:2], np.ones((8, 8), bool), y=[1, 2, 3])
    for name in ("kernel_size", "first_kernel_size"):  # a masked kernel needs a centre pixel
        with pytest.raises(ValueError, match=f"{name} must be odd"):
            PixelCNN(**{**TINY, name: 4}).fit(X_train[:20])


def test_too_few_images_for_a_validation_split_fit_without_warnings():
    import warnings

    images = load_digits().images[:4]  # fewer than 10: no validation split, so nothing watches val_loss
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = PixelCNN(epochs=1, filters=8, n_blocks=1, random_state=0).fit(images)
    assert "val_loss" not in model.history_


def test_scikit_learn_checks_that_apply_to_an_images_only_estimator_pass():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(PixelCNN(**TINY), on_fail=None)  # its tags: 3-D input, not tables
    assert results and all(r["status"] in ("passed", "skipped") for r in results)
    assert PixelCNN().__sklearn_tags__().input_tags.two_d_array is False
