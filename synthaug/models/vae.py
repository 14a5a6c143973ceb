"""Class-conditional variational autoencoder: the Keras model and its estimator."""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from synthaug._param_validation import FRACTION, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, VERBOSE, Options, PositiveInts
from synthaug.base import GenerativeEstimator
from synthaug.models.networks import MLP, ConvDecoder, ConvEncoder
from synthaug.models.training import BuiltModelMixin, batch_mean, batch_weight, fit_model

_LOG_2PI = math.log(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="synthaug")
class VAEModel(BuiltModelMixin, keras.Model):
    """Encoder q(z|x), decoder p(x|z, y) and an importance-weighted training objective.

    The encoder does not see the label, so encoding needs no labels; the decoder does, which
    makes the model class-conditional. ``likelihood`` is ``"categorical"`` (a softmax over
    ``n_levels`` integer levels per dimension) or ``"gaussian"`` (mean and log-scale per dimension).
    """

    def __init__(self, input_dim, latent_dim=16, hidden_units=(512, 512), n_classes=0,
                 likelihood="gaussian", n_levels=None, dropout=0.0, n_importance=1, seed=None,
                 image_shape=None, conv_filters=(16, 32), free_bits=0.0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.latent_dim = int(latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.n_classes = int(n_classes)
        self.likelihood = likelihood
        self.n_levels = None if n_levels is None else int(n_levels)
        self.dropout = float(dropout)
        self.n_importance = int(n_importance)
        self.seed = seed
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.conv_filters = tuple(int(f) for f in conv_filters)
        self.free_bits = float(free_bits)
        per_dim = self.n_levels if likelihood == "categorical" else 2
        decoder_seed = None if seed is None else seed + 1000
        if self.image_shape is None:
            self.encoder = MLP(self.input_dim, self.hidden_units, 2 * self.latent_dim, self.dropout, seed,
                               name="encoder")
            self.decoder = MLP(self.latent_dim + self.n_classes, self.hidden_units[::-1],
                               self.input_dim * per_dim, self.dropout, decoder_seed, name="decoder")
        else:
            self.encoder = ConvEncoder(self.image_shape, self.conv_filters, self.hidden_units[0],
                                       2 * self.latent_dim, self.dropout, seed, name="encoder")
            self.decoder = ConvDecoder(self.latent_dim + self.n_classes, self.image_shape, self.conv_filters,
                                       self.hidden_units[0], per_dim, self.dropout, decoder_seed, name="decoder")
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Weight of the KL term during training (KL annealing); the validation loss always uses 1.
        self.kl_weight = keras.Variable(1.0, trainable=False, name="kl_weight")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.built = True  # the sub-networks build themselves from input_dim

    # -- pieces ---------------------------------------------------------------------------------
    def _encoder_input(self, x):
        x = ops.cast(x, "float32")
        if self.likelihood == "categorical":
            x = x / float(self.n_levels - 1) * 2.0 - 1.0
        return x

    def encode(self, x, training=False):
        h = self.encoder(self._encoder_input(x), training=training)
        return h[:, : self.latent_dim], ops.clip(h[:, self.latent_dim:], -12.0, 8.0)

    def decode(self, z, labels, training=False):
        """Decoder parameters: logits (B, D, L) or mean and log-scale (B, D, 2)."""
        if self.n_classes:
            z = ops.concatenate([z, ops.one_hot(labels, self.n_classes)], axis=-1)
        out = self.decoder(z, training=training)
        per_dim = self.n_levels if self.likelihood == "categorical" else 2
        return ops.reshape(out, (-1, self.input_dim, per_dim))

    def log_likelihood(self, x, params):
        if self.likelihood == "categorical":
            return -ops.sum(ops.sparse_categorical_crossentropy(ops.cast(x, "int32"), params, from_logits=True), -1)
        mean, log_scale = params[..., 0], ops.clip(params[..., 1], -7.0, 5.0)
        return -0.5 * ops.sum(ops.square((x - mean) / ops.exp(log_scale)) + 2.0 * log_scale + _LOG_2PI, -1)

    def log_weights(self, x, labels, eps, training=False, kl_weight=1.0):
        """log p(x, z | y) - log q(z | x) for eps of shape (k, B, latent) or (k, latent).

        ``kl_weight`` scales the log p(z) - log q(z|x) part (KL annealing; 1 is the true bound).
        """
        mu, logvar = self.encode(x, training=training)
        if len(eps.shape) == 2:
            eps = ops.broadcast_to(eps[:, None, :], (eps.shape[0], ops.shape(mu)[0], self.latent_dim))
        k = eps.shape[0]
        z = mu[None] + ops.exp(0.5 * logvar)[None] * eps
        zf = ops.reshape(z, (-1, self.latent_dim))
        lf = None if labels is None else ops.tile(labels, (k,))
        xf = ops.tile(x, (k, 1))
        ll = ops.reshape(self.log_likelihood(xf, self.decode(zf, lf, training=training)), (k, -1))
        log_pz = -0.5 * ops.sum(ops.square(z) + _LOG_2PI, -1)
        log_qz = -0.5 * ops.sum(ops.square(eps) + _LOG_2PI + logvar[None], -1)
        return ll + kl_weight * (log_pz - log_qz), mu, logvar, ll

    def _objective(self, data, training):
        """Training loss (annealed, free-bits) when ``training``; else the true negative bound."""
        x, labels = data if isinstance(data, (tuple, list)) else (data, None)
        eps = keras.random.normal((self.n_importance, ops.shape(x)[0], self.latent_dim), seed=self.seed_generator)
        kl_weight = self.kl_weight if training else 1.0
        lw, mu, logvar, ll = self.log_weights(x, labels, eps, training=training, kl_weight=kl_weight)
        kl_per_dim = 0.5 * (ops.square(mu) + ops.exp(logvar) - 1.0 - logvar)
        kl = ops.sum(kl_per_dim, -1)
        if training and self.free_bits > 0:
            # Free bits (Kingma et al., 2016): each latent dimension's KL counts at least
            # free_bits nats, so the encoder is not pushed to switch dimensions off. It is
            # defined on the ELBO, so the importance samples are averaged, not log-mean-exp'd.
            kl_term = ops.sum(ops.maximum(batch_mean(kl_per_dim, 0), self.free_bits))
            return -batch_mean(ll) + kl_weight * kl_term, batch_mean(kl)
        bound = ops.logsumexp(lw, axis=0) - math.log(self.n_importance)
        return -batch_mean(bound), batch_mean(kl)

    def compiled_decode(self):
        """``decode`` as a cached ``tf.function`` (twice as fast as eager calls when sampling)."""
        fn = self.__dict__.get("_compiled_decode")
        if fn is None:
            fn = tf.function(lambda z, labels: self.decode(z, labels), reduce_retracing=True)
            object.__setattr__(self, "_compiled_decode", fn)  # not a tracked Keras attribute
        return fn

    # -- Keras hooks ------------------------------------------------------------------------
    def call(self, inputs, training=False):
        x, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        mu, _ = self.encode(x, training=training)
        return self.decode(mu, labels, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, self.kl_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, kl = self._objective(data, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss, sample_weight=batch_weight(data))
        self.kl_tracker.update_state(kl, sample_weight=batch_weight(data))
        return self.step_logs()

    def test_step(self, data):
        loss, kl = self._objective(data, training=False)
        self.loss_tracker.update_state(loss, sample_weight=batch_weight(data))
        self.kl_tracker.update_state(kl, sample_weight=batch_weight(data))
        return self.step_logs()

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim, "latent_dim": self.latent_dim,
            "hidden_units": list(self.hidden_units), "n_classes": self.n_classes,
            "likelihood": self.likelihood, "n_levels": self.n_levels, "dropout": self.dropout,
            "n_importance": self.n_importance, "seed": self.seed,
            "image_shape": None if self.image_shape is None else list(self.image_shape),
            "conv_filters": list(self.conv_filters), "free_bits": self.free_bits,
        }


class _KLWarmup(keras.callbacks.Callback):
    """Linear KL annealing: weight (epoch + 1) / epochs, then 1."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(min(1.0, (epoch + 1) / self.epochs))

    def on_train_end(self, logs=None):
        self.model.kl_weight.assign(1.0)


class VAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, GenerativeEstimator):
    """Class-conditional variational autoencoder with a scikit-learn API.

    Parameters
    ----------
    latent_dim : int, default=16
        Size of the latent code.
    hidden_units : tuple of int, default=(512, 512)
        Widths of the encoder's hidden layers (the decoder mirrors them). The convolutional
        networks use ``hidden_units[0]`` as the width of their dense layer.
    architecture : {"auto", "conv", "mlp"}, default="auto"
        ``"conv"``: strided convolutions in the encoder and transposed ones in the decoder,
        for images; ``"mlp"``: dense networks on the flattened sample. ``"auto"`` picks
        ``"conv"`` for images (``(n, H, W)`` or ``(n, H, W, C)``) and ``"mlp"`` for tabular data.
    conv_filters : tuple of int, default=(16, 32)
        Filters of the convolutional blocks, one halving of the image each.
    likelihood : {"auto", "categorical", "gaussian"}, default="auto"
        ``"categorical"``: a softmax over the integer levels of the data (a discretised
        likelihood; chosen by ``"auto"`` for integer data with at most 32 levels, such as
        digits' 0..16). ``"gaussian"``: continuous data, a mean and log-scale per dimension.
    dropout : float, default=0.3
        Dropout rate in both networks (the data sets synthaug targets are small).
    decoder_output : {"sample", "mean"}, default="sample"
        What ``generate`` returns for a latent draw: ``"sample"`` draws every pixel/feature from
        the decoder's distribution (what ``score_samples`` scores; pixels are independent given
        the latent code, so images look speckled), ``"mean"`` returns the decoder's expected
        value (smooth images, rounded to the nearest level for integer data; the usual choice
        for augmentation). Only affects ``generate``; it can be changed after fit.
    kl_warmup_epochs : int, default=0
        KL annealing: the weight of the KL term grows linearly from ``1 / kl_warmup_epochs``
        to 1 over this many epochs (0 disables it). The validation loss used for early
        stopping is always the true bound.
    free_bits : float, default=0.0
        Free bits (nats per latent dimension): each dimension's batch-averaged KL counts at
        least this much in the training loss, which keeps latent dimensions in use. When
        positive, training uses the ELBO with the importance samples averaged.
    n_importance_train : int, default=2
        Importance samples in the training objective (1 is the ELBO; more gives the IWAE bound).
    n_importance : int, default=1000
        Importance samples used by ``score_samples``.
    epochs : int, default=300
        Maximum epochs; early stopping usually ends training sooner.
    batch_size : int, default=128
    learning_rate : float, default=3e-3
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping (0 disables early stopping).
    patience : int, default=10
        Epochs without improvement of the validation loss before training stops; the best
        weights are restored.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, shuffling and the validation split.
    verbose : int, default=0
        0 silent, 1 one progress bar over the epochs, 2 a line of losses per epoch.

    Attributes
    ----------
    model_ : VAEModel
        The fitted Keras model.
    history_ : dict
        Per-epoch training (and validation) losses.
    classes_ : ndarray or None
        Labels seen in ``fit``; ``None`` for an unconditional model.
    input_shape_ : tuple
        Shape of one sample.
    n_features_in_ : int
        ``X.shape[1]`` as scikit-learn defines it (the height for images).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from synthaug import VAE
    >>> digits = load_digits()
    >>> vae = VAE(epochs=5, random_state=0).fit(digits.images, digits.target)
    >>> X, y = vae.generate(4, random_state=0)
    >>> X.shape, y.shape
    ((4, 8, 8), (4,))
    """

    _parameter_constraints = {
        "latent_dim": POSITIVE_INT, "hidden_units": PositiveInts(), "architecture": Options("auto", "conv", "mlp"),
        "conv_filters": PositiveInts(), "likelihood": Options("auto", "categorical", "gaussian"),
        "decoder_output": Options("sample", "mean"), "dropout": FRACTION, "kl_warmup_epochs": NON_NEGATIVE_INT,
        "free_bits": NON_NEGATIVE, "n_importance_train": POSITIVE_INT, "n_importance": POSITIVE_INT,
        "epochs": POSITIVE_INT, "batch_size": POSITIVE_INT, "learning_rate": POSITIVE,
        "validation_fraction": FRACTION, "patience": POSITIVE_INT, "verbose": VERBOSE,
    }

    def __init__(self, latent_dim: int = 16, hidden_units=(512, 512), architecture: str = "auto",
                 conv_filters=(16, 32), likelihood: str = "auto", decoder_output: str = "sample",
                 dropout: float = 0.3,
                 kl_warmup_epochs: int = 0, free_bits: float = 0.0,
                 n_importance_train: int = 2, n_importance: int = 1000,
                 epochs: int = 300, batch_size: int = 128, learning_rate: float = 3e-3,
                 validation_fraction: float = 0.1, patience: int = 10, random_state=None,
                 verbose: int = 0):
        self.latent_dim = latent_dim
        self.hidden_units = hidden_units
        self.architecture = architecture
        self.conv_filters = conv_filters
        self.likelihood = likelihood
        self.decoder_output = decoder_output
        self.dropout = dropout
        self.kl_warmup_epochs = kl_warmup_epochs
        self.free_bits = free_bits
        self.n_importance_train = n_importance_train
        self.n_importance = n_importance
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Fit the VAE on X (and labels y, which make it class-conditional).

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
        self : VAE
        """
        self._validate_params()
        Z, codes = self._fit_data(X, y, discrete=self.likelihood != "gaussian")
        if self.likelihood == "categorical" and self.n_levels_ is None:
            raise ValueError("likelihood='categorical' needs integer data with at most 32 levels")
        likelihood = "categorical" if self.n_levels_ is not None else "gaussian"
        image_shape = self._conv_shape(self.architecture)
        rng, seed = self._fit_random_state()
        self.model_ = VAEModel(
            input_dim=Z.shape[1], latent_dim=self.latent_dim, hidden_units=self.hidden_units,
            n_classes=0 if codes is None else len(self.classes_), likelihood=likelihood,
            n_levels=self.n_levels_, dropout=self.dropout, n_importance=self.n_importance_train, seed=seed,
            image_shape=image_shape, conv_filters=self.conv_filters, free_bits=self.free_bits,
        )
        self.model_.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)))
        warmup = [_KLWarmup(self.kl_warmup_epochs)] if self.kl_warmup_epochs else []
        self.history_ = fit_model(self, self.model_, Z, codes, rng, seed, warmup)
        return self


    # -- sampling -------------------------------------------------------------------------------
    def _decode_params(self, latent, codes, batch_size=4096):
        return self._batched_call(self.model_.compiled_decode(), latent.astype("float32"), codes, batch_size)

    def _sample_from_params(self, params, rng):
        if self.model_.likelihood == "categorical":
            # Inverse-CDF sampling of every dimension at once, in float32 (half the memory
            # traffic of float64, which is what limits generation speed here).
            probs = np.exp(params - params.max(-1, keepdims=True), dtype=np.float32)
            cdf = np.cumsum(probs, -1, out=probs)
            u = rng.random_sample(cdf.shape[:-1] + (1,)).astype(np.float32) * cdf[..., -1:]
            return np.minimum((cdf < u).sum(-1), self.n_levels_ - 1)
        mean, log_scale = params[..., 0], np.clip(params[..., 1], -7.0, 5.0)
        return mean + np.exp(log_scale) * rng.standard_normal(mean.shape)

    def _sample_network(self, n_samples, codes, rng):
        latent = rng.standard_normal((n_samples, self.latent_dim))
        if self.decoder_output not in ("sample", "mean"):
            raise ValueError(f"decoder_output must be 'sample' or 'mean'; got {self.decoder_output!r}")
        params = self._decode_params(latent, codes)
        if self.decoder_output == "mean":
            return self._mean(params)
        return self._sample_from_params(params, rng)

    def _sample_network_graph(self, n, codes, seed, model):
        """``_sample_network`` in-graph with stateless noise (see ``GenerativeEstimator._sample_graph``)."""
        seed_z, seed_x = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        z = tf.random.stateless_normal(tf.stack([tf.cast(n, tf.int32), self.latent_dim]), seed_z)
        params = tf.cast(model.decode(z, codes), tf.float32)
        if self.model_.likelihood == "categorical":
            if self.decoder_output == "mean":
                levels = tf.range(self.n_levels_, dtype=tf.float32)
                return tf.cast(tf.round(tf.reduce_sum(tf.nn.softmax(params) * levels, -1)), tf.int32)
            draws = tf.random.stateless_categorical(tf.reshape(params, (-1, self.n_levels_)), 1, seed_x)
            return tf.reshape(tf.cast(draws, tf.int32), tf.shape(params)[:2])
        mean = params[..., 0]
        if self.decoder_output == "mean":
            return mean
        scale = tf.exp(tf.clip_by_value(params[..., 1], -7.0, 5.0))
        return mean + scale * tf.random.stateless_normal(tf.shape(mean), seed_x)

    def _mean(self, params):
        """The decoder's expected value (for levels: rounded to the nearest level)."""
        if self.model_.likelihood == "categorical":
            probs = np.exp(params - params.max(-1, keepdims=True), dtype=np.float32)
            probs /= probs.sum(-1, keepdims=True)
            return np.rint(probs @ np.arange(self.n_levels_, dtype=np.float32)).astype(np.int32)
        return params[..., 0]

    def _mode(self, params):
        if self.model_.likelihood == "categorical":
            return params.argmax(-1)
        return params[..., 0]

    # -- latent space ---------------------------------------------------------------------------
    def transform(self, X):
        """Encode X to the posterior mean of its latent code, shape (n_samples, latent_dim)."""
        Z = self._to_network(self._validate_X(X, reset=False))
        mu, _ = self.model_.encode(ops.convert_to_tensor(Z))
        return ops.convert_to_numpy(mu).astype(np.float32)

    def inverse_transform(self, X, y=None):
        """Decode latent codes to data (the decoder's most likely value per dimension).

        ``y`` (labels) is required by a class-conditional model.
        """
        check_is_fitted(self)
        latent = np.asarray(X, dtype=np.float32)
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ValueError(f"latent codes must have shape (n, {self.latent_dim}); got {latent.shape}")
        codes = self._check_label_input(latent, y)
        return self._from_network(self._mode(self._decode_params(latent, codes)))

    def reconstruct(self, X, y=None):
        """Encode and decode X: its reconstruction in the caller's units."""
        return self.inverse_transform(self.transform(X), y)

    # -- likelihood -----------------------------------------------------------------------------
    def score_samples(self, X, y=None):
        """Importance-weighted lower bound (IWAE, ``n_importance`` samples) on log p(x), per sample.

        For integer data with a categorical likelihood it bounds the log-probability (nats) of
        the integer values; for continuous data the log-density in the units of X as given to
        ``fit``. This is a *lower bound*, tight as ``n_importance`` grows. A conditional model
        given ``y`` returns log p(x | y); without ``y`` it returns log p(x) = log sum_c p(c) p(x | c).
        The importance samples are fixed, so the result is deterministic and per-sample. With the
        categorical likelihood, a row holding a value off the integer levels seen in fit (out of
        range, or not an integer) scores -inf: its probability is 0.
        """
        X = self._validate_X(X, reset=False)
        Z = self._to_network(X)
        eps = np.random.RandomState(0).standard_normal((self.n_importance, self.latent_dim)).astype("float32")
        log_p = self._log_marginal(lambda codes: self._iw_bound(Z, codes, eps), len(Z), y) + self._log_jacobian()
        return self._with_off_levels_impossible(log_p, X)

    def _iw_bound(self, Z, codes, eps, chunk=200):
        k = len(eps)
        batch = max(1, 20000 // k)
        out = []
        for i in range(0, len(Z), batch):
            x = ops.convert_to_tensor(Z[i:i + batch])
            labels = None if codes is None else ops.convert_to_tensor(codes[i:i + batch].astype("int32"))
            lw = np.concatenate([
                ops.convert_to_numpy(self.model_.log_weights(x, labels, ops.convert_to_tensor(eps[j:j + chunk]))[0])
                for j in range(0, k, chunk)
            ]).astype(np.float64)
            top = lw.max(0)
            out.append(top + np.log(np.exp(lw - top).mean(0)))
        return np.concatenate(out)

    @property
    def _n_features_out(self):
        return self.latent_dim

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
