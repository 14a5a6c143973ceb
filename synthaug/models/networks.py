"""Shared Keras 3 building blocks."""
from __future__ import annotations

import math

import keras


def _n_elements(shape):
    return math.prod(int(s) for s in shape)


@keras.saving.register_keras_serializable(package="synthaug")
class MLP(keras.layers.Layer):
    """Dense stack: ``hidden_units`` GELU layers with dropout, then a linear output layer.

    Built eagerly from ``input_dim`` so that its weights exist before the first call (loading a
    ``.keras`` file then needs no sample input).
    """

    def __init__(self, input_dim, hidden_units, output_dim, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.output_dim = int(output_dim)
        self.dropout = float(dropout)
        self.seed = seed
        self.hidden = []
        self.drops = []
        width = self.input_dim
        for i, units in enumerate(self.hidden_units):
            init_seed = None if seed is None else seed + i
            dense = keras.layers.Dense(
                units, activation="gelu", kernel_initializer=keras.initializers.GlorotUniform(init_seed)
            )
            dense.build((None, width))
            self.hidden.append(dense)
            self.drops.append(keras.layers.Dropout(self.dropout, seed=None if seed is None else seed + 100 + i))
            width = units
        self.out = keras.layers.Dense(
            self.output_dim,
            kernel_initializer=keras.initializers.GlorotUniform(None if seed is None else seed + 99),
        )
        self.out.build((None, width))
        self.built = True

    def call(self, x, training=False):
        for dense, drop in zip(self.hidden, self.drops):
            x = drop(dense(x), training=training)
        return self.out(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "hidden_units": list(self.hidden_units),
            "output_dim": self.output_dim,
            "dropout": self.dropout,
            "seed": self.seed,
        }


def _conv(filters, kernel_size, strides, seed, transpose=False, activation="gelu"):
    layer = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
    return layer(filters, kernel_size, strides=strides, padding="same", activation=activation,
                 kernel_initializer=keras.initializers.GlorotUniform(seed))


def _downsampled_size(size, n_down):
    for _ in range(n_down):
        size = (size + 1) // 2
    return size


@keras.saving.register_keras_serializable(package="synthaug")
class ConvEncoder(keras.layers.Layer):
    """Flat images (B, H*W*C) → (B, output_dim) through strided 3x3 convolutions and a dense head.

    ``filters`` gives one stride-2 convolution per entry (each after a stride-1 one), so
    ``len(filters)`` halvings of the image. Inputs stay flat so the model around it sees the
    same (B, D) interface as the MLP; the reshape happens here.
    """

    def __init__(self, image_shape, filters, dense_units, output_dim, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.filters = tuple(int(f) for f in filters)
        self.dense_units = int(dense_units)
        self.output_dim = int(output_dim)
        self.dropout = float(dropout)
        self.seed = seed
        s = (lambda i: None if seed is None else seed + i)
        self.convs = []
        for i, f in enumerate(self.filters):
            self.convs += [_conv(f, 3, 1, s(2 * i)), _conv(f, 3, 2, s(2 * i + 1))]
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(self.dense_units, activation="gelu",
                                        kernel_initializer=keras.initializers.GlorotUniform(s(50)))
        self.drop = keras.layers.Dropout(self.dropout, seed=s(60))
        self.out = keras.layers.Dense(self.output_dim, kernel_initializer=keras.initializers.GlorotUniform(s(70)))
        self.build((None, int(_n_elements(self.image_shape))))

    def build(self, input_shape):
        shape = (None,) + self.image_shape
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        flat = int(_n_elements(shape[1:]))
        self.dense.build((None, flat))
        self.out.build((None, self.dense_units))
        self.built = True

    def call(self, x, training=False):
        x = keras.ops.reshape(x, (-1,) + self.image_shape)
        for conv in self.convs:
            x = conv(x)
        x = self.drop(self.dense(self.flatten(x)), training=training)
        return self.out(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape), "filters": list(self.filters),
                "dense_units": self.dense_units, "output_dim": self.output_dim, "dropout": self.dropout,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="synthaug")
class ConvDecoder(keras.layers.Layer):
    """(B, input_dim) → per-pixel parameters (B, H*W*C*per_pixel) through transposed convolutions.

    The mirror of :class:`ConvEncoder`: a dense layer to a small feature map, one stride-2
    transposed convolution per entry of ``filters`` (reversed), then a 1x1 convolution giving
    ``channels * per_pixel`` outputs (e.g. logits over the levels) at every pixel.
    """

    def __init__(self, input_dim, image_shape, filters, dense_units, per_pixel, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.filters = tuple(int(f) for f in filters)
        self.dense_units = int(dense_units)
        self.per_pixel = int(per_pixel)
        self.dropout = float(dropout)
        self.seed = seed
        s = (lambda i: None if seed is None else seed + i)
        h, w, c = self.image_shape
        n = len(self.filters)
        self.base_shape = (_downsampled_size(h, n), _downsampled_size(w, n), self.filters[-1])
        self.dense = keras.layers.Dense(self.dense_units, activation="gelu",
                                        kernel_initializer=keras.initializers.GlorotUniform(s(0)))
        self.drop = keras.layers.Dropout(self.dropout, seed=s(1))
        self.to_map = keras.layers.Dense(int(_n_elements(self.base_shape)), activation="gelu",
                                         kernel_initializer=keras.initializers.GlorotUniform(s(2)))
        self.convs = []
        for i, f in enumerate(self.filters[::-1]):
            self.convs += [_conv(f, 3, 2, s(10 + 2 * i), transpose=True), _conv(f, 3, 1, s(11 + 2 * i))]
        self.out = _conv(c * self.per_pixel, 1, 1, s(40), activation=None)
        self.build((None, self.input_dim))

    def build(self, input_shape):
        self.dense.build((None, self.input_dim))
        self.to_map.build((None, self.dense_units))
        shape = (None,) + self.base_shape
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.out.build(shape)
        self.built = True

    def call(self, z, training=False):
        x = self.to_map(self.drop(self.dense(z), training=training))
        x = keras.ops.reshape(x, (-1,) + self.base_shape)
        for conv in self.convs:
            x = conv(x)
        h, w, c = self.image_shape
        x = self.out(x[:, :h, :w, :])  # odd sizes: transposed convs overshoot by a pixel
        return keras.ops.reshape(x, (-1, h * w * c * self.per_pixel))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], int(_n_elements(self.image_shape)) * self.per_pixel)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "image_shape": list(self.image_shape),
                "filters": list(self.filters), "dense_units": self.dense_units, "per_pixel": self.per_pixel,
                "dropout": self.dropout, "seed": self.seed}
