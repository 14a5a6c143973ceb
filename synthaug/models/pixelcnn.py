"""Gated PixelCNN: an autoregressive image model with an exact discrete likelihood.

The network (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN Decoders")
is a stack of gated blocks, each with a *vertical* stack (rows above the pixel, full kernel
width) and a *horizontal* stack (pixels to the left in the same row) that receives the vertical
features shifted down one row, so the receptive field has no blind spot. Channels of a pixel are
ordered (R before G before B): every feature map belongs to one channel group and the masks of
the current-pixel taps let group ``g`` see input channels ``< g`` (first block, mask "A") or its
own and earlier groups (later blocks, mask "B"). Labels enter every gate through an embedding.

Each channel of each pixel gets a softmax over the data's integer levels, or, for many levels
(8-bit data), a discretised mixture of logistics (Salimans et al., 2017, PixelCNN++).

Sampling caches activations (Ramachandran et al., 2017, "Fast Generation for Convolutional
Autoregressive Models"): one compiled ``tf.function`` walks the pixels; the horizontal stack
computes each layer at the current pixel only, from a queue of the layer's inputs to its left,
and the vertical stack runs once per finished row on a window of the rows above it.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from synthaug._param_validation import (
    FRACTION,
    ODD_POSITIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    VERBOSE,
    Interval,
    Options,
)
from synthaug.base import GenerativeEstimator
from synthaug.models.training import BuiltModelMixin, batch_mean, batch_weight, fit_model, validation_size

_LOG_SCALE_MIN = -7.0  # PixelCNN++'s floor on the logistic log-scales
_MAX_SOFTMAX_AUTO = 8  # likelihood="auto": a softmax up to this many levels, the logistic mixture above
_UNIFORM_BITS = 24  # noise on a grid of 2**-24 in (0, 1), exact in float32: never 0 or 1


def _gate(x):
    a, b = ops.split(x, 2, axis=-1)
    return ops.tanh(a) * ops.sigmoid(b)


def _groups(n_features, n_channels):
    """Channel group of each feature: feature f of n belongs to image channel f * C // n."""
    return np.arange(n_features) * n_channels // n_features


def _channel_mask(in_groups, out_groups, strict):
    """(in, out) mask of a current-pixel tap: output group g sees inputs of groups < g (strict, mask A)
    or <= g (mask B)."""
    if strict:
        return (out_groups[None, :] > in_groups[:, None]).astype("float32")
    return (out_groups[None, :] >= in_groups[:, None]).astype("float32")


def _glorot(seed, i):
    return keras.initializers.GlorotUniform(None if seed is None else seed + i)


@keras.saving.register_keras_serializable(package="synthaug")
class GatedBlock(keras.layers.Layer):
    """One gated block: vertical stack, horizontal stack with the vertical link, label embedding.

    ``first=True`` is the input layer (mask "A": the current pixel's own channel and later ones are
    hidden; no residual connection). The vertical kernel is ``(k // 2 + 1, k)`` over the rows up to
    the current one; the horizontal kernel ``(1, k // 2 + 1)`` over the pixels up to the current
    one. ``call`` runs on whole images (training, scoring); ``vertical_row`` and
    ``horizontal_pixel`` compute one row or one pixel from cached inputs (fast sampling).
    """

    def __init__(self, in_features, filters, kernel_size, n_channels=1, first=False, n_classes=0,
                 dropout=0.0, position_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.in_features = int(in_features)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.n_channels = int(n_channels)
        self.first = bool(first)
        self.n_classes = int(n_classes)
        self.dropout = float(dropout)
        self.position_shape = None if position_shape is None else tuple(int(s) for s in position_shape)
        self.seed = seed
        self.rows = self.kernel_size // 2 + 1  # kernel height of the vertical stack, width of the horizontal
        self.pad = self.kernel_size // 2
        f, f2 = self.filters, 2 * self.filters
        in_groups = _groups(self.in_features, self.n_channels)
        feature_groups = _groups(f, self.n_channels)
        h_mask = np.ones((1, self.rows, self.in_features, f2), "float32")
        h_mask[0, -1] = _channel_mask(in_groups, np.tile(feature_groups, 2), strict=self.first)
        self.h_mask = h_mask
        self.res_mask = _channel_mask(feature_groups, feature_groups, strict=False)
        weight = self.add_weight
        self.v_kernel = weight(shape=(self.rows, self.kernel_size, self.in_features, f2),
                               initializer=_glorot(seed, 0), name="v_kernel")
        self.v_bias = weight(shape=(f2,), initializer="zeros", name="v_bias")
        self.h_kernel = weight(shape=(1, self.rows, self.in_features, f2), initializer=_glorot(seed, 1),
                               name="h_kernel")
        self.h_bias = weight(shape=(f2,), initializer="zeros", name="h_bias")
        self.link_kernel = weight(shape=(f2, f2), initializer=_glorot(seed, 2), name="link_kernel")
        self.res_kernel = weight(shape=(f, f), initializer=_glorot(seed, 3), name="res_kernel")
        self.res_bias = weight(shape=(f,), initializer="zeros", name="res_bias")
        if self.n_classes:
            self.label_v = weight(shape=(self.n_classes, f2), initializer="zeros", name="label_v")
            self.label_h = weight(shape=(self.n_classes, f2), initializer="zeros", name="label_h")
        if self.position_shape is not None:
            self.position_v = weight(shape=self.position_shape + (f2,), initializer="zeros", name="position_v")
            self.position_h = weight(shape=self.position_shape + (f2,), initializer="zeros", name="position_h")
        self.drop = keras.layers.Dropout(self.dropout, seed=None if seed is None else seed + 4)
        self.built = True

    def label_terms(self, onehot):
        """Per-image additions to the vertical and horizontal pre-activations, (B, 2F) each."""
        if not self.n_classes:
            return 0.0, 0.0
        return ops.matmul(onehot, self.label_v), ops.matmul(onehot, self.label_h)

    def _residual(self, h, gated, training=False):
        out = ops.matmul(self.drop(gated, training=training), self.res_kernel * self.res_mask) + self.res_bias
        return out if self.first else h + out

    def call(self, v, h, onehot=None, training=False):
        """Whole images: ``v``, ``h`` (B, H, W, in) → (B, H, W, F) each."""
        label_v, label_h = self.label_terms(onehot)
        p, r = self.pad, self.rows
        vp = ops.conv(ops.pad(v, [[0, 0], [r - 1, 0], [p, p], [0, 0]]), self.v_kernel) + self.v_bias + _bhw(label_v)
        if self.position_shape is not None:
            vp = vp + self.position_v
        # The vertical features reach the horizontal stack one row down: row i sees rows < i only.
        shifted = ops.pad(vp, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]
        hp = (ops.conv(ops.pad(h, [[0, 0], [0, 0], [r - 1, 0], [0, 0]]), self.h_kernel * self.h_mask)
              + self.h_bias + ops.matmul(shifted, self.link_kernel) + _bhw(label_h))
        if self.position_shape is not None:
            hp = hp + self.position_h
        return _gate(vp), self._residual(h, _gate(hp), training)

    def vertical_row(self, window, label_v, i):
        """Row ``i`` of the vertical stack from the ``rows`` input rows ending at it, (B, rows, W + 2 pad, in).

        Returns the row's output (B, W, F) and its link to the next row's horizontal stack (B, W, 2F).
        """
        vp = ops.conv(window, self.v_kernel)[:, 0] + self.v_bias + label_v[:, None]
        if self.position_shape is not None:
            vp = vp + self.position_v[i]
        return _gate(vp), ops.matmul(vp, self.link_kernel)

    def horizontal_pixel(self, window, link, label_h, i, j):
        """Pixel (i, j) of the horizontal stack from its ``rows`` inputs ending at it, (B, rows, in)."""
        kernel = (self.h_kernel * self.h_mask)[0]
        hp = ops.einsum("bki,kio->bo", window, kernel) + self.h_bias + link + label_h
        if self.position_shape is not None:
            hp = hp + self.position_h[i, j]
        return self._residual(window[:, -1], _gate(hp))

    def get_config(self):
        return {**super().get_config(), "in_features": self.in_features, "filters": self.filters,
                "kernel_size": self.kernel_size, "n_channels": self.n_channels, "first": self.first,
                "n_classes": self.n_classes, "dropout": self.dropout,
                "position_shape": None if self.position_shape is None else list(self.position_shape),
                "seed": self.seed}


def _bhw(term):
    """A per-image (B, n) term broadcast over height and width; scalars pass through."""
    return term[:, None, None, :] if hasattr(term, "shape") and len(term.shape) == 2 else term


@keras.saving.register_keras_serializable(package="synthaug")
class OutputHead(keras.layers.Layer):
    """ELU → masked 1x1 → ELU → masked 1x1: features (…, F) → parameters (…, C * per_channel).

    Output parameters of channel c read only features of groups <= c (mask B)."""

    def __init__(self, filters, hidden_units, n_channels, per_channel, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.hidden_units = int(hidden_units)
        self.n_channels = int(n_channels)
        self.per_channel = int(per_channel)
        self.seed = seed
        out_groups = np.repeat(np.arange(self.n_channels), self.per_channel)
        hidden_groups = _groups(self.hidden_units, self.n_channels)
        self.masks = [_channel_mask(_groups(self.filters, self.n_channels), hidden_groups, strict=False),
                      _channel_mask(hidden_groups, out_groups, strict=False)]
        sizes = (self.filters, self.hidden_units, self.n_channels * self.per_channel)
        self.kernels = [self.add_weight(shape=(a, b), initializer=_glorot(seed, i), name=f"kernel_{i}")
                        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
        self.biases = [self.add_weight(shape=(b,), initializer="zeros", name=f"bias_{i}")
                       for i, b in enumerate(sizes[1:])]
        self.built = True

    def call(self, h):
        for kernel, bias, mask in zip(self.kernels, self.biases, self.masks):
            h = ops.matmul(ops.elu(h), kernel * mask) + bias
        return h

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "hidden_units": self.hidden_units,
                "n_channels": self.n_channels, "per_channel": self.per_channel, "seed": self.seed}


@keras.saving.register_keras_serializable(package="synthaug")
class PixelCNNModel(BuiltModelMixin, keras.Model):
    """Gated PixelCNN over integer levels ``0..n_levels-1`` of images ``(H, W, C)``.

    ``likelihood`` is ``"categorical"`` (a softmax over the levels per channel) or ``"logistic"``
    (a discretised mixture of ``n_mixtures`` logistics per channel on levels mapped to [-1, 1]).
    Inputs to the network are the levels mapped to [-1, 1]. The training loss is the negative
    log-likelihood in nats per dimension.
    """

    def __init__(self, image_shape, n_levels, likelihood="categorical", n_mixtures=5, filters=64, n_blocks=4,
                 kernel_size=3, first_kernel_size=5, head_units=128, n_classes=0, dropout=0.0, one_hot_input=False,
                 position_bias=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.n_levels = int(n_levels)
        self.likelihood = likelihood
        self.n_mixtures = int(n_mixtures)
        self.filters = int(filters)
        self.n_blocks = int(n_blocks)
        self.kernel_size = int(kernel_size)
        self.first_kernel_size = int(first_kernel_size)
        self.head_units = int(head_units)
        self.n_classes = int(n_classes)
        self.dropout = float(dropout)
        self.one_hot_input = bool(one_hot_input)
        self.position_bias = bool(position_bias)
        self.seed = seed
        c = self.image_shape[-1]
        s = (lambda i: None if seed is None else seed + 100 * i)
        common = dict(n_channels=c, n_classes=self.n_classes, dropout=self.dropout,
                      position_shape=self.image_shape[:2] if self.position_bias else None)
        n_inputs = c * (self.n_levels if self.one_hot_input else 1)
        self.blocks = [GatedBlock(n_inputs, self.filters, self.first_kernel_size, first=True, seed=s(0), name="block_0",
                                  **common)]
        self.blocks += [GatedBlock(self.filters, self.filters, self.kernel_size, seed=s(i), name=f"block_{i}", **common)
                        for i in range(1, self.n_blocks + 1)]
        self.per_channel = self.n_levels if likelihood == "categorical" else 3 * self.n_mixtures
        self.head = OutputHead(self.filters, self.head_units, c, self.per_channel, seed=s(99), name="head")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    # -- the distribution ------------------------------------------------------------------------
    def scale(self, levels):
        """Levels → [-1, 1] (the logistic mixture's scale)."""
        return ops.cast(levels, "float32") * (2.0 / (self.n_levels - 1)) - 1.0

    def embed(self, levels):
        """Levels (..., C) → network inputs (..., C) in [-1, 1], or one-hot (..., C * n_levels) with
        ``one_hot_input``, each channel's block of features together (its channel group)."""
        if not self.one_hot_input:
            return self.scale(levels)
        onehot = ops.one_hot(ops.cast(levels, "int32"), self.n_levels)
        return ops.reshape(onehot, tuple(ops.shape(onehot)[:-2]) + (self.image_shape[-1] * self.n_levels,))

    def _onehot(self, labels):
        return ops.one_hot(labels, self.n_classes) if self.n_classes else None

    def params(self, x, labels=None, training=False):
        """Per-channel distribution parameters (B, H, W, C, P) for levels x (B, H, W, C)."""
        return self.params_from_inputs(self.embed(x), labels, training)

    def params_from_inputs(self, inputs, labels=None, training=False):
        """``params`` from embedded inputs (B, H, W, C * E): differentiable in the inputs."""
        onehot = self._onehot(labels)
        v = h = inputs
        for block in self.blocks:
            v, h = block(v, h, onehot, training=training)
        return ops.reshape(self.head(h), (-1,) + self.image_shape + (self.per_channel,))

    def level_log_prob(self, x, params):
        """log P(level) of every dimension, the shape of x, from ``params`` of shape x.shape + (P,)."""
        x = ops.cast(x, "int32")
        if self.likelihood == "categorical":
            return -ops.sparse_categorical_crossentropy(x, params, from_logits=True)
        k = self.n_mixtures
        logit_w, mean, log_s = params[..., :k], params[..., k:2 * k], ops.maximum(params[..., 2 * k:], _LOG_SCALE_MIN)
        half = 1.0 / (self.n_levels - 1)
        centred = self.scale(x)[..., None] - mean
        inv_s = ops.exp(-log_s)
        upper, lower = inv_s * (centred + half), inv_s * (centred - half)
        # log(sigmoid(a) - sigmoid(b)) for a > b, without cancellation:
        # a + log(1 - exp(b - a)) - softplus(a) - softplus(b).
        middle = (upper + ops.log(-ops.expm1(lower - upper)) - ops.softplus(upper) - ops.softplus(lower))
        xe = x[..., None]
        per_component = ops.where(xe == 0, -ops.softplus(-upper),
                                  ops.where(xe == self.n_levels - 1, -ops.softplus(lower), middle))
        return ops.logsumexp(per_component + ops.log_softmax(logit_w, axis=-1), axis=-1)

    def log_prob_dims(self, x, labels=None):
        """log P(x_d | x_<d) of every dimension d, in nats, (B, H, W, C)."""
        return self.level_log_prob(x, self.params(x, labels))

    def log_prob(self, x, labels=None):
        """log P(x) in nats per image, (B,)."""
        return ops.sum(ops.reshape(self.log_prob_dims(x, labels), (ops.shape(x)[0], -1)), -1)

    def draw(self, params, noise):
        """Levels drawn from ``params`` (..., P) with uniforms ``noise`` (..., 2) in (0, 1):
        inverse-CDF sampling, so the same noise always gives the same levels."""
        def inverse_cdf(logits, u):
            cdf = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
            below = ops.cast(cdf < u[..., None] * cdf[..., -1:], "int32")
            return ops.minimum(ops.sum(below, -1), logits.shape[-1] - 1)

        if self.likelihood == "categorical":
            return inverse_cdf(params, noise[..., 0])
        k = self.n_mixtures
        pick = ops.one_hot(inverse_cdf(params[..., :k], noise[..., 0]), k)
        mean = ops.sum(params[..., k:2 * k] * pick, -1)
        log_s = ops.sum(ops.maximum(params[..., 2 * k:], _LOG_SCALE_MIN) * pick, -1)
        u = noise[..., 1]
        x = mean + ops.exp(log_s) * (ops.log(u) - ops.log1p(-u))
        level = ops.round((x + 1.0) * (0.5 * (self.n_levels - 1)))
        return ops.cast(ops.clip(level, 0, self.n_levels - 1), "int32")

    # -- fast sampling ---------------------------------------------------------------------------
    def sample(self, given, missing, noise, labels):
        """Ancestral sampling with cached activations (Ramachandran et al., 2017).

        ``given`` (B, H, W, C) int32 levels are kept where ``missing`` is False; the others are
        drawn in raster order (channels in order within a pixel) with ``noise`` (B, H, W, C, 2).
        Per pixel, each layer's horizontal stack is evaluated at that pixel only; per row, the
        vertical stacks run on windows of the rows above. Returns levels (B, H, W, C) int32.
        """
        height, width, channels = self.image_shape
        batch = tf.shape(given)[0]
        onehot = self._onehot(labels)
        terms = [block.label_terms(onehot) for block in self.blocks]
        terms = [(tv + tf.zeros((batch, 2 * b.filters)), th + tf.zeros((batch, 2 * b.filters)))
                 for (tv, th), b in zip(terms, self.blocks)]

        def zeros(*shape):
            return tf.zeros((batch,) + shape)

        def pixel(i, j, queues, links):
            """Draw pixel (i, j) channel by channel; returns its levels and each layer's input there."""
            values = tf.zeros((batch, channels), "int32")
            for c in range(channels):
                h = self.embed(values)
                inputs = []
                for block, queue, link, (_, label_h) in zip(self.blocks, queues, links, terms):
                    inputs.append(h)
                    h = block.horizontal_pixel(tf.concat([queue, h[:, None]], 1), link[:, j], label_h, i, j)
                params = tf.reshape(self.head(h), (batch, channels, self.per_channel))[:, c]
                value = tf.where(missing[:, i, j, c], self.draw(params, noise[:, i, j, c]), given[:, i, j, c])
                values = values + value[:, None] * tf.one_hot(c, channels, dtype="int32")
            # The first layer's queue takes the complete pixel; the later layers' inputs of the last
            # pass are final (group g depends on channels < g only).
            inputs[0] = self.embed(values)
            return values, inputs

        def row_body(i, windows, links, rows):
            def col_body(j, queues, row):
                values, inputs = pixel(i, j, queues, links)
                queues = [tf.concat([q, x[:, None]], 1)[:, 1:] for q, x in zip(queues, inputs)]
                row = row + values[:, None, :] * tf.one_hot(j, width, dtype="int32")[None, :, None]
                return j + 1, queues, row

            queues = [zeros(b.rows - 1, b.in_features) for b in self.blocks]
            _, _, row = tf.while_loop(lambda j, *_: j < width, col_body,
                                      (tf.constant(0), queues, tf.zeros((batch, width, channels), "int32")))
            v = self.embed(row)
            new_windows, new_links = [], []
            for block, window, (label_v, _) in zip(self.blocks, windows, terms):
                padded = tf.pad(v, [[0, 0], [block.pad, block.pad], [0, 0]])
                window = tf.concat([window, padded[:, None]], 1)
                v, link = block.vertical_row(window, label_v, i)
                new_windows.append(window[:, 1:])
                new_links.append(link)
            return i + 1, new_windows, new_links, rows.write(i, row)

        windows = [zeros(b.rows - 1, width + 2 * b.pad, b.in_features) for b in self.blocks]
        links = [zeros(width, 2 * b.filters) for b in self.blocks]
        rows = tf.TensorArray("int32", size=height)
        _, _, _, rows = tf.while_loop(lambda i, *_: i < height, row_body, (tf.constant(0), windows, links, rows))
        return tf.transpose(rows.stack(), (1, 0, 2, 3))

    def compiled_fn(self, name, jit_compile=False):
        """``sample``, ``params``, ``log_prob`` or ``log_prob_dims`` as a cached ``tf.function`` with a
        batch-size-free signature, so it is traced once (kept out of Keras' tracking)."""
        cache = self.__dict__.get("_compiled_fns")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_compiled_fns", cache)
        key = (name, jit_compile)
        if key not in cache:
            images = tf.TensorSpec((None,) + self.image_shape, tf.int32)
            labels = tf.TensorSpec((None,), tf.int32)
            if name == "sample":
                signature = [images, tf.TensorSpec((None,) + self.image_shape, tf.bool),
                             tf.TensorSpec((None,) + self.image_shape + (2,), tf.float32), labels]
            else:
                signature = [images, labels]
            cache[key] = tf.function(getattr(self, name), input_signature=signature, jit_compile=jit_compile,
                                     autograph=False)
        return cache[key]

    # -- Keras hooks -------------------------------------------------------------------------------
    def _loss(self, data, training):
        x, labels = data if isinstance(data, (tuple, list)) else (data, None)
        return -batch_mean(self.level_log_prob(x, self.params(x, labels, training=training)))

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._loss(data, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        average = self.__dict__.get("_polyak")
        if average is not None:
            average.update(self.trainable_variables)
        self.loss_tracker.update_state(loss, sample_weight=batch_weight(data))
        return self.step_logs()

    def test_step(self, data):
        self.loss_tracker.update_state(self._loss(data, training=False), sample_weight=batch_weight(data))
        return self.step_logs()

    def call(self, inputs, training=False):
        x, labels = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        return self.params(x, labels, training=training)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape), "n_levels": self.n_levels,
                "likelihood": self.likelihood, "n_mixtures": self.n_mixtures, "filters": self.filters,
                "n_blocks": self.n_blocks, "kernel_size": self.kernel_size,
                "first_kernel_size": self.first_kernel_size, "head_units": self.head_units,
                "n_classes": self.n_classes, "dropout": self.dropout, "one_hot_input": self.one_hot_input,
                "position_bias": self.position_bias, "seed": self.seed}


class _PolyakAverage(keras.callbacks.Callback):
    """Polyak averaging: an exponential moving average of the weights, which validation, early
    stopping and the fitted model use (the optimiser keeps stepping the raw weights).

    The decay ramps up as min(decay, (1 + t) / (10 + t)) over the updates t.
    """

    def __init__(self, decay):
        super().__init__()
        self.decay = decay
        self.swapped = False

    def on_train_begin(self, logs=None):
        self.raw = None
        self.averages = [tf.Variable(v.value, trainable=False) for v in self.model.trainable_variables]
        self.steps = tf.Variable(0.0, trainable=False)
        object.__setattr__(self.model, "_polyak", self)

    def update(self, variables):
        self.steps.assign_add(1.0)
        decay = tf.minimum(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        for average, v in zip(self.averages, variables):
            average.assign(decay * average + (1.0 - decay) * v.value)

    def _swap_in(self):
        if not self.swapped:
            self.raw = [v.numpy() for v in self.model.trainable_variables]
            for v, average in zip(self.model.trainable_variables, self.averages):
                v.assign(average)
            self.swapped = True

    def on_test_begin(self, logs=None):
        self._swap_in()

    def on_epoch_begin(self, epoch, logs=None):
        if self.swapped:
            for v, raw in zip(self.model.trainable_variables, self.raw):
                v.assign(raw)
            self.swapped = False

    def on_train_end(self, logs=None):
        self._swap_in()
        self.model.__dict__.pop("_polyak", None)


class _AutoOrBool:
    """Constraint: ``"auto"``, True or False."""

    def check(self, name, value):
        if not (isinstance(value, (bool, np.bool_)) or (isinstance(value, str) and value == "auto")):
            raise ValueError(f"{name} must be 'auto', True or False; got {value!r}")


def _check_levels(levels):
    if isinstance(levels, str) and levels == "auto":
        return
    if not isinstance(levels, (int, np.integer)) or isinstance(levels, bool) or levels < 2:
        raise ValueError(f"levels must be 'auto' or an integer >= 2; got {levels!r}")


class PixelCNN(GenerativeEstimator):
    """Class-conditional gated PixelCNN with an exact likelihood and fast sampling.

    An autoregressive model of images: each channel of each pixel, in raster order, gets a
    distribution over the data's integer levels given every earlier value (and the label).
    ``score_samples`` is the exact log-probability, ``generate`` samples with cached
    activations in one compiled loop, and ``complete`` fills in missing pixels.

    Parameters
    ----------
    filters : int, default=32
        Feature maps of each stack (vertical and horizontal) in every gated block.
    n_blocks : int, default=5
        Gated residual blocks after the input block.
    kernel_size : odd int, default=3
        Kernel size of the blocks: the vertical stack sees ``kernel_size // 2 + 1`` rows ×
        ``kernel_size`` columns, the horizontal stack ``kernel_size // 2 + 1`` pixels of its row.
    first_kernel_size : odd int, default=7
        Kernel size of the input block (its horizontal part is mask "A": it hides the current
        pixel's own channel and the later ones).
    head_units : int, default=128
        Width of the output head's hidden 1x1 layer.
    levels : "auto" or int, default="auto"
        ``"auto"``: X must hold integer values; every integer between its minimum and maximum
        is a level (17 for digits' 0..16, 256 for full-range 8-bit images, 4096 for 12-bit CT).
        Non-integer data is refused. An integer: X (integer or not) is quantised to that many
        equally spaced levels between its minimum and maximum, e.g. ``levels=256`` for CT in
        Hounsfield units; ``generate`` returns level values and ``score_samples`` scores the
        quantised images.
    likelihood : {"auto", "categorical", "logistic"}, default="auto"
        ``"categorical"``: a softmax over the levels per channel (the right choice for
        unordered levels such as label maps). ``"logistic"``: a discretised mixture of
        ``n_mixtures`` logistics per channel (PixelCNN++), which shares strength between
        neighbouring levels. ``"auto"`` picks the softmax for at most 8 levels and the mixture
        above: on digits' 17 levels the mixture generalises better (test 1.67 against 1.71
        bits/dim in the same setting).
    n_mixtures : int, default=5
        Components of the logistic mixture.
    dropout : float, default=0.3
        Dropout on the gated features of every block (training only).
    one_hot_input : "auto" or bool, default="auto"
        Feed the network one-hot levels (True) or levels scaled to [-1, 1] (False). ``"auto"``:
        one-hot for the categorical likelihood, where levels need not be ordered.
    position_bias : "auto" or bool, default="auto"
        A learned bias per pixel position in every gate (``H * W * 4 * filters`` weights per
        block), so that the network knows where in the image it is; helps small aligned images
        such as digits. ``"auto"``: on for images of at most 1024 pixels.
    polyak_decay : float, default=0.995
        Polyak averaging: validation, early stopping and the fitted model use an exponential
        moving average of the weights with this decay (0 disables it).
    epochs : int, default=100
        Maximum epochs; early stopping usually ends training sooner.
    batch_size : int, default=32
    learning_rate : float, default=2e-3
        Adam's learning rate; it halves after ``max(1, patience // 3)`` epochs without
        improvement of the validation loss, down to ``learning_rate / 64``.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping (0 disables it and the
        learning-rate schedule).
    patience : int, default=10
        Epochs without improvement of the validation loss before training stops; the best
        weights are restored.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, shuffling and the validation split.
    verbose : int, default=0
        0 silent, 1 one progress bar over the epochs, 2 a line per epoch.

    Attributes
    ----------
    model_ : PixelCNNModel
        The fitted Keras model.
    history_ : dict
        Per-epoch training and validation loss (nats per dimension) and learning rate.
    n_levels_ : int
        Number of levels modelled per channel.
    level_step_ : float
        Distance between two levels in the units of X (1 for ``levels="auto"``).
    classes_ : ndarray or None
        Labels seen in ``fit``; ``None`` for an unconditional model.
    class_prior_ : ndarray or None
        Share of each class in the training data.
    input_shape_ : tuple
        Shape of one image.
    n_features_in_ : int
        ``X.shape[1]`` as scikit-learn defines it (the height).

    Notes
    -----
    A PixelCNN is a model of images only: tabular data is refused. Images ``(n, H, W)`` are
    modelled as one channel; ``(n, H, W, C)`` with the channels of a pixel in order.

    ``complete`` draws each missing value given every value before it in raster order (given or
    drawn); the given values after it do not inform it. With ``n_candidates > 1`` it draws that
    many completions and keeps one with probability proportional to the likelihood of the given
    values under it (sampling-importance-resampling), which approaches the exact conditional
    distribution of the missing values as ``n_candidates`` grows.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from synthaug import PixelCNN
    >>> digits = load_digits()
    >>> model = PixelCNN(filters=16, n_blocks=2, epochs=2, random_state=0).fit(digits.images, digits.target)
    >>> X, y = model.generate(4, y=[0, 1, 2, 3], random_state=0)
    >>> X.shape, y.tolist()
    ((4, 8, 8), [0, 1, 2, 3])
    """

    _parameter_constraints = {
        "filters": POSITIVE_INT, "n_blocks": Interval(0, None, integer=True), "kernel_size": ODD_POSITIVE_INT,
        "first_kernel_size": ODD_POSITIVE_INT, "head_units": POSITIVE_INT,
        "likelihood": Options("auto", "categorical", "logistic"), "n_mixtures": POSITIVE_INT, "dropout": FRACTION,
        "one_hot_input": _AutoOrBool(), "position_bias": _AutoOrBool(),
        "polyak_decay": FRACTION,
        "epochs": POSITIVE_INT, "batch_size": POSITIVE_INT, "learning_rate": POSITIVE,
        "validation_fraction": FRACTION, "patience": POSITIVE_INT, "verbose": VERBOSE,
    }

    def __init__(self, filters: int = 32, n_blocks: int = 5, kernel_size: int = 3, first_kernel_size: int = 7,
                 head_units: int = 128, levels="auto", likelihood: str = "auto", n_mixtures: int = 5,
                 dropout: float = 0.3, one_hot_input="auto", position_bias="auto", polyak_decay: float = 0.995,
                 epochs: int = 100, batch_size: int = 32, learning_rate: float = 2e-3,
                 validation_fraction: float = 0.1, patience: int = 10, random_state=None, verbose: int = 0):
        self.filters = filters
        self.n_blocks = n_blocks
        self.kernel_size = kernel_size
        self.first_kernel_size = first_kernel_size
        self.head_units = head_units
        self.levels = levels
        self.likelihood = likelihood
        self.n_mixtures = n_mixtures
        self.dropout = dropout
        self.one_hot_input = one_hot_input
        self.position_bias = position_bias
        self.polyak_decay = polyak_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the PixelCNN by maximum likelihood on images X (and labels y, which make it conditional).

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W) or (n_samples, H, W, C)
            Images with integer values, or any values with ``levels`` set to quantise them.
        y : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : PixelCNN
        """
        self._validate_params()
        _check_levels(self.levels)
        if isinstance(X, tf.data.Dataset):
            raise TypeError("PixelCNN.fit takes an array of images; streaming a tf.data.Dataset is not supported "
                            "by PixelCNN (collect it into an array first)")
        X = self._validate_X(X, reset=True)
        if X.ndim == 2:
            raise ValueError(
                f"PixelCNN models images: X must have shape (n, H, W) or (n, H, W, C); got tabular data of "
                f"shape {X.shape}. Use VAE, Flow or GAN for tabular data"
            )
        n_levels, self.level_step_ = self._choose_levels(X)
        Z, codes = self._fit_data(X, y)  # range, dtype, labels; Z through this class's _to_network
        self.n_levels_ = n_levels
        for name in ("offset_", "scale_", "feature_min_", "feature_max_"):
            setattr(self, name, None)  # the base class's continuous scaler is not used
        likelihood = self.likelihood
        if likelihood == "auto":
            likelihood = "categorical" if n_levels <= _MAX_SOFTMAX_AUTO else "logistic"
        rng, seed = self._fit_random_state()
        self.model_ = PixelCNNModel(
            image_shape=self._image_shape(), n_levels=n_levels, likelihood=likelihood, n_mixtures=self.n_mixtures,
            filters=self.filters, n_blocks=self.n_blocks, kernel_size=self.kernel_size,
            first_kernel_size=self.first_kernel_size, head_units=self.head_units,
            n_classes=0 if codes is None else len(self.classes_), dropout=self.dropout,
            one_hot_input=likelihood == "categorical" if self.one_hot_input == "auto" else self.one_hot_input,
            position_bias=(np.prod(self.input_shape_[:2]) <= 1024 if self.position_bias == "auto"
                           else self.position_bias),
            seed=seed,
        )
        self.model_.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)), jit_compile=False)
        callbacks = [_PolyakAverage(self.polyak_decay)] if self.polyak_decay > 0 else []
        if validation_size(len(Z), self.validation_fraction):  # it watches val_loss
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                factor=0.5, patience=max(1, self.patience // 3), min_lr=self.learning_rate / 64))
        self.history_ = fit_model(self, self.model_, Z, codes, rng, seed, callbacks)
        return self

    def _choose_levels(self, X):
        """(number of levels, step between levels in X's units) from the training images."""
        lo, hi = float(X.min()), float(X.max())
        if self.levels == "auto":
            fractional = np.mod(X, 1) != 0
            if fractional.any():
                first = np.flatnonzero(fractional.reshape(len(X), -1).any(1))[0]
                raise ValueError(
                    f"X has non-integer values (first in sample {first}); PixelCNN models discrete levels: "
                    "pass levels=<int> to quantise X into that many equally spaced levels between its "
                    "minimum and maximum"
                )
            n_levels, step = round(hi - lo) + 1, 1.0
        else:
            n_levels = int(self.levels)
            step = (hi - lo) / (n_levels - 1)
        if hi == lo:
            raise ValueError(f"X holds a single value ({lo:g}); a PixelCNN needs at least 2 levels")
        return n_levels, step

    # -- the data scaler: caller's units <-> levels 0..n_levels-1 ------------------------------
    def _to_network(self, X):
        X = np.asarray(X, dtype=np.float64)
        top = round((self.data_max_ - self.data_min_) / self.level_step_)
        Z = np.clip(np.rint((X - self.data_min_) / self.level_step_), 0, top).astype(np.int32)
        return Z.reshape((len(X),) + self._image_shape())

    def _from_network(self, Z, clip=True):
        X = self.data_min_ + np.asarray(Z, dtype=np.float64) * self.level_step_
        if np.issubdtype(self.dtype_, np.integer):
            X = np.rint(X)
        return X.astype(self.dtype_).reshape((len(X),) + tuple(self.input_shape_))

    def _levels_of(self, X):
        """Validated images in the caller's units → (X, levels (n, H, W, C))."""
        X = self._validate_X(X, reset=False)
        if self.levels == "auto" and np.any(np.mod(X, 1) != 0):
            raise ValueError("X has non-integer values, but this PixelCNN was fitted with levels='auto' on "
                             "integer data")
        return X, self._to_network(X)

    # -- likelihood ------------------------------------------------------------------------------
    def _batched(self, name, Z, codes, batch_size=512):
        fn = self.model_.compiled_fn(name)
        codes = np.zeros(len(Z), "int32") if codes is None else np.asarray(codes, "int32")
        return np.concatenate([fn(tf.constant(Z[i:i + batch_size]), tf.constant(codes[i:i + batch_size])).numpy()
                               for i in range(0, len(Z), batch_size)]).astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # images only: scikit-learn's checks feed tables
        tags.input_tags.three_d_array = True
        return tags

    def score_samples(self, X, y=None):
        """Exact log-probability of each image, in nats (summed over pixels and channels).

        With ``levels`` set, the probability of the quantised image. A conditional model given
        ``y`` returns log P(x | y); without ``y`` it returns log P(x) = log sum_c P(c) P(x | c).
        With ``levels="auto"`` an image holding a value outside the training range scores -inf
        (the model gives it probability 0, as the VAE and the Flow do); with ``levels`` set such
        values are quantised to the nearest end level, like every other value.

        Parameters
        ----------
        X : array-like of shape (n_samples, *input_shape_)
        y : array-like of shape (n_samples,), default=None

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        X, Z = self._levels_of(X)
        if self.classes_ is None or y is not None:
            log_p = self._batched("log_prob", Z, self._check_label_input(Z, y))
        else:
            per_class = np.stack([self._batched("log_prob", Z, np.full(len(Z), c)) + np.log(self.class_prior_[c])
                                  for c in range(len(self.classes_))])
            top = per_class.max(0)
            log_p = top + np.log(np.exp(per_class - top).sum(0))
        if self.levels == "auto":  # _levels_of refused non-integers; out of range is what is left
            flat = X.reshape(len(X), -1)
            log_p = np.where(((flat < self.data_min_) | (flat > self.data_max_)).any(axis=1), -np.inf, log_p)
        return log_p

    # -- sampling --------------------------------------------------------------------------------
    def generate(self, n_samples: int, y=None, random_state=None, *, method: str = "fast", watermark: bool = True):
        """Draw synthetic images; see :meth:`GenerativeEstimator.generate`.

        ``method="fast"`` (default) samples with cached activations in one compiled loop;
        ``"naive"`` runs the whole network once per pixel and channel (a reference: the same
        seed gives the same images, many times slower).
        """
        return self._generate(n_samples, y, random_state, watermark=watermark, method=method)

    def _noise(self, rng, n):
        shape = (n,) + self._image_shape() + (2,)
        return ((rng.randint(0, 2**_UNIFORM_BITS, size=shape) + 0.5) / 2**_UNIFORM_BITS).astype(np.float32)

    def _sample_network(self, n_samples, codes, rng, method="fast"):
        Z = np.zeros((n_samples,) + self._image_shape(), np.int32)
        return self._sample_levels(Z, np.ones(Z.shape, bool), self._noise(rng, n_samples), codes, method)

    def _sample_levels(self, given, missing, noise, codes, method):
        if method not in ("fast", "naive"):
            raise ValueError(f"method must be 'fast' or 'naive'; got {method!r}")
        codes = np.zeros(len(given), "int32") if codes is None else np.asarray(codes, "int32")
        batch = max(1, min(1024, 2**18 // int(np.prod(self._image_shape()))))
        out = []
        for i in range(0, len(given), batch):
            part = [tf.constant(a[i:i + batch]) for a in (given, missing, noise, codes)]
            out.append(self._sample_fast(*part) if method == "fast" else self._sample_naive(*part))
        return np.concatenate(out)

    def _sample_fast(self, given, missing, noise, labels):
        return self.model_.compiled_fn("sample")(given, missing, noise, labels).numpy()

    def _sample_naive(self, given, missing, noise, labels):
        """The reference sampler: the full network on the whole image for every pixel and channel."""
        params = self.model_.compiled_fn("params")
        x = given.numpy().copy()
        missing, noise = missing.numpy(), noise.numpy()
        height, width, channels = self._image_shape()
        for i in range(height):
            for j in range(width):
                for c in range(channels):
                    drawn = self.model_.draw(params(tf.constant(x), labels)[:, i, j, c], noise[:, i, j, c]).numpy()
                    x[:, i, j, c] = np.where(missing[:, i, j, c], drawn, x[:, i, j, c])
        return x

    def complete(self, X, mask, y=None, random_state=None, *, n_candidates: int = 1, method: str = "fast"):
        """Fill in the missing values of images (in-painting); the given values are kept exactly.

        Parameters
        ----------
        X : array-like of shape (n_samples, *input_shape_)
            Images; values where ``mask`` is True are ignored.
        mask : array-like of bool, shape of X or of one image
            True where a value is missing (to be drawn).
        y : label or array-like of shape (n_samples,), default=None
            Labels of a conditional model; ``None`` draws them from the class balance (with
            ``n_candidates > 1`` they are resampled with the completions, so the given pixels
            inform them).
        random_state : int, RandomState or None, default=None
        n_candidates : int, default=1
            Completions drawn per image; one is kept with probability proportional to the
            likelihood of the given values under it (see Notes of the class).
        method : {"fast", "naive"}, default="fast"

        Returns
        -------
        X_completed : ndarray of the shape of X, in the training data's dtype
        y : ndarray of shape (n_samples,)
            Returned only by a conditional model: the labels used.

        Notes
        -----
        Completed images are not watermarked (the mark would change the given pixels).
        """
        check_is_fitted(self)
        if not isinstance(n_candidates, (int, np.integer)) or n_candidates < 1:
            raise ValueError(f"n_candidates must be a positive integer; got {n_candidates!r}")
        X, Z = self._levels_of(X)
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise TypeError(f"mask must be boolean (True = missing); got dtype {mask.dtype}")
        if mask.shape not in (X.shape, X.shape[1:]):
            raise ValueError(f"mask must have the shape of X {X.shape} or of one image {X.shape[1:]}; got {mask.shape}")
        mask = np.broadcast_to(mask, X.shape)
        rng = check_random_state(random_state)
        n, k = len(X), int(n_candidates)
        if self.classes_ is not None and y is None:
            codes = rng.choice(len(self.classes_), size=n * k, p=self.class_prior_)
        else:
            codes = self._label_codes(y, n, rng)
            codes = None if codes is None else np.repeat(codes, k)
        missing = np.repeat(mask.reshape(Z.shape), k, axis=0)
        levels = self._sample_levels(np.repeat(Z, k, axis=0), missing, self._noise(rng, n * k), codes, method)
        pick = np.arange(n) * k
        if k > 1:
            given_log_p = np.where(missing, 0.0, self._batched("log_prob_dims", levels, codes))
            weights = given_log_p.reshape(n, k, -1).sum(-1)
            weights = np.exp(weights - weights.max(1, keepdims=True))
            cdf = np.cumsum(weights / weights.sum(1, keepdims=True), 1)
            pick += np.minimum((cdf < rng.random_sample((n, 1))).sum(1), k - 1)
        out = self._from_network(levels[pick])
        out[~mask] = X[~mask]
        if self.classes_ is None:
            return out
        return out, self.classes_[codes[pick]]

    # -- saving ----------------------------------------------------------------------------------
    def _fitted_state(self) -> dict:
        return {**super()._fitted_state(), "level_step_": self.level_step_}

    def _restore_state(self, state: dict) -> None:
        super()._restore_state(state)
        self.level_step_ = float(state["level_step_"])
