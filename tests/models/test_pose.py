"""PoseModel: affine registration to class templates and re-posed training images."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.svm import SVC

tf = pytest.importorskip("tensorflow")

import synthaug  # noqa: E402
from synthaug import PoseModel  # noqa: E402
from synthaug.integrations.sklearn import SyntheticAugmenter  # noqa: E402
from synthaug.integrations.tf_data import SyntheticMix, augment  # noqa: E402
from synthaug.models.pose import pose_matrices, register, warp  # noqa: E402

DIGITS = load_digits()


def few_per_class(seed, per_class=10):
    """``per_class`` images of each digit (the low-data benchmark's draw) and the rest."""
    rng = np.random.RandomState(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(DIGITS.target == c), per_class, replace=False)
                          for c in range(10)])
    rest = np.setdiff1d(np.arange(len(DIGITS.target)), idx)
    return DIGITS.images[idx], DIGITS.target[idx], DIGITS.images[rest], DIGITS.target[rest]


def photo(size=32):
    """scikit-image's cameraman at size x size, in [0, 1], as a batch of one (1, H, W, 1)."""
    from skimage import data
    from skimage.transform import resize

    return resize(data.camera() / 255.0, (size, size), anti_aliasing=True)[None, :, :, None].astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    X, y, _, _ = few_per_class(0)
    return PoseModel(random_state=0).fit(X, y)


# -- the geometry -------------------------------------------------------------------------------------
def test_identity_pose_returns_the_image_and_inverse_poses_cancel():
    image = photo()
    np.testing.assert_allclose(warp(image, pose_matrices(np.zeros((1, 6)))).numpy(), image, atol=1e-5)
    v = np.array([[0.1, -0.2, 0.15, 0.05, 0.1, -0.1]], np.float32)
    product = tf.matmul(pose_matrices(v), pose_matrices(-v)).numpy()
    np.testing.assert_allclose(product[0], np.eye(3), atol=1e-5)


def test_pose_matrices_are_the_matrix_exponential():
    from scipy.linalg import expm

    rng = np.random.RandomState(0)
    tangents = rng.normal(size=(30, 6)) * np.repeat([0.05, 0.3, 1.0], 10)[:, None]
    ours = pose_matrices(tangents.astype(np.float32)).numpy()
    for v, M in zip(tangents, ours):
        exact = expm(np.vstack([v.reshape(2, 3), np.zeros((1, 3))]))
        np.testing.assert_allclose(M, exact, rtol=1e-4, atol=1e-5)


def test_a_pure_shift_moves_pixels_by_the_right_amount():
    image = np.zeros((1, 9, 9, 1), np.float32)
    image[0, 4, 4, 0] = 1.0
    shift = 2 / 4  # in [-1, 1] coordinates, half-height 4 pixels: 2 pixels
    out = warp(image, pose_matrices(np.array([[0, 0, shift, 0, 0, 0]], np.float32))).numpy()[0, :, :, 0]
    # output pixel p shows the input at p + shift: the bright pixel moves up by 2 rows
    assert out[2, 4] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)


def test_registration_recovers_a_known_pose():
    image = photo()
    v_true = np.array([[0.08, -0.05, 0.1, 0.06, -0.04, -0.12]], np.float32)
    moved = warp(image, pose_matrices(v_true)).numpy()
    poses, error = register(moved, image, penalty=0.0, steps=400, learning_rate=0.02, batch_size=8)
    # warp(warp(x, M1), M2) shows x at M1 M2 p: the identity needs M2 = M1^-1, the pose -v_true
    np.testing.assert_allclose(poses, -v_true, atol=0.01)
    assert error < 0.01 * np.mean(image ** 2)


def test_registration_in_chunks_gives_the_same_poses():
    X = DIGITS.images[:30, :, :, None].astype(np.float32) / 16
    template = np.repeat(X.mean(0, keepdims=True), 30, axis=0)
    options = dict(penalty=0.1, steps=50, learning_rate=0.02)
    whole, _ = register(X, template, batch_size=1024, **options)
    chunked, _ = register(X, template, batch_size=7, **options)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    with pytest.raises(ValueError, match="steps must be a positive integer; got 0"):
        register(X, template, batch_size=7, **{**options, "steps": 0})


