"""Class-conditional Wasserstein GAN with gradient penalty: the Keras model and its estimator."""
from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from synthaug._param_validation import FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, VERBOSE, Options, PositiveInts
from synthaug.base import GenerativeEstimator
from synthaug.models.networks import MLP, ConvDecoder, ConvEncoder
from synthaug.models.streamed import StreamedData
from synthaug.models.training import BuiltModelMixin

LOSSES = ("wgan-gp", "hinge", "non-saturating")
_MIN_CONV_SIDE = 16  # architecture="auto": smaller images get dense networks


@keras.saving.register_keras_serializable(package="synthaug")
class GANModel(BuiltModelMixin, keras.Model):
    """Generator G(z, y), projection critic D(x, y) and an exponential moving average (EMA) of G.

    Samples come from the EMA generator, which is smoother than the last iterate of an
    adversarial game. Data are flat, in network units: integer levels ``0..n_levels-1`` are
    dequantised to [-1, 1] on the fly (the generator ends in tanh) and continuous data are
    standardised (linear output). Each ``train_step`` takes ``n_critic * b`` real samples: one
    critic update per slice of ``b``, then one generator update with a fresh batch of ``b``.

    The critic is ``head(h) + <embed(y), h>`` on features ``h`` of the sample (the projection
    discriminator of Miyato & Koyama, 2018); the generator sees the one-hot label beside z.
    """

    def __init__(self, input_dim, latent_dim=32, hidden_units=(256, 256), n_classes=0, image_shape=None,
                 conv_filters=(32, 64), n_levels=None, loss="wgan-gp", gradient_penalty=10.0, n_critic=2,
                 ema_decay=0.999, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.latent_dim = int(latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.n_classes = int(n_classes)
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.conv_filters = tuple(int(f) for f in conv_filters)
        self.n_levels = None if n_levels is None else int(n_levels)
        self.loss_name = loss
        self.gradient_penalty = float(gradient_penalty)
        self.n_critic = int(n_critic)
        self.ema_decay = float(ema_decay)
        self.seed = seed
        s = (lambda i: None if seed is None else seed + 1000 * i)
        features = self.hidden_units[-1]
        self.generator = self._make_generator("generator", s(1))
        self.generator_ema = self._make_generator("generator_ema", s(1))
        self.generator_ema.trainable = False
        for ema, w in zip(self.generator_ema.weights, self.generator.weights):
            ema.assign(w)
        if self.image_shape is None:
            self.critic_body = MLP(self.input_dim, self.hidden_units[:-1], features, 0.0, s(2), name="critic_body")
        else:
            self.critic_body = ConvEncoder(self.image_shape, self.conv_filters, self.hidden_units[0], features,
                                           0.0, s(2), name="critic_body")
        self.critic_head = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(s(3)),
                                              name="critic_head")
        self.critic_head.build((None, features))
        self.class_embedding = None
        if self.n_classes:
            self.class_embedding = self.add_weight(
                shape=(self.n_classes, features), initializer=keras.initializers.GlorotUniform(s(4)),
                name="class_embedding")
        self.ema_updates = keras.Variable(0.0, trainable=False, name="ema_updates")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")
        self.built = True

    def _make_generator(self, name, seed):
        width = self.latent_dim + self.n_classes
        if self.image_shape is None:
            return MLP(width, self.hidden_units, self.input_dim, 0.0, seed, name=name)
        return ConvDecoder(width, self.image_shape, self.conv_filters, self.hidden_units[0], 1, 0.0, seed, name=name)

    # -- pieces ---------------------------------------------------------------------------------
    @property
    def critic_variables(self):
        extra = [] if self.class_embedding is None else [self.class_embedding]
        return self.critic_body.trainable_variables + self.critic_head.trainable_variables + extra

    def sample(self, z, labels=None, ema=True, training=False):
        """Generator output in network units (in [-1, 1] for levels) for latent codes z."""
        if self.n_classes:
            z = ops.concatenate([z, ops.one_hot(labels, self.n_classes)], axis=-1)
        out = (self.generator_ema if ema else self.generator)(z, training=training)
        return ops.tanh(out) if self.n_levels is not None else out

    def critic(self, x, labels=None, training=False):
        h = ops.gelu(self.critic_body(x, training=training))
        out = self.critic_head(h)[:, 0]
        if self.n_classes:
            out = out + ops.sum(ops.take(self.class_embedding, labels, axis=0) * h, axis=-1)
        return out

    def real_input(self, x):
        """Real data → the critic's input: levels get uniform noise, (x + u) / L mapped to [-1, 1]."""
        if self.n_levels is None:
            return ops.cast(x, "float32")
        u = keras.random.uniform(ops.shape(x), seed=self.seed_generator)
        return (ops.cast(x, "float32") + u) * (2.0 / self.n_levels) - 1.0

    def critic_loss(self, d_real, d_fake):
        if self.loss_name == "wgan-gp":
            return ops.mean(d_fake) - ops.mean(d_real)
        if self.loss_name == "hinge":
            return ops.mean(ops.relu(1.0 - d_real)) + ops.mean(ops.relu(1.0 + d_fake))
        return ops.mean(ops.softplus(-d_real)) + ops.mean(ops.softplus(d_fake))

    def generator_loss(self, d_fake):
        if self.loss_name == "non-saturating":
            return ops.mean(ops.softplus(-d_fake))
        return -ops.mean(d_fake)

    def penalty(self, real, fake, labels):
        """Gulrajani et al. (2017): E (||grad_x D(x_hat, y)|| - 1)^2 on random interpolates x_hat."""
        alpha = keras.random.uniform((ops.shape(real)[0], 1), seed=self.seed_generator)
        mixed = real + alpha * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            scores = self.critic(mixed, labels, training=True)
        grads = tape.gradient(scores, mixed)
        return ops.mean(ops.square(ops.sqrt(ops.sum(ops.square(grads), axis=-1) + 1e-12) - 1.0))

    def update_ema(self):
        if tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context():
            # Inside a distributed train_step: update the (mirrored) average once, across replicas.
            return tf.distribute.get_replica_context().merge_call(lambda _: self._update_ema())
        return self._update_ema()

    def _update_ema(self):
        # The decay ramps up from 0.1 (TensorFlow's ExponentialMovingAverage with num_updates),
        # so the average does not remember the random initial weights for thousands of steps.
        t = self.ema_updates
        decay = ops.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        for ema, w in zip(self.generator_ema.weights, self.generator.weights):
            ema.assign(decay * ema + (1.0 - decay) * w)
        t.assign_add(1.0)

    # -- Keras hooks ------------------------------------------------------------------------------
    def compile(self, critic_optimizer="adam", generator_optimizer="adam", **kwargs):
        """Two optimizers: ``critic_optimizer`` becomes ``self.optimizer``."""
        super().compile(optimizer=critic_optimizer, **kwargs)
        self.generator_optimizer = keras.optimizers.get(generator_optimizer)
        # Built here: optimizer variables cannot be created inside the traced train_step.
        self.optimizer.build(self.critic_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {"critic_optimizer": keras.optimizers.serialize(self.optimizer),
                "generator_optimizer": keras.optimizers.serialize(self.generator_optimizer)}

    def compile_from_config(self, config):
        self.compile(critic_optimizer=keras.optimizers.deserialize(config["critic_optimizer"]),
                     generator_optimizer=keras.optimizers.deserialize(config["generator_optimizer"]))

    @property
    def metrics(self):
        return [self.critic_loss_tracker, self.generator_loss_tracker, self.penalty_tracker,
                self.wasserstein_tracker]

    def critic_step(self, real, labels):
        """One critic update on a real batch (network units) and as many generated samples."""
        real = self.real_input(real)
        z = keras.random.normal((ops.shape(real)[0], self.latent_dim), seed=self.seed_generator)
        fake = self.sample(z, labels, ema=False, training=True)
        critic_vars = self.critic_variables
        b = ops.shape(real)[0]
        both_labels = None if labels is None else ops.concatenate([labels, labels], axis=0)
        with tf.GradientTape() as tape:
            scores = self.critic(ops.concatenate([real, fake], axis=0), both_labels, training=True)
            d_real, d_fake = scores[:b], scores[b:]
            loss = self.critic_loss(d_real, d_fake)
            gp = self.penalty(real, fake, labels) if self.gradient_penalty > 0 else ops.zeros(())
            total = loss + self.gradient_penalty * gp
        self.optimizer.apply_gradients(zip(tape.gradient(total, critic_vars), critic_vars))
        self.critic_loss_tracker.update_state(loss)
        self.penalty_tracker.update_state(gp)
        self.wasserstein_tracker.update_state(ops.mean(d_real) - ops.mean(d_fake))

    def generator_step(self, labels, batch_size):
        gen_vars = self.generator.trainable_variables
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            loss = self.generator_loss(self.critic(self.sample(z, labels, ema=False, training=True), labels,
                                                   training=True))
        self.generator_optimizer.apply_gradients(zip(tape.gradient(loss, gen_vars), gen_vars))
        self.update_ema()
        self.generator_loss_tracker.update_state(loss)

    def train_step(self, data):
        x, labels = data if isinstance(data, (tuple, list)) else (data, None)
        b = ops.shape(x)[0] // self.n_critic

        def one_critic_step(i):
            self.critic_step(x[i * b:(i + 1) * b], None if labels is None else labels[i * b:(i + 1) * b])
            return (i + 1,)

        if tf.distribute.has_strategy():
            # The gradient all-reduce of a distributed step cannot sit inside a graph loop.
            for i in range(self.n_critic):
                one_critic_step(i)
        else:
            # A graph loop, not a Python one: the critic step (with its double backward pass) is
            # traced once instead of n_critic times.
            tf.while_loop(lambda i: i < self.n_critic, one_critic_step, (tf.constant(0),))
        self.generator_step(None if labels is None else labels[-b:], b)
        return self.step_logs()

    def call(self, inputs, training=False):
        z, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        return self.sample(z, labels, training=training)

    def compiled_sample(self):
        """EMA sampling as a cached ``tf.function``."""
        fn = self.__dict__.get("_compiled_sample")
        if fn is None:
            fn = tf.function(self.sample, reduce_retracing=True, autograph=False)
            object.__setattr__(self, "_compiled_sample", fn)  # not a tracked Keras attribute
        return fn

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim, "latent_dim": self.latent_dim, "hidden_units": list(self.hidden_units),
            "n_classes": self.n_classes,
            "image_shape": None if self.image_shape is None else list(self.image_shape),
            "conv_filters": list(self.conv_filters), "n_levels": self.n_levels, "loss": self.loss_name,
            "gradient_penalty": self.gradient_penalty, "n_critic": self.n_critic, "ema_decay": self.ema_decay,
            "seed": self.seed,
        }


class _DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first epoch whose losses are not finite and restores the weights of
    the last epoch whose losses were (the initial weights if it was the first)."""

    def on_train_begin(self, logs=None):
        self.good_weights = self.model.get_weights()
        self.good_epochs = 0
        self.bad = None

    def on_epoch_end(self, epoch, logs=None):
        bad = {k: float(v) for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            self.model.set_weights(self.good_weights)
            self.model.stop_training = True
            self.bad = (epoch + 1, bad)
        else:
            self.good_weights = self.model.get_weights()
            self.good_epochs = epoch + 1


class _SampleGrid(keras.callbacks.Callback):
    """Writes ``epoch_NNNN.png`` into a folder every ``every`` epochs and after the last one: the
    EMA generator on fixed noise, one row of 10 per class for a conditional model."""

    def __init__(self, estimator, directory, every, epochs):
        super().__init__()
        self.estimator = estimator
        self.directory = Path(directory)
        self.every = every
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every and done != self.epochs:
            return
        from synthaug.io import sample_grid

        est = self.estimator
        codes = None if est.classes_ is None else np.repeat(np.arange(len(est.classes_)), 10)
        n = 100 if codes is None else len(codes)
        X = est._from_network(est._sample_network(n, codes, np.random.RandomState(0)))
        sample_grid(X, self.directory / f"epoch_{done:04d}.png", n_cols=10, overwrite=True)


class GAN(GenerativeEstimator):
    """Class-conditional Wasserstein GAN with gradient penalty, with a scikit-learn API.

    Parameters
    ----------
    latent_dim : int, default=32
        Size of the generator's noise input.
    hidden_units : tuple of int, default=(256, 256)
        Widths of the hidden layers of the generator and of the critic (MLPs); the last is the
        width of the critic's features. The convolutional networks use ``hidden_units[0]`` as
        the width of their dense layer.
    architecture : {"auto", "conv", "mlp"}, default="auto"
        ``"conv"``: a transposed-convolution generator and a strided-convolution critic, for
        images; ``"mlp"``: dense networks on the flattened sample. ``"auto"`` picks ``"conv"``
        for images (``(n, H, W)`` or ``(n, H, W, C)``) at least 16 pixels high and wide, and
        ``"mlp"`` for smaller images and tabular data: on 8x8 digits the dense networks meet
        the benchmark targets and train over ten times faster per epoch on a CPU than the
        convolutional ones (the gradient penalty differentiates the critic twice, which is
        costly for small convolutions).
    conv_filters : tuple of int, default=(32, 64)
        Filters of the convolutional blocks, one halving (critic) or doubling (generator) of
        the image each.
    loss : {"wgan-gp", "hinge", "non-saturating"}, default="wgan-gp"
        Adversarial loss. ``"wgan-gp"``: Wasserstein critic (Gulrajani et al., 2017);
        ``"hinge"``: hinge loss (Miyato et al., 2018); ``"non-saturating"``: the logistic loss of
        Goodfellow et al. (2014) with the generator maximising log D(G(z)).
    gradient_penalty : float, default=10.0
        Weight of the gradient penalty on interpolates between real and generated samples,
        for every ``loss`` (0 disables it; ``"wgan-gp"`` then has no Lipschitz constraint).
    n_critic : int, default=2
        Critic updates per generator update; each sees its own real batch. (Gulrajani et al.
        use 5; on digits, 2 reaches better samples in the same training time.)
    ema_decay : float, default=0.999
        Decay of the exponential moving average of the generator's weights, which
        ``generate`` uses. The effective decay ramps up from 0.1 over the first updates.
    epochs : int, default=500
        Passes of the critic over the training data; each pass makes ``n_samples // (n_critic *
        batch_size)`` generator updates. There is no early stopping: GAN losses do not measure
        sample quality.
    batch_size : int, default=64
        Samples per critic and generator update.
    learning_rate : float, default=2e-4
        Adam's learning rate, for both networks.
    beta_1, beta_2 : float, default=0.5, 0.9
        Adam's moment decays (the settings of Gulrajani et al., 2017).
    sample_dir : str or path, default=None
        If given (images only), a PNG grid of samples ``epoch_NNNN.png`` is written there every
        ``sample_every`` epochs and after the last one, from fixed noise.
    sample_every : int, default=50
        Epochs between two sample grids.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, noise and shuffling.
    verbose : int, default=0
        0 silent, 1 one progress bar over the epochs, 2 a line of losses per epoch.

    Attributes
    ----------
    model_ : GANModel
        The fitted Keras model (generator, EMA generator and critic).
    history_ : dict
        Per-epoch means of ``critic_loss`` (without the penalty), ``gradient_penalty``,
        ``generator_loss`` and ``wasserstein`` (mean critic value on real minus generated
        samples; for ``"wgan-gp"`` an estimate of the Wasserstein-1 distance).
    classes_ : ndarray or None
        Labels seen in ``fit``; ``None`` for an unconditional model.
    input_shape_ : tuple
        Shape of one sample.
    n_features_in_ : int
        ``X.shape[1]`` as scikit-learn defines it (the height for images).

    Notes
    -----
    Integer data with at most 32 levels (e.g. digits, 0..16) is dequantised for the critic,
    ``(x + u) / L`` with ``u ~ U(0, 1)``, and generated values are mapped back to the level whose
    cell holds them, so samples stay on the training data's levels.

    A GAN has no likelihood and no encoder: there is no ``score_samples`` or ``transform``.

    Like every synthaug generator it trains under a ``tf.distribute`` strategy entered by the
    caller (``with strategy.scope(): gan.fit(X, y)``); ``batch_size`` is then the global batch,
    and the critic updates of a step are unrolled in the graph rather than looped.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from synthaug import GAN
    >>> digits = load_digits()
    >>> gan = GAN(epochs=2, random_state=0).fit(digits.images, digits.target)
    >>> X, y = gan.generate(4, y=[0, 1, 2, 3], random_state=0)
    >>> X.shape, y.tolist()
    ((4, 8, 8), [0, 1, 2, 3])
    """

    _progress_keys = ("critic_loss", "generator_loss", "wasserstein")

    _parameter_constraints = {
        "latent_dim": POSITIVE_INT, "hidden_units": PositiveInts(), "architecture": Options("auto", "conv", "mlp"),
        "conv_filters": PositiveInts(), "loss": Options(*LOSSES), "gradient_penalty": NON_NEGATIVE,
        "n_critic": POSITIVE_INT, "ema_decay": FRACTION, "epochs": POSITIVE_INT, "batch_size": POSITIVE_INT,
        "learning_rate": POSITIVE, "beta_1": FRACTION, "beta_2": FRACTION, "sample_every": POSITIVE_INT,
        "verbose": VERBOSE,
    }

    def __init__(self, latent_dim: int = 32, hidden_units=(256, 256), architecture: str = "auto",
                 conv_filters=(32, 64), loss: str = "wgan-gp", gradient_penalty: float = 10.0,
                 n_critic: int = 2, ema_decay: float = 0.999, epochs: int = 500, batch_size: int = 64,
                 learning_rate: float = 2e-4, beta_1: float = 0.5, beta_2: float = 0.9, sample_dir=None,
                 sample_every: int = 50, random_state=None, verbose: int = 0):
        self.latent_dim = latent_dim
        self.hidden_units = hidden_units
        self.architecture = architecture
        self.conv_filters = conv_filters
        self.loss = loss
        self.gradient_penalty = gradient_penalty
        self.n_critic = n_critic
        self.ema_decay = ema_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.sample_dir = sample_dir
        self.sample_every = sample_every
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Fit the GAN on X (and labels y, which make it class-conditional).

        Parameters
        ----------
        X : array-like of shape (n_samples, d), (n_samples, H, W) or (n_samples, H, W, C), or tf.data.Dataset
            A ``tf.data.Dataset`` of features or (features, labels), batched or not (e.g. from
            ``keras.utils.image_dataset_from_directory``), is streamed, never held in memory:
            one pass learns the data's range, levels, classes and scaling, then training reads
            it once per epoch.
        y : array-like of shape (n_samples,), default=None
            Labels (``None`` for a dataset: its labels come with its elements).

        Returns
        -------
        self : GAN

        Raises
        ------
        FloatingPointError
            If a loss becomes NaN or infinite. Training stops; ``model_`` keeps the weights of the
            last epoch whose losses were finite and ``history_`` the epochs up to it, so the
            estimator can still generate.
        """
        self._validate_params()
        Z, codes = self._fit_data(X, y)
        conv_shape = self._conv_shape(self.architecture, min_side=_MIN_CONV_SIDE)
        if self.sample_dir is not None and self._image_shape() is None:
            raise ValueError(f"sample_dir needs images (n, H, W[, C]); got samples of shape {self.input_shape_}")
        rng, seed = self._fit_random_state()
        self.model_ = GANModel(
            input_dim=Z.shape[1], latent_dim=self.latent_dim, hidden_units=self.hidden_units,
            n_classes=0 if codes is None else len(self.classes_),
            image_shape=conv_shape, conv_filters=self.conv_filters,
            n_levels=self.n_levels_, loss=self.loss, gradient_penalty=self.gradient_penalty, n_critic=self.n_critic,
            ema_decay=self.ema_decay, seed=seed,
        )

        def adam():
            return keras.optimizers.Adam(float(self.learning_rate), beta_1=float(self.beta_1), beta_2=float(self.beta_2))

        # XLA compiles the double backward pass of the penalty for seconds and runs these small
        # networks no faster on CPU.
        self.model_.compile(critic_optimizer=adam(), generator_optimizer=adam(), jit_compile=False)
        guard = _DivergenceGuard()
        callbacks, keras_verbose = self._progress_callbacks(self.epochs)
        if self.sample_dir is not None:
            callbacks.insert(0, _SampleGrid(self, self.sample_dir, self.sample_every, self.epochs))
        data, steps = self._dataset(Z, codes, seed)
        history = self.model_.fit(data, epochs=self.epochs, steps_per_epoch=steps, callbacks=[guard] + callbacks,
                                  verbose=keras_verbose, shuffle=False)
        self.history_ = {k: [float(v) for v in vals[:guard.good_epochs]] for k, vals in history.history.items()}
        if guard.bad is not None:
            epoch, bad = guard.bad
            what = ", ".join(f"{k}={v}" for k, v in bad.items())
            kept = (f"the weights of epoch {guard.good_epochs}, the last with finite losses, were"
                    if guard.good_epochs else "the initial weights were")
            raise FloatingPointError(
                f"GAN training diverged in epoch {epoch}: {what}. Training stopped and {kept} restored in "
                f"model_; try a lower learning_rate (got {self.learning_rate}) or a larger gradient_penalty "
                f"(got {self.gradient_penalty})"
            )
        return self

    def _dataset(self, Z, codes, seed):
        """An endless, reshuffled stream of ``n_critic * b`` samples per step; ``b`` shrinks for
        tiny data sets so that one epoch is at least one step."""
        n = len(Z)
        b = max(1, min(self.batch_size, n // self.n_critic))
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if b < replicas:  # each replica splits its slice into n_critic critic batches of b / replicas
            raise ValueError(
                f"GAN trains on {b} samples per critic step (batch_size={self.batch_size}, {n} training samples), "
                f"fewer than the {replicas} replicas of the tf.distribute strategy: each replica needs at least "
                f"one; use batch_size >= {replicas} and at least {replicas * self.n_critic} training samples")
        per_step = b * self.n_critic
        if isinstance(Z, StreamedData):
            return Z.batches(per_step, shuffle_seed=seed, repeat=True, drop_remainder=True), max(1, n // per_step)
        parts = Z if codes is None else (Z, codes.astype("int32"))
        data = (tf.data.Dataset.from_tensor_slices(parts).shuffle(n, seed=seed, reshuffle_each_iteration=True)
                .repeat().batch(per_step, drop_remainder=True).prefetch(2))
        return data, max(1, n // per_step)

    def _sample_network(self, n_samples, codes, rng, batch_size=4096):
        z = rng.standard_normal((n_samples, self.latent_dim)).astype(np.float32)
        out = self._batched_call(self.model_.compiled_sample(), z, codes, batch_size)
        if self.n_levels_ is None:
            return out
        return np.clip(np.floor((out + 1.0) * (self.n_levels_ / 2.0)), 0, self.n_levels_ - 1).astype(np.int32)

    def _sample_network_graph(self, n, codes, seed, model):
        """``_sample_network`` in-graph with stateless noise (see ``GenerativeEstimator._sample_graph``)."""
        z = tf.random.stateless_normal(tf.stack([tf.cast(n, tf.int32), self.latent_dim]), seed)
        out = tf.cast(model.sample(z, codes), tf.float32)
        if self.n_levels_ is None:
            return out
        return tf.cast(tf.clip_by_value(tf.floor((out + 1.0) * (self.n_levels_ / 2.0)), 0, self.n_levels_ - 1),
                       tf.int32)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Save the fitted GAN to one ``.synthaug`` file; see :meth:`GenerativeEstimator.save`."""
        sample_dir = self.sample_dir
        if sample_dir is not None:
            self.sample_dir = os.fspath(sample_dir)  # the parameters are stored as JSON
        try:
            return super().save(path, overwrite=overwrite)
        finally:
            self.sample_dir = sample_dir
