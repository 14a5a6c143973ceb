"""Learned pose augmentation: training images re-posed by affine warps drawn from the poses the
images show, learned by registering every image to its class template.

The model of Hauberg et al. (2016, "Dreaming more data: class-dependent distributions over
diffeomorphisms for learned data augmentation"), with affine warps in place of their
diffeomorphisms: an image is an appearance (the image brought to its class template's pose) times
a pose, and the poses of a class are Gaussian in the affine group's tangent space. Sampling keeps
a real appearance and draws a new pose, so every sample is a sharp, resampled training image.
"""
from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.validation import check_is_fitted

from synthaug._param_validation import NON_NEGATIVE, POSITIVE, POSITIVE_INT, VERBOSE
from synthaug.base import GenerativeEstimator

POSE_DIM = 6  # the 2x3 top rows of a 3x3 affine matrix's logarithm
# Values per chunk of images warped at once in fit and generate (4 Mi floats, 16 MiB a tensor):
# large images go in smaller chunks. Poses are independent, so chunking never changes a result.
_VALUES_PER_CHUNK = 2 ** 22


def _chunk_size(image_shape, limit: int) -> int:
    return max(1, min(int(limit), _VALUES_PER_CHUNK // int(np.prod(image_shape))))


def pose_matrices(tangents):
    """Affine matrices (B, 3, 3) from tangent vectors (B, 6): ``expm`` of [[a, b, ty], [c, d, tx], [0, 0, 0]].

    Coordinates are (row, column), centred on the image and scaled to [-1, 1], so a pose means
    the same thing at every image size; the inverse of ``pose_matrices(v)`` is ``pose_matrices(-v)``.
    """
    tangents = tf.convert_to_tensor(tangents, tf.float32)
    top = tf.reshape(tangents, (-1, 2, 3))
    return tf.linalg.expm(tf.concat([top, tf.zeros_like(top[:, :1, :])], axis=1))


def warp(images, matrices):
    """Resample images (B, H, W, C) so that output pixel p shows the input at ``matrices @ p``.

    Bilinear interpolation in coordinates centred and scaled to [-1, 1]; points outside the
    image take the nearest edge pixel. Differentiable with respect to the matrices (for
    registration) and written with plain TensorFlow ops, so it runs in tf.data, under XLA and on
    a GPU unchanged.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    half = np.array([(height - 1) / 2, (width - 1) / 2])
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    grid = np.stack([(rows.ravel() - half[0]) / half[0], (cols.ravel() - half[1]) / half[1], np.ones(rows.size)])
    source = tf.einsum("bij,jp->bpi", tf.cast(matrices, tf.float32)[:, :2, :], tf.constant(grid, tf.float32))
    row = tf.clip_by_value(source[..., 0] * half[0] + half[0], 0.0, height - 1.0)
    col = tf.clip_by_value(source[..., 1] * half[1] + half[1], 0.0, width - 1.0)
    row0 = tf.minimum(tf.floor(row), height - 2.0)
    col0 = tf.minimum(tf.floor(col), width - 2.0)
    flat = tf.reshape(images, (-1, height * width, channels))
    out = 0.0
    for dr in (0.0, 1.0):
        for dc in (0.0, 1.0):
            weight = (1.0 - tf.abs(row - row0 - dr)) * (1.0 - tf.abs(col - col0 - dc))
            index = tf.cast((row0 + dr) * width + col0 + dc, tf.int32)
            out += tf.gather(flat, index, batch_dims=1) * weight[..., None]
    return tf.reshape(out, (-1, height, width, channels))


@keras.saving.register_keras_serializable(package="synthaug")
class PoseSampler(keras.Model):
    """The fitted pose model as Keras weights (so it saves to ``.keras`` and loads in safe mode).

    ``images`` are the training images in network units, ``poses`` their registered poses
    (tangent vectors) and ``image_matrices`` the poses' affine matrices,
    ``members[k, :counts[k]]`` the images of class ``k``, ``pose_mean[k]`` the mean pose of class
    ``k`` and ``pose_cholesky`` the Cholesky factor of the poses' covariance within a class
    (pooled over classes).
    """

    def __init__(self, n_images, image_shape, n_classes=1, max_per_class=1, **kwargs):
        super().__init__(**kwargs)
        self.n_images = int(n_images)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n_classes = int(n_classes)
        self.max_per_class = int(max_per_class)

        def weight(name, shape, dtype="float32"):
            return self.add_weight(name=name, shape=shape, dtype=dtype, initializer="zeros", trainable=False)

        self.images = weight("images", (self.n_images,) + self.image_shape)
        self.poses = weight("poses", (self.n_images, POSE_DIM))
        self.image_matrices = weight("image_matrices", (self.n_images, 3, 3))
        self.members = weight("members", (self.n_classes, self.max_per_class), "int32")
        self.counts = weight("counts", (self.n_classes,), "int32")
        self.pose_mean = weight("pose_mean", (self.n_classes, POSE_DIM))
        self.pose_cholesky = weight("pose_cholesky", (POSE_DIM, POSE_DIM))
        self.built = True

    def resample(self, codes, uniforms, normals, pose_scale=1.0):
        """Images of classes ``codes`` (B,): a training image of the class picked by ``uniforms``
        (B,) in [0, 1), shown in the pose ``pose_mean + pose_scale * L @ normals`` (B, 6)."""
        codes = tf.cast(codes, tf.int32)
        counts = tf.gather(self.counts, codes)
        pick = tf.minimum(tf.cast(tf.cast(uniforms, tf.float32) * tf.cast(counts, tf.float32), tf.int32), counts - 1)
        index = tf.gather_nd(self.members, tf.stack([codes, pick], axis=1))
        new_pose = tf.gather(self.pose_mean, codes) + pose_scale * tf.matmul(
            tf.cast(normals, tf.float32), self.pose_cholesky, transpose_b=True)
        # Registration found M_i with x_i(M_i p) ~ template(p): the image brought to the template's
        # pose is c_i(p) = x_i(M_i p). In the new pose M the sample is c_i(M^-1 q) = x_i(M_i M^-1 q).
        matrices = tf.matmul(tf.gather(self.image_matrices, index), pose_matrices(-new_pose))
        return warp(tf.gather(self.images, index), matrices)

    def get_config(self):
        return {**super().get_config(), "n_images": self.n_images, "image_shape": list(self.image_shape),
                "n_classes": self.n_classes, "max_per_class": self.max_per_class}


def register(images, templates, *, penalty, steps, learning_rate, batch_size):
    """Poses (n, 6) that bring each image closest to its template.

    Minimises, per image, the mean squared difference between the warped image and its template
    plus ``penalty`` times the squared norm of the pose (which keeps a poor match from folding
    the image away), with Adam (Keras' update rule and defaults), ``batch_size`` images at a
    time. Returns the poses and the mean squared difference after registration.

    The poses and Adam's moments are tensors carried through one compiled loop, not variables:
    a caller's ``tf.distribute`` scope would make variables distributed, which an update outside
    ``strategy.run`` cannot assign. Registration is per image, so it gains nothing from replicas.
    """
    if steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7

    @tf.function(reduce_retracing=True)
    def optimise(chunk, target):
        pose = tf.zeros((tf.shape(chunk)[0], POSE_DIM))
        m, v = tf.zeros_like(pose), tf.zeros_like(pose)
        error = tf.zeros((tf.shape(chunk)[0],))
        for t in tf.range(1, steps + 1):
            with tf.GradientTape() as tape:
                tape.watch(pose)
                error = tf.reduce_mean(tf.square(warp(chunk, pose_matrices(pose)) - target), axis=[1, 2, 3])
                loss = tf.reduce_sum(error + penalty * tf.reduce_sum(tf.square(pose), axis=1))
            gradient = tape.gradient(loss, pose)
            m = m + (gradient - m) * (1 - beta_1)
            v = v + (tf.square(gradient) - v) * (1 - beta_2)
            step = tf.cast(t, tf.float32)
            alpha = learning_rate * tf.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
            pose = pose - m * alpha / (tf.sqrt(v) + epsilon)
        # the error of the last step's pose, as the variable-based loop reported it
        return pose, error

    poses, errors = [], []
    for start in range(0, len(images), batch_size):
        pose, error = optimise(tf.constant(images[start:start + batch_size]),
                               tf.constant(templates[start:start + batch_size]))
        poses.append(pose.numpy())
        errors.append(error.numpy())
    return np.concatenate(poses), float(np.mean(np.concatenate(errors)))


class PoseModel(GenerativeEstimator):
    """Learned pose augmentation for images, with a scikit-learn API.

    ``fit`` registers every image to its class template with an affine warp (the template is
    re-estimated from the registered images ``n_rounds`` times) and models each class's poses as a
    Gaussian in the affine group's tangent space, with one covariance pooled over classes (ten
    images per class are too few for a 6x6 covariance each). ``generate`` takes a training image
    of the class and shows it in a new pose drawn from that Gaussian: a sharp image whose slant,
    size, stretch and position vary as the data's do (Hauberg et al., 2016, with affine warps).

    It learns no new appearances, only new poses of the training images, which is what helps a
    classifier when there are few images per class; for new appearances use :class:`~synthaug.VAE`
    or :class:`~synthaug.GAN`.

    Parameters
    ----------
    pose_penalty : float, default=1.0
        Weight of the squared norm of a pose against the mean squared difference (in units of the
        data's standard deviation) between the registered image and its template. Larger values
        learn smaller pose changes.
    pose_scale : float, default=1.0
        Multiplies the drawn deviation from the class's mean pose in ``generate`` (0 shows every
        sample in its class's mean pose).
    n_rounds : int, default=3
        Registrations to the class templates; each round re-estimates the templates from the
        registered images.
    epochs : int, default=300
        Adam steps per registration round (each moves the pose of every image).
    batch_size : int, default=1024
        Images registered at once, at most 4 Mi pixel values' worth (their poses are independent,
        so this bounds memory only).
    learning_rate : float, default=0.02
        Adam's learning rate for the poses.
    random_state : int, RandomState or None, default=None
        Accepted as by every synthaug generator; ``fit`` draws nothing at random (registration
        starts every pose at the identity), and ``generate`` takes its own ``random_state``.
    verbose : int, default=0
        1 or more: print the alignment error after each round.

    Attributes
    ----------
    model_ : PoseSampler
        The training images, their poses and the pose distribution, as Keras weights.
    poses_ : ndarray of shape (n_samples, 6)
        The registered pose of each training image (tangent vectors).
    history_ : dict
        ``alignment_error``: mean squared difference to the templates before registration and
        after each round, in units of the data's variance.
    classes_ : ndarray or None
        Labels seen in ``fit``; ``None`` for an unconditional model (one template for all).
    input_shape_ : tuple
        Shape of one image.
    n_features_in_ : int
        ``X.shape[1]`` as scikit-learn defines it (the height).
    integer_valued_ : bool
        Whether the training values were whole numbers in a float array (digits' 0..16); the
        warped samples are then rounded back onto whole numbers, as the other generators return them.

    Notes
    -----
    Images only: ``(n, H, W)`` or ``(n, H, W, C)``, at least 2x2. The model keeps its training
    images (they are the appearances it samples), so a saved model holds them. There is no
    likelihood, encoder or decoder, hence no ``score_samples`` or ``transform``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from synthaug import PoseModel
    >>> digits = load_digits()
    >>> model = PoseModel(epochs=50, random_state=0).fit(digits.images[:100], digits.target[:100])
    >>> X, y = model.generate(4, y=[0, 1, 2, 3], random_state=0)
    >>> X.shape, y.tolist()
    ((4, 8, 8), [0, 1, 2, 3])
    """

    _parameter_constraints = {
        "pose_penalty": NON_NEGATIVE, "pose_scale": NON_NEGATIVE, "n_rounds": POSITIVE_INT, "epochs": POSITIVE_INT,
        "batch_size": POSITIVE_INT, "learning_rate": POSITIVE, "verbose": VERBOSE,
    }

    def __init__(self, pose_penalty: float = 1.0, pose_scale: float = 1.0, n_rounds: int = 3, epochs: int = 300,
                 batch_size: int = 1024, learning_rate: float = 0.02, random_state=None, verbose: int = 0):
        self.pose_penalty = pose_penalty
        self.pose_scale = pose_scale
        self.n_rounds = n_rounds
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Register the images X to their class templates and learn the distribution of poses.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W) or (n_samples, H, W, C)
            Images; held in memory (a ``tf.data.Dataset`` is refused).
        y : array-like of shape (n_samples,), default=None
            Labels: one template and mean pose per class. ``None``: one template for all.

        Returns
        -------
        self : PoseModel
        """
        self._validate_params()
        if isinstance(X, tf.data.Dataset):
            raise TypeError("PoseModel.fit takes an array of images: the model keeps its training images, "
                            "so a tf.data.Dataset is not streamed")
        Z, codes = self._fit_data(X, y, discrete=False)
        # Integer values in a float array (digits' 0..16): warped samples are rounded back onto them.
        self.integer_valued_ = bool(np.issubdtype(self.dtype_, np.floating)
                                    and np.all(np.mod(np.asarray(X, dtype=np.float64), 1) == 0))
        image_shape = self._image_shape()
        if image_shape is None or min(image_shape[:2]) < 2:
            raise ValueError(f"PoseModel needs images (n, H, W) or (n, H, W, C) at least 2x2; "
                             f"got samples of shape {self.input_shape_}")
        images = np.asarray(Z, np.float32).reshape((len(Z),) + image_shape)
        codes = np.zeros(len(images), np.int64) if codes is None else np.asarray(codes)
        n_classes = int(codes.max()) + 1

        def class_means(values):  # (n_classes, ...) means of values over each class's images
            return np.stack([values[codes == k].mean(0) for k in range(n_classes)])

        templates = class_means(images)[codes]
        errors = [float(np.mean((images - templates) ** 2))]
        options = dict(penalty=float(self.pose_penalty), steps=self.epochs, learning_rate=float(self.learning_rate),
                       batch_size=_chunk_size(image_shape, self.batch_size))
        for round_ in range(self.n_rounds):
            poses, error = register(images, templates, **options)
            errors.append(error)
            if self.verbose:
                print(f"PoseModel: round {round_ + 1}/{self.n_rounds}, alignment error {error:.4f}",
                      file=sys.stderr, flush=True)
            if round_ + 1 < self.n_rounds:
                templates = class_means(warp(images, pose_matrices(poses)).numpy())[codes]
        pose_mean = class_means(poses)
        deviations = poses - pose_mean[codes]
        dof = max(len(poses) - n_classes, 1)
        covariance = deviations.T @ deviations / dof + 1e-6 * np.eye(POSE_DIM)
        counts = np.bincount(codes, minlength=n_classes)
        members = np.zeros((n_classes, counts.max()), np.int32)
        for k in range(n_classes):
            members[k, :counts[k]] = np.flatnonzero(codes == k)
        self.model_ = PoseSampler(len(images), image_shape, n_classes, counts.max())
        for variable, value in zip(
                (self.model_.images, self.model_.poses, self.model_.image_matrices, self.model_.members,
                 self.model_.counts, self.model_.pose_mean, self.model_.pose_cholesky),
                (images, poses, pose_matrices(poses).numpy(), members, counts, pose_mean,
                 np.linalg.cholesky(covariance))):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        self.history_ = {"alignment_error": errors}
        return self

    @property
    def poses_(self) -> np.ndarray:
        """The registered pose of each training image, (n_samples, 6) tangent vectors."""
        check_is_fitted(self, "model_")
        return self.model_.poses.numpy()

    def _from_network(self, Z, clip=True):
        X = super()._from_network(Z, clip)
        return np.rint(X).astype(X.dtype) if getattr(self, "integer_valued_", False) else X

    def _from_network_graph(self, Z):
        X = super()._from_network_graph(Z)
        return tf.round(X) if getattr(self, "integer_valued_", False) else X

    def _fitted_state(self) -> dict:
        return {**super()._fitted_state(), "integer_valued_": bool(self.integer_valued_)}

    def _restore_state(self, state: dict) -> None:
        super()._restore_state(state)
        self.integer_valued_ = bool(state.get("integer_valued_", False))  # files saved before it existed

    def _sample_network(self, n_samples, codes, rng):
        codes = np.zeros(n_samples, np.int32) if codes is None else np.asarray(codes, np.int32)
        uniforms = rng.random_sample(n_samples).astype(np.float32)
        normals = rng.standard_normal((n_samples, POSE_DIM)).astype(np.float32)
        step = _chunk_size(self.model_.image_shape, 4096)
        out = [self.model_.resample(codes[i:i + step], uniforms[i:i + step], normals[i:i + step],
                                    float(self.pose_scale)).numpy() for i in range(0, n_samples, step)]
        return np.concatenate(out).reshape(n_samples, -1)

    def _sample_network_graph(self, n, codes, seed, model):
        """``_sample_network`` in-graph with stateless noise (see ``GenerativeEstimator._sample_graph``)."""
        seed_pick, seed_pose = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        n = tf.cast(n, tf.int32)
        if codes is None:
            codes = tf.zeros((n,), tf.int32)
        uniforms = tf.random.stateless_uniform(tf.reshape(n, (1,)), seed_pick)
        normals = tf.random.stateless_normal(tf.stack([n, POSE_DIM]), seed_pose)
        images = model.resample(codes, uniforms, normals, float(self.pose_scale))
        return tf.reshape(images, (n, -1))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags
