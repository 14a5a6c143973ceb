"""Fitting a synthaug Keras model: the validation split, tf.data pipeline and early stopping
that every family shares."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def split_indices(n: int, validation_fraction: float, rng: np.random.RandomState):
    """Shuffled (train, validation) indices; no validation split for fewer than 10 samples."""
    n_val = int(round(validation_fraction * n)) if n >= 10 else 0
    perm = rng.permutation(n)
    return perm[n_val:], perm[:n_val]


def make_dataset(Z, codes, idx, batch_size: int, shuffle_seed=None) -> tf.data.Dataset:
    """Batches of ``Z[idx]`` (and ``codes[idx]``), reshuffled every epoch when a seed is given."""
    parts = Z[idx] if codes is None else (Z[idx], codes[idx].astype("int32"))
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(idx), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(min(batch_size, len(idx)))


def fit_model(estimator, model, Z, codes, rng, seed, callbacks=()) -> dict:
    """Fit ``model`` on network-unit data with the estimator's training parameters.

    Uses ``estimator.validation_fraction``, ``batch_size``, ``epochs``, ``patience`` and its
    progress settings; with a validation split, early stopping restores the best weights.
    Returns the history as plain floats.
    """
    train_idx, val_idx = split_indices(len(Z), estimator.validation_fraction, rng)
    callbacks = list(callbacks)
    val = None
    if len(val_idx):
        val = make_dataset(Z, codes, val_idx, estimator.batch_size)
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=estimator.patience, restore_best_weights=True))
    if tf.distribute.has_strategy():
        # Under a tf.distribute strategy Keras builds the model symbolically from the features
        # alone, without the labels a conditional model needs; build it now from a real batch,
        # inside the scope, so every variable is created as the strategy's (mirrored) variable.
        sample = train_idx[:2]
        model(Z[sample] if codes is None else (Z[sample], codes[sample].astype("int32")), training=False)
    progress, keras_verbose = estimator._progress_callbacks(estimator.epochs)
    history = model.fit(make_dataset(Z, codes, train_idx, estimator.batch_size, seed), validation_data=val,
                        epochs=estimator.epochs, callbacks=callbacks + progress, verbose=keras_verbose,
                        shuffle=False)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
