"""Normalizing flows from TensorFlow Probability bijectors with Keras 3 networks.

The bijectors (``tfb.RealNVP``, ``tfb.MaskedAutoregressiveFlow``, ``tfb.Permute``, ``tfb.Chain``)
do the change of variables; the networks that give their shifts and log-scales are Keras 3 layers
(:class:`CouplingNetwork`, :class:`MADE`) owned by a Keras model, so Keras tracks, trains and saves
every weight. TFP's own ``AutoregressiveNetwork`` and ``real_nvp_default_template`` are tf_keras
objects that a Keras 3 model would not track, so they are not used.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops
from scipy.special import logsumexp
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from synthaug._param_validation import (
    FRACTION,
    POSITIVE,
    POSITIVE_FINITE,
    POSITIVE_INT,
    VERBOSE,
    Interval,
    Options,
    PositiveInts,
)
from synthaug.base import GenerativeEstimator
from synthaug.models.training import BuiltModelMixin, batch_mean, batch_weight, fit_model, sample_rows

tfb = tfp.bijectors
tfd = tfp.distributions

_LOG_SCALE_BOUND = 3.0  # log-scales pass through bound * tanh(. / bound): stable early training
_INPUT_BOUND = 4.0
_MIN_DF = 1.0  # a learned Student-t base keeps df above this (a finite mean)
_INITIAL_DF = 10.0
# Rounds of the fixed-length rejection in the in-graph Student-t sampler: each accepts with
# probability pi / 4, so all fail with probability (1 - pi/4)^16 ≈ 2e-11 per value.
_POLAR_ROUNDS = 16


def _soft_bound(log_scale):
    return _LOG_SCALE_BOUND * ops.tanh(log_scale / _LOG_SCALE_BOUND)


def _squash(x):
    """Soft-clip a network's input to about ±_INPUT_BOUND (nearly the identity inside ±bound/2).

    The networks only condition the transform, so any function of their input keeps it
    invertible; bounded inputs stop them from extrapolating far outside the training range,
    where saturated log-scales in every layer would otherwise give a point a vanishing density.
    """
    if not _INPUT_BOUND:
        return x
    return _INPUT_BOUND * ops.tanh(x / _INPUT_BOUND)


def _dense(units, seed, activation=None, zeros=False):
    init = "zeros" if zeros else keras.initializers.GlorotUniform(seed)
    return keras.layers.Dense(units, activation=activation, kernel_initializer=init)


@keras.saving.register_keras_serializable(package="synthaug")
class CouplingNetwork(keras.layers.Layer):
    """Shift and log-scale of an affine coupling layer from the unchanged half (and labels).

    The output layer starts at zero, so every coupling starts as the identity.
    """

    def __init__(self, input_dim, output_dim, hidden_units, n_classes=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.n_classes = int(n_classes)
        self.seed = seed
        s = (lambda i: None if seed is None else seed + i)
        self.hidden = [_dense(u, s(i), "gelu") for i, u in enumerate(self.hidden_units)]
        self.out = _dense(2 * self.output_dim, None, zeros=True)
        width = self.input_dim + self.n_classes
        for layer in self.hidden:
            layer.build((None, width))
            width = layer.units
        self.out.build((None, width))
        self.built = True

    def call(self, x, labels=None, output_units=None):
        x = _squash(x)
        if self.n_classes:
            x = ops.concatenate([x, ops.one_hot(labels, self.n_classes)], axis=-1)
        for layer in self.hidden:
            x = layer(x)
        out = self.out(x)
        return out[..., : self.output_dim], _soft_bound(out[..., self.output_dim:])

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "hidden_units": list(self.hidden_units), "n_classes": self.n_classes, "seed": self.seed}


def _made_masks(dim, hidden_units):
    """MADE masks (Germain et al., 2015) for inputs in natural order: output d sees inputs < d."""
    degrees = [np.arange(1, dim + 1)]
    for units in hidden_units:
        # Hidden degrees cycle through 1..dim-1 so every unit can be used.
        degrees.append(np.arange(units) % max(dim - 1, 1) + 1)
    masks = [(d_out[None, :] >= d_in[:, None]).astype("float32") for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    out_mask = (degrees[0][None, :] > degrees[-1][:, None]).astype("float32")
    return masks, out_mask


@keras.saving.register_keras_serializable(package="synthaug")
class MADE(keras.layers.Layer):
    """Masked autoencoder for distribution estimation: autoregressive shift and log-scale.

    Output ``d`` depends only on inputs ``< d``; labels enter every hidden layer unmasked,
    which keeps the autoregressive property (they are not part of x).
    """

    def __init__(self, input_dim, hidden_units, n_classes=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.n_classes = int(n_classes)
        self.seed = seed
        masks, out_mask = _made_masks(self.input_dim, self.hidden_units)
        self.masks = masks + [np.repeat(out_mask, 2, axis=1)]
        sizes = (self.input_dim,) + self.hidden_units + (2 * self.input_dim,)
        self.kernels, self.biases, self.label_kernels = [], [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            init = "zeros" if last else keras.initializers.GlorotUniform(None if seed is None else seed + i)
            self.kernels.append(self.add_weight(shape=(n_in, n_out), initializer=init, name=f"kernel_{i}"))
            self.biases.append(self.add_weight(shape=(n_out,), initializer="zeros", name=f"bias_{i}"))
            if self.n_classes and not last:
                self.label_kernels.append(self.add_weight(
                    shape=(self.n_classes, n_out), initializer="zeros", name=f"label_kernel_{i}"))
        self.built = True

    def call(self, x, labels=None):
        onehot = ops.one_hot(labels, self.n_classes) if self.n_classes else None
        h = _squash(x)
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            # The output units are interleaved (shift_d, log_scale_d), hence the repeated mask.
            h = ops.matmul(h, kernel * self.masks[i]) + bias
            if i < len(self.kernels) - 1:
                if onehot is not None:
                    h = h + ops.matmul(onehot, self.label_kernels[i])
                h = ops.gelu(h)
        h = ops.reshape(h, (-1, self.input_dim, 2))
        return h[..., 0], _soft_bound(h[..., 1])

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "hidden_units": list(self.hidden_units),
                "n_classes": self.n_classes, "seed": self.seed}


def _split_order(image_shape, mask):
    """Pixel order (all channels of a pixel together) putting the pixels where ``mask`` is 0 first."""
    h, w, c = image_shape
    half = mask.repeat(c).reshape(-1)
    return np.concatenate([np.flatnonzero(half == 0), np.flatnonzero(half == 1)])


def _squeeze_orders(image_shape, n_layers):
    """The absolute pixel order each coupling layer of an image flow sees, from the data side.

    RealNVP's multi-scale layout with dense networks (Dinh et al., 2017): after a squeeze each
    2×2 block becomes 4 channels, and halving the channels splits the block by row or by column;
    so the layers cycle through checkerboard, row-parity and column-parity splits, each followed
    by its complement (a coupling transforms the second half of its input given the first).
    """
    h, w, _ = image_shape
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    masks = [(rows + cols) % 2, np.broadcast_to(rows % 2, (h, w)), np.broadcast_to(cols % 2, (h, w))]
    orders = []
    for i in range(n_layers):
        mask = masks[(i // 2) % len(masks)]
        orders.append(_split_order(image_shape, mask if i % 2 == 0 else 1 - mask))
    return orders


@keras.saving.register_keras_serializable(package="synthaug")
class FlowModel(BuiltModelMixin, keras.Model):
    """A stack of affine coupling (RealNVP) or autoregressive (MAF) bijectors with actnorm.

    Data side → base side: ``[logit] → (actnorm → permutation → coupling) × n_layers``; the base
    distribution is a standard normal (``base="normal"``) or independent Student-t coordinates
    with per-dimension degrees of freedom (``base="student_t"``: ``base_df`` fixed, or learned
    when ``None``). ``labels`` condition every network. Each bijector is
    rebuilt around the labels of the call (bijectors are cheap, stateless wrappers; the weights
    live in the Keras layers).
    """

    def __init__(self, input_dim, n_layers=6, hidden_units=(256, 256), flow_type="realnvp", n_classes=0,
                 n_levels=None, image_shape=None, logit_alpha=0.05, base="normal", base_df=None, noise_std=0.0,
                 image_layout="checkerboard", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.n_layers = int(n_layers)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.flow_type = flow_type
        self.n_classes = int(n_classes)
        self.n_levels = None if n_levels is None else int(n_levels)
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.logit_alpha = float(logit_alpha)
        self.base = base
        self.base_df = None if base_df is None else float(base_df)
        self.noise_std = float(noise_std)
        self.image_layout = image_layout
        self.seed = seed
        d = self.input_dim
        self.n_masked = d // 2
        s = (lambda i: None if seed is None else seed + 1000 * i)
        if flow_type == "realnvp":
            self.nets = [CouplingNetwork(self.n_masked, d - self.n_masked, self.hidden_units, self.n_classes,
                                         s(i), name=f"coupling_{i}") for i in range(self.n_layers)]
        else:
            self.nets = [MADE(d, self.hidden_units, self.n_classes, s(i), name=f"made_{i}")
                         for i in range(self.n_layers)]
        self.permutations = self._permutations()
        self.act_loc = [self.add_weight(shape=(d,), initializer="zeros", name=f"actnorm_loc_{i}")
                        for i in range(self.n_layers)]
        self.act_log_scale = [self.add_weight(shape=(d,), initializer="zeros", name=f"actnorm_log_scale_{i}")
                              for i in range(self.n_layers)]
        if base == "student_t":
            # df = _MIN_DF + softplus(raw); learned per dimension unless base_df fixes it.
            df0 = _INITIAL_DF if self.base_df is None else self.base_df
            raw0 = math.log(math.expm1(df0 - _MIN_DF))
            self.base_df_raw = self.add_weight(shape=(d,), initializer=keras.initializers.Constant(raw0),
                                               trainable=self.base_df is None, name="base_df_raw")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    def _permutations(self):
        """The order each coupling sees its input in, relative to the previous layer's output.

        Images under RealNVP, ``image_layout="checkerboard"``: the first layer puts one colour of
        a checkerboard first (RealNVP's spatial mask, so a coupling predicts pixels from their
        neighbours), and every later layer swaps the halves, so the two colours take turns;
        ``"squeeze"``: see :func:`_squeeze_orders`. Otherwise: seeded random orders.
        """
        d = self.input_dim
        if self.image_shape is not None and self.flow_type == "realnvp" and self.image_layout == "checkerboard":
            swap = np.concatenate([np.arange(self.n_masked, d), np.arange(self.n_masked)])
            checkerboard = _squeeze_orders(self.image_shape, 1)[0]  # the squeeze layout's first split
            return [checkerboard] + [swap] * (self.n_layers - 1)
        if self.image_shape is not None and self.flow_type == "realnvp":
            previous = np.arange(d)
            relative = []
            for order in _squeeze_orders(self.image_shape, self.n_layers):
                relative.append(np.argsort(previous)[order])  # previous[relative] == order
                previous = order
            return relative
        rng = np.random.RandomState(0 if self.seed is None else self.seed)
        return [rng.permutation(d) for _ in range(self.n_layers)]

    # -- the bijector ----------------------------------------------------------------------------
    def _preprocess(self):
        """Data in (0, 1) (dequantised levels) → logit space; nothing for standardised data."""
        if self.n_levels is None:
            return []
        a = self.logit_alpha
        # forward: v ↦ (sigmoid(v) - a) / (1 - 2a); its inverse is logit(a + (1 - 2a) x).
        return [tfb.Chain([tfb.Scale(1.0 / (1.0 - 2.0 * a)), tfb.Shift(-a), tfb.Sigmoid()])]

    def _layer_steps(self, i, labels):
        """Layer i as bijectors listed from the data side: actnorm, permutation, coupling."""
        net = self.nets[i]
        actnorm = tfb.Chain([tfb.Shift(self.act_loc[i]), tfb.Scale(log_scale=self.act_log_scale[i])])
        # Permute(p).inverse(x) == x[..., argsort(p)], so p = argsort(order) gives x[..., order].
        permute = tfb.Permute(permutation=np.argsort(self.permutations[i]).astype("int32"))
        if self.flow_type == "realnvp":
            coupling = tfb.RealNVP(num_masked=self.n_masked,
                                   shift_and_log_scale_fn=lambda x, n, **kw: net(x, labels, output_units=n))
        else:
            coupling = tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=lambda x, **kw: net(x, labels))
        return [actnorm, permute, coupling]

    def bijector(self, labels=None):
        """The flow as one bijector: ``forward`` maps base samples to data, ``inverse`` data to base."""
        steps = self._preprocess()
        for i in range(self.n_layers):
            steps += self._layer_steps(i, labels)
        # Chain([b1, b2]).inverse applies b1.inverse first: the list runs from the data side.
        return tfb.Chain(steps)

    def degrees_of_freedom(self):
        """Per-dimension degrees of freedom of a Student-t base, shape (input_dim,)."""
        return _MIN_DF + ops.softplus(self.base_df_raw)

    def base_log_prob(self, z):
        """log density of base-space points z, summed over dimensions."""
        if self.base == "normal":
            return -0.5 * ops.sum(ops.square(z) + math.log(2.0 * math.pi), -1)
        nu = self.degrees_of_freedom()
        log_norm = tf.math.lgamma(0.5 * (nu + 1.0)) - tf.math.lgamma(0.5 * nu) - 0.5 * ops.log(nu * math.pi)
        return ops.sum(log_norm - 0.5 * (nu + 1.0) * ops.log1p(ops.square(z) / nu), -1)

    def sample_base_graph(self, n, seed):
        """n base-space points, in-graph, from a stateless seed of shape (2,)."""
        shape = tf.stack([tf.cast(n, tf.int32), self.input_dim])
        if self.base == "normal":
            return tf.random.stateless_normal(shape, seed)
        # Bailey's polar method (1994), exact for any nu > 0: (U, V) uniform in the unit disc,
        # W = U^2 + V^2, T = U sqrt(nu (W^(-2/nu) - 1) / W). Unlike tf.random.stateless_gamma it
        # compiles with XLA (augment(jit_compile=True), SyntheticMix in a jit-compiled train step,
        # as Keras does on GPUs). Fixed rounds keep shapes static; the first accepted point of each
        # value is used, and in the ~2e-11 case that none is, W = 1 gives T = 0 (the mode).
        # float64: W^(-2/nu) for small W and nu overflows float32.
        nu = tf.cast(self.degrees_of_freedom(), tf.float64)
        uv = tf.random.stateless_uniform(tf.concat([[2, _POLAR_ROUNDS], shape], 0), seed, -1.0, 1.0,
                                         dtype=tf.float64)
        u, v = uv[0], uv[1]
        w = u * u + v * v
        accepted = (w <= 1.0) & (w > 0.0)
        first = tf.argmax(tf.cast(accepted, tf.int32), axis=0, output_type=tf.int32)
        pick = tf.cast(tf.equal(tf.range(_POLAR_ROUNDS)[:, None, None], first[None]) & accepted, tf.float64)
        u = tf.reduce_sum(pick * u, 0)
        w = tf.reduce_sum(pick * w, 0) + (1.0 - tf.reduce_sum(pick, 0))
        t = u * tf.sqrt(nu * tf.math.expm1(-2.0 / nu * tf.math.log(w)) / w)
        return tf.cast(t, tf.float32)

    def log_prob(self, x, labels=None):
        """Exact log-density of x (network units; dequantised levels scaled to (0, 1))."""
        bij = self.bijector(labels)
        z = bij.inverse(x)
        return self.base_log_prob(z) + bij.inverse_log_det_jacobian(x, event_ndims=1)

    def to_base(self, x, labels=None):
        return self.bijector(labels).inverse(x)

    def from_base(self, z, labels=None):
        return self.bijector(labels).forward(z)

    def dequantise(self, x):
        """Integer levels → (x + u) / L with u ~ U(0, 1): the uniform dequantisation of the data."""
        u = keras.random.uniform(ops.shape(x), seed=self.seed_generator)
        return (ops.cast(x, "float32") + u) / float(self.n_levels)

    def initialize_actnorm(self, x, labels=None):
        """Data-dependent init (Kingma & Dhariwal, 2018): every actnorm starts by mapping its input,
        on this batch, to zero mean and unit variance per dimension."""
        h = self._preprocess()[0].inverse(x) if self.n_levels is not None else x
        for i in range(self.n_layers):
            self.act_loc[i].assign(ops.mean(h, 0))
            self.act_log_scale[i].assign(ops.log(ops.std(h, 0) + 1e-6))
            h = tfb.Chain(self._layer_steps(i, labels)).inverse(h)

    # -- Keras hooks -------------------------------------------------------------------------------
    def _loss(self, data, training=False):
        x, labels = data if isinstance(data, (tuple, list)) else (data, None)
        if self.n_levels is not None:
            x = self.dequantise(x)
        elif training and self.noise_std:
            x = x + self.noise_std * keras.random.normal(ops.shape(x), seed=self.seed_generator)
        return -batch_mean(self.log_prob(x, labels))

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._loss(data, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss, sample_weight=batch_weight(data))
        return self.step_logs()

    def test_step(self, data):
        self.loss_tracker.update_state(self._loss(data), sample_weight=batch_weight(data))
        return self.step_logs()

    def call(self, inputs, training=False):
        """A training batch (integer levels at their bin centres) mapped to the base space."""
        x, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        if self.n_levels is not None:
            x = (ops.cast(x, "float32") + 0.5) / float(self.n_levels)
        return self.to_base(x, labels)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "n_layers": self.n_layers,
                "hidden_units": list(self.hidden_units), "flow_type": self.flow_type,
                "n_classes": self.n_classes, "n_levels": self.n_levels,
                "image_shape": None if self.image_shape is None else list(self.image_shape),
                "logit_alpha": self.logit_alpha, "base": self.base, "base_df": self.base_df, "noise_std": self.noise_std, "image_layout": self.image_layout, "seed": self.seed}


class Flow(ClassNamePrefixFeaturesOutMixin, TransformerMixin, GenerativeEstimator):
    """Class-conditional normalizing flow (RealNVP or MAF) with a scikit-learn API.

    The density is exact: ``score_samples`` is log p(x) by the change of variables, and
    ``transform`` / ``inverse_transform`` map data to the base space (Student-t or standard
    normal coordinates) and back.

    Parameters
    ----------
    flow_type : {"auto", "realnvp", "maf"}, default="auto"
        ``"realnvp"``: affine coupling layers (``tfb.RealNVP``); density and sampling each take
        one pass per layer. ``"maf"``: masked autoregressive layers
        (``tfb.MaskedAutoregressiveFlow``); density in one pass, but sampling takes one pass per
        dimension, so it is slow to sample from high-dimensional data. ``"auto"``: MAF for
        feature vectors (the better held-out density on the tabular benchmarks) and RealNVP for
        images (fast sampling of many pixels); the choice is stored in ``flow_type_``.
    n_layers : int, default=8
        Flow layers, each actnorm → permutation → coupling/autoregressive transform.
    hidden_units : tuple of int, default=(256, 256)
        Hidden widths of each layer's network.
    image_layout : {"squeeze", "checkerboard"}, default="squeeze"
        How RealNVP couplings split an image into the half they transform and the half they
        condition on. ``"checkerboard"``: the two colours of a checkerboard take turns.
        ``"squeeze"``: RealNVP's multi-scale layout with dense networks (Dinh et al., 2017):
        after a squeeze a 2×2 block becomes 4 channels and halving the channels splits the block
        by rows or by columns, so the layers cycle through checkerboard, row and column splits.
        Unused by MAF and for feature vectors (seeded random orders).
    base : {"student_t", "normal"}, default="student_t"
        Base distribution: independent Student-t coordinates (heavy tails, Jaini et al., 2020:
        a point far outside the training data still gets a finite, moderate density) or a
        standard normal.
    base_df : float > 1 or None, default=5.0
        Degrees of freedom of the Student-t base, the same for every dimension; ``None`` learns
        one per dimension by maximum likelihood (starting at 10). Ignored for ``base="normal"``.
    noise_std : float, default=0.0
        Standard deviation of Gaussian noise added to continuous training data (in standardised
        units) at every step, a regulariser for small data sets; the density is still exact for
        the model fitted.
    logit_alpha : float, default=1e-3
        Integer data is dequantised to (0, 1) and mapped through logit(alpha + (1 - 2 alpha) x);
        the Jacobian of that map is part of the density. A small alpha keeps the many pixels at
        the lowest level (digits' background) spread out instead of squashed together (digits,
        median of 3 seeds: 2.102 bits/dim with 0.05, 2.022 with 1e-3; 1e-5 is no better).
    n_dequantization : int, default=16
        Dequantisation draws K that ``score_samples`` combines on integer data into the
        importance-weighted bound log (1/K) sum_k p((x + u_k) / L) - D log L.
    epochs : int, default=300
    batch_size : int, default=64
    learning_rate : float, default=1e-3
    validation_fraction : float, default=0.1
        Held-out share for early stopping (0 disables it).
    patience : int, default=15
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        0 silent, 1 one progress bar over the epochs, 2 a line per epoch.

    Attributes
    ----------
    flow_type_ : str
        ``"realnvp"`` or ``"maf"``, as fitted.
    model_ : FlowModel
    history_ : dict
    classes_ : ndarray or None
    input_shape_ : tuple
    n_features_in_ : int

    Notes
    -----
    Images are flattened; under RealNVP the first coupling of the stack splits them on a
    checkerboard and later couplings alternate the two colours (the spatial masks of Dinh et
    al., 2017, with dense networks). Integer data with at most 32 levels (e.g. digits, 0..16) is
    modelled by uniform dequantisation: ``score_samples`` then returns a lower bound on the log
    *probability* of the integer values, log (1/K) sum_k p((x + u_k) / L) - D log L with K =
    ``n_dequantization`` fixed draws (deterministic); K = 1 is the plain bound E_u log p - D log L,
    and larger K tightens it (Burda et al., 2016; Ho et al., 2019).

    The coupling and MADE networks see their inputs soft-clipped to about ±4 (standardised
    units after actnorm), so they do not extrapolate far outside the training range.

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from synthaug import Flow
    >>> X = load_wine().data
    >>> flow = Flow(n_layers=2, hidden_units=(32,), epochs=5, random_state=0).fit(X)
    >>> flow.generate(3, random_state=0).shape
    (3, 13)
    """

    _parameter_constraints = {
        "flow_type": Options("auto", "realnvp", "maf"), "n_layers": POSITIVE_INT, "hidden_units": PositiveInts(),
        "logit_alpha": Interval(0.0, 0.5, closed="neither"), "n_dequantization": POSITIVE_INT,
        "epochs": POSITIVE_INT, "batch_size": POSITIVE_INT, "learning_rate": POSITIVE,
        "validation_fraction": FRACTION, "patience": POSITIVE_INT, "base": Options("normal", "student_t"),
        "noise_std": Interval(0.0, None), "image_layout": Options("squeeze", "checkerboard"),
        "verbose": VERBOSE,
    }

    def __init__(self, flow_type: str = "auto", n_layers: int = 8, hidden_units=(256, 256),
                 image_layout: str = "squeeze", base: str = "student_t", base_df: float | None = 5.0,
                 noise_std: float = 0.0, logit_alpha: float = 1e-3, n_dequantization: int = 16, epochs: int = 300,
                 batch_size: int = 64, learning_rate: float = 1e-3, validation_fraction: float = 0.1,
                 patience: int = 15, random_state=None, verbose: int = 0):
        self.flow_type = flow_type
        self.n_layers = n_layers
        self.hidden_units = hidden_units
        self.image_layout = image_layout
        self.base = base
        self.base_df = base_df
        self.noise_std = noise_std
        self.logit_alpha = logit_alpha
        self.n_dequantization = n_dequantization
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Fit the flow by maximum likelihood on X (and labels y, which make it conditional).

        Parameters
        ----------
        X : array-like of shape (n_samples, d), (n_samples, H, W) or (n_samples, H, W, C), or tf.data.Dataset
            A ``tf.data.Dataset`` of features or (features, labels), batched or not (e.g. from
            ``keras.utils.image_dataset_from_directory``), is streamed, never held in memory:
            one pass learns the data's range, levels, classes and scaling, then training reads
            it once per epoch; the validation split takes the examples whose feature hash
            falls in the ``validation_fraction`` share, the same ones on every pass.
        y : array-like of shape (n_samples,), default=None
            Labels (``None`` for a dataset: its labels come with its elements).

        Returns
        -------
        self : Flow
        """
        self._validate_params()
        if self.base_df is not None:  # None: learned
            Interval(_MIN_DF, None, closed="neither").check("base_df", self.base_df)
            if not np.isfinite(self.base_df):  # the Gaussian limit: say so, rather than diverge in fit
                raise ValueError(f"base_df must be finite; got {self.base_df!r} (for a Gaussian base use "
                                 "base='normal')")
        Z, codes = self._fit_data(X, y)
        if Z.shape[1] < 2:
            raise ValueError("a flow needs at least 2 values per sample; got 1 feature(s)")
        rng, seed = self._fit_random_state()
        flow_type = self.flow_type
        if flow_type == "auto":
            flow_type = "maf" if self._image_shape() is None else "realnvp"
        self.model_ = FlowModel(
            input_dim=Z.shape[1], n_layers=self.n_layers, hidden_units=self.hidden_units,
            flow_type=flow_type, n_classes=0 if codes is None else len(self.classes_),
            n_levels=self.n_levels_, image_shape=self._image_shape(), logit_alpha=self.logit_alpha,
            base=self.base, base_df=self.base_df, noise_std=self.noise_std, image_layout=self.image_layout, seed=seed,
        )
        init_Z, init_codes = sample_rows(Z, codes, rng, 1000)
        self.model_.initialize_actnorm(self._continuous(init_Z, rng), init_codes)
        self.model_.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)))
        self.history_ = fit_model(self, self.model_, Z, codes, rng, seed)
        return self

    @property
    def flow_type_(self) -> str:
        """``"realnvp"`` or ``"maf"``: the layers fitted (``flow_type="auto"`` resolved)."""
        return self.model_.flow_type

    # -- network units <-> flow space ------------------------------------------------------------
    def _continuous(self, Z, rng=None):
        """Network units → the flow's continuous data space: levels are dequantised to (0, 1)
        with uniform noise (or the cell midpoint when ``rng`` is None)."""
        if self.n_levels_ is None:
            return np.asarray(Z, dtype=np.float32)
        u = 0.5 if rng is None else rng.uniform(size=Z.shape)
        return ((Z + u) / self.n_levels_).astype(np.float32)

    def _discrete(self, V):
        """The flow's data space → network units (the level whose cell holds the value)."""
        if self.n_levels_ is None:
            return V
        return np.clip(np.floor(V * self.n_levels_), 0, self.n_levels_ - 1).astype(np.int32)

    def _compiled(self, name):
        fns = self.model_.__dict__.setdefault("_compiled_fns", {})
        if name not in fns:
            fns[name] = tf.function(getattr(self.model_, name), reduce_retracing=True)
        return fns[name]

    def _batched(self, name, V, codes, batch_size=4096):
        return self._batched_call(self._compiled(name), V, codes, batch_size)

    # -- sampling ----------------------------------------------------------------------------------
    def generate(self, n_samples: int, y=None, random_state=None, temperature: float = 1.0, *,
                 watermark: bool = True):
        """Draw synthetic samples; see :meth:`GenerativeEstimator.generate`.

        ``temperature`` scales the base-space noise (samples ``forward(temperature * z)``, z from
        the base distribution):
        below 1 trades diversity for typical-looking samples, as flows are usually sampled.
        """
        POSITIVE_FINITE.check("temperature", temperature)
        return self._generate(n_samples, y, random_state, watermark=watermark, temperature=float(temperature))

    def _sample_network(self, n_samples, codes, rng, temperature=1.0):
        shape = (n_samples, int(np.prod(self.input_shape_)))
        if self.model_.base == "normal":
            Zb = rng.standard_normal(shape)
        else:
            Zb = rng.standard_t(ops.convert_to_numpy(self.model_.degrees_of_freedom()), size=shape)
        Zb = (temperature * Zb).astype(np.float32)
        return self._discrete(self._batched("from_base", Zb, codes))

    _GRAPH_PRECISIONS = ("float32",)  # the bijectors' log-scales and actnorm stay float32

    def _sample_network_graph(self, n, codes, seed, model):
        """``_sample_network`` in-graph with stateless noise (see ``GenerativeEstimator._sample_graph``)."""
        V = model.from_base(model.sample_base_graph(n, seed), codes)
        if self.n_levels_ is None:
            return V
        return tf.cast(tf.clip_by_value(tf.floor(V * self.n_levels_), 0, self.n_levels_ - 1), tf.int32)

    # -- exact maps and density --------------------------------------------------------------------
    def transform(self, X, y=None):
        """Map X to the flow's base space, shape (n_samples, n_dimensions).

        A conditional flow maps each sample with its label ``y``; without labels it uses the
        class the model finds most probable for the sample, argmax_c p(c) p(x | c). Integer data
        enters at its cell midpoints.
        """
        Z = self._to_network(self._validate_X(X, reset=False))
        V = self._continuous(Z)
        if self.classes_ is not None and y is None:
            codes = np.argmax([self._batched("log_prob", V, np.full(len(V), c)) + np.log(self.class_prior_[c])
                               for c in range(len(self.classes_))], axis=0)
        else:
            codes = self._check_label_input(Z, y)
        return self._batched("to_base", V, codes)

    def fit_transform(self, X, y=None):
        """Fit, then map X (with its labels, for a conditional flow) to the base space."""
        return self.fit(X, y).transform(X, y)

    def inverse_transform(self, X, y=None):
        """Map base-space points back to data (exact inverse of :meth:`transform` for continuous data)."""
        check_is_fitted(self)
        Zb = np.asarray(X, dtype=np.float32)
        d = int(np.prod(self.input_shape_))
        if Zb.ndim != 2 or Zb.shape[1] != d:
            raise ValueError(f"base-space points must have shape (n, {d}); got {Zb.shape}")
        V = self._batched("from_base", Zb, self._check_label_input(Zb, y))
        return self._from_network(self._discrete(V), clip=False)

    def score_samples(self, X, y=None):
        """Log-density of each sample in the units of X as given to ``fit`` (exact, by change of
        variables); for integer data a dequantisation lower bound on the log-probability (nats).

        A conditional flow given ``y`` returns log p(x | y); without ``y`` it returns
        log p(x) = log sum_c p(c) p(x | c). For integer data, a row holding a value off the levels
        seen in fit (out of range, or not an integer) scores -inf: its probability is 0.
        """
        X = self._validate_X(X, reset=False)
        Z = self._to_network(X)
        draws = 1 if self.n_levels_ is None else self.n_dequantization
        rng = np.random.RandomState(0)
        V = [self._continuous(Z, rng if self.n_levels_ is not None else None) for _ in range(draws)]

        def log_p(codes):
            # log mean_k p(v_k): an importance-weighted bound (Ho et al., 2019), tighter than
            # mean_k log p(v_k) and as valid, since E log mean_k p(v_k) <= log E p(v) = log P(x).
            logs = np.stack([self._batched("log_prob", v, codes).astype(np.float64) for v in V])
            return logsumexp(logs, axis=0) - np.log(len(V))

        out = self._log_marginal(log_p, len(Z), y)
        if self.n_levels_ is not None:
            return self._with_off_levels_impossible(out - Z.shape[1] * np.log(self.n_levels_), X)
        return out + self._log_jacobian()

    @property
    def _n_features_out(self):
        return int(np.prod(self.input_shape_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
