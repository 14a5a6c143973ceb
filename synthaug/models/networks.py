"""Shared Keras 3 building blocks."""
from __future__ import annotations

import keras


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