def test_warp_gradients_reach_the_pose():
    image = tf.constant(photo())
    pose = tf.Variable(tf.zeros((1, 6)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(warp(image, pose_matrices(pose)) * tf.range(32.0)[None, :, None, None])
    gradient = tape.gradient(loss, pose).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0


# -- fitting and sampling -----------------------------------------------------------------------------
def test_registration_lowers_the_alignment_error(fitted):
    errors = fitted.history_["alignment_error"]
    assert len(errors) == 1 + fitted.n_rounds
    assert errors[1] < 0.8 * errors[0] and errors[-1] <= errors[1] * 1.05
    assert fitted.poses_.shape == (100, 6) and np.all(np.isfinite(fitted.poses_))


def test_samples_keep_shape_dtype_range_and_labels(fitted):
    X, y = fitted.generate(50, y=np.repeat(np.arange(5), 10), random_state=0)
    assert X.shape == (50, 8, 8) and X.dtype == DIGITS.images.dtype and y.tolist() == list(np.repeat(np.arange(5), 10))
    assert X.min() >= 0 and X.max() <= 16
    assert np.all(X == np.rint(X)) and fitted.integer_valued_  # digits come back on their 17 levels
    assert not PoseModel(epochs=5).fit(photo()[..., 0].repeat(3, 0), None).integer_valued_  # floats stay floats
    uint8 = PoseModel(epochs=20).fit((DIGITS.images[:60] * 15).astype(np.uint8), DIGITS.target[:60])
    X8, _ = uint8.generate(10, random_state=0)
    assert X8.dtype == np.uint8 and X8.shape == (10, 8, 8)


def test_samples_are_new_images_of_their_class(fitted):
    _, _, X_rest, y_rest = few_per_class(0)
    flat = lambda A: A.reshape(len(A), -1)  # noqa: E731
    judge = SVC().fit(flat(X_rest), y_rest)  # trained on images the model never saw
    X, y = fitted.generate(500, random_state=0)
    assert judge.score(flat(X), y) > 0.9
    train = flat(few_per_class(0)[0])
    nearest = np.min(((flat(X)[:, None, :] - train[None]) ** 2).sum(-1), axis=1)
    assert np.median(nearest) > 1.0  # warped, not copies of the training images


def test_pose_scale_controls_the_spread_of_poses(fitted):
    def spread(scale):
        model = clone(fitted).set_params(pose_scale=scale)
        model.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
        X, _ = model.generate(400, y=np.full(400, 3), random_state=1)
        return X.reshape(400, -1).std(0).mean()

    assert spread(0.0) < spread(1.0) < spread(2.0)


def test_augmentation_helps_a_classifier_with_ten_images_per_class():
    """The issue's low-data protocol on two draws: synthaug's re-posed images add accuracy."""
    flat = lambda A: np.asarray(A).reshape(len(A), -1)  # noqa: E731
    gains = []
    for seed in (0, 1):
        X, y, X_rest, y_rest = few_per_class(seed)
        real = SVC().fit(flat(X), y).score(flat(X_rest), y_rest)
        X_aug, y_aug = SyntheticAugmenter(PoseModel(random_state=seed), sampling_strategy=None, ratio=10.0,
                                          random_state=seed).fit_resample(X, y)
        gains.append(SVC().fit(flat(X_aug), y_aug).score(flat(X_rest), y_rest) - real)
    assert min(gains) > 0.01, gains


def test_unconditional_and_colour_images():
    rgb = np.repeat(DIGITS.images[:40, :, :, None] * 15, 3, axis=-1).astype(np.uint8)
    model = PoseModel(epochs=20, n_rounds=1).fit(rgb)
    X = model.generate(6, random_state=0)
    assert isinstance(X, np.ndarray) and X.shape == (6, 8, 8, 3) and X.dtype == np.uint8
    np.testing.assert_array_equal(X[..., 0], X[..., 1])  # one warp for every channel


def test_a_class_with_one_image_gets_the_pooled_poses():
    idx = np.concatenate([np.flatnonzero(DIGITS.target == 0)[:10], np.flatnonzero(DIGITS.target == 1)[:10],
                          np.flatnonzero(DIGITS.target == 2)[:1]])
    model = PoseModel(epochs=50, n_rounds=1).fit(DIGITS.images[idx], DIGITS.target[idx])
    X, y = model.generate(20, y=2, random_state=0)
    assert set(y.tolist()) == {2} and np.all(np.isfinite(X))
    assert len({x.tobytes() for x in X}) == 20  # one appearance, twenty poses


def test_constant_images_have_nothing_to_align_and_come_back_unchanged():
    X = np.full((12, 8, 8), 5.0)
    model = PoseModel(epochs=20, n_rounds=1).fit(X, np.repeat([0, 1], 6))
    G, labels = model.generate(5, y=1, random_state=0)
    np.testing.assert_array_equal(G, np.full((5, 8, 8), 5.0))
    assert labels.tolist() == [1] * 5 and np.abs(model.poses_).max() == 0.0


def test_same_seed_same_samples_save_load_pickle_clone(fitted, tmp_path):
    a, ya = fitted.generate(20, random_state=3)
    b, yb = fitted.generate(20, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fitted.generate(20, random_state=4)[0])
    loaded = synthaug.load(fitted.save(tmp_path / "pose.synthaug"))
    np.testing.assert_allclose(loaded.generate(20, random_state=3)[0], a, atol=1e-5)
    np.testing.assert_allclose(loaded.poses_, fitted.poses_)
    unpickled = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(unpickled.generate(20, random_state=3)[0], a, atol=1e-5)
    assert clone(fitted).get_params() == fitted.get_params() and not hasattr(clone(fitted), "model_")


def test_in_graph_sampling_for_tf_data_and_the_keras_layer(fitted):
    X, y, _, _ = few_per_class(0)
    ds = tf.data.Dataset.from_tensor_slices((X.astype("float32"), y)).batch(20)
    mixed = augment(ds, fitted, ratio=0.5, seed=0)
    assert mixed.element_spec == ds.element_spec
    out = np.concatenate([x.numpy() for x, _ in mixed])
    again = np.concatenate([x.numpy() for x, _ in augment(ds, fitted, ratio=0.5, seed=0)])
    np.testing.assert_array_equal(out, again)
    replaced = np.any(out.reshape(100, -1) != X.reshape(100, -1), axis=1)
    assert 0.3 < replaced.mean() < 0.7 and out.min() >= 0 and out.max() <= 16
    assert np.all(out == np.rint(out))  # in-graph samples are rounded onto the levels too
    xla = np.concatenate([x.numpy() for x, _ in augment(ds, fitted, ratio=0.5, seed=0, jit_compile=True)])
    assert xla.shape == out.shape
    mix = SyntheticMix(fitted, ratio=0.5, seed=0)  # the layer form, inside a model's training step
    images = X.astype("float32")
    np.testing.assert_array_equal(mix([images, y], training=False).numpy(), images)
    mixed = mix([images, y], training=True).numpy()
    assert mixed.shape == images.shape and 40 <= np.any(mixed != images, axis=(1, 2)).sum() <= 52


# -- errors -------------------------------------------------------------------------------------------
def test_errors_name_the_problem():
    with pytest.raises(NotFittedError):
        PoseModel().generate(3)
    with pytest.raises(ValueError, match="needs images"):
        PoseModel().fit(np.random.RandomState(0).normal(size=(20, 5)))
    with pytest.raises(ValueError, match="at least 2x2"):
        PoseModel().fit(np.zeros((5, 1, 8)))
    with pytest.raises(TypeError, match="array of images"):
        PoseModel().fit(tf.data.Dataset.from_tensor_slices(DIGITS.images[:10]))
    with pytest.raises(ValueError, match="pose_penalty"):
        PoseModel(pose_penalty=-1).fit(DIGITS.images[:10])
    with pytest.raises(ValueError, match=r"labels not seen in fit: \[11\]"):
        PoseModel(epochs=5, n_rounds=1).fit(DIGITS.images[:40], DIGITS.target[:40]).generate(3, y=11)
    bad = DIGITS.images[:10].copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN|finite"):
        PoseModel().fit(bad)
